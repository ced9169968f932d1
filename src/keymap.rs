//! The one shape of every map the store keeps by peer (records, the opt-in policies' state,
//! tombstones, bans): a `DashMap` keyed by public key, seeded per store, with the shard count
//! the builder was given.
//!
//! Under `--cfg loom` the same names are a map of this module's own behind one of loom's
//! mutexes (`loom_map`), with the handful of dashmap's calls the store makes, so that the
//! model checker drives the store's real code and sees every lock it takes. (Loom cannot see
//! inside dashmap's locks, and a lock it cannot see would hang its scheduler.) One lock a map
//! is stricter than a lock a shard: a thread that takes a map's lock while it holds the same
//! map's guard deadlocks there, which loom reports.

#[cfg(not(loom))]
mod real {
    use dashmap::DashMap;

    use crate::PublicKey;

    /// Keys come from the network, so each map is seeded per store (foldhash: a fraction of
    /// SipHash's cost on a 32-byte key, and still no fixed seed for a flood to aim at).
    pub(crate) type KeyMap<V> = DashMap<PublicKey, V, Hasher>;

    /// A key's slot in a [`KeyMap`], taken or free, locked.
    pub(crate) type Entry<'a, V> = dashmap::mapref::entry::Entry<'a, PublicKey, V>;
    /// A free slot, locked.
    pub(crate) type VacantEntry<'a, V> = dashmap::mapref::entry::VacantEntry<'a, PublicKey, V>;
    /// A value, locked for writing.
    pub(crate) type RefMut<'a, V> = dashmap::mapref::one::RefMut<'a, PublicKey, V>;

    /// The hasher of every [`KeyMap`].
    pub(crate) type Hasher = foldhash::fast::RandomState;

    /// A new map with `shards` shards (see [`shard_amount`](super::shard_amount)), or the
    /// map's default (four per thread the machine runs).
    pub(crate) fn key_map<V>(shards: Option<usize>) -> KeyMap<V> {
        let hasher = Hasher::default();
        match shards {
            Some(shards) => {
                KeyMap::with_hasher_and_shard_amount(hasher, super::shard_amount(shards))
            }
            None => KeyMap::with_hasher(hasher),
        }
    }
}

#[cfg(not(loom))]
pub(crate) use real::{Entry, KeyMap, RefMut, VacantEntry, key_map};

#[cfg(loom)]
mod loom_map;

#[cfg(loom)]
pub(crate) use loom_map::{Entry, KeyMap, RefMut, VacantEntry, key_map};

/// What `listed` makes of the entries of `map` it takes, oldest first by when each was placed
/// (`placed`), those placed at one instant by key: how the tombstones and the bans standing
/// are listed.
pub(crate) fn oldest_first<V, T>(
    map: &KeyMap<V>,
    placed: impl Fn(&V) -> crate::clock::Nanos,
    listed: impl Fn(&crate::PublicKey, &V) -> Option<T>,
) -> Vec<T> {
    let mut out: Vec<_> = map
        .iter()
        .filter_map(|entry| {
            let (key, value) = (*entry.key(), entry.value());
            Some((placed(value), key, listed(&key, value)?))
        })
        .collect();
    out.sort_by_key(|(placed, key, _)| (*placed, *key));
    out.into_iter().map(|(_, _, listed)| listed).collect()
}

/// A shard count the map takes: a power of two, at least 2, at most 2^16.
#[cfg_attr(loom, allow(dead_code))]
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
