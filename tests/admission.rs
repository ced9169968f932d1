//! Who may come (back) in. Each failure of the reference defaults is measured on them first: a
//! removed peer resurrected by gossip (C), a second-hand ghost that expires and is re-added
//! forever (D), a flood of invented second-hand peers that locks real ones out (E), and a dead
//! peer brought back by the stale records a DHT keeps serving (F).

mod support;

use std::time::{Duration, SystemTime};

use peerstore::{
    DiscoveryMethod as M, FullPolicy, ManualClock, PeerEvent, PeerEventKind, PeerInfo, PeerStore,
    Readmission, RemovalCause, Subscription, UpdateError, UpdateOutcome,
};
use support::{key, on_clock, secs};

fn new(readmitted: bool) -> PeerEventKind {
    PeerEventKind::New { readmitted }
}

fn removed(cause: RemovalCause) -> PeerEventKind {
    PeerEventKind::Removed { cause }
}

fn kinds(events: &Subscription) -> Vec<PeerEventKind> {
    events.try_iter().map(|e: PeerEvent| e.kind).collect()
}

/// (C) The health monitor removes a peer; gossip mentions it second-hand 2 s later.
#[test]
fn a_removed_peer_stays_removed_against_second_hand_word_until_heard_first_hand() {
    support::each_shards(|shards| {
        // The seed's `remove`: the mention brings it back.
        let (seed, clock) = on_clock(support::builder(shards));
        let events = seed.subscribe();
        seed.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        seed.remove(&key(1));
        clock.advance(secs(2));
        let back = seed.update(PeerInfo::new(key(1)), M::GossipTransitive);
        assert_eq!(back, Ok(UpdateOutcome::Inserted), "resurrected");
        assert_eq!(
            kinds(&events),
            [new(false), removed(RemovalCause::Explicit), new(false)]
        );

        let (store, clock) = on_clock(support::builder(shards));
        let events = store.subscribe();
        store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        let removed_at = SystemTime::UNIX_EPOCH + support::START;
        assert!(store.remove_for(&key(1), secs(30)).is_some());
        clock.advance(secs(2));
        for method in [M::GossipTransitive, M::DhtTransitive, M::Cache] {
            let refused = store.update(PeerInfo::new(key(1)), method.clone());
            assert_eq!(
                refused,
                Err(UpdateError::Tombstoned {
                    until: removed_at + secs(30)
                }),
                "{method}"
            );
        }
        let err = store
            .update(PeerInfo::new(key(1)), M::GossipTransitive)
            .unwrap_err();
        assert!(err.to_string().contains("first-hand"), "{err}");
        assert!(store.get(&key(1)).is_none(), "nothing went in");
        let stones = store.tombstones();
        assert_eq!(stones.len(), 1);
        assert_eq!(
            (stones[0].public_key, stones[0].since, stones[0].cause),
            (key(1), removed_at, RemovalCause::Explicit)
        );
        // The peer itself, on the DHT: back at once, and the event says so.
        clock.advance(secs(3));
        let back = store.update(PeerInfo::new(key(1)), M::Dht);
        assert_eq!(back, Ok(UpdateOutcome::Inserted));
        assert!(store.tombstones().is_empty(), "cleared");
        assert_eq!(
            kinds(&events),
            [new(false), removed(RemovalCause::Explicit), new(true)]
        );
        let stats = store.stats();
        assert_eq!((stats.rejected_tombstoned, stats.readmitted), (4, 1));
        assert_eq!((stats.removed, stats.inserts), (1, 2));
    });
}

#[test]
fn a_tombstone_falls_when_its_time_is_up_and_a_zero_span_keeps_none() {
    support::each_shards(|shards| {
        let (store, clock) = on_clock(support::builder(shards));
        store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        store.remove_for(&key(1), secs(30));
        clock.advance(secs(29));
        assert!(
            store
                .update(PeerInfo::new(key(1)), M::GossipTransitive)
                .is_err()
        );
        clock.advance(secs(1));
        assert!(store.tombstones().is_empty(), "fallen at 30 s");
        let events = store.subscribe();
        let back = store.update(PeerInfo::new(key(1)), M::GossipTransitive);
        assert_eq!(back, Ok(UpdateOutcome::Inserted));
        assert_eq!(kinds(&events), [new(false)], "not a readmission");

        store.remove_for(&key(1), Duration::ZERO);
        assert!(store.tombstones().is_empty());
        assert!(
            store
                .update(PeerInfo::new(key(1)), M::GossipTransitive)
                .is_ok()
        );
        // A tombstone for a peer that is not there (it expired a moment ago) still stands,
        // and one past the wall clock's range is capped, not a panic.
        assert!(store.remove_for(&key(2), Duration::MAX).is_none());
        assert!(store.update(PeerInfo::new(key(2)), M::Cache).is_err());
        // The cleanup drops fallen tombstones.
        store.remove_for(&key(3), secs(10));
        clock.advance(secs(11));
        store.cleanup_stale();
        assert_eq!(store.tombstones().len(), 1, "only key 2's");
    });
}

/// What an hour of scene (D) shows, minute by minute.
struct Hour {
    /// The minutes the ghost is in the store.
    present: Vec<u64>,
    /// The minutes it is active (in `get_active`).
    active: Vec<u64>,
    events: Vec<PeerEventKind>,
}

/// (D) A peer only ever mentioned second-hand, every minute, with no time of its own; the
/// cleanup runs every minute, after the mentions.
fn ghost(store: &PeerStore, clock: &ManualClock) -> Hour {
    let events = store.subscribe();
    let (mut present, mut active) = (Vec::new(), Vec::new());
    for minute in 0..60 {
        let _ = store.update(PeerInfo::new(key(7)), M::GossipTransitive);
        store.cleanup_stale();
        if store.get(&key(7)).is_some() {
            present.push(minute);
        }
        if store.get_active().iter().any(|p| p.public_key == key(7)) {
            active.push(minute);
        }
        clock.advance(secs(60));
    }
    Hour {
        present,
        active,
        events: kinds(&events),
    }
}

#[test]
fn an_expired_second_hand_ghost_stops_cycling_with_tombstone_expired() {
    support::each_shards(|shards| {
        let (seed, clock) = on_clock(support::builder(shards));
        let hour = ghost(&seed, &clock);
        let news = hour.events.iter().filter(|e| **e == new(false)).count();
        let expiries = hour
            .events
            .iter()
            .filter(|e| **e == removed(RemovalCause::Expired))
            .count();
        assert_eq!((news, expiries), (5, 5), "New at 0, 12, 24, 36, 48 minutes");
        assert_eq!(hour.present.len(), 55, "gone only at 11, 23, 35, 47, 59");
        assert_eq!(hour.active.len(), 30, "active half the time, forever");

        let (store, clock) = on_clock(support::builder(shards).tombstone_expired(secs(3600)));
        let hour = ghost(&store, &clock);
        assert_eq!(
            hour.events,
            [new(false), removed(RemovalCause::Expired)],
            "once, then refused"
        );
        assert_eq!(
            hour.present,
            (0..11).collect::<Vec<_>>(),
            "11 of 60 minutes"
        );
        assert_eq!(hour.active, (0..6).collect::<Vec<_>>());
        assert_eq!(store.stats().rejected_tombstoned, 48, "minutes 12 to 59");
        let stones = store.tombstones();
        assert_eq!(stones.len(), 1);
        assert_eq!(stones[0].cause, RemovalCause::Expired);
        // Heard first-hand, it is back at once.
        assert_eq!(
            store.update(PeerInfo::new(key(7)), M::Lan),
            Ok(UpdateOutcome::Inserted)
        );
    });
}

/// The flood of scene (E): `fakes` invented peers by gossip-transitive; how many went in.
fn flood(store: &PeerStore, fakes: u32) -> usize {
    (1000..1000 + fakes)
        .filter(|&n| {
            store.update(PeerInfo::new(key(n)), M::GossipTransitive) == Ok(UpdateOutcome::Inserted)
        })
        .count()
}

/// (E) 1000 fakes by gossip-transitive fill the store; then a new peer is heard on the LAN.
#[test]
fn a_flood_of_second_hand_peers_cannot_lock_a_first_hand_one_out() {
    support::each_shards(|shards| {
        // The seed: refused until the cleanup drops the fakes.
        let (seed, _clock) = on_clock(support::builder(shards));
        assert_eq!(flood(&seed, 1000), 1000);
        assert!(matches!(
            seed.update(PeerInfo::new(key(1)), M::Lan),
            Err(UpdateError::StoreFull { capacity: 1000 })
        ));

        let (store, clock) =
            on_clock(support::builder(shards).when_full(FullPolicy::EvictSecondHand));
        // A real peer heard first-hand before the flood is never evicted.
        store.update(PeerInfo::new(key(2)), M::Dht).unwrap();
        clock.advance(secs(1));
        assert_eq!(flood(&store, 1000), 999);
        let events = store.subscribe();
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Lan),
            Ok(UpdateOutcome::Inserted)
        );
        assert_eq!(store.len(), 1000);
        let got = kinds(&events);
        assert_eq!(got, [removed(RemovalCause::Evicted), new(false)]);
        assert!(store.get(&key(2)).is_some(), "the first-hand peer stays");
        assert_eq!(store.stats().evicted, 1);
        // A second-hand newcomer is still refused.
        assert!(matches!(
            store.update(PeerInfo::new(key(3)), M::DhtTransitive),
            Err(UpdateError::StoreFull { .. })
        ));
    });
}

#[test]
fn the_least_recently_heard_second_hand_peer_goes_and_never_a_first_hand_one() {
    support::each_shards(|shards| {
        let builder = support::builder(shards)
            .max_peers(3)
            .when_full(FullPolicy::EvictSecondHand);
        let (store, clock) = on_clock(builder);
        store
            .update(PeerInfo::new(key(1)), M::GossipTransitive)
            .unwrap();
        clock.advance(secs(1));
        store.update(PeerInfo::new(key(2)), M::Cache).unwrap();
        clock.advance(secs(1));
        store
            .update(PeerInfo::new(key(3)), M::GossipTransitive)
            .unwrap();
        // Key 1 was heard first-hand since: key 2 is now the least recently heard second-hand.
        store.update(PeerInfo::new(key(1)), M::Gossip).unwrap();
        let events = store.subscribe();
        store
            .update(PeerInfo::new(key(4)), M::DhtRendezvous)
            .unwrap();
        assert!(store.get(&key(2)).is_none());
        let evicted: Vec<_> = events.try_iter().map(|e| (e.public_key, e.kind)).collect();
        assert_eq!(
            evicted[0],
            (
                key(2),
                PeerEventKind::Removed {
                    cause: RemovalCause::Evicted
                }
            )
        );
        store.update(PeerInfo::new(key(5)), M::Lan).unwrap();
        assert!(store.get(&key(3)).is_none(), "the last second-hand one");
        // Every peer is first-hand now: a newcomer is refused, nobody evicted.
        assert!(matches!(
            store.update(PeerInfo::new(key(6)), M::Lan),
            Err(UpdateError::StoreFull { capacity: 3 })
        ));
        assert_eq!(store.len(), 3);
        assert_eq!(store.stats().evicted, 2);
    });
}

#[test]
fn max_second_hand_caps_the_flood_and_leaves_room_for_first_hand_peers() {
    support::each_shards(|shards| {
        let (store, _clock) = on_clock(support::builder(shards).max_second_hand(500));
        assert_eq!(flood(&store, 900), 500, "the flood stops at 500");
        let events = store.subscribe();
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Lan),
            Ok(UpdateOutcome::Inserted)
        );
        assert_eq!(kinds(&events), [new(false)], "no eviction");
        assert_eq!(store.len(), 501);
        // A second-hand peer heard first-hand leaves the quota: one more fits.
        store.update(PeerInfo::new(key(1000)), M::Dht).unwrap();
        assert_eq!(flood(&store, 901), 1, "only the 901st, new, fits");
        // Removals and expiry give quota back.
        store.remove(&key(1001));
        assert!(store.update(PeerInfo::new(key(5000)), M::Cache).is_ok());
        assert!(
            store.update(PeerInfo::new(key(5001)), M::Cache).is_err(),
            "full again"
        );
        let (zero, _clock) = on_clock(support::builder(shards).max_second_hand(0));
        assert_eq!(flood(&zero, 10), 0);
        assert!(
            zero.update(PeerInfo::new(key(1)), M::other("x").unwrap())
                .is_ok()
        );
    });
}

/// Inserts by first- and second-hand methods, handshakes, evictions, removals with
/// tombstones and cleanups, racing on 8 threads at the cap, under each evicting policy and
/// its quotas: the cap holds at every step, and at the end the books balance (the map, `len`,
/// the stats, the events replayed, and quotas whole again).
#[test]
fn racing_admissions_evictions_and_removals_keep_the_cap_and_the_books() {
    let configs = [
        (FullPolicy::EvictSecondHand, None, None),
        (FullPolicy::EvictSecondHand, Some(16), None),
        (FullPolicy::EvictUnproven, None, None),
        (FullPolicy::EvictUnproven, Some(16), Some(24)),
    ];
    for (policy, quota, unproven) in configs {
        let cap = 64;
        let clock = support::clock();
        let mut builder = support::builder(2)
            .clock(clock.clone())
            .max_peers(cap)
            .when_full(policy)
            .tombstone_expired(secs(5))
            .event_buffer(1 << 20);
        if let Some(quota) = quota {
            builder = builder.max_second_hand(quota);
        }
        if let Some(unproven) = unproven {
            builder = builder.max_unproven(unproven);
        }
        let store = builder.build().unwrap();
        let events = store.subscribe();
        let rounds = support::rounds(3000);
        let shared = store.clone();
        let shared_clock = clock.clone();
        support::race(move |t| {
            let t = u32::try_from(t).unwrap();
            for i in 0..u32::try_from(rounds).unwrap() {
                let n = (i * 7 + t * 13) % 200;
                let method = match (i + t) % 4 {
                    0 => M::Lan,
                    1 => M::Dht,
                    2 => M::GossipTransitive,
                    _ => M::Cache,
                };
                let _ = shared.update(PeerInfo::new(key(n)), method);
                match i % 50 {
                    10 => drop(shared.remove_for(&key(n), secs(2))),
                    20 => drop(shared.remove(&key((n + 1) % 200))),
                    30 if t == 0 => {
                        shared_clock.advance(secs(1));
                        shared.cleanup_stale();
                    }
                    40 => {
                        let endpoint = support::addr("198.51.100.1:1");
                        let _ = shared.confirm(&key(n), endpoint, peerstore::Evidence::Handshake);
                    }
                    _ => {}
                }
                assert!(shared.len() <= cap, "over the cap");
            }
        });
        clock.advance(secs(700));
        store.cleanup_stale();
        // Replay the events in the store's order: every key's record comes and goes in turn.
        let mut all: Vec<PeerEvent> = events.try_iter().collect();
        all.sort_by_key(|e| e.seq);
        let mut inside = std::collections::HashSet::new();
        for event in all {
            match event.kind {
                PeerEventKind::New { .. } => assert!(inside.insert(event.public_key), "New twice"),
                PeerEventKind::Removed { .. } => {
                    assert!(inside.remove(&event.public_key), "Removed while out");
                }
                _ => assert!(inside.contains(&event.public_key), "Updated while out"),
            }
        }
        assert_eq!(events.dropped(), 0);
        assert!(inside.is_empty(), "everyone expired at the end");
        assert_eq!(store.len(), 0);
        assert!(store.get_all().is_empty());
        let s = store.stats();
        assert_eq!(s.inserts, s.removed + s.expired + s.evicted, "{s:?}");
        assert!(
            s.evicted > 0 && s.rejected_tombstoned > 0 && s.rejected_full > 0,
            "the race went through every path: {s:?}"
        );
        // The unproven quota came back whole: it admits `unproven` new peers again.
        if let Some(unproven) = unproven {
            let admitted = (0..100)
                .filter(|&n| store.update(PeerInfo::new(key(20_000 + n)), M::Dht).is_ok())
                .count();
            assert_eq!(admitted, unproven, "{policy:?}");
            clock.advance(secs(700));
            store.cleanup_stale();
        }
        // The quota came back whole: it admits `quota` second-hand peers again.
        if let Some(quota) = quota {
            let admitted = (0..100)
                .filter(|&n| {
                    store
                        .update(PeerInfo::new(key(10_000 + n)), M::Cache)
                        .is_ok()
                })
                .count();
            assert_eq!(admitted, quota);
        }
    }
}

/// An announcement of peer `n` carrying the time its record says it was last seen.
fn record_of(n: u32, last_seen: Option<SystemTime>) -> PeerInfo {
    let mut info = PeerInfo::new(key(n));
    info.last_seen = last_seen;
    info
}

/// (F) Handshakes with a peer stop; the health monitor removes it with a 30-minute tombstone;
/// the DHT keeps serving the record the peer signed before it died, with no time, then with
/// its old time, and at last the peer, back, publishes a new one.
#[test]
fn a_dead_peer_is_readmitted_only_on_news_newer_than_its_removal() {
    support::each_shards(|shards| {
        let died = SystemTime::UNIX_EPOCH + support::START;
        let stale = [None, Some(died - secs(60))];
        // The reference rule: every DHT record readmits it, however old.
        let (seed, clock) = on_clock(support::builder(shards));
        for record in stale {
            seed.update(PeerInfo::new(key(1)), M::Dht).unwrap();
            seed.remove_for(&key(1), secs(1800));
            clock.advance(secs(150));
            let back = seed.update(record_of(1, record), M::Dht);
            assert_eq!(
                back,
                Ok(UpdateOutcome::Inserted),
                "readmitted by {record:?}"
            );
            seed.remove_for(&key(1), secs(1800));
        }

        let (store, clock) = on_clock(support::builder(shards).readmit(Readmission::Newer));
        let events = store.subscribe();
        store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        let removed_at = died;
        store.remove_for(&key(1), secs(1800));
        clock.advance(secs(150));
        for record in stale {
            let refused = store.update(record_of(1, record), M::Dht);
            assert_eq!(
                refused,
                Err(UpdateError::Tombstoned {
                    until: removed_at + secs(1800)
                }),
                "a stale record {record:?}"
            );
        }
        // A record as old as the removal is no news either.
        let same = store.update(record_of(1, Some(removed_at)), M::DhtRendezvous);
        assert!(same.is_err(), "{same:?}");
        assert_eq!(store.stats().rejected_tombstoned, 3);
        assert!(store.get(&key(1)).is_none());
        // The peer publishes a record after its removal: back, and the event says so.
        let fresh = record_of(1, Some(removed_at + secs(120)));
        assert_eq!(store.update(fresh, M::Dht), Ok(UpdateOutcome::Inserted));
        assert!(store.tombstones().is_empty());
        assert_eq!(
            kinds(&events),
            [new(false), removed(RemovalCause::Explicit), new(true)]
        );
        // Heard on the LAN, a removed peer is on the link now: that is news whatever it
        // carries. Second-hand word never is.
        store.remove_for(&key(1), secs(1800));
        let mention = record_of(1, Some(removed_at + secs(900)));
        assert!(store.update(mention, M::GossipTransitive).is_err());
        assert_eq!(
            store.update(record_of(1, None), M::Lan),
            Ok(UpdateOutcome::Inserted)
        );
    });
}

/// A revoked key removed with `Readmission::Never` stays out for the whole span, whoever
/// announces it, and comes back by the first-hand rule once the tombstone falls.
#[test]
fn under_never_a_tombstone_stands_its_whole_span() {
    support::each_shards(|shards| {
        let (store, clock) = on_clock(support::builder(shards).readmit(Readmission::Never));
        store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        store.remove_for(&key(1), secs(600));
        let later = SystemTime::UNIX_EPOCH + support::START + secs(300);
        for method in [M::Lan, M::DhtRendezvous, M::Dht, M::Gossip, M::Cache] {
            clock.advance(secs(60));
            let refused = store.update(record_of(1, Some(later)), method.clone());
            assert!(
                matches!(refused, Err(UpdateError::Tombstoned { .. })),
                "{method}: {refused:?}"
            );
        }
        clock.advance(secs(300));
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Dht),
            Ok(UpdateOutcome::Inserted),
            "the tombstone fell"
        );
    });
}

/// A newcomer announced first-hand on four threads at once into a full store (the LAN and the
/// DHT often announce one newcomer at the same moment): each evicted a second-hand peer, and
/// the three that then found the newcomer inserted by the first gave their slots back, so the
/// store ended below its cap with peers evicted for nothing (8 evictions too many over 200
/// rounds). One newcomer evicts once, whoever announces it.
#[test]
fn one_newcomer_announced_on_four_threads_at_once_evicts_once() {
    const CAP: usize = 256;
    const ROUNDS: u32 = 200;
    let store = support::builder(2)
        .max_peers(CAP)
        .when_full(FullPolicy::EvictSecondHand)
        .build()
        .unwrap();
    for n in 0..u32::try_from(CAP).unwrap() {
        store
            .update(PeerInfo::new(key(10_000 + n)), M::GossipTransitive)
            .unwrap();
    }
    for round in 0..ROUNDS {
        let racing = store.clone();
        let outcomes = support::race_on(4, move |t| {
            let method = [M::Lan, M::Dht, M::DhtRendezvous, M::Gossip][t].clone();
            racing.update(PeerInfo::new(key(round)), method)
        });
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let inserted = outcomes
            .iter()
            .filter(|o| **o == Ok(UpdateOutcome::Inserted))
            .count();
        assert_eq!(inserted, 1, "round {round}: {outcomes:?}");
        assert_eq!(
            store.len(),
            CAP,
            "round {round}: the store fell below its cap"
        );
        assert_eq!(
            store.stats().evicted,
            u64::from(round) + 1,
            "round {round}: one eviction a newcomer"
        );
    }
}

/// A full store of `cap` holding ten real peers (heard first, and proven by a handshake) and
/// fakes a DHT flood announced after them (first-hand, never proven).
fn flooded(when_full: FullPolicy, cap: usize) -> (PeerStore, ManualClock) {
    let (store, clock) = on_clock(support::builder(2).max_peers(cap).when_full(when_full));
    for n in 0..10 {
        store
            .update(support::at(n, "198.51.100.1:51820"), M::Dht)
            .unwrap();
        let endpoint = support::addr("198.51.100.1:51820");
        store.confirm(&key(n), endpoint, peerstore::Evidence::Handshake);
    }
    let mut refused = 0;
    for n in 0..1100 {
        clock.advance(Duration::from_millis(50));
        refused += usize::from(store.update(PeerInfo::new(key(1000 + n)), M::Dht).is_err());
    }
    assert_eq!(refused, 1100 - (cap - 10), "the flood fills the store");
    (store, clock)
}

/// (G) 1,100 fresh keys announced by the DHT within a minute fill the store; they never
/// complete a handshake. Four LAN newcomers arrive: refused under the reference policy and
/// under `EvictSecondHand` (the fakes are first-hand), let in under `EvictUnproven`, each in
/// the place of the least recently heard fake, the proven peers untouched.
#[test]
fn a_first_hand_flood_locks_lan_newcomers_out_unless_the_store_keeps_proven_peers() {
    const CAP: usize = 100;
    for policy in [FullPolicy::Refuse, FullPolicy::EvictSecondHand] {
        let (store, _clock) = flooded(policy, CAP);
        for n in 0..4 {
            let refused = store.update(PeerInfo::new(key(500 + n)), M::Lan);
            assert_eq!(
                refused,
                Err(UpdateError::StoreFull { capacity: CAP }),
                "{policy:?}"
            );
        }
    }
    let (store, _clock) = flooded(FullPolicy::EvictUnproven, CAP);
    let events = store.subscribe();
    for n in 0..4 {
        let outcome = store.update(PeerInfo::new(key(500 + n)), M::Lan);
        assert_eq!(outcome, Ok(UpdateOutcome::Inserted), "newcomer {n}");
        assert!(
            store.get(&key(1000 + n)).is_none(),
            "the oldest fake went: {n}"
        );
    }
    assert_eq!(store.len(), CAP);
    assert!(
        (0..10).all(|n| store.get(&key(n)).is_some()),
        "every proven peer stays"
    );
    assert_eq!(store.stats().evicted, 4);
    let evicted = kinds(&events)
        .into_iter()
        .filter(|k| *k == removed(RemovalCause::Evicted))
        .count();
    assert_eq!(evicted, 4);
    // A DHT newcomer may take only a second-hand peer's place, and there is none; a
    // second-hand newcomer never evicts.
    let dht = store.update(PeerInfo::new(key(600)), M::Dht);
    assert_eq!(dht, Err(UpdateError::StoreFull { capacity: CAP }));
    let gossip = store.update(PeerInfo::new(key(601)), M::GossipTransitive);
    assert_eq!(gossip, Err(UpdateError::StoreFull { capacity: CAP }));
}

/// Among the unproven, a peer never heard first-hand goes before one heard first-hand, even a
/// more recently heard one; a peer heard again since it went in goes after those that were
/// not; a proven peer never goes, however long ago it was heard.
#[test]
fn under_evict_unproven_victims_go_second_hand_first_then_least_recently_heard() {
    support::each_shards(|shards| {
        let builder = support::builder(shards)
            .max_peers(4)
            .when_full(FullPolicy::EvictUnproven);
        let (store, clock) = on_clock(builder);
        store
            .update(support::at(0, "198.51.100.1:1"), M::Dht)
            .unwrap();
        let proven = support::addr("198.51.100.1:1");
        assert!(store.confirm(&key(0), proven, peerstore::Evidence::Handshake));
        clock.advance(secs(1));
        store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        clock.advance(secs(1));
        store.update(PeerInfo::new(key(2)), M::Dht).unwrap();
        clock.advance(secs(1));
        store
            .update(PeerInfo::new(key(3)), M::GossipTransitive)
            .unwrap();
        clock.advance(secs(1));
        // Key 1 is heard again: now key 2 is the least recently heard first-hand one.
        store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
        let mut held: Vec<u32> = vec![1, 2, 3];
        let mut order = Vec::new();
        for n in 10..13 {
            clock.advance(secs(1));
            store.update(PeerInfo::new(key(n)), M::Lan).unwrap();
            let gone: Vec<u32> = held
                .iter()
                .copied()
                .filter(|&k| store.get(&key(k)).is_none())
                .collect();
            held.retain(|k| !gone.contains(k));
            order.extend(gone);
        }
        // The second-hand peer 3 first, then the least recently heard first-hand one (2, as
        // key 1 was heard again), then 1; the proven peer 0 stays.
        assert_eq!(order, [3, 2, 1]);
        assert!(store.get(&key(0)).is_some(), "proven, never evicted");
        // The newcomers are unproven too: the next takes the oldest of them, not peer 0.
        store.update(PeerInfo::new(key(20)), M::Lan).unwrap();
        assert!(store.get(&key(10)).is_none() && store.get(&key(0)).is_some());
        assert_eq!(store.len(), 4);
    });
}

/// `max_unproven` bounds what a flood holds, whatever method it claims: a DHT flood of 1,100
/// fills 30 slots of 100, and a peer that completed a handshake leaves the quota.
#[test]
fn max_unproven_bounds_a_flood_whatever_method_it_claims() {
    support::each_shards(|shards| {
        let builder = support::builder(shards).max_peers(100).max_unproven(30);
        let (store, _clock) = on_clock(builder);
        for n in 0..10 {
            store
                .update(support::at(n, "198.51.100.1:1"), M::Dht)
                .unwrap();
            let endpoint = support::addr("198.51.100.1:1");
            store.confirm(&key(n), endpoint, peerstore::Evidence::Handshake);
        }
        let methods = [M::Dht, M::Lan, M::Gossip, M::GossipTransitive, M::Cache];
        let taken = (0..1100)
            .filter(|&n| {
                let method = methods[n as usize % methods.len()].clone();
                store.update(PeerInfo::new(key(1000 + n)), method).is_ok()
            })
            .count();
        assert_eq!(taken, 30);
        assert_eq!(store.len(), 40);
        // A proven flood peer leaves the quota: one more fits. A removed one gives its slot.
        let endpoint = support::addr("198.51.100.9:1");
        store.confirm(&key(1000), endpoint, peerstore::Evidence::Handshake);
        assert!(store.update(PeerInfo::new(key(5000)), M::Dht).is_ok());
        assert!(
            store.update(PeerInfo::new(key(5001)), M::Dht).is_err(),
            "full again"
        );
        store.remove(&key(1001));
        assert!(store.update(PeerInfo::new(key(5001)), M::Dht).is_ok());
        assert!(store.remove(&key(0)).is_some());
        assert!(
            store.update(PeerInfo::new(key(5002)), M::Dht).is_err(),
            "a proven slot is no unproven one"
        );
    });
}

/// A caller's clock whose wall clock panics while `failing` is set.
#[derive(Clone)]
struct FailingWall {
    clock: ManualClock,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl peerstore::Clock for FailingWall {
    fn now(&self) -> std::time::Instant {
        self.clock.now()
    }

    fn wall_now(&self) -> SystemTime {
        assert!(
            !self.failing.load(std::sync::atomic::Ordering::Relaxed),
            "the caller's wall clock failed"
        );
        self.clock.wall_now()
    }
}

/// A second-hand newcomer that carries no time reads the wall clock only once it is admitted,
/// its slots reserved: a caller's clock that panics then leaves nothing behind, neither the
/// slot under the cap nor those under the quotas, nor a record or an event.
#[test]
fn a_wall_clock_that_panics_after_admission_gives_the_newcomers_slots_back() {
    support::each_shards(|shards| {
        let clock = FailingWall {
            clock: support::clock(),
            failing: Default::default(),
        };
        let store = support::builder(shards)
            .max_peers(2)
            .max_second_hand(1)
            .max_unproven(2)
            .clock(clock.clone())
            .build()
            .unwrap();
        let events = store.subscribe();
        clock
            .failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..3 {
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.update(PeerInfo::new(key(1)), M::Cache)
            }));
            assert!(panicked.is_err(), "the update reads the failing clock");
        }
        clock
            .failing
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(store.is_empty() && kinds(&events).is_empty());
        // Every slot is still free: the second-hand quota's one, then the cap's two.
        let inserted = Ok(UpdateOutcome::Inserted);
        assert_eq!(store.update(PeerInfo::new(key(2)), M::Cache), inserted);
        assert_eq!(store.update(PeerInfo::new(key(3)), M::Lan), inserted);
        assert_eq!(
            store.update(PeerInfo::new(key(4)), M::Lan),
            Err(UpdateError::StoreFull { capacity: 2 })
        );
        assert_eq!(kinds(&events), [new(false), new(false)]);
    });
}
