//! Eviction: a full store making room for a newcomer, under [`FullPolicy::EvictSecondHand`]
//! or [`FullPolicy::EvictUnproven`]. Victims are found in an order kept beside the map
//! ([`Victims`]), least recently heard first, in two tiers: peers never heard first-hand,
//! then (under `EvictUnproven` only, and only for a LAN newcomer) peers heard first-hand but
//! never proven by a handshake. A proven peer is never a victim under `EvictUnproven`, nor a
//! peer ever heard first-hand under `EvictSecondHand`.
//!
//! The victim's slots (under the cap, and under the unproven quota when one is kept) are
//! handed to the newcomer, never released, so that no racing insert can take them. The loom
//! models at the end of this file check the protocol on the store's own code.

use super::admission::{FullPolicy, Slots};
use super::{Inner, Record};
use crate::clock::Nanos;
use crate::events::{PeerEventKind, RemovalCause};
use crate::keymap::KeyMap;
use crate::stats::Counter;
use crate::victims::Victims;
use crate::{DiscoveryMethod, PublicKey, UpdateError};

/// The two orders of victims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tier {
    /// Never heard first-hand (only by the cache or second-hand methods).
    SecondHand,
    /// Heard first-hand, never proven (under [`FullPolicy::EvictUnproven`] only).
    Unproven,
}

/// The eviction room's state: present under an evicting [`FullPolicy`] only.
pub(super) struct Eviction {
    second_hand: Victims,
    unproven: Victims,
    /// The keys a newcomer is evicting for: a second newcomer of the same key waits for the
    /// first instead of evicting too, so that a peer announced by the LAN and the DHT at once
    /// costs one victim, not two.
    evicting: KeyMap<()>,
    /// How many entries an order may hold before it is rebuilt: twice the cap, and some.
    bound: usize,
}

impl Eviction {
    pub(super) fn new(policy: FullPolicy, max_peers: usize, shards: Option<usize>) -> Option<Self> {
        (policy != FullPolicy::Refuse).then(|| Eviction {
            second_hand: Victims::default(),
            unproven: Victims::default(),
            evicting: crate::keymap::key_map(shards),
            bound: max_peers.saturating_mul(2).saturating_add(64),
        })
    }

    fn order(&self, tier: Tier) -> &Victims {
        match tier {
            Tier::SecondHand => &self.second_hand,
            Tier::Unproven => &self.unproven,
        }
    }
}

/// A newcomer's claim while it goes in: the slots it holds (an eviction's handed over, then
/// admission's reservations), how many evictions it tried, and, once it evicts, its hold on
/// its key's right to evict. Its record takes the slots when it goes in
/// ([`take_slots`](Self::take_slots)); whatever else ends the claim (a refusal, its peer
/// inserted meanwhile, a caller's clock that panics) gives them back when it is dropped, and
/// the hold with them.
pub(super) struct Claim<'a> {
    inner: &'a Inner,
    holds: Option<(&'a KeyMap<()>, PublicKey)>,
    /// The slots it holds: `records` 1 once an eviction handed it the victim's slot under the
    /// cap (or admission reserved one), `unproven` 1 once it holds an unproven slot.
    slots: Slots,
    tries: u32,
    waits: u32,
}

impl<'a> Claim<'a> {
    /// A newcomer's claim on `inner`, holding nothing yet.
    pub(super) fn new(inner: &'a Inner) -> Self {
        Claim {
            inner,
            holds: None,
            slots: Slots::default(),
            tries: 0,
            waits: 0,
        }
    }

    /// The slots it holds now.
    pub(super) fn slots(&self) -> Slots {
        self.slots
    }

    /// An eviction handed it these slots, or admission reserved them.
    pub(super) fn add_slots(&mut self, slots: Slots) {
        self.slots += slots;
    }

    /// Its record went in: the slots are the record's from now on.
    pub(super) fn take_slots(&mut self) -> Slots {
        std::mem::take(&mut self.slots)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Its peer was found inserted meanwhile, it was refused, or a panic unwinds it.
        let slots = self.take_slots();
        if slots.any() {
            self.inner.release(slots);
        }
        if let Some((evicting, key)) = self.holds {
            evicting.remove(&key);
        }
    }
}

/// How many times a newcomer yields to another newcomer of its key that is evicting for it,
/// before it is refused as in a full store with no victim.
const MAX_CLAIM_WAITS: u32 = 100_000;

/// How many times a newcomer tries to evict when racing threads take the slot it freed
/// before it: then it is refused, as in a store with no victim.
const MAX_EVICTION_TRIES: u32 = 4;

impl Inner {
    /// The tiers a newcomer heard by `method` may evict from, best first; empty if it may not
    /// evict at all.
    pub(super) fn may_evict(&self, method: &DiscoveryMethod) -> &'static [Tier] {
        match self.settings.when_full {
            FullPolicy::Refuse => &[],
            _ if !method.refreshes_last_seen() => &[],
            FullPolicy::EvictSecondHand => &[Tier::SecondHand],
            FullPolicy::EvictUnproven if *method == DiscoveryMethod::Lan => {
                &[Tier::SecondHand, Tier::Unproven]
            }
            FullPolicy::EvictUnproven => &[Tier::SecondHand],
        }
    }

    /// The order a record belongs in now, if it may be evicted at all.
    fn tier_of(&self, record: &Record) -> Option<Tier> {
        let first_hand = record.peer.discovered_via.any_first_hand();
        match self.settings.when_full {
            FullPolicy::Refuse => None,
            FullPolicy::EvictSecondHand => (!first_hand).then_some(Tier::SecondHand),
            FullPolicy::EvictUnproven if record.peer.proven => None,
            FullPolicy::EvictUnproven if first_hand => Some(Tier::Unproven),
            FullPolicy::EvictUnproven => Some(Tier::SecondHand),
        }
    }

    /// A new record went in, heard at `heard_at` by `method`: it joins its order. Called
    /// after the record's lock is released.
    pub(super) fn order_newcomer(&self, key: PublicKey, heard_at: Nanos, method: &DiscoveryMethod) {
        let Some(eviction) = &self.eviction else {
            return;
        };
        let tier = if !method.refreshes_last_seen() {
            Tier::SecondHand
        } else if self.settings.when_full == FullPolicy::EvictUnproven {
            Tier::Unproven
        } else {
            return;
        };
        let current = |key: &PublicKey| {
            let record = self.peers.get(key)?;
            (self.tier_of(&record) == Some(tier)).then_some(record.heard_at)
        };
        eviction
            .order(tier)
            .push(heard_at, key, eviction.bound, current);
    }

    /// Makes room for a newcomer to a full store that `tiers` lets it evict from, with no
    /// record locked: `Ok` to try again (a slot was freed for it, or its peer went in
    /// meanwhile), or refused.
    pub(super) fn make_room<'a>(
        &'a self,
        key: PublicKey,
        tiers: &[Tier],
        claim: &mut Claim<'a>,
    ) -> Result<(), UpdateError> {
        let Some(eviction) = &self.eviction else {
            return Err(self.full());
        };
        // No peer of any tier it may evict: nothing to do, and no claim to take (a flood of
        // newcomers into such a store costs no look and no claim each).
        if !tiers.iter().any(|&tier| self.may_hold(tier)) {
            return Err(self.full());
        }
        if claim.holds.is_none() {
            if eviction.evicting.insert(key, ()).is_some() {
                // Another newcomer of this key is making room for it: the peer will be in a
                // moment, and this announcement is merged into it then.
                claim.waits += 1;
                if claim.waits > MAX_CLAIM_WAITS {
                    return Err(self.full());
                }
                crate::sync::yield_now();
                return Ok(());
            }
            claim.holds = Some((&eviction.evicting, key));
            // The newcomer that held it may have gone in between this one's look and its
            // claim: then there is nothing to make room for.
            if self.peers.contains_key(&key) {
                return Ok(());
            }
        }
        if claim.slots.records > 0 {
            // It evicted once and still found no room (the unproven quota stood full while
            // the cap did not): it is refused, and its slots go back when the claim is let go.
            return Err(self.full());
        }
        claim.tries += 1;
        if claim.tries > MAX_EVICTION_TRIES {
            return Err(self.full());
        }
        for &tier in tiers {
            if let Some(unproven) = self.evict(eviction.order(tier), tier) {
                let unproven = unproven && self.admission.unproven.is_some();
                claim.add_slots(Slots {
                    records: 1,
                    unproven: usize::from(unproven),
                    ..Slots::default()
                });
                return Ok(());
            }
        }
        Err(self.full())
    }

    /// Evicts the least recently heard peer of `tier`, handing its slot under the cap (and its
    /// unproven slot, if counted) to the caller; whether it was unproven, or `None` if the
    /// tier holds no peer. Called with no record locked: each look locks one record.
    #[inline(never)]
    fn evict(&self, order: &Victims, tier: Tier) -> Option<bool> {
        // Each look drops an entry or puts it back later than it was (its peer was heard
        // since): bounded by the entries and the updates since, and capped for a store whose
        // peers are heard faster than they can be looked at.
        let mut looks = order.len().saturating_mul(2).saturating_add(8);
        while looks > 0 {
            looks -= 1;
            let (heard_at, key) = order.pop()?;
            let now = {
                let Some(record) = self.peers.get(&key) else {
                    continue;
                };
                (self.tier_of(&record), record.heard_at)
            };
            match now {
                (None, _) => continue,
                (Some(t), at) if t != tier || at != heard_at => {
                    self.requeue(key, t, at);
                    continue;
                }
                (Some(_), _) => {}
            }
            let mut seq = 0;
            let mut unproven = false;
            // Still of its tier and still heard no later: a racing update may have heard it.
            let evicted = self.peers.remove_if(&key, |key, record| {
                let victim = self.tier_of(record) == Some(tier) && record.heard_at == heard_at;
                if victim {
                    seq = self.next_seq();
                    unproven = !record.peer.proven;
                    self.forget_endpoints(key);
                }
                victim
            });
            let Some((key, record)) = evicted else {
                // Heard again, or gone: look at it again later, as it is then.
                let now = self.peers.get(&key).map(|r| (self.tier_of(&r), r.heard_at));
                if let Some((Some(t), at)) = now {
                    self.requeue(key, t, at);
                }
                continue;
            };
            // Its slot under the cap goes to the newcomer, and so does its unproven slot (the
            // newcomer is unproven too); its second-hand slot, if counted, is free.
            let slots = self.slots_of(&record);
            self.release_second_hand(slots.second_hand);
            self.counters.add(Counter::Evicted, 1);
            let cause = RemovalCause::Evicted;
            self.publish(key, PeerEventKind::Removed { cause }, seq);
            return Some(unproven);
        }
        None
    }

    /// Puts a peer back in the order of `tier`, heard at `at`.
    fn requeue(&self, key: PublicKey, tier: Tier, at: Nanos) {
        let Some(eviction) = &self.eviction else {
            return;
        };
        let current = |key: &PublicKey| {
            let record = self.peers.get(key)?;
            (self.tier_of(&record) == Some(tier)).then_some(record.heard_at)
        };
        eviction.order(tier).push(at, key, eviction.bound, current);
    }

    /// Whether the store may hold a peer of `tier`: `false` when it counts them and holds
    /// none.
    fn may_hold(&self, tier: Tier) -> bool {
        let count = match tier {
            Tier::SecondHand => self.admission.second_hand.as_ref(),
            Tier::Unproven => self.admission.unproven.as_ref(),
        };
        count.is_none_or(|count| count.held() != 0)
    }
}

/// The eviction protocol under the loom model checker, driving the store's own code (its maps
/// are loom's under `--cfg loom`, see `keymap`): every interleaving of two threads, up to a
/// bound of preemptions.
/// `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use std::net::SocketAddr;
    use std::time::Duration;

    use loom::thread;

    use crate::{
        DiscoveryMethod as M, Evidence, FullPolicy, ManualClock, PeerInfo, PeerStore, PublicKey,
        UpdateOutcome,
    };

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn endpoint(n: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, n], 51820))
    }

    fn announce(n: u8) -> PeerInfo {
        let mut info = PeerInfo::new(key(n));
        info.endpoint = Some(endpoint(n));
        info
    }

    /// A full store of 2: peers 1 then 2, a second apart, by `method`.
    fn full(policy: FullPolicy, method: &M) -> PeerStore {
        let clock = ManualClock::new();
        let store = PeerStore::builder()
            .max_peers(2)
            .when_full(policy)
            .clock(clock.clone())
            .build()
            .expect("valid settings");
        store.update(announce(1), method.clone()).expect("room");
        clock.advance(Duration::from_secs(1));
        store.update(announce(2), method.clone()).expect("room");
        store
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// A LAN newcomer evicts the least recently heard unproven peer (peer 1) while a handshake
    /// proves peer 1: whichever comes first, a proven peer is never evicted. Peer 1 is held at
    /// the end exactly when the handshake found it (and proved it), and the newcomer always
    /// gets in, in peer 2's place if peer 1 was proven first.
    #[test]
    fn an_eviction_racing_a_handshake_never_evicts_the_proven_peer() {
        model(|| {
            let store = full(FullPolicy::EvictUnproven, &M::Dht);
            let newcomer = {
                let store = store.clone();
                thread::spawn(move || store.update(announce(3), M::Lan))
            };
            let prover = {
                let store = store.clone();
                thread::spawn(move || store.confirm(&key(1), endpoint(1), Evidence::Handshake))
            };
            let admitted = newcomer.join().expect("newcomer");
            let proved = prover.join().expect("prover");
            assert_eq!(admitted, Ok(UpdateOutcome::Inserted));
            assert_eq!(store.get(&key(1)).is_some(), proved, "proven, then evicted");
            assert_eq!(store.get(&key(2)).is_some(), !proved);
            assert_eq!((store.len(), store.stats().evicted), (2, 1));
            assert_eq!(store.get_all().len(), 2, "the map and the cap agree");
        });
    }

    /// Two first-hand newcomers into a full store of second-hand peers: each evicts one, the
    /// victim's slot passes to its newcomer, and the cap is exact at the end.
    #[test]
    fn two_newcomers_evicting_at_once_hand_over_their_slots() {
        model(|| {
            let store = full(FullPolicy::EvictSecondHand, &M::GossipTransitive);
            let racers: Vec<_> = [3, 4]
                .into_iter()
                .map(|n| {
                    let store = store.clone();
                    thread::spawn(move || store.update(announce(n), M::Lan))
                })
                .collect();
            for racer in racers {
                assert_eq!(racer.join().expect("racer"), Ok(UpdateOutcome::Inserted));
            }
            assert_eq!((store.len(), store.stats().evicted), (2, 2));
            assert_eq!(store.get_all().len(), 2, "the map and the cap agree");
        });
    }

    /// One newcomer announced on two threads at once (the LAN and the DHT hear it together):
    /// one insert, the other merged into it, and one eviction, not two.
    #[test]
    fn one_newcomer_announced_twice_at_once_evicts_once() {
        model(|| {
            let store = full(FullPolicy::EvictSecondHand, &M::GossipTransitive);
            let racers: Vec<_> = [M::Lan, M::Dht]
                .into_iter()
                .map(|method| {
                    let store = store.clone();
                    thread::spawn(move || store.update(announce(3), method))
                })
                .collect();
            let outcomes: Vec<_> = racers
                .into_iter()
                .map(|racer| racer.join().expect("racer"))
                .collect();
            let inserted = outcomes
                .iter()
                .filter(|o| **o == Ok(UpdateOutcome::Inserted))
                .count();
            assert_eq!(inserted, 1, "{outcomes:?}");
            assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
            assert_eq!((store.len(), store.stats().evicted), (2, 1));
        });
    }
}
