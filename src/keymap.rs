//! The one shape of every map the store keeps by peer (records, the opt-in policies' state,
//! tombstones): a `DashMap` keyed by public key, seeded per store, with the shard count the
//! builder was given.

use dashmap::DashMap;

use crate::PublicKey;

/// Keys come from the network, so each map is seeded per store (foldhash: a fraction of
/// SipHash's cost on a 32-byte key, and still no fixed seed for a flood to aim at).
pub(crate) type KeyMap<V> = DashMap<PublicKey, V, Hasher>;

/// The hasher of every [`KeyMap`].
pub(crate) type Hasher = foldhash::fast::RandomState;

/// A new map with `shards` shards (see [`shard_amount`]), or the map's default (four per
/// thread the machine runs).
pub(crate) fn key_map<V>(shards: Option<usize>) -> KeyMap<V> {
    let hasher = Hasher::default();
    match shards {
        Some(shards) => KeyMap::with_hasher_and_shard_amount(hasher, shard_amount(shards)),
        None => KeyMap::with_hasher(hasher),
    }
}

/// A shard count the map takes: a power of two, at least 2, at most 2^16.
pub(crate) fn shard_amount(asked: usize) -> usize {
    asked.clamp(2, 1 << 16).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_count_is_a_power_of_two_of_at_least_two() {
        for (asked, got) in [(0, 2), (1, 2), (2, 2), (3, 4), (64, 64), (65, 128)] {
            assert_eq!(shard_amount(asked), got, "asked {asked}");
            // The map asserts what it takes: building must not panic.
            assert!(key_map::<()>(Some(asked)).is_empty());
        }
        assert_eq!(shard_amount(usize::MAX), 1 << 16);
    }
}
