//! How `update` merges announcements: the endpoint by rank, the other fields by last
//! non-empty value, `last_seen` by method, and which outcome each merge reports.

mod support;

use std::time::{Duration, SystemTime};

use peerstore::{DiscoveryMethod as M, MAX_OTHER_METHODS, NatType, PeerInfo, UpdateOutcome};
use support::{addr, at, key, secs, store};

const V4_A: &str = "198.51.100.1:51820";
const V4_B: &str = "198.51.100.2:51820";
const V6_A: &str = "[2001:db8::1]:51820";
const V6_B: &str = "[2001:db8::2]:51820";

/// Stores `first` by `m1`, then offers `second` by `m2`; returns the endpoint and its method.
fn endpoint_after(first: &str, m1: M, second: &str, m2: M) -> (String, M) {
    let (store, _) = store();
    store.update(at(1, first), m1).unwrap();
    store.update(at(1, second), m2).unwrap();
    let peer = store.get(&key(1)).unwrap();
    (
        peer.endpoint.unwrap().to_string(),
        peer.endpoint_method.clone().unwrap(),
    )
}

#[test]
fn a_higher_rank_replaces_the_endpoint() {
    assert_eq!(
        endpoint_after(V4_A, M::Dht, V4_B, M::Lan),
        (V4_B.into(), M::Lan)
    );
    assert_eq!(
        endpoint_after(V4_A, M::Cache, V4_B, M::other("mdns").unwrap()),
        (V4_B.into(), M::other("mdns").unwrap())
    );
    assert_eq!(
        endpoint_after(V4_A, M::Gossip, V4_B, M::DhtRendezvous),
        (V4_B.into(), M::DhtRendezvous)
    );
}

#[test]
fn a_lower_rank_does_not() {
    assert_eq!(
        endpoint_after(V4_A, M::Dht, V4_B, M::Gossip),
        (V4_A.into(), M::Dht)
    );
    assert_eq!(
        endpoint_after(V4_A, M::GossipTransitive, V4_B, M::Cache),
        (V4_A.into(), M::GossipTransitive)
    );
    // A lower rank cannot take over the endpoint even with IPv6.
    assert_eq!(
        endpoint_after(V4_A, M::Dht, V6_A, M::Gossip),
        (V4_A.into(), M::Dht)
    );
}

#[test]
fn at_equal_rank_the_newer_endpoint_wins() {
    assert_eq!(
        endpoint_after(V4_A, M::Dht, V4_B, M::Dht),
        (V4_B.into(), M::Dht)
    );
    assert_eq!(
        endpoint_after(V6_A, M::Dht, V6_B, M::Dht),
        (V6_B.into(), M::Dht)
    );
}

#[test]
fn at_equal_rank_ipv6_replaces_ipv4_and_never_the_reverse() {
    assert_eq!(
        endpoint_after(V4_A, M::Gossip, V6_A, M::Gossip),
        (V6_A.into(), M::Gossip)
    );
    assert_eq!(
        endpoint_after(V6_A, M::Gossip, V4_A, M::Gossip),
        (V6_A.into(), M::Gossip)
    );
    assert_eq!(
        endpoint_after(V6_A, M::Lan, V4_A, M::Lan),
        (V6_A.into(), M::Lan)
    );
}

#[test]
fn a_lan_endpoint_is_replaced_only_by_a_newer_lan_discovery() {
    for other in [
        M::DhtRendezvous,
        M::Dht,
        M::Gossip,
        M::Cache,
        M::other("x").unwrap(),
    ] {
        assert_eq!(
            endpoint_after(V4_A, M::Lan, V6_A, other),
            (V4_A.into(), M::Lan)
        );
    }
    assert_eq!(
        endpoint_after(V4_A, M::Lan, V4_B, M::Lan),
        (V4_B.into(), M::Lan)
    );
}

#[test]
fn a_peer_without_an_endpoint_takes_any() {
    support::each_clock(|store| {
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        assert_eq!(store.get(&key(1)).unwrap().endpoint_method, None);
        assert_eq!(
            store.update(at(1, V4_A), M::Cache),
            Ok(UpdateOutcome::Updated)
        );
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(
            (peer.endpoint, peer.endpoint_method.clone()),
            (Some(addr(V4_A)), Some(M::Cache))
        );
    });
}

#[test]
fn re_announcing_the_same_endpoint_by_a_higher_method_records_that_method() {
    support::each_clock(|store| {
        store.update(at(1, V4_A), M::Dht).unwrap();
        store.update(at(1, V4_A), M::Lan).unwrap();
        assert_eq!(store.get(&key(1)).unwrap().endpoint_method, Some(M::Lan));
        assert_eq!(
            store.update(at(1, V4_A), M::Lan),
            Ok(UpdateOutcome::Unchanged)
        );

        // Same endpoint, equal rank, another name: only endpoint_method changes, and that is news.
        let (store, _) = support::store();
        store.update(at(1, V4_A), M::other("a").unwrap()).unwrap();
        store.update(at(1, V4_A), M::other("b").unwrap()).unwrap();
        store.update(at(1, V4_A), M::other("a").unwrap()).unwrap();
        let outcome = store.update(at(1, V4_A), M::other("b").unwrap());
        assert_eq!(outcome, Ok(UpdateOutcome::Updated));
        assert_eq!(
            store.get(&key(1)).unwrap().endpoint_method,
            Some(M::other("b").unwrap())
        );
    });
}

#[test]
fn other_fields_take_the_last_non_empty_value() {
    support::each_clock(|store| {
        let mut full = at(1, V4_A);
        full.mesh_ip = Some("10.99.0.1".parse().unwrap());
        full.mesh_ipv6 = Some("fd00::1".parse().unwrap());
        full.hostname = Some("alpha".into());
        full.routable_networks = vec!["192.168.0.0/24".parse().unwrap()].into();
        full.nat_type = Some(NatType::Cone);
        store.update(full.clone(), M::Dht).unwrap();

        // An announcement that says nothing changes nothing (an empty hostname and list are empty).
        let mut empty = PeerInfo::new(key(1));
        empty.hostname = Some("".into());
        assert_eq!(store.update(empty, M::Dht), Ok(UpdateOutcome::Unchanged));
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(peer.mesh_ip, full.mesh_ip);
        assert_eq!(peer.mesh_ipv6, full.mesh_ipv6);
        assert_eq!(peer.hostname, full.hostname);
        assert_eq!(peer.routable_networks, full.routable_networks);
        assert_eq!(peer.nat_type, full.nat_type);

        // Each new value wins, even from a low-ranked method, and each is news.
        let mut newer = PeerInfo::new(key(1));
        newer.mesh_ip = Some("10.99.0.2".parse().unwrap());
        assert_eq!(
            store.update(newer.clone(), M::Cache),
            Ok(UpdateOutcome::Updated)
        );
        newer.mesh_ipv6 = Some("fd00::2".parse().unwrap());
        assert_eq!(
            store.update(newer.clone(), M::Cache),
            Ok(UpdateOutcome::Updated)
        );
        newer.hostname = Some("beta".into());
        assert_eq!(
            store.update(newer.clone(), M::Cache),
            Ok(UpdateOutcome::Updated)
        );
        newer.routable_networks = vec!["10.1.0.0/16".parse().unwrap()].into();
        assert_eq!(
            store.update(newer.clone(), M::Cache),
            Ok(UpdateOutcome::Updated)
        );
        newer.nat_type = Some(NatType::Unknown); // a value, not empty
        assert_eq!(
            store.update(newer.clone(), M::Cache),
            Ok(UpdateOutcome::Updated)
        );
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(peer.mesh_ip, newer.mesh_ip);
        assert_eq!(peer.mesh_ipv6, newer.mesh_ipv6);
        assert_eq!(peer.hostname.as_deref(), Some("beta"));
        assert_eq!(peer.routable_networks, newer.routable_networks);
        assert_eq!(peer.nat_type, Some(NatType::Unknown));
        assert_eq!(
            peer.endpoint,
            Some(addr(V4_A)),
            "no endpoint offered, none lost"
        );
    });
}

#[test]
fn introducer_always_follows_the_latest_announcement() {
    support::each_clock(|store| {
        let mut info = at(1, V4_A);
        info.introducer = true;
        store.update(info.clone(), M::Lan).unwrap();
        assert!(store.get(&key(1)).unwrap().introducer);
        info.introducer = false;
        assert_eq!(store.update(info, M::Cache), Ok(UpdateOutcome::Updated));
        assert!(!store.get(&key(1)).unwrap().introducer);
    });
}

#[test]
fn discovered_via_accumulates_in_first_seen_order_without_duplicates() {
    support::each_clock(|store| {
        for m in [
            M::Gossip,
            M::Dht,
            M::Gossip,
            M::Lan,
            M::Dht,
            M::other("x").unwrap(),
        ] {
            store.update(PeerInfo::new(key(1)), m).unwrap();
        }
        assert_eq!(
            store.get(&key(1)).unwrap().discovered_via,
            [M::Gossip, M::Dht, M::Lan, M::other("x").unwrap()]
        );
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Lan),
            Ok(UpdateOutcome::Unchanged)
        );
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Cache),
            Ok(UpdateOutcome::Updated),
            "a method not seen before is news"
        );
    });
}

#[test]
fn a_peer_records_a_bounded_number_of_other_method_names() {
    support::each_clock(|store| {
        let name = |i: usize| M::other(&format!("plugin-{i}")).unwrap();
        for i in 0..MAX_OTHER_METHODS {
            assert_eq!(
                store.update(PeerInfo::new(key(1)), name(i)),
                Ok(if i == 0 {
                    UpdateOutcome::Inserted
                } else {
                    UpdateOutcome::Updated
                })
            );
        }
        assert_eq!(
            store.update(PeerInfo::new(key(1)), name(MAX_OTHER_METHODS)),
            Ok(UpdateOutcome::Unchanged),
            "a name past the limit is not recorded, so it is no news"
        );
        let peer = store.get(&key(1)).unwrap();
        let expected: Vec<M> = (0..MAX_OTHER_METHODS).map(name).collect();
        assert_eq!(peer.discovered_via, expected);
        // The built-in methods are always recorded, after any number of names.
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Lan),
            Ok(UpdateOutcome::Updated)
        );
        assert!(store.get(&key(1)).unwrap().discovered_via.contains(&M::Lan));
    });
}

fn wall(store_clock: &peerstore::ManualClock) -> SystemTime {
    use peerstore::Clock;
    store_clock.wall_now()
}

#[test]
fn direct_discovery_refreshes_last_seen_to_now_whatever_the_input_carries() {
    support::each(|store, clock| {
        store.update(at(1, V4_A), M::Dht).unwrap();
        clock.advance(secs(200));
        let mut info = at(1, V4_A);
        info.last_seen = Some(wall(&clock) - secs(3600));
        assert_eq!(store.update(info, M::Gossip), Ok(UpdateOutcome::Updated)); // gossip is new
        assert_eq!(store.get(&key(1)).unwrap().last_seen, wall(&clock));
        clock.advance(secs(299));
        assert!(!store.is_dead(&key(1)));
    });
}

#[test]
fn cache_and_transitive_reports_do_not_refresh() {
    for m in [M::Cache, M::DhtTransitive, M::GossipTransitive] {
        let (store, clock) = store();
        store.update(at(1, V4_A), M::Dht).unwrap();
        let seen = store.get(&key(1)).unwrap().last_seen;
        clock.advance(secs(200));
        store.update(at(1, V4_A), m.clone()).unwrap();
        assert_eq!(store.get(&key(1)).unwrap().last_seen, seen, "{m}");
        clock.advance(secs(101));
        assert!(store.is_dead(&key(1)), "{m} kept the peer alive");
    }
}

#[test]
fn a_carried_last_seen_is_honoured_on_insert_by_the_methods_that_do_not_refresh() {
    for m in [M::Cache, M::DhtTransitive, M::GossipTransitive] {
        let (store, clock) = store();
        let mut info = at(1, V4_A);
        info.last_seen = Some(wall(&clock) - secs(240));
        store.update(info, m.clone()).unwrap();
        assert_eq!(
            store.get(&key(1)).unwrap().last_seen,
            wall(&clock) - secs(240)
        );
        clock.advance(secs(60));
        assert!(!store.is_dead(&key(1)), "{m}: 300 s old is not yet dead");
        clock.advance(secs(1));
        assert!(store.is_dead(&key(1)), "{m}: 301 s old is dead");
    }
    let (store, clock) = store();
    store.update(at(2, V4_A), M::Cache).unwrap();
    assert_eq!(
        store.get(&key(2)).unwrap().last_seen,
        wall(&clock),
        "None means now"
    );
}

/// A LAN announcement of a new peer carrying an hour-old `last_seen` was inserted
/// dead, and the identical announcement again revived it. A first-hand method means the peer
/// was heard now, new or not.
#[test]
fn a_peer_heard_first_hand_is_inserted_alive_whatever_time_it_carries() {
    support::each(|store, clock| {
        let first_hand = M::BUILT_IN.iter().filter(|m| m.refreshes_last_seen());
        for (n, m) in (1..).zip(first_hand) {
            let mut info = at(n, V4_A);
            info.last_seen = Some(wall(&clock) - secs(3600));
            assert_eq!(
                store.update(info.clone(), m.clone()),
                Ok(UpdateOutcome::Inserted)
            );
            let peer = store.get(&key(n)).unwrap();
            assert_eq!(peer.last_seen, wall(&clock), "{m}: heard now");
            assert!(!store.is_dead(&key(n)), "{m}: inserted alive");
            assert_eq!(
                store.update(info, m.clone()),
                Ok(UpdateOutcome::Unchanged),
                "{m}: the same announcement again is no revival"
            );
        }
    });
}

#[test]
fn a_non_refreshing_method_takes_a_carried_time_only_when_it_is_later() {
    support::each(|store, clock| {
        let mut info = at(1, V4_A);
        info.last_seen = Some(wall(&clock) - secs(250));
        store.update(info.clone(), M::Cache).unwrap();

        info.last_seen = Some(wall(&clock) - secs(280)); // older: ignored
        store.update(info.clone(), M::GossipTransitive).unwrap();
        assert_eq!(
            store.get(&key(1)).unwrap().last_seen,
            wall(&clock) - secs(250)
        );

        info.last_seen = Some(wall(&clock) - secs(10)); // later: taken
        store.update(info.clone(), M::DhtTransitive).unwrap();
        assert_eq!(
            store.get(&key(1)).unwrap().last_seen,
            wall(&clock) - secs(10)
        );
        clock.advance(secs(290));
        assert!(!store.is_dead(&key(1)));
        clock.advance(secs(1));
        assert!(store.is_dead(&key(1)));
    });
}

#[test]
fn a_carried_time_in_the_future_counts_as_now() {
    support::each(|store, clock| {
        let mut info = at(1, V4_A);
        info.last_seen = Some(wall(&clock) + secs(86_400 * 365));
        store.update(info.clone(), M::Cache).unwrap();
        assert_eq!(store.get(&key(1)).unwrap().last_seen, wall(&clock));
        // A hostile node repeating the future time cannot keep the peer alive.
        for _ in 0..4 {
            clock.advance(secs(100));
            info.last_seen = Some(wall(&clock) + secs(86_400));
            store.update(info.clone(), M::GossipTransitive).unwrap();
        }
        // Each report counted as "now", never later: the peer is as old as the last report.
        assert_eq!(store.get(&key(1)).unwrap().last_seen, wall(&clock));
        clock.advance(secs(301));
        assert!(store.is_dead(&key(1)));
        assert_eq!(store.cleanup_stale(), []);
        clock.advance(secs(300));
        assert_eq!(store.cleanup_stale(), [key(1)]);
    });
}

#[test]
fn a_carried_age_longer_than_the_machine_has_been_up_does_not_panic() {
    // `Instant::now() - ten years` panics on a machine booted less than ten years ago; the store
    // keeps the age as an offset instead.
    let (store, clock) = store();
    let mut info = at(1, V4_A);
    info.last_seen = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    assert_eq!(store.update(info, M::Cache), Ok(UpdateOutcome::Inserted));
    assert!(store.is_dead(&key(1)));
    assert!(store.get_active().is_empty());
    assert_eq!(store.cleanup_stale(), [key(1)]);
    let _ = clock;
}

#[test]
fn outcomes_say_what_changed() {
    support::each(|store, clock| {
        assert_eq!(
            store.update(at(1, V4_A), M::Dht),
            Ok(UpdateOutcome::Inserted)
        );
        clock.advance(secs(30));
        // Only last_seen moves: unchanged.
        assert_eq!(
            store.update(at(1, V4_A), M::Dht),
            Ok(UpdateOutcome::Unchanged)
        );
        assert_eq!(
            store.update(at(1, V4_B), M::Gossip),
            Ok(UpdateOutcome::Updated)
        ); // new method
        assert_eq!(
            store.update(at(1, V4_B), M::Gossip),
            Ok(UpdateOutcome::Unchanged)
        ); // refused endpoint
        assert_eq!(
            store.update(at(1, V4_B), M::Dht),
            Ok(UpdateOutcome::Updated)
        ); // endpoint moved
    });
}

#[test]
fn a_dead_peer_that_comes_back_is_an_update() {
    support::each(|store, clock| {
        store.update(at(1, V4_A), M::Dht).unwrap();
        clock.advance(secs(301));
        assert!(store.is_dead(&key(1)));
        assert_eq!(
            store.update(at(1, V4_A), M::Dht),
            Ok(UpdateOutcome::Updated)
        );
        assert!(!store.is_dead(&key(1)));
        clock.advance(secs(301));
        // A transitive report without a time does not revive it...
        assert_eq!(
            store.update(at(1, V4_A), M::DhtTransitive),
            Ok(UpdateOutcome::Updated) // new method
        );
        assert!(store.is_dead(&key(1)));
        assert_eq!(
            store.update(at(1, V4_A), M::DhtTransitive),
            Ok(UpdateOutcome::Unchanged)
        );
        // ...a direct one does.
        assert_eq!(
            store.update(at(1, V4_A), M::Dht),
            Ok(UpdateOutcome::Updated)
        );
        assert!(!store.is_dead(&key(1)));
        // So does a later carried time.
        clock.advance(secs(301));
        let mut info = at(1, V4_A);
        info.last_seen = Some(wall(&clock) - secs(5));
        assert_eq!(
            store.update(info, M::DhtTransitive),
            Ok(UpdateOutcome::Updated)
        );
        assert!(!store.is_dead(&key(1)));
    });
}
