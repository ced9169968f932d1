//! Bans: a key the operator ruled out, refused by every method and the cache, its record
//! removed. Placed, like a tombstone, under the record's lock (or its vacant slot's), so that
//! no racing insert slips in between the ban and the removal; admission checks it under the
//! same lock ([`Inner::admit`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::keymap::Entry;

use super::Inner;
use crate::ban::{self, Ban, BanError};
use crate::events::{PeerEventKind, RemovalCause};
use crate::stats::Counter;
use crate::{Peer, PeerStore, PublicKey};

impl Inner {
    /// [`PeerStore::ban`](crate::PeerStore::ban).
    pub(super) fn ban(
        &self,
        key: &PublicKey,
        span: Option<Duration>,
        reason: &str,
    ) -> Result<Option<Arc<Peer>>, BanError> {
        self.ban_since(key, span, reason, None)
    }

    /// A ban placed now, said to stand `since` then (now if `None`).
    fn ban_since(
        &self,
        key: &PublicKey,
        span: Option<Duration>,
        reason: &str,
        since: Option<SystemTime>,
    ) -> Result<Option<Arc<Peer>>, BanError> {
        ban::check(span, reason)?;
        let (now, wall) = self.timeline.now_and_wall();
        let since = since.unwrap_or(wall);
        let bans = &self.admission.bans;
        let (record, seq) = match self.peers.entry(*key) {
            Entry::Occupied(entry) => {
                bans.place(*key, span, reason, now, wall, since)?;
                let seq = self.next_seq();
                self.forget_endpoints(key);
                (entry.remove(), seq)
            }
            Entry::Vacant(entry) => {
                bans.place(*key, span, reason, now, wall, since)?;
                drop(entry);
                return Ok(None);
            }
        };
        self.release(self.slots_of(&record));
        self.counters.add(Counter::Banned, 1);
        let cause = RemovalCause::Banned;
        self.publish(*key, PeerEventKind::Removed { cause }, seq);
        Ok(Some(record.peer))
    }

    /// [`PeerStore::unban`](crate::PeerStore::unban).
    pub(super) fn unban(&self, key: &PublicKey) -> bool {
        self.admission.bans.lift(key, self.timeline.now())
    }

    /// [`PeerStore::banned`](crate::PeerStore::banned).
    pub(super) fn banned(&self) -> Vec<Ban> {
        self.admission.bans.list(self.timeline.now())
    }

    /// Whether `key` is banned now: counted as a refusal if so (evidence for a banned key is
    /// refused like an announcement of it).
    pub(super) fn refuses_banned(&self, key: &PublicKey) -> bool {
        let banned = self
            .admission
            .bans
            .standing(key, self.timeline.now())
            .is_some();
        if banned {
            self.counters.add(Counter::RejectedBanned, 1);
        }
        banned
    }

    /// Drops every ban that ran out.
    pub(super) fn expire_bans(&self, now: crate::clock::Nanos) {
        self.admission.bans.expire(now);
    }
}

impl PeerStore {
    /// Places a ban read from a cache file: from `since` on the wall clock until `until`
    /// (`None`: until lifted), unless it ran out; whether it was placed. A record the store
    /// holds of the key goes, as for a ban placed now.
    #[cfg(feature = "serde")]
    pub(crate) fn restore_ban(
        &self,
        key: PublicKey,
        since: SystemTime,
        until: Option<SystemTime>,
        reason: &str,
    ) -> bool {
        let inner = &*self.inner;
        let wall = inner.timeline.wall_now();
        let span = match until {
            None => None,
            Some(until) => match until.duration_since(wall) {
                Ok(span) if !span.is_zero() => Some(span),
                _ => return false,
            },
        };
        inner.ban_since(&key, span, reason, Some(since)).is_ok()
    }
}
