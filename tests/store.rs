//! The store's own rules: the cap, expiry on the monotonic clock, refused input, reads,
//! latency and statistics.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peerstore::{
    AddressProblem, Clock, DEFAULT_MAX_PEERS, DiscoveryMethod as M, InvalidPeerInfo, PeerInfo,
    PeerStore, Stats, UpdateError, UpdateOutcome,
};
use support::{at, clock, key, secs};

fn small_store(max_peers: usize) -> (PeerStore, peerstore::ManualClock) {
    let clock = clock();
    let store = PeerStore::builder()
        .max_peers(max_peers)
        .clock(clock.clone())
        .build()
        .unwrap();
    (store, clock)
}

#[test]
fn peers_are_kept_apart_by_key() {
    support::each_clock(|store| {
        store.update(at(1, "198.51.100.1:1"), M::Dht).unwrap();
        store.update(at(2, "198.51.100.2:2"), M::Dht).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&key(1)).unwrap().public_key, key(1));
        assert_eq!(
            store.get(&key(2)).unwrap().endpoint,
            Some(support::addr("198.51.100.2:2"))
        );
        assert!(store.get(&key(3)).is_none());
    });
}

#[test]
fn the_default_cap_is_1000_and_a_full_store_refuses_new_peers_only() {
    let store = PeerStore::new();
    assert_eq!(store.max_peers(), DEFAULT_MAX_PEERS);
    for n in 0..1000 {
        assert_eq!(
            store.update(PeerInfo::new(key(n)), M::Dht),
            Ok(UpdateOutcome::Inserted)
        );
    }
    let err = store.update(PeerInfo::new(key(1000)), M::Lan).unwrap_err();
    assert_eq!(err, UpdateError::StoreFull { capacity: 1000 });
    assert!(err.to_string().contains("1000"), "{err}");
    assert_eq!(store.len(), 1000);
    assert!(store.get(&key(1000)).is_none());
    // Known peers still update.
    assert_eq!(
        store.update(at(5, "198.51.100.5:5"), M::Lan),
        Ok(UpdateOutcome::Updated)
    );
    assert_eq!(store.stats().rejected_full, 1);
}

#[test]
fn a_removal_frees_its_slot_before_it_returns() {
    let (store, clock) = small_store(2);
    store.update(PeerInfo::new(key(1)), M::Dht).unwrap();
    store.update(PeerInfo::new(key(2)), M::Dht).unwrap();
    assert!(matches!(
        store.update(PeerInfo::new(key(3)), M::Dht),
        Err(UpdateError::StoreFull { .. })
    ));
    assert_eq!(store.remove(&key(1)).map(|p| p.public_key), Some(key(1)));
    assert_eq!(
        store.update(PeerInfo::new(key(3)), M::Dht),
        Ok(UpdateOutcome::Inserted)
    );

    clock.advance(secs(601));
    assert_eq!(store.cleanup_stale().len(), 2);
    assert_eq!(store.len(), 0);
    assert_eq!(
        store.update(PeerInfo::new(key(4)), M::Dht),
        Ok(UpdateOutcome::Inserted)
    );
    assert_eq!(
        store.update(PeerInfo::new(key(5)), M::Dht),
        Ok(UpdateOutcome::Inserted)
    );
    assert_eq!(store.remove(&key(99)), None);
    assert_eq!(store.len(), 2);
}

#[test]
fn a_zero_cap_refuses_everyone() {
    let (store, _) = small_store(0);
    assert_eq!(
        store.update(PeerInfo::new(key(1)), M::Lan),
        Err(UpdateError::StoreFull { capacity: 0 })
    );
    assert!(store.is_empty());
}

#[test]
fn a_peer_is_dead_after_five_silent_minutes_and_removed_after_ten() {
    support::each(|store, clock| {
        store.update(at(1, "198.51.100.1:1"), M::Lan).unwrap();
        store.update(at(2, "198.51.100.2:2"), M::Dht).unwrap();
        clock.advance(secs(300));
        assert!(
            !store.is_dead(&key(1)),
            "exactly five minutes is not more than five"
        );
        assert_eq!(store.get_active().len(), 2);
        clock.advance(secs(1));
        store.update(at(2, "198.51.100.2:2"), M::Dht).unwrap();
        assert!(store.is_dead(&key(1)));
        let active: Vec<_> = store.get_active().iter().map(|p| p.public_key).collect();
        assert_eq!(active, [key(2)]);
        assert_eq!(store.get_all().len(), 2, "dead peers are still stored");
        assert!(store.get(&key(1)).is_some());

        clock.advance(secs(299));
        assert_eq!(
            store.cleanup_stale(),
            [],
            "exactly ten minutes is not more than ten"
        );
        clock.advance(secs(1));
        assert_eq!(store.cleanup_stale(), [key(1)]);
        assert!(store.get(&key(1)).is_none());
        assert_eq!(store.len(), 1);
    });
}

#[test]
fn an_unknown_peer_is_dead() {
    support::each_clock(|store| {
        assert!(store.is_dead(&key(42)));
    });
}

#[test]
fn wall_clock_jumps_neither_expire_nor_revive() {
    support::each(|store, clock| {
        store.update(at(1, "198.51.100.1:1"), M::Lan).unwrap();
        // The board booted in 1970, then NTP brings it to the present: nobody expires.
        clock.set_wall(SystemTime::UNIX_EPOCH + secs(1_900_000_000));
        assert!(!store.is_dead(&key(1)));
        assert_eq!(store.cleanup_stale(), []);
        // And back: nobody comes back to life either.
        clock.advance(secs(301));
        clock.set_wall(SystemTime::UNIX_EPOCH);
        assert!(store.is_dead(&key(1)));
        assert!(store.get_active().is_empty());
    });
}

#[test]
fn custom_timeouts_apply() {
    let clock = clock();
    let store = PeerStore::builder()
        .dead_after(secs(10))
        .remove_after(secs(20))
        .clock(clock.clone())
        .build()
        .unwrap();
    store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
    clock.advance(secs(11));
    assert!(store.is_dead(&key(1)));
    clock.advance(secs(10));
    assert_eq!(store.cleanup_stale(), [key(1)]);
}

/// Each refused announcement: the store is left exactly as it was, and the error names the field.
#[test]
fn bad_input_is_refused_naming_the_field_and_nothing_changes() {
    support::each(|store, clock| {
        let mut good = at(1, "198.51.100.1:51820");
        good.hostname = Some("alpha".into());
        store.update(good.clone(), M::Dht).unwrap();
        let before = store.get(&key(1)).unwrap();
        let events = store.subscribe();
        clock.advance(secs(100));

        let mut bad_inputs: Vec<(PeerInfo, &str)> = Vec::new();
        for endpoint in [
            "0.0.0.0:51820",
            "[::]:51820",
            "239.1.2.3:51820",
            "[ff02::1]:51820",
            "255.255.255.255:51820",
            "198.51.100.9:0",
        ] {
            let mut info = good.clone();
            info.endpoint = Some(endpoint.parse().unwrap());
            info.hostname = Some("changed".into());
            bad_inputs.push((info, "endpoint"));
        }
        for hostname in [
            "a".repeat(254),
            "has space".into(),
            "new\nline".into(),
            "\u{1b}[31m".into(),
        ] {
            let mut info = good.clone();
            info.hostname = Some(hostname.into());
            info.introducer = true;
            bad_inputs.push((info, "hostname"));
        }
        let mut info = good.clone();
        info.routable_networks = vec!["10.0.0.0/8".parse().unwrap(); 257].into();
        bad_inputs.push((info, "routable_networks"));

        for (info, field) in bad_inputs {
            // Refused through every method: none is trusted enough to store garbage.
            for method in [M::Lan, M::Cache] {
                let err = store.update(info.clone(), method).unwrap_err();
                let UpdateError::Invalid(invalid) = &err else {
                    panic!("{err:?}")
                };
                assert_eq!(invalid.field(), field);
                assert!(err.to_string().contains(field), "{err}");
                let after = store.get(&key(1)).unwrap();
                assert_eq!(*after, *before, "{err}");
                assert!(Arc::ptr_eq(&after, &before), "not even rebuilt: {err}");
            }
        }
        // Nor was the peer refreshed, nor did anybody hear of it.
        clock.advance(secs(201));
        assert!(store.is_dead(&key(1)));
        assert!(events.try_recv().is_err());
        assert_eq!(store.stats().rejected_invalid, 22);

        // A new peer with bad input is not inserted either, and takes no slot.
        let mut new = at(2, "198.51.100.2:0");
        new.hostname = Some("x".into());
        assert!(matches!(
            store.update(new, M::Lan),
            Err(UpdateError::Invalid(InvalidPeerInfo::Endpoint {
                reason: AddressProblem::PortZero,
                ..
            }))
        ));
        assert_eq!(store.len(), 1);
    });
}

#[test]
fn snapshots_are_unaffected_by_later_updates() {
    support::each_clock(|store| {
        store.update(at(1, "198.51.100.1:1"), M::Dht).unwrap();
        let old = store.get(&key(1)).unwrap();
        store.update(at(1, "198.51.100.2:2"), M::Lan).unwrap();
        assert_eq!(old.endpoint, Some(support::addr("198.51.100.1:1")));
        assert_eq!(
            store.get(&key(1)).unwrap().endpoint,
            Some(support::addr("198.51.100.2:2"))
        );
    });
}

#[test]
fn latency_is_recorded_for_known_peers_only() {
    support::each(|store, clock| {
        let events = store.subscribe();
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        assert!(store.set_latency(&key(1), std::time::Duration::from_millis(12)));
        assert_eq!(
            store.get(&key(1)).unwrap().latency,
            Some(std::time::Duration::from_millis(12))
        );
        assert!(!store.set_latency(&key(2), std::time::Duration::from_millis(1)));
        assert!(store.get(&key(2)).is_none());
        // A measurement is not news from the peer: no event and no refresh.
        assert_eq!(events.try_iter().count(), 1);
        clock.advance(secs(301));
        store.set_latency(&key(1), std::time::Duration::from_millis(13));
        assert!(store.is_dead(&key(1)));
    });
}

#[test]
fn stats_count_what_happened() {
    let (store, clock) = small_store(3);
    let events = store.subscribe();
    let never_reads = PeerStore::subscribe(&store);
    store.update(PeerInfo::new(key(1)), M::Lan).unwrap(); // insert
    store.update(PeerInfo::new(key(2)), M::Lan).unwrap(); // insert
    store.update(PeerInfo::new(key(3)), M::Lan).unwrap(); // insert
    store.update(PeerInfo::new(key(1)), M::Dht).unwrap(); // update
    store.update(PeerInfo::new(key(1)), M::Dht).unwrap(); // unchanged
    store.update(PeerInfo::new(key(4)), M::Dht).unwrap_err(); // full
    store.update(at(1, "0.0.0.0:1"), M::Dht).unwrap_err(); // invalid
    store.remove(&key(2)).unwrap(); // removed
    clock.advance(secs(601));
    store.cleanup_stale(); // 2 expired
    let stats = store.stats();
    let counts = |s: Stats| {
        [
            s.inserts,
            s.updates,
            s.unchanged,
            s.rejected_full,
            s.rejected_invalid,
            s.removed,
            s.expired,
            s.events_sent,
            s.events_dropped,
        ]
    };
    // 7 events to each of 2 subscribers, 16 slots each: none lost.
    assert_eq!(counts(stats), [3, 1, 1, 1, 1, 1, 2, 14, 0], "{stats:?}");
    assert_eq!((stats.peers, stats.subscribers), (0, 2));
    assert_eq!(events.try_iter().count(), 7);
    drop(never_reads);
    assert_eq!(store.stats().subscribers, 1);
    store.unsubscribe(events);
    assert_eq!(store.stats().subscribers, 0);
}

#[test]
fn public_types_have_the_promised_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    fn clone_eq_debug<T: Clone + PartialEq + std::fmt::Debug>() {}
    fn error<T: std::error::Error>() {}
    send_sync::<PeerStore>();
    send::<peerstore::Subscription>();
    send::<peerstore::CleanupHandle>();
    clone_eq_debug::<PeerInfo>();
    clone_eq_debug::<peerstore::Peer>();
    clone_eq_debug::<peerstore::PeerEvent>();
    clone_eq_debug::<peerstore::PublicKey>();
    error::<UpdateError>();
    error::<InvalidPeerInfo>();
    error::<peerstore::ParseKeyError>();
    let store = PeerStore::default();
    let clone = store.clone();
    clone.update(PeerInfo::new(key(1)), M::Lan).unwrap();
    assert_eq!(store.len(), 1, "clones share one store");
    assert!(format!("{store:?}").contains("peers: 1"));
    let _ = peerstore::SystemClock.wall_now();
}

/// The default clock (read without the `Clock` trait) and the same clock passed by name stamp
/// `last_seen` with the wall time: never ahead of it, behind by at most a tick of the coarse
/// monotonic clock.
#[test]
fn a_store_on_the_system_clock_stamps_the_wall_time() {
    let explicit = PeerStore::builder()
        .clock(peerstore::SystemClock)
        .build()
        .unwrap();
    for store in [PeerStore::new(), explicit] {
        let before = SystemTime::now();
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        store.update(PeerInfo::new(key(1)), M::Gossip).unwrap();
        let after = SystemTime::now();
        let seen = store.get(&key(1)).unwrap().last_seen;
        assert!(seen <= after, "{seen:?} after {after:?}");
        let behind = before.duration_since(seen).unwrap_or_default();
        assert!(behind < Duration::from_millis(50), "{behind:?} behind");
        assert_eq!(store.get_active().len(), 1);
    }
}
