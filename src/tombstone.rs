//! Tombstones: a peer removed for cause stays removed against second-hand word of it.
//!
//! A store without tombstones (the default) forgets a removed peer at once, so one gossip mention two seconds after
//! the health monitor gave up on it brings it back, and a peer only ever mentioned second-hand
//! expires and is re-added forever. A tombstone, kept for a while after the removal
//! ([`PeerStore::remove_for`](crate::PeerStore::remove_for), or for every expired peer with
//! [`PeerStoreBuilder::tombstone_expired`](crate::PeerStoreBuilder::tombstone_expired)), refuses
//! a new record to the methods that do not refresh `last_seen` (the cache and the second-hand
//! ones); a first-hand method clears it and readmits the peer at once.
//!
//! Tombstones sit in a map of their own, beside the records, at most [`MAX_TOMBSTONES`] of
//! them (the oldest goes first); they do not count toward the peer cap. The map is locked only
//! while the peer's record (or its vacant slot) is locked, record first, or alone.

use std::time::{Duration, SystemTime};

use crate::clock::{Nanos, nanos_of};
use crate::keymap::{KeyMap, key_map, oldest_first};
use crate::sync::{AtomicUsize, Ordering};
use crate::{PublicKey, RemovalCause};

/// The most tombstones a store keeps; past it, the oldest is dropped.
pub const MAX_TOMBSTONES: usize = 4096;

/// How many of the oldest tombstones go at once when a placing passes [`MAX_TOMBSTONES`].
const DROPPED_AT_ONCE: usize = MAX_TOMBSTONES / 64;

/// A removed peer that second-hand word cannot bring back before [`until`](Self::until)
/// ([`PeerStore::tombstones`](crate::PeerStore::tombstones)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Tombstone {
    /// The removed peer.
    pub public_key: PublicKey,
    /// When it was removed, on the wall clock.
    pub since: SystemTime,
    /// Until when the tombstone stands, on the wall clock.
    pub until: SystemTime,
    /// Why the peer was removed: [`Explicit`](RemovalCause::Explicit) for
    /// [`remove_for`](crate::PeerStore::remove_for), [`Expired`](RemovalCause::Expired) for
    /// [`tombstone_expired`](crate::PeerStoreBuilder::tombstone_expired).
    pub cause: RemovalCause,
}

/// One tombstone as the store keeps it: on its timeline, and on the wall for callers.
#[derive(Debug, Clone, Copy)]
struct Stone {
    placed: Nanos,
    until: Nanos,
    since_wall: SystemTime,
    until_wall: SystemTime,
    cause: RemovalCause,
}

/// A tombstone that stands, as admission weighs it: on the wall clock, when the peer was
/// removed and until when it stays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    pub since: SystemTime,
    pub until: SystemTime,
}

/// A store's tombstones.
pub(crate) struct Tombstones {
    map: KeyMap<Stone>,
    /// How many the map holds: read first on every insert of a new peer, so that a store
    /// without tombstones pays one load.
    count: AtomicUsize,
}

impl Tombstones {
    pub(crate) fn new(shards: Option<usize>) -> Self {
        Tombstones {
            map: key_map(shards),
            count: AtomicUsize::new(0),
        }
    }

    /// Places a tombstone for `key`, standing for `span` from `now` (`wall` on the wall
    /// clock); a zero span places none. Past [`MAX_TOMBSTONES`] the oldest other one goes.
    /// Whether `key` had none before.
    pub(crate) fn place(
        &self,
        key: PublicKey,
        span: Duration,
        now: Nanos,
        wall: SystemTime,
        cause: RemovalCause,
    ) -> bool {
        if span.is_zero() {
            return false;
        }
        let span_nanos = nanos_of(span);
        let stone = Stone {
            placed: now,
            until: now.saturating_add(span_nanos),
            since_wall: wall,
            // `nanos_of` caps the span at about 292 years, which the wall clock holds.
            until_wall: wall
                .checked_add(Duration::from_nanos(span_nanos.unsigned_abs()))
                .unwrap_or(wall),
            cause,
        };
        if self.map.insert(key, stone).is_some() {
            return false;
        }
        if self.count.fetch_add(1, Ordering::AcqRel) >= MAX_TOMBSTONES {
            self.drop_oldest(&key);
        }
        true
    }

    /// Drops the oldest tombstones but `keep`'s, [`DROPPED_AT_ONCE`] of them: the bound's O(n)
    /// step, taken once every that many placings past the maximum.
    fn drop_oldest(&self, keep: &PublicKey) {
        let mut stones: Vec<(Nanos, PublicKey)> = self
            .map
            .iter()
            .filter(|stone| stone.key() != keep)
            .map(|stone| (stone.placed, *stone.key()))
            .collect();
        let n = DROPPED_AT_ONCE.min(stones.len());
        if n == 0 {
            return;
        }
        stones.select_nth_unstable(n - 1);
        for (_, key) in &stones[..n] {
            self.forget(key);
        }
    }

    /// Removes `key`'s tombstone; whether one was there.
    pub(crate) fn forget(&self, key: &PublicKey) -> bool {
        let gone = self.map.remove(key).is_some();
        if gone {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        gone
    }

    /// `key`'s tombstone, if one stands at `now`; one that ran out is dropped. Called with
    /// the key's record slot locked.
    // Inline, the common case (no tombstone at all) is one load on every newcomer's path.
    #[inline]
    pub(crate) fn standing(&self, key: &PublicKey, now: Nanos) -> Option<Standing> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.standing_in_map(key, now)
    }

    fn standing_in_map(&self, key: &PublicKey, now: Nanos) -> Option<Standing> {
        let stone = *self.map.get(key)?;
        if now < stone.until {
            return Some(Standing {
                since: stone.since_wall,
                until: stone.until_wall,
            });
        }
        if self
            .map
            .remove_if(key, |_, stone| now >= stone.until)
            .is_some()
        {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        None
    }

    /// Drops every tombstone that ran out by `now`.
    pub(crate) fn expire(&self, now: Nanos) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut gone = 0;
        self.map.retain(|_, stone| {
            let keep = now < stone.until;
            gone += usize::from(!keep);
            keep
        });
        if gone > 0 {
            self.count.fetch_sub(gone, Ordering::AcqRel);
        }
    }

    /// The tombstones standing at `now`, oldest first.
    pub(crate) fn list(&self, now: Nanos) -> Vec<Tombstone> {
        oldest_first(
            &self.map,
            |s| s.placed,
            |key, s| {
                (now < s.until).then_some(Tombstone {
                    public_key: *key,
                    since: s.since_wall,
                    until: s.until_wall,
                    cause: s.cause,
                })
            },
        )
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        PublicKey::from_bytes(bytes)
    }

    const WALL: SystemTime = SystemTime::UNIX_EPOCH;
    const SEC: Nanos = 1_000_000_000;

    #[test]
    fn a_tombstone_stands_for_its_span_and_then_goes() {
        let stones = Tombstones::new(Some(2));
        let span = Duration::from_secs(30);
        stones.place(key(1), span, 0, WALL, RemovalCause::Explicit);
        let standing = Standing {
            since: WALL,
            until: WALL + span,
        };
        assert_eq!(stones.standing(&key(1), 29 * SEC), Some(standing));
        assert_eq!(stones.standing(&key(2), 0), None, "another key");
        assert_eq!(stones.standing(&key(1), 30 * SEC), None, "ran out");
        assert_eq!(stones.len(), 0, "and was dropped");
        stones.place(key(1), Duration::ZERO, 0, WALL, RemovalCause::Explicit);
        assert_eq!(stones.len(), 0, "a zero span places none");
        stones.place(key(1), Duration::MAX, 0, WALL, RemovalCause::Expired);
        assert!(
            stones.standing(&key(1), Nanos::MAX - 1).is_some(),
            "saturates"
        );
        assert!(stones.forget(&key(1)));
        assert!(!stones.forget(&key(1)));
    }

    #[test]
    fn placing_again_replaces_and_expiry_counts_right() {
        let stones = Tombstones::new(Some(2));
        stones.place(
            key(1),
            Duration::from_secs(10),
            0,
            WALL,
            RemovalCause::Explicit,
        );
        stones.place(
            key(1),
            Duration::from_secs(20),
            0,
            WALL,
            RemovalCause::Expired,
        );
        stones.place(
            key(2),
            Duration::from_secs(5),
            SEC,
            WALL,
            RemovalCause::Explicit,
        );
        assert_eq!(stones.len(), 2);
        let listed = stones.list(0);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].cause, RemovalCause::Expired, "the second placing");
        stones.expire(15 * SEC);
        assert_eq!(stones.len(), 1);
        assert_eq!(stones.list(15 * SEC)[0].public_key, key(1));
    }

    #[test]
    // Four thousand inserts into a map is minutes under Miri, and this is no unsafe code's test.
    #[cfg_attr(miri, ignore)]
    fn past_the_maximum_the_oldest_goes_first() {
        let stones = Tombstones::new(Some(4));
        let span = Duration::from_secs(3600);
        for n in 0..u32::try_from(MAX_TOMBSTONES).unwrap() + 10 {
            stones.place(key(n), span, Nanos::from(n), WALL, RemovalCause::Explicit);
        }
        // The first placing past the maximum dropped the oldest 64; the other nine fit.
        let held = MAX_TOMBSTONES + 1 - DROPPED_AT_ONCE + 9;
        assert_eq!(stones.len(), held);
        assert_eq!(stones.map.len(), held);
        for n in 0..u32::try_from(DROPPED_AT_ONCE).unwrap() {
            assert!(stones.standing(&key(n), 100).is_none(), "{n} dropped");
        }
        let kept = u32::try_from(DROPPED_AT_ONCE).unwrap();
        assert!(
            stones.standing(&key(kept), 100).is_some(),
            "the next oldest kept"
        );
        assert!(stones.len() <= MAX_TOMBSTONES, "never past the maximum");
    }
}
