//! Peers leaving the store: removed by a caller, with or without a tombstone, or expired by the
//! cleanup. A removal's seq is taken under the record's lock, so it orders the removal after
//! every change to the peer; its slot is free, and its event sent, once the lock is gone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::keymap::Entry;

use super::Inner;
use crate::events::{PeerEventKind, RemovalCause};
use crate::stats::Counter;
use crate::{Peer, PublicKey};

impl Inner {
    /// [`PeerStore::remove_for`](crate::PeerStore::remove_for); a zero span keeps no tombstone.
    pub(super) fn remove(&self, key: &PublicKey, tombstone: Duration) -> Option<Arc<Peer>> {
        let (now, wall) = if tombstone.is_zero() {
            (0, SystemTime::UNIX_EPOCH)
        } else {
            self.timeline.now_and_wall()
        };
        let (record, seq) = match self.peers.entry(*key) {
            Entry::Occupied(entry) => {
                let seq = self.next_seq();
                // Before the record goes, under its lock: a new record of the same key must
                // not lose its fresh state to this removal, nor slip in before the tombstone
                // stands.
                self.forget_endpoints(key);
                self.entomb(*key, tombstone, now, wall);
                (entry.remove(), seq)
            }
            Entry::Vacant(entry) => {
                // Placed even so: the peer may have expired a moment ago.
                self.entomb(*key, tombstone, now, wall);
                drop(entry);
                return None;
            }
        };
        self.release(self.slots_of(&record));
        self.counters.add(Counter::Removed, 1);
        let cause = RemovalCause::Explicit;
        self.publish(*key, PeerEventKind::Removed { cause }, seq);
        Some(record.peer)
    }

    /// [`PeerStore::cleanup_stale`](crate::PeerStore::cleanup_stale): expires the silent, and
    /// under the resilient policy chooses every other peer's endpoint again (a candidate that
    /// went stale is replaced within one cleanup interval).
    pub(super) fn cleanup(&self) -> Vec<PublicKey> {
        let (now, wall) = if self.settings.tombstone_expired.is_none() {
            (self.timeline.now(), SystemTime::UNIX_EPOCH)
        } else {
            self.timeline.now_and_wall()
        };
        self.expire_tombstones(now);
        self.expire_bans(now);
        // The events in the order their seqs were taken: a subscriber never sees seq go back.
        let mut events = Vec::new();
        let mut expired = Vec::new();
        let mut slots = super::admission::Slots::default();
        let removed = PeerEventKind::Removed {
            cause: RemovalCause::Expired,
        };
        self.peers.retain(|key, record| {
            let keep = !record.silent_longer_than(now, self.remove_after);
            if !keep {
                events.push((*key, removed, self.next_seq()));
                expired.push(*key);
                self.forget_endpoints(key);
                self.entomb_expired(*key, now, wall);
                slots += self.slots_of(record);
            } else if let Some(seq) = self.rechoose(key, record, now) {
                events.push((*key, PeerEventKind::Updated, seq));
            }
            keep
        });
        self.release(slots);
        self.counters.add(Counter::Expired, expired.len() as u64);
        for (key, kind, seq) in events {
            self.publish(key, kind, seq);
        }
        expired
    }
}
