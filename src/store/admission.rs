//! Admission: who may come in, and what a removal leaves behind. Bans (placed in `bans`),
//! the cap (a counter of reserved slots, [`Capacity`]), the second-hand and unproven quotas,
//! what a record holds of them and gives back, and every place a tombstone is placed, checked
//! or cleared. Making room in a full store is `eviction`'s.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::eviction::{Claim, Tier};
use super::{Inner, Record, Settings};
use crate::ban::Bans;
use crate::capacity::Capacity;
use crate::clock::Nanos;
use crate::events::RemovalCause;
use crate::stats::Counter;
use crate::tombstone::{Standing, Tombstone, Tombstones};
use crate::{DiscoveryMethod, PeerStore, PublicKey, UpdateError};

/// What a full store does with a new peer: [`PeerStoreBuilder::when_full`](crate::PeerStoreBuilder::when_full).
///
/// "First-hand" is a method that proves the peer alive
/// ([`DiscoveryMethod::refreshes_last_seen`](crate::DiscoveryMethod::refreshes_last_seen)):
/// LAN, rendezvous, DHT, gossip and other names; second-hand are the transitive methods and
/// the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Refuse it with [`UpdateError::StoreFull`](crate::UpdateError::StoreFull): the reference daemon's,
    /// the default. A flood of invented second-hand peers then locks real ones out until the
    /// cleanup drops the fakes.
    #[default]
    Refuse,
    /// A new peer heard first-hand evicts the least recently heard peer that was never heard
    /// first-hand (subscribers hear [`Removed { cause: Evicted }`](crate::RemovalCause::Evicted));
    /// a second-hand newcomer is still refused, and a peer ever heard first-hand is never
    /// evicted. When every peer was heard first-hand, the newcomer is refused. "Ever" is since
    /// the peer's record was inserted (its `discovered_via`): a peer removed and brought back
    /// second-hand starts again. Among peers heard equally long ago, the one whose key sorts
    /// first goes.
    EvictSecondHand,
    /// Proof over word: a peer WireGuard completed a handshake with
    /// ([`Peer::proven`](crate::Peer::proven)) is never evicted. A newcomer heard on the LAN
    /// (it is on the link now) takes the place of the least recently heard unproven peer,
    /// one never heard first-hand first: a first-hand peer outranks a second-hand one among
    /// the unproven. A newcomer heard first-hand by another method takes only a second-hand
    /// unproven peer's place, and a second-hand newcomer is refused. So a flood of fresh keys
    /// announced first-hand (a DHT flood) fills the store, and a real peer on the LAN still
    /// gets in; [`max_unproven`](crate::PeerStoreBuilder::max_unproven) bounds what such a flood
    /// can hold at all. Victims are found in an order kept by when they were heard, not by a
    /// visit of the map.
    EvictUnproven,
}

/// What lifts a tombstone before it falls: [`PeerStoreBuilder::readmit`](crate::PeerStoreBuilder::readmit).
/// The cache and the second-hand methods never do.
///
/// For [`Newer`](Self::Newer) a discovery layer passes, as [`PeerInfo::last_seen`](crate::PeerInfo::last_seen),
/// the time the record itself carries: for the DHT, the time the peer signed into its record
/// (not when the lookup returned it), so that a record the DHT kept serving after the peer
/// died is told from one the peer published since. A time in the future counts as now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Readmission {
    /// Any first-hand method lifts it at once: the reference daemon's rule, the default. A
    /// DHT that keeps serving a dead or revoked peer's record brings it back each time.
    #[default]
    FirstHand,
    /// Only news from after the removal: a LAN announcement (the peer is on the link now), or
    /// a first-hand announcement whose carried `last_seen` is later than the removal. A record
    /// that carries no time, or one from before the removal, is refused with
    /// [`UpdateError::Tombstoned`].
    Newer,
    /// Nothing: the tombstone stands its whole span.
    Never,
}

/// The admission room's state.
pub(super) struct Admission {
    pub(super) capacity: Capacity,
    /// How many peers never heard first-hand the store holds, against `max_second_hand`
    /// (unlimited if not set); kept when that is set or when the full policy evicts, so that
    /// an eviction with no victim to find costs no look.
    pub(super) second_hand: Option<Capacity>,
    /// How many peers never proven the store holds, against `max_unproven` (unlimited if not
    /// set); kept when that is set or under [`FullPolicy::EvictUnproven`].
    pub(super) unproven: Option<Capacity>,
    /// Removed peers that second-hand word cannot bring back for a while.
    tombstones: Tombstones,
    /// Keys nothing brings in.
    pub(super) bans: Bans,
}

impl Admission {
    pub(super) fn new(settings: &Settings, shards: Option<usize>) -> Self {
        let counts_second_hand =
            settings.max_second_hand.is_some() || settings.when_full != FullPolicy::Refuse;
        let counts_unproven =
            settings.max_unproven.is_some() || settings.when_full == FullPolicy::EvictUnproven;
        let quota = |max: Option<usize>| Capacity::new(max.unwrap_or(usize::MAX));
        Admission {
            capacity: Capacity::new(settings.max_peers),
            second_hand: counts_second_hand.then(|| quota(settings.max_second_hand)),
            unproven: counts_unproven.then(|| quota(settings.max_unproven)),
            tombstones: Tombstones::new(shards),
            bans: Bans::new(shards),
        }
    }
}

/// Why a new peer is not admitted now.
pub(super) enum Refusal {
    /// Refused, for this reason.
    Error(UpdateError),
    /// The store is full, and the full policy lets this newcomer evict a peer of these
    /// tiers: [`Inner::make_room`], with no record locked.
    Full(&'static [Tier]),
}

/// The slots a record holds: one under the cap, and one under each quota it counts against.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slots {
    pub records: usize,
    pub second_hand: usize,
    pub unproven: usize,
}

impl Slots {
    /// Whether any slot is held.
    pub fn any(self) -> bool {
        self.records | self.second_hand | self.unproven != 0
    }
}

impl std::ops::AddAssign for Slots {
    fn add_assign(&mut self, other: Slots) {
        self.records += other.records;
        self.second_hand += other.second_hand;
        self.unproven += other.unproven;
    }
}

impl Inner {
    /// Whether a new peer heard by `method` may go in now, called with its vacant slot locked:
    /// its ban, its tombstone, the quotas and the cap. `Ok(true)`: it goes in over a
    /// tombstone, which [`readmitted`](Self::readmitted) clears. The slots it reserves join
    /// those an eviction handed it in `claim`, which holds them until the record takes them.
    pub(super) fn admit(
        &self,
        key: &PublicKey,
        method: &DiscoveryMethod,
        carried: Option<SystemTime>,
        now: Nanos,
        claim: &mut Claim<'_>,
    ) -> Result<bool, Refusal> {
        let admission = &self.admission;
        let first_hand = method.refreshes_last_seen();
        let held = claim.slots();
        // Only a first-hand newcomer evicts, and neither refusal of a second-hand one below
        // applies to it: a slot an eviction handed over is never given back from here.
        debug_assert!(
            first_hand || held.records == 0,
            "a second-hand newcomer evicted"
        );
        if let Some(ban) = admission.bans.standing(key, now) {
            self.counters.add(Counter::RejectedBanned, 1);
            let until = ban.until;
            return Err(Refusal::Error(UpdateError::Banned { until }));
        }
        let readmitted = match admission.tombstones.standing(key, now) {
            None => false,
            Some(stone) if first_hand && self.lifts(stone, method, carried) => true,
            Some(stone) => {
                self.counters.add(Counter::RejectedTombstoned, 1);
                let until = stone.until;
                return Err(Refusal::Error(UpdateError::Tombstoned { until }));
            }
        };
        // Full, for this newcomer: make room if it may evict, else refused.
        let full = || match self.may_evict(method) {
            [] => Refusal::Error(self.full()),
            tiers => Refusal::Full(tiers),
        };
        let quota = admission.second_hand.as_ref().filter(|_| !first_hand);
        if let Some(quota) = quota
            && !quota.try_reserve()
        {
            return Err(Refusal::Error(self.full()));
        }
        // Every newcomer is unproven: under the unproven quota, unless an eviction handed it
        // an unproven peer's slot.
        let unproven = admission.unproven.as_ref().filter(|_| held.unproven == 0);
        if let Some(unproven) = unproven
            && !unproven.try_reserve()
        {
            if let Some(quota) = quota {
                quota.release();
            }
            // Only under `EvictUnproven` is every victim unproven, so that evicting one frees
            // an unproven slot.
            if self.settings.when_full == FullPolicy::EvictUnproven {
                return Err(full());
            }
            return Err(Refusal::Error(self.full()));
        }
        let cap = held.records == 0;
        if cap && !admission.capacity.try_reserve() {
            if let Some(quota) = quota {
                quota.release();
            }
            if let Some(unproven) = unproven {
                unproven.release();
            }
            return Err(full());
        }
        claim.add_slots(Slots {
            records: usize::from(cap),
            second_hand: usize::from(quota.is_some()),
            unproven: usize::from(unproven.is_some()),
        });
        Ok(readmitted)
    }

    /// Whether a first-hand announcement by `method`, carrying `carried`, lifts a standing
    /// tombstone, by the store's [`Readmission`] rule.
    fn lifts(
        &self,
        stone: Standing,
        method: &DiscoveryMethod,
        carried: Option<SystemTime>,
    ) -> bool {
        match self.settings.readmit {
            Readmission::FirstHand => true,
            Readmission::Newer => {
                *method == DiscoveryMethod::Lan || carried.is_some_and(|t| t > stone.since)
            }
            Readmission::Never => false,
        }
    }

    /// Counts a refusal of a new peer as full, and says so.
    pub(super) fn full(&self) -> UpdateError {
        self.counters.add(Counter::RejectedFull, 1);
        UpdateError::StoreFull {
            capacity: self.admission.capacity.max(),
        }
    }

    /// A new record went in over a tombstone: cleared under the record's lock, so the
    /// tombstone and the record are never seen together.
    pub(super) fn readmitted(&self, key: &PublicKey) {
        self.admission.tombstones.forget(key);
        self.counters.add(Counter::Readmitted, 1);
    }

    /// WireGuard completed a handshake with a known peer: it is proven from now on, and
    /// leaves the unproven quota. Called with its record locked; no event (a measurement, as
    /// a latency is, not news from the peer).
    pub(super) fn prove(&self, record: &mut Record) {
        if self.counts_as_unproven(record) {
            self.release_unproven(1);
        }
        Arc::make_mut(&mut record.peer).proven = true;
    }

    /// Whether a record counts against the second-hand quota: they are counted, and no method
    /// that heard the peer was first-hand.
    pub(super) fn counts_as_second_hand(&self, record: &Record) -> bool {
        self.admission.second_hand.is_some() && !record.peer.discovered_via.any_first_hand()
    }

    /// After a merge: a record that counted as second-hand (`was`) and is now heard
    /// first-hand leaves the quota.
    pub(super) fn heard_first_hand(&self, was: bool, record: &Record) {
        if was && record.peer.discovered_via.any_first_hand() {
            self.release_second_hand(1);
        }
    }

    /// Whether a record counts against the unproven quota: they are counted, and WireGuard
    /// never completed a handshake with it.
    fn counts_as_unproven(&self, record: &Record) -> bool {
        self.admission.unproven.is_some() && !record.peer.proven
    }

    /// The slots a record holds, which its removal gives back.
    pub(super) fn slots_of(&self, record: &Record) -> Slots {
        Slots {
            records: 1,
            second_hand: usize::from(self.counts_as_second_hand(record)),
            unproven: usize::from(self.counts_as_unproven(record)),
        }
    }

    /// Gives back the slots of removed records.
    pub(super) fn release(&self, slots: Slots) {
        self.release_second_hand(slots.second_hand);
        self.release_unproven(slots.unproven);
        self.admission.capacity.release_many(slots.records);
    }

    pub(super) fn release_second_hand(&self, n: usize) {
        if let Some(quota) = &self.admission.second_hand {
            quota.release_many(n);
        }
    }

    pub(super) fn release_unproven(&self, n: usize) {
        if let Some(quota) = &self.admission.unproven {
            quota.release_many(n);
        }
    }

    /// How many peers the store holds, counting an insert in flight.
    pub(super) fn held(&self) -> usize {
        self.admission.capacity.held()
    }

    /// Places the tombstone of a peer removed by the caller (a zero span places none), under
    /// the record's lock (or its vacant slot's): no racing insert slips in between.
    pub(super) fn entomb(&self, key: PublicKey, span: Duration, now: Nanos, wall: SystemTime) {
        let cause = RemovalCause::Explicit;
        self.admission.tombstones.place(key, span, now, wall, cause);
    }

    /// Places the tombstone of a peer the cleanup expired, if the store keeps them.
    pub(super) fn entomb_expired(&self, key: PublicKey, now: Nanos, wall: SystemTime) {
        if let Some(span) = self.settings.tombstone_expired {
            let cause = RemovalCause::Expired;
            self.admission.tombstones.place(key, span, now, wall, cause);
        }
    }

    /// Drops every tombstone that ran out by `now`.
    pub(super) fn expire_tombstones(&self, now: Nanos) {
        self.admission.tombstones.expire(now);
    }

    /// The tombstones standing at `now`, oldest first.
    pub(super) fn tombstones(&self, now: Nanos) -> Vec<Tombstone> {
        self.admission.tombstones.list(now)
    }
}

impl PeerStore {
    /// Places a tombstone read from a cache file, standing until `until` on the wall clock,
    /// unless the store holds the peer (then it was heard since) or the time has passed;
    /// whether it was placed.
    #[cfg(feature = "serde")]
    pub(crate) fn restore_tombstone(
        &self,
        key: PublicKey,
        since: SystemTime,
        until: SystemTime,
        cause: RemovalCause,
    ) -> bool {
        let inner = &*self.inner;
        let (now, wall) = inner.timeline.now_and_wall();
        let Ok(span) = until.duration_since(wall) else {
            return false;
        };
        // Placed when the file says, so that the oldest still goes first.
        let age = wall.duration_since(since).unwrap_or_default();
        match inner.peers.entry(key) {
            crate::keymap::Entry::Vacant(entry) => {
                let placed = now.saturating_sub(crate::clock::nanos_of(age));
                let span = span.saturating_add(age);
                let tombstones = &inner.admission.tombstones;
                let placed = tombstones.place(key, span, placed, since, cause);
                drop(entry);
                placed
            }
            crate::keymap::Entry::Occupied(_) => false,
        }
    }
}
