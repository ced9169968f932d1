//! The opt-in policies against hostile and odd input. Each test is named after a defect found
//! by trying the resilient endpoint policy as an attacker and as a new user would, and failed
//! on the store before its fix.

mod support;

use std::net::SocketAddr;
use std::time::SystemTime;

use peerstore::{
    BuildError, DiscoveryMethod as M, EndpointRule, MAX_OTHER_METHODS, ManualClock, PeerInfo,
    PeerStore, ResilientPolicy,
};
use support::{addr, key, on_clock, secs};

fn resilient(shards: usize) -> (PeerStore, ManualClock) {
    on_clock(
        support::builder(shards)
            .endpoint_policy(ResilientPolicy::new())
            .endpoint_history(8),
    )
}

/// Announces `endpoint` for peer 1 by `method`, carrying `last_seen` if given.
fn announce(store: &PeerStore, endpoint: &str, method: M, last_seen: Option<SystemTime>) {
    let mut info = PeerInfo::new(key(1));
    info.endpoint = Some(addr(endpoint));
    info.last_seen = last_seen;
    store.update(info, method).unwrap();
}

fn endpoint(store: &PeerStore) -> Option<SocketAddr> {
    store.get(&key(1)).unwrap().endpoint
}

fn wall(clock: &ManualClock) -> SystemTime {
    use peerstore::Clock;
    clock.wall_now()
}

/// Every distinct `Other` name that reported an endpoint added a report to its candidate,
/// without limit, while `discovered_via` stops at its bound: 2,000 names made one update 80
/// times slower. A candidate keeps a report only for the methods its record can hold.
#[test]
fn candidate_reports_are_bounded_by_the_methods_a_record_can_hold() {
    support::each_shards(|shards| {
        let (store, _clock) = resilient(shards);
        announce(&store, "203.0.113.9:40001", M::Dht, None);
        for n in 0..2_000 {
            let name = M::other(&format!("plugin-{n}")).unwrap();
            announce(&store, "203.0.113.9:40001", name, None);
        }
        let candidates = store.candidates(&key(1));
        assert_eq!(candidates.len(), 1);
        let reports = &candidates[0].reports;
        assert_eq!(
            reports.len(),
            1 + MAX_OTHER_METHODS,
            "the DHT's, and one for each name discovered_via holds"
        );
        let via = &store.get(&key(1)).unwrap().discovered_via;
        assert!(reports.iter().all(|(method, _)| via.contains(method)));
    });
}

/// A `dht-transitive` mention of the endpoint in use, carrying a time an hour old, replaced the
/// fresh report of 10 s before: the endpoint counted as stale and the peer moved to a
/// lower-ranked `gossip-transitive` one. A report keeps the later of its times.
#[test]
fn older_second_hand_news_never_ages_a_fresh_report() {
    support::each_shards(|shards| {
        let (store, clock) = resilient(shards);
        let (a, b) = ("203.0.113.9:40001", "198.51.100.4:40002");
        let first = wall(&clock);
        announce(&store, a, M::DhtTransitive, Some(first));
        clock.advance(secs(1));
        announce(&store, b, M::GossipTransitive, Some(wall(&clock)));
        assert_eq!(endpoint(&store), Some(addr(a)));
        clock.advance(secs(10));
        let events = store.subscribe();
        let an_hour_ago = wall(&clock) - secs(3600);
        announce(&store, a, M::DhtTransitive, Some(an_hour_ago));
        assert_eq!(endpoint(&store), Some(addr(a)), "still the fresh one");
        assert_eq!(events.try_iter().count(), 0, "no change, no event");
        assert_eq!(store.stats().endpoint_changes, 0);
        let a_reports = &store.candidates(&key(1))[0].reports;
        assert_eq!(
            a_reports[0],
            (M::DhtTransitive, first),
            "the later time stands"
        );
    });
}

/// With four candidates (two stale LAN ones, the chosen DHT one and one fresh DHT fallback),
/// one hour-old `gossip-transitive` mention of a fifth endpoint evicted the fresh fallback; when
/// the chosen endpoint then failed, the peer stayed on it. A newcomer that is not fresh never
/// displaces a fresh candidate.
#[test]
fn news_that_cannot_be_chosen_never_evicts_the_only_fresh_fallback() {
    support::each_shards(|shards| {
        let (store, clock) = resilient(shards);
        let (fallback, chosen) = ("198.51.100.4:40002", "203.0.113.9:40001");
        announce(&store, fallback, M::Dht, None);
        clock.advance(secs(5));
        announce(&store, chosen, M::Dht, None);
        clock.advance(secs(15));
        announce(&store, "192.168.1.20:51820", M::Lan, None);
        clock.advance(secs(5));
        announce(&store, "192.168.1.21:51820", M::Lan, None);
        // The laptop left the LAN: both LAN reports age out.
        clock.advance(secs(35));
        store.cleanup_stale();
        assert_eq!(endpoint(&store), Some(addr(chosen)));
        assert_eq!(store.candidates(&key(1)).len(), 4);
        let an_hour_ago = wall(&clock) - secs(3600);
        announce(
            &store,
            "198.51.100.77:9",
            M::GossipTransitive,
            Some(an_hour_ago),
        );
        let kept: Vec<SocketAddr> = store
            .candidates(&key(1))
            .iter()
            .map(|c| c.endpoint)
            .collect();
        assert!(
            kept.contains(&addr(fallback)),
            "the fresh fallback stays: {kept:?}"
        );
        assert!(store.note_failure(&key(1), addr(chosen)));
        assert_eq!(endpoint(&store), Some(addr(fallback)), "switched at once");
    });
}

/// `max_candidates(1)` was accepted, and froze every endpoint: the only candidate is always the
/// chosen one, and no newcomer ever replaced it.
#[test]
fn a_single_candidate_is_refused_by_the_builder() {
    let built = PeerStore::builder()
        .endpoint_policy(ResilientPolicy::new().max_candidates(1))
        .build();
    let err = built.unwrap_err();
    assert_eq!(err, BuildError::MaxCandidates { max_candidates: 1 });
    assert!(err.to_string().contains("max_candidates 1"), "{err}");
    assert!(
        PeerStore::builder()
            .endpoint_policy(ResilientPolicy::new().max_candidates(2))
            .build()
            .is_ok()
    );
}

/// `[fe80::1%2]:51820` was stored as `[fe80::1]:51820`, which WireGuard cannot use without
/// its interface, and evidence from another interface confirmed it. A link-local endpoint
/// keeps its scope id, in the store and in the cache file.
#[test]
fn a_link_local_endpoint_keeps_its_zone() {
    support::each_shards(|shards| {
        let (store, _clock) = resilient(shards);
        announce(&store, "[fe80::1%2]:51820", M::Lan, None);
        let kept = endpoint(&store).unwrap();
        assert_eq!(kept.to_string(), "[fe80::1%2]:51820");
        let other_interface = addr("[fe80::1%3]:51820");
        let probe = peerstore::Evidence::Probe { rtt: secs(0) };
        assert!(!store.confirm(&key(1), other_interface, probe));
        // A handshake there is another endpoint's, which does not vouch for this one.
        assert!(store.confirm(&key(1), other_interface, peerstore::Evidence::Handshake));
        let candidates = store.candidates(&key(1));
        let this = candidates.iter().find(|c| c.endpoint == kept).unwrap();
        assert!(!this.trusted && this.confirmed.is_none());
        assert!(store.confirm(&key(1), kept, peerstore::Evidence::Handshake));
    });
}

/// The cache file keeps a link-local endpoint's zone, and reads it back.
#[cfg(feature = "serde")]
#[test]
fn a_link_local_endpoint_keeps_its_zone_in_the_cache_file() {
    use peerstore::cache;
    use support::Scratch;

    support::each_shards(|shards| {
        let (store, _clock) = resilient(shards);
        announce(&store, "[fe80::1%2]:51820", M::Lan, None);
        let kept = endpoint(&store).unwrap();
        let scratch = Scratch::new(&format!("zone-{shards}"));
        let path = scratch.file("peers.json");
        cache::save(&store, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[fe80::1%2]:51820"), "{text}");
        let (restarted, _clock) = on_clock(support::builder(shards));
        cache::restore(&restarted, &path).unwrap();
        assert_eq!(endpoint(&restarted), Some(kept));
    });
}

/// A LAN-set endpoint whose LAN report aged out, moved by a DHT report, was recorded in the
/// history as `LanSticky`, a rule under which the ranked policy refuses. An accepted move is
/// explained by a rule that accepts.
#[test]
fn an_accepted_move_is_explained_by_a_rule_that_accepts() {
    support::each_shards(|shards| {
        let (store, clock) = resilient(shards);
        let (lan, dht) = ("192.168.1.20:51820", "203.0.113.9:40001");
        announce(&store, lan, M::Lan, None);
        clock.advance(secs(5));
        // The DHT sees the same address: a second report of the candidate in use.
        announce(&store, lan, M::Dht, None);
        clock.advance(secs(35));
        announce(&store, dht, M::Dht, None);
        assert_eq!(endpoint(&store), Some(addr(dht)));
        let history = store.endpoint_history(&key(1));
        let moved = history.last().unwrap();
        assert_eq!((moved.from, moved.to), (Some(addr(lan)), addr(dht)));
        assert_eq!(moved.rule, EndpointRule::Newer);
        for change in &history {
            assert!(
                !matches!(
                    change.rule,
                    EndpointRule::LanSticky | EndpointRule::LowerRank
                ),
                "{change:?}"
            );
        }
    });
}
