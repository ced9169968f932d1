//! Admission: who may come in, and what a removal leaves behind. Bans (placed in `bans`),
//! the cap (a counter of reserved slots, [`Capacity`]), the second-hand quota, eviction of a
//! second-hand peer for a first-hand newcomer, and every place a tombstone is placed, checked
//! or cleared.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Inner, Record, Settings};
use crate::ban::Bans;
use crate::capacity::Capacity;
use crate::clock::Nanos;
use crate::events::{PeerEventKind, RemovalCause};
use crate::keymap::{KeyMap, key_map};
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
    /// second-hand starts again. Among peers heard equally long ago, which one goes is not
    /// specified.
    EvictSecondHand,
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
    capacity: Capacity,
    /// How many peers never heard first-hand the store holds, against `max_second_hand`
    /// (unlimited if not set); kept when that is set or when the full policy evicts them,
    /// so that an eviction with no victim to find costs no visit of the map.
    second_hand: Option<Capacity>,
    /// Removed peers that second-hand word cannot bring back for a while.
    tombstones: Tombstones,
    /// Keys nothing brings in.
    pub(super) bans: Bans,
    /// The keys a newcomer is evicting for (under [`FullPolicy::EvictSecondHand`] only): a
    /// second newcomer of the same key waits for the first instead of evicting too, so that a
    /// peer announced by the LAN and the DHT at once costs one victim, not two.
    evicting: Option<KeyMap<()>>,
}

impl Admission {
    pub(super) fn new(settings: &Settings, shards: Option<usize>) -> Self {
        let counts_second_hand =
            settings.max_second_hand.is_some() || settings.when_full == FullPolicy::EvictSecondHand;
        Admission {
            capacity: Capacity::new(settings.max_peers),
            second_hand: counts_second_hand
                .then(|| Capacity::new(settings.max_second_hand.unwrap_or(usize::MAX))),
            tombstones: Tombstones::new(shards),
            bans: Bans::new(shards),
            evicting: (settings.when_full == FullPolicy::EvictSecondHand).then(|| key_map(shards)),
        }
    }
}

/// Why a new peer is not admitted now.
pub(super) enum Refusal {
    /// Refused, for this reason.
    Error(UpdateError),
    /// The store is full, and the full policy lets this newcomer evict a second-hand peer:
    /// [`Inner::make_room`], with no record locked.
    Full,
}

/// A newcomer's claim on a slot while it goes in: whether an eviction freed one for it, how
/// many evictions it tried, and, once it evicts, its hold on its key's right to evict (given
/// back when the claim is dropped, after the newcomer went in or was refused).
#[derive(Debug, Default)]
pub(super) struct Claim<'a> {
    holds: Option<(&'a KeyMap<()>, PublicKey)>,
    evicted: bool,
    tries: u32,
    waits: u32,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some((evicting, key)) = self.holds {
            evicting.remove(&key);
        }
    }
}

/// How many times a newcomer yields to another newcomer of its key that is evicting for it,
/// before it is refused as in a full store with no victim.
const MAX_CLAIM_WAITS: u32 = 100_000;

/// How many times a newcomer tries to evict when racing threads take each victim (or the slot
/// it freed) before it: then it is refused, as in a store with no victim.
const MAX_EVICTION_TRIES: u32 = 4;

/// What an eviction did ([`Inner::evict_second_hand`]).
enum Eviction {
    /// A peer was evicted; its slot under the cap is the caller's.
    Evicted,
    /// The chosen victim was gone or heard first-hand by the time it was locked.
    Raced,
    /// Every peer was heard first-hand.
    NoVictim,
}

impl Inner {
    /// Whether a new peer heard by `method` may go in now, called with its vacant slot locked:
    /// its ban, its tombstone, the second-hand quota and the cap. `Ok(true)`: it goes in over a
    /// tombstone, which [`readmitted`](Self::readmitted) clears.
    pub(super) fn admit(
        &self,
        key: &PublicKey,
        method: &DiscoveryMethod,
        carried: Option<SystemTime>,
        now: Nanos,
        claim: &Claim<'_>,
    ) -> Result<bool, Refusal> {
        let admission = &self.admission;
        let first_hand = method.refreshes_last_seen();
        // Only a first-hand newcomer evicts, and neither refusal of a second-hand one below
        // applies to it: a slot an eviction handed over is never given back from here.
        debug_assert!(
            first_hand || !claim.evicted,
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
        let quota = admission.second_hand.as_ref().filter(|_| !first_hand);
        if let Some(quota) = quota
            && !quota.try_reserve()
        {
            return Err(Refusal::Error(self.full()));
        }
        if !claim.evicted && !admission.capacity.try_reserve() {
            if let Some(quota) = quota {
                quota.release();
            }
            if first_hand && self.settings.when_full == FullPolicy::EvictSecondHand {
                return Err(Refusal::Full);
            }
            return Err(Refusal::Error(self.full()));
        }
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
    fn full(&self) -> UpdateError {
        self.counters.add(Counter::RejectedFull, 1);
        UpdateError::StoreFull {
            capacity: self.admission.capacity.max(),
        }
    }

    /// Makes room for a first-hand newcomer to a full store, with no record locked: `Ok` to
    /// try again (a slot was freed for it, or a racer took the victim and another may be
    /// there), or refused.
    pub(super) fn make_room<'a>(
        &'a self,
        key: PublicKey,
        claim: &mut Claim<'a>,
    ) -> Result<(), UpdateError> {
        // Every peer heard first-hand: nothing to evict, and no claim to take (a flood of
        // first-hand newcomers into such a store costs no visit and no claim each).
        if !self.may_hold_a_victim() {
            return Err(self.full());
        }
        if claim.holds.is_none()
            && let Some(evicting) = &self.admission.evicting
        {
            if evicting.insert(key, ()).is_some() {
                // Another newcomer of this key is making room for it: the peer will be in a
                // moment, and this announcement is merged into it then.
                claim.waits += 1;
                if claim.waits > MAX_CLAIM_WAITS {
                    return Err(self.full());
                }
                std::thread::yield_now();
                return Ok(());
            }
            claim.holds = Some((evicting, key));
            // The newcomer that held it may have gone in between this one's look and its
            // claim: then there is nothing to make room for.
            if self.peers.contains_key(&key) {
                return Ok(());
            }
        }
        claim.tries += 1;
        match self.evict_second_hand() {
            Eviction::Evicted => {
                claim.evicted = true;
                return Ok(());
            }
            Eviction::Raced if claim.tries < MAX_EVICTION_TRIES => return Ok(()),
            Eviction::Raced | Eviction::NoVictim => {}
        }
        Err(self.full())
    }

    /// The newcomer found its peer inserted meanwhile: a slot an eviction freed for it is
    /// not needed.
    pub(super) fn claim_not_needed(&self, claim: &Claim<'_>) {
        if claim.evicted {
            self.admission.capacity.release();
        }
    }

    /// A new record went in over a tombstone: cleared under the record's lock, so the
    /// tombstone and the record are never seen together.
    pub(super) fn readmitted(&self, key: &PublicKey) {
        self.admission.tombstones.forget(key);
        self.counters.add(Counter::Readmitted, 1);
    }

    /// Evicts the least recently heard peer never heard first-hand, handing its slot under the
    /// cap to the caller (never released, so no racing insert can take it; the loom model in
    /// `capacity.rs` checks the protocol). Called with no record locked: the visit locks each
    /// shard in turn, the eviction the victim's.
    #[inline(never)]
    fn evict_second_hand(&self) -> Eviction {
        if !self.may_hold_a_victim() {
            return Eviction::NoVictim;
        }
        let mut victim: Option<(Nanos, PublicKey)> = None;
        for record in self.peers.iter() {
            let second_hand = !record.peer.discovered_via.any_first_hand();
            if second_hand && victim.is_none_or(|(heard, _)| record.heard_at < heard) {
                victim = Some((record.heard_at, *record.key()));
            }
        }
        let Some((_, key)) = victim else {
            return Eviction::NoVictim;
        };
        let mut seq = 0;
        // Still there and still second-hand: a racing update may have heard it first-hand.
        let evicted = self.peers.remove_if(&key, |key, record| {
            let second_hand = !record.peer.discovered_via.any_first_hand();
            if second_hand {
                seq = self.next_seq();
                self.forget_endpoints(key);
            }
            second_hand
        });
        let Some((key, record)) = evicted else {
            return Eviction::Raced;
        };
        self.release_second_hand(1);
        self.counters.add(Counter::Evicted, 1);
        self.publish(
            key,
            PeerEventKind::Removed {
                cause: RemovalCause::Evicted,
            },
            seq,
        );
        drop(record);
        Eviction::Evicted
    }

    /// WireGuard completed a handshake with a known peer: it is proven from now on. Called
    /// with its record locked; no event (a measurement, as a latency is, not news from the
    /// peer).
    pub(super) fn prove(&self, record: &mut Record) {
        Arc::make_mut(&mut record.peer).proven = true;
    }

    /// Whether the store may hold a peer never heard first-hand: `false` when it counts them
    /// and holds none.
    fn may_hold_a_victim(&self) -> bool {
        let count = self.admission.second_hand.as_ref();
        count.is_none_or(|count| count.held() != 0)
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

    /// Gives back the slots of `records` removed records, `second_hand` of which counted
    /// against the quota.
    pub(super) fn release(&self, records: usize, second_hand: usize) {
        self.release_second_hand(second_hand);
        self.admission.capacity.release_many(records);
    }

    fn release_second_hand(&self, n: usize) {
        if let Some(quota) = &self.admission.second_hand {
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
            dashmap::Entry::Vacant(entry) => {
                let placed = now.saturating_sub(crate::clock::nanos_of(age));
                let span = span.saturating_add(age);
                let tombstones = &inner.admission.tombstones;
                let placed = tombstones.place(key, span, placed, since, cause);
                drop(entry);
                placed
            }
            dashmap::Entry::Occupied(_) => false,
        }
    }
}
