//! The store under many threads at once: the cap race, subscribers that call back into the
//! store, and unsubscribing while events are being sent. Every test runs its threads behind a
//! `Barrier` and fails on a deadline instead of hanging.
#![allow(
    clippy::cast_possible_truncation,
    reason = "thread and round numbers are small"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use peerstore::{DiscoveryMethod as M, PeerInfo, UpdateError, UpdateOutcome};
use support::{THREADS, at, key, race, rounds, sized};

#[test]
fn racing_inserts_into_a_store_one_short_of_full_admit_exactly_one() {
    support::each_shards(|shards| {
        let cap = sized(1000, 40);
        let store = support::builder(shards).max_peers(cap).build().unwrap();
        for n in 0..cap as u32 - 1 {
            store.update(PeerInfo::new(key(n)), M::Dht).unwrap();
        }
        for round in 0..rounds(100) {
            let racers = store.clone();
            let outcomes = race(move |t| {
                let fresh = key(1_000_000 + (round * THREADS + t) as u32);
                (fresh, racers.update(PeerInfo::new(fresh), M::Lan))
            });
            let winners: Vec<_> = outcomes
                .iter()
                .filter(|(_, r)| *r == Ok(UpdateOutcome::Inserted))
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
            for (_, r) in &outcomes {
                assert!(
                    *r == Ok(UpdateOutcome::Inserted)
                        || *r == Err(UpdateError::StoreFull { capacity: cap }),
                    "{r:?}"
                );
            }
            assert_eq!(store.len(), cap);
            assert_eq!(store.get_all().len(), cap);
            store.remove(&winners[0].0).unwrap();
        }
    });
}

#[test]
fn racing_inserts_fill_the_store_exactly_to_the_cap() {
    support::each_shards(|shards| {
        // Each thread offers more than the cap's share, so that some are refused.
        let (cap, each) = (sized(500, 40), sized(200, 16));
        for round in 0..rounds(20) {
            let store = support::builder(shards).max_peers(cap).build().unwrap();
            let racers = store.clone();
            let inserted = race(move |t| {
                (0..each)
                    .filter(|i| {
                        let n = (t * 1000 + i) as u32;
                        racers.update(PeerInfo::new(key(n)), M::Dht).is_ok()
                    })
                    .count()
            });
            // More distinct peers offered than the cap holds: every slot taken, none twice,
            // none refused early.
            let offered = THREADS * each;
            assert_eq!(inserted.iter().sum::<usize>(), cap, "round {round}");
            assert_eq!(store.len(), cap);
            assert_eq!(store.get_all().len(), cap);
            let stats = store.stats();
            assert_eq!(
                (stats.inserts, stats.rejected_full),
                (cap as u64, (offered - cap) as u64)
            );
        }
    });
}

#[test]
fn inserts_and_removals_racing_never_pass_the_cap() {
    support::each_shards(|shards| {
        let store = support::builder(shards).max_peers(64).build().unwrap();
        let racers = store.clone();
        let over = Arc::new(AtomicBool::new(false));
        let seen_over = Arc::clone(&over);
        race(move |t| {
            for i in 0..rounds(2000) {
                let n = ((t * 7919 + i * 31) % 256) as u32;
                if (t + i) % 3 == 0 {
                    racers.remove(&key(n));
                } else {
                    let _ = racers.update(PeerInfo::new(key(n)), M::Gossip);
                }
                if racers.len() > 64 {
                    seen_over.store(true, Ordering::Relaxed);
                }
            }
        });
        assert!(!over.load(Ordering::Relaxed), "the count passed the cap");
        assert_eq!(store.len(), store.get_all().len());
    });
}

#[test]
fn subscribers_that_call_back_into_the_store_while_writers_run_do_not_deadlock() {
    support::each_shards(|shards| {
        let store = support::builder(shards)
            .max_peers(10_000)
            .event_buffer(1024)
            .build()
            .unwrap();
        let writers_done = Arc::new(AtomicUsize::new(0));
        let (racers, done) = (store.clone(), Arc::clone(&writers_done));
        let subscriptions: Vec<_> = (0..THREADS / 2).map(|_| store.subscribe()).collect();
        let subscriptions = Arc::new(std::sync::Mutex::new(subscriptions));
        let reacted = race(move |t| {
            if t < THREADS / 2 {
                for i in 0..rounds(2000) {
                    let n = (i % 300) as u32;
                    let mut info = at(n, "198.51.100.1:51820");
                    info.hostname = Some(format!("h{}", i % 7).into());
                    racers.update(info, M::Dht).unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
                0
            } else {
                let events = subscriptions.lock().unwrap().pop().unwrap();
                let mut reacted = 0;
                // React to each event with reads and writes of the same peer, as the health monitor does.
                while done.load(Ordering::SeqCst) < THREADS / 2 || !events.is_empty_now() {
                    if let Ok(event) = events.recv_timeout(Duration::from_millis(1)) {
                        let _ = racers.get(&event.public_key);
                        let _ = racers.is_dead(&event.public_key);
                        racers.set_latency(&event.public_key, Duration::from_millis(3));
                        let _ = racers.update(PeerInfo::new(event.public_key), M::Lan);
                        if event.seq % 97 == 0 {
                            racers.remove(&event.public_key);
                        }
                        let _ = racers.get_active();
                        reacted += 1;
                    }
                }
                reacted
            }
        });
        assert!(reacted.iter().sum::<usize>() > 0);
        assert_eq!(store.len(), store.get_all().len());
    });
}

/// `Subscription` has no "is empty" of its own; the receiver does.
trait IsEmptyNow {
    fn is_empty_now(&self) -> bool;
}

impl IsEmptyNow for peerstore::Subscription {
    fn is_empty_now(&self) -> bool {
        self.receiver().is_empty()
    }
}

#[test]
fn unsubscribing_while_events_are_sent_never_panics_or_leaks_subscribers() {
    support::each_shards(|shards| {
        let store = support::builder(shards).max_peers(10_000).build().unwrap();
        let racers = store.clone();
        race(move |t| {
            for i in 0..rounds(1000) {
                if t % 2 == 0 {
                    let mut info = PeerInfo::new(key((i % 500) as u32));
                    info.hostname = Some(format!("h{i}").into());
                    racers.update(info, M::Dht).unwrap();
                } else {
                    let sub = racers.subscribe();
                    let _ = sub.try_recv();
                    if i % 2 == 0 {
                        racers.unsubscribe(sub);
                    } else {
                        // A receiver that outlives its subscription must not keep it listed.
                        let receiver = sub.receiver().clone();
                        drop(sub);
                        drop(receiver);
                    }
                }
            }
        });
        assert_eq!(store.stats().subscribers, 0);
        let late = store.subscribe();
        store.update(PeerInfo::new(key(9999)), M::Lan).unwrap();
        assert!(late.try_recv().is_ok());
    });
}
