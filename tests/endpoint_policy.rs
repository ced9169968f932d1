//! The resilient endpoint policy against the failures of the ranked one, each measured on the
//! ranked policy first: a stale LAN endpoint kept forever (A), flapping between equal
//! reporters (B), and a trusted endpoint that fails.

mod support;

use std::net::SocketAddr;

use peerstore::{
    Clock, DiscoveryMethod as M, EndpointPolicy, Evidence, ManualClock, PeerEventKind, PeerInfo,
    PeerStore, ResilientPolicy,
};
use support::{addr, clock, key, secs};

const LAN: &str = "192.168.1.20:51820";
const DHT: &str = "203.0.113.9:40001";
const DHT_B: &str = "198.51.100.4:40002";

fn store(policy: EndpointPolicy, shards: usize) -> (PeerStore, ManualClock) {
    support::on_clock(support::builder(shards).endpoint_policy(policy))
}

fn announce(store: &PeerStore, endpoint: &str, method: M) {
    let mut info = PeerInfo::new(key(1));
    info.endpoint = Some(addr(endpoint));
    store.update(info, method).unwrap();
}

fn endpoint(store: &PeerStore) -> Option<SocketAddr> {
    store.get(&key(1)).unwrap().endpoint
}

/// (A) The laptop leaves the LAN at t = 1 min; the DHT announces it every minute after.
#[test]
fn a_stale_lan_endpoint_gives_way_to_a_fresh_one_within_one_lan_window() {
    support::each_shards(|shards| {
        // The seed policy: the LAN endpoint, an hour later.
        let (seed, clock) = store(EndpointPolicy::ranked(), shards);
        announce(&seed, LAN, M::Lan);
        for _ in 0..60 {
            clock.advance(secs(60));
            announce(&seed, DHT, M::Dht);
        }
        assert_eq!(
            endpoint(&seed),
            Some(addr(LAN)),
            "the seed policy pins the LAN"
        );

        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        let events = store.subscribe();
        announce(&store, LAN, M::Lan);
        clock.advance(secs(10));
        announce(&store, DHT, M::Dht);
        assert_eq!(
            endpoint(&store),
            Some(addr(LAN)),
            "the LAN is fresh: it wins"
        );
        // No announcement at all: the cleanup notices within one interval.
        clock.advance(secs(21));
        assert!(store.cleanup_stale().is_empty());
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT)),
            "31 s after the last LAN report"
        );
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(peer.endpoint_method, Some(M::Dht));
        let kinds: Vec<_> = events.try_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                PeerEventKind::New { readmitted: false },
                PeerEventKind::Updated,
                PeerEventKind::Updated
            ],
            "New, Updated (the DHT's method), Updated (the switch)"
        );
        assert_eq!(store.stats().endpoint_changes, 1);
        // The LAN comes back: it wins again at once.
        announce(&store, LAN, M::Lan);
        assert_eq!(endpoint(&store), Some(addr(LAN)));
    });
}

/// (B) Two DHT reporters alternate 20 times; the daemon sees handshakes on the first.
#[test]
fn equal_reporters_do_not_flap_while_the_first_endpoint_stays_confirmed() {
    support::each_shards(|shards| {
        let (seed, clock) = store(EndpointPolicy::ranked(), shards);
        for i in 0..20 {
            clock.advance(secs(5));
            announce(&seed, if i % 2 == 0 { DHT } else { DHT_B }, M::Dht);
        }
        assert_eq!(seed.stats().endpoint_changes, 19, "the seed policy flaps");

        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        for i in 0..20 {
            clock.advance(secs(5));
            announce(&store, if i % 2 == 0 { DHT } else { DHT_B }, M::Dht);
            if i == 0 {
                assert!(store.confirm(&key(1), addr(DHT), Evidence::Handshake));
            }
        }
        assert!(store.stats().endpoint_changes <= 1, "{:?}", store.stats());
        assert_eq!(endpoint(&store), Some(addr(DHT)));
        let candidates = store.candidates(&key(1));
        assert_eq!(candidates.len(), 2, "both kept: {candidates:?}");
        assert!(
            candidates
                .iter()
                .any(|c| c.endpoint == addr(DHT) && c.trusted)
        );
    });
}

#[test]
fn a_failure_ends_the_trust_and_the_next_fresh_candidate_takes_over_at_once() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, DHT, M::Dht);
        clock.advance(secs(1));
        announce(&store, DHT_B, M::Dht);
        assert!(store.confirm(
            &key(1),
            addr(DHT),
            Evidence::Probe {
                rtt: support::secs(0)
            }
        ));
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT)),
            "trusted over the newer one"
        );
        let events = store.subscribe();
        clock.advance(secs(1));
        assert!(store.note_failure(&key(1), addr(DHT)));
        assert_eq!(endpoint(&store), Some(addr(DHT_B)), "switched at once");
        let event = events.try_recv().expect("the switch is an event");
        assert_eq!(event.kind, PeerEventKind::Updated);
        // A fresh report of the failed endpoint makes it a candidate again, on its merits.
        clock.advance(secs(1));
        announce(&store, DHT, M::Dht);
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT)),
            "the newest at equal rank"
        );
        // Unknown peers, and addresses no method reported for a probe or a failure, are refused.
        assert!(!store.note_failure(&key(9), addr(DHT)));
        assert!(!store.confirm(&key(9), addr(DHT), Evidence::Handshake));
        assert!(!store.note_failure(&key(1), addr("192.0.2.99:1")));
        let probe = Evidence::Probe { rtt: secs(0) };
        assert!(!store.confirm(&key(1), addr("192.0.2.99:1"), probe));
    });
}

#[test]
fn when_no_candidate_is_fresh_the_last_one_stays_marked_stale() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, LAN, M::Lan);
        clock.advance(secs(31));
        assert!(store.cleanup_stale().is_empty());
        assert_eq!(endpoint(&store), Some(addr(LAN)), "kept, not dropped");
        let candidates = store.candidates(&key(1));
        assert!(!candidates[0].fresh, "{candidates:?}");
    });
}

/// The built-in replay found it: a second-hand peer reported at one address by two methods
/// made an `Updated` event each time the better report aged out and again each time it came
/// back, the address never moving.
#[test]
fn a_report_ageing_out_while_another_vouches_for_the_same_address_is_no_news() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        let events = store.subscribe();
        announce(&store, DHT, M::Lan);
        announce(&store, DHT, M::Dht);
        assert_eq!(
            events.try_iter().count(),
            2,
            "New, Updated (heard by the DHT too)"
        );
        clock.advance(secs(31));
        assert!(store.cleanup_stale().is_empty());
        announce(&store, DHT, M::Dht);
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(peer.endpoint, Some(addr(DHT)));
        assert_eq!(peer.endpoint_method, Some(M::Lan), "not demoted");
        assert_eq!(events.try_iter().count(), 0, "no event: nothing moved");
        // A higher rank for the same address is still news.
        let mut info = PeerInfo::new(key(2));
        info.endpoint = Some(addr(DHT));
        store.update(info.clone(), M::Dht).unwrap();
        store.update(info, M::Lan).unwrap();
        assert_eq!(store.get(&key(2)).unwrap().endpoint_method, Some(M::Lan));
        let kinds: Vec<PeerEventKind> = events.try_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                PeerEventKind::New { readmitted: false },
                PeerEventKind::Updated
            ]
        );
    });
}

#[test]
fn a_cached_endpoint_stays_fresh_until_a_live_candidate_appears() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, DHT_B, M::Cache);
        clock.advance(secs(3600));
        assert!(store.candidates(&key(1))[0].fresh, "no live candidate yet");
        announce(&store, DHT, M::GossipTransitive);
        assert_eq!(endpoint(&store), Some(addr(DHT)), "the live one");
        assert!(
            !store.candidates(&key(1))[0].fresh,
            "the cache's is stale now"
        );
    });
}

/// Once a live report is fresh, a cache report counts for nothing: not even as the newer
/// report that breaks a tie between two candidates of one rank.
#[test]
fn a_cache_report_does_not_make_its_candidate_newer_once_a_live_one_is_fresh() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, DHT, M::Dht);
        clock.advance(secs(10));
        announce(&store, DHT_B, M::Dht);
        assert_eq!(endpoint(&store), Some(addr(DHT_B)), "the newer of one rank");
        clock.advance(secs(10));
        announce(&store, DHT, M::Cache);
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT_B)),
            "the cache's report of the other is no newer news"
        );
        assert!(store.candidates(&key(1)).iter().all(|c| c.fresh));
    });
}

#[test]
fn a_trusted_endpoint_holds_against_a_higher_rank_only_if_the_policy_says_so() {
    support::each_shards(|shards| {
        for (overrides, expected) in [(false, DHT), (true, LAN)] {
            let (store, _clock) = store(
                ResilientPolicy::new()
                    .rank_overrides_trust(overrides)
                    .into(),
                shards,
            );
            announce(&store, DHT, M::Dht);
            assert!(store.confirm(&key(1), addr(DHT), Evidence::Handshake));
            announce(&store, LAN, M::Lan);
            assert_eq!(
                endpoint(&store),
                Some(addr(expected)),
                "overrides: {overrides}"
            );
        }
    });
}

#[test]
fn the_seed_policy_ignores_evidence() {
    let (store, _clock) = store(EndpointPolicy::ranked(), 2);
    announce(&store, DHT, M::Dht);
    assert!(
        store.confirm(&key(1), addr(DHT), Evidence::Handshake),
        "its endpoint"
    );
    assert!(
        !store.confirm(&key(1), addr(DHT_B), Evidence::Handshake),
        "not its endpoint"
    );
    assert!(store.note_failure(&key(1), addr(DHT)));
    assert_eq!(endpoint(&store), Some(addr(DHT)), "nothing changes");
    assert!(store.candidates(&key(1)).is_empty());
}

#[test]
fn max_candidates_is_checked_and_bounds_what_a_peer_keeps() {
    use peerstore::{BuildError, MAX_CANDIDATES};
    for bad in [0, MAX_CANDIDATES + 1] {
        let err = PeerStore::builder()
            .endpoint_policy(ResilientPolicy::new().max_candidates(bad))
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            BuildError::MaxCandidates {
                max_candidates: bad
            }
        );
        assert!(err.to_string().contains("max_candidates"), "{err}");
    }
    let (store, clock) = store(ResilientPolicy::new().max_candidates(2).into(), 2);
    for port in 1..=5 {
        clock.advance(secs(1));
        announce(&store, &format!("198.51.100.9:{port}"), M::Dht);
    }
    let kept: Vec<u16> = store
        .candidates(&key(1))
        .iter()
        .map(|c| c.endpoint.port())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.contains(&5), "the newest is kept: {kept:?}");
}

/// Confirmations, failures and announcements of one peer racing on 8 threads: no deadlock, and
/// the endpoint is always one of the announced candidates.
#[test]
fn confirm_fail_and_updates_racing_on_one_peer_keep_the_record_whole() {
    support::each_shards(|shards| {
        let store = support::builder(shards)
            .endpoint_policy(EndpointPolicy::resilient())
            .build()
            .unwrap();
        let endpoints = [DHT, DHT_B, LAN, "198.51.100.77:4000"].map(addr);
        announce(&store, DHT, M::Dht);
        let racers = store.clone();
        support::race(move |t| {
            for i in 0..support::rounds(500) {
                let endpoint = endpoints[(t + i) % endpoints.len()];
                match (t + i) % 4 {
                    0 => {
                        let mut info = PeerInfo::new(key(1));
                        info.endpoint = Some(endpoint);
                        racers.update(info, M::Dht).unwrap();
                    }
                    1 => {
                        racers.confirm(&key(1), endpoint, Evidence::Handshake);
                    }
                    2 => {
                        racers.note_failure(&key(1), endpoint);
                    }
                    _ => {
                        let _ = racers.cleanup_stale();
                        let _ = racers.candidates(&key(1));
                    }
                }
            }
        });
        let chosen = endpoint(&store).expect("an endpoint");
        assert!(endpoints.contains(&chosen), "{chosen}");
        assert!(store.candidates(&key(1)).len() <= 4);
    });
}

/// (D) Nothing recorded why an endpoint moved: the history says, and counts the flaps.
#[test]
fn the_history_says_why_each_change_happened_and_counts_flaps() {
    use peerstore::EndpointRule;
    support::each_shards(|shards| {
        // The seed policy's flapping, seen from inside the process.
        let clock = clock();
        let seed = support::builder(shards)
            .clock(clock.clone())
            .endpoint_history(8)
            .build()
            .unwrap();
        for i in 0..20 {
            clock.advance(secs(5));
            announce(&seed, if i % 2 == 0 { DHT } else { DHT_B }, M::Dht);
        }
        let stats = seed.stats();
        assert_eq!((stats.endpoint_changes, stats.endpoint_flaps), (19, 18));
        let history = seed.endpoint_history(&key(1));
        assert_eq!(history.len(), 8, "bounded");
        assert!(history.iter().all(|c| c.rule == EndpointRule::Newer));
        assert!(
            history
                .windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].at < w[1].at)
        );

        // The resilient policy's changes, each with its rule.
        let clock = self::clock();
        let store = support::builder(shards)
            .clock(clock.clone())
            .endpoint_policy(EndpointPolicy::resilient())
            .endpoint_history(8)
            .build()
            .unwrap();
        let events = store.subscribe();
        announce(&store, LAN, M::Lan);
        clock.advance(secs(10));
        announce(&store, DHT, M::Dht);
        clock.advance(secs(21));
        let _ = store.cleanup_stale();
        announce(&store, DHT_B, M::Dht);
        assert!(store.confirm(&key(1), addr(DHT), Evidence::Handshake));
        assert!(store.note_failure(&key(1), addr(DHT)));
        let rules: Vec<EndpointRule> = store
            .endpoint_history(&key(1))
            .iter()
            .map(|c| c.rule)
            .collect();
        assert_eq!(
            rules,
            [
                EndpointRule::CandidateExpired,
                EndpointRule::Newer,
                EndpointRule::Trusted,
                EndpointRule::Failed,
            ]
        );
        let seqs: Vec<u64> = events
            .try_iter()
            .filter(|e| e.kind == PeerEventKind::Updated)
            .map(|e| e.seq)
            .collect();
        for change in store.endpoint_history(&key(1)) {
            assert!(
                seqs.contains(&change.seq),
                "each change is an event: {change:?}"
            );
        }
        assert_eq!(
            store.stats().endpoint_flaps,
            2,
            "DHT -> DHT_B -> DHT (trusted), then back to DHT_B (failed)"
        );
    });
}

#[test]
fn without_a_history_nothing_is_kept_and_a_huge_one_is_refused() {
    let (store, _clock) = store(EndpointPolicy::resilient(), 2);
    announce(&store, DHT, M::Dht);
    announce(&store, DHT_B, M::Dht);
    assert!(store.endpoint_history(&key(1)).is_empty());
    assert_eq!(store.stats().endpoint_flaps, 0);
    let err = PeerStore::builder()
        .endpoint_history(peerstore::MAX_ENDPOINT_HISTORY + 1)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("endpoint_history"), "{err}");
}

/// Found by the model: evidence for an endpoint in its IPv4-mapped spelling was refused,
/// though the store keeps the IPv4 spelling and calls them one address.
#[test]
fn evidence_for_an_endpoint_counts_in_either_spelling() {
    for policy in [EndpointPolicy::ranked(), EndpointPolicy::resilient()] {
        let (store, _clock) = store(policy, 2);
        announce(&store, "192.0.2.1:51820", M::Dht);
        let mapped = addr("[::ffff:192.0.2.1]:51820");
        assert!(store.confirm(&key(1), mapped, Evidence::Handshake));
        assert!(store.note_failure(&key(1), mapped));
    }
}

/// The endpoints of key(1)'s candidates, in the store's order.
fn candidate_endpoints(store: &PeerStore) -> Vec<SocketAddr> {
    store
        .candidates(&key(1))
        .iter()
        .map(|c| c.endpoint)
        .collect()
}

/// Found by the model: a peer trusted one endpoint at a time, so confirming a second one ended
/// the first one's trust, and when the second failed the first (confirmed a moment ago, never
/// failed) was displaced by an unconfirmed endpoint of the same rank.
#[test]
fn confirming_a_second_endpoint_keeps_the_first_trusted() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, DHT, M::Dht);
        announce(&store, DHT_B, M::Dht);
        assert!(store.confirm(&key(1), addr(DHT), Evidence::Handshake));
        assert!(store.confirm(&key(1), addr(DHT_B), Evidence::Handshake));
        let trusted: Vec<bool> = store
            .candidates(&key(1))
            .iter()
            .map(|c| c.trusted)
            .collect();
        assert_eq!(trusted, [true, true], "each candidate's trust is its own");
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT_B)),
            "the most recent confirmation"
        );
        assert!(store.note_failure(&key(1), addr(DHT_B)));
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT)),
            "still trusted: it takes over"
        );
        clock.advance(secs(1));
        announce(&store, "198.51.100.77:4000", M::Dht);
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT)),
            "an unconfirmed endpoint of the same rank does not displace a trusted one"
        );
    });
}

/// Of several trusted endpoints the one chosen is the seed's order among them: the rank of the
/// best method that ever reported it, then IPv6, then the most recent confirmation.
#[test]
fn of_several_trusted_endpoints_the_seed_order_chooses() {
    const V6: &str = "[2001:db8::1]:51820";
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, LAN, M::Lan);
        announce(&store, DHT, M::Dht);
        announce(&store, V6, M::Dht);
        announce(&store, DHT_B, M::Dht);
        for endpoint in [DHT, LAN, V6, DHT_B] {
            assert!(store.confirm(&key(1), addr(endpoint), Evidence::Handshake));
            clock.advance(secs(1));
        }
        assert!(store.candidates(&key(1)).iter().all(|c| c.trusted));
        // Past the LAN's 30 s window: trust vouches for it on its own, by the LAN's rank.
        clock.advance(secs(40));
        assert!(store.cleanup_stale().is_empty());
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(
            peer.endpoint,
            Some(addr(LAN)),
            "the best rank ever reported"
        );
        assert_eq!(peer.endpoint_method, Some(M::Lan));
        assert!(store.note_failure(&key(1), addr(LAN)));
        assert_eq!(endpoint(&store), Some(addr(V6)), "then IPv6");
        assert!(store.note_failure(&key(1), addr(V6)));
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT_B)),
            "then the most recent confirmation"
        );
        assert!(store.confirm(&key(1), addr(DHT), Evidence::Handshake));
        assert_eq!(
            endpoint(&store),
            Some(addr(DHT)),
            "confirmed again: the most recent"
        );
    });
}

/// Found by the model: a candidate whose trust had run out was still kept from eviction as
/// "trusted", so a new endpoint replaced a candidate reported more recently.
#[test]
fn a_candidate_whose_trust_ran_out_can_be_replaced() {
    const OLD: &str = "198.51.100.1:51820";
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, OLD, M::Dht);
        assert!(store.confirm(&key(1), addr(OLD), Evidence::Handshake));
        clock.advance(secs(200));
        announce(&store, LAN, M::Lan);
        announce(&store, DHT, M::Dht);
        announce(&store, DHT_B, M::Dht);
        assert_eq!(endpoint(&store), Some(addr(LAN)));
        let old = store.candidates(&key(1))[0].clone();
        assert_eq!(
            (old.endpoint, old.trusted),
            (addr(OLD), false),
            "trust_for is 180 s"
        );
        clock.advance(secs(1));
        announce(&store, "[2001:db8::1]:51820", M::Dht);
        let kept = candidate_endpoints(&store);
        assert_eq!(
            kept,
            [LAN, DHT, DHT_B, "[2001:db8::1]:51820"].map(addr),
            "the one reported least recently goes, its trust having run out"
        );
    });
}

/// Found by the model: a report left a candidate's `failures` as they were, though they count
/// the failures "since it was last confirmed or reported".
#[test]
fn a_report_resets_the_failures_of_its_candidate() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, DHT, M::Dht);
        assert!(store.note_failure(&key(1), addr(DHT)));
        assert_eq!(store.candidates(&key(1))[0].failures, 1);
        clock.advance(secs(1));
        announce(&store, DHT, M::Dht);
        let c = store.candidates(&key(1))[0].clone();
        assert_eq!((c.failures, c.fresh), (0, true), "{c:?}");
    });
}

/// Found by the model: a report made after a failure but within the same tick of the store's
/// clock was taken for one made before it, and did not vouch. "So far" is by order; a report
/// that carries a time from before the failure is still older news than the failure.
#[test]
fn a_report_made_right_after_a_failure_vouches() {
    support::each_shards(|shards| {
        let (store, clock) = store(EndpointPolicy::resilient(), shards);
        announce(&store, DHT, M::Dht);
        clock.advance(secs(1));
        announce(&store, DHT_B, M::Dht);
        assert_eq!(endpoint(&store), Some(addr(DHT_B)), "the newest");
        assert!(store.note_failure(&key(1), addr(DHT_B)));
        assert_eq!(endpoint(&store), Some(addr(DHT)));
        // The same instant: no clock step.
        announce(&store, DHT_B, M::Dht);
        let b = store.candidates(&key(1))[1].clone();
        assert_eq!((b.endpoint, b.fresh), (addr(DHT_B), true), "{b:?}");
        assert_eq!(endpoint(&store), Some(addr(DHT_B)), "the newest again");

        // Second-hand news made after a failure, but dated before it, does not vouch.
        clock.advance(secs(10));
        assert!(store.note_failure(&key(1), addr(DHT_B)));
        let mut info = PeerInfo::new(key(1));
        info.endpoint = Some(addr(DHT_B));
        info.last_seen = Some(clock.wall_now() - secs(5));
        store.update(info, M::GossipTransitive).unwrap();
        assert!(!store.candidates(&key(1))[1].fresh);
        assert_eq!(endpoint(&store), Some(addr(DHT)));
    });
}

/// A NAT rebind: the peer's mapping moves to a new port, which no discovery method has
/// reported yet. WireGuard follows it on the peer's first packet and authenticates it; the
/// handshake is the strongest evidence there is. Under the resilient policy the store takes
/// it as a trusted candidate; under the ranked policy the announcements' endpoint stays, and
/// the peer is proven under both.
#[test]
fn a_handshake_at_an_endpoint_no_method_reported_is_taken_and_proves_the_peer() {
    const REBOUND: &str = "203.0.113.9:61234";
    support::each_shards(|shards| {
        let resilient = EndpointPolicy::resilient();
        let (store, clock) = support::on_clock(
            support::builder(shards)
                .endpoint_policy(resilient)
                .endpoint_history(8),
        );
        announce(&store, DHT, M::Dht);
        assert!(
            !store.get(&key(1)).unwrap().proven,
            "an announcement proves nothing"
        );
        clock.advance(secs(5));
        let events = store.subscribe();
        assert!(store.confirm(&key(1), addr(REBOUND), Evidence::Handshake));
        let peer = store.get(&key(1)).unwrap();
        assert_eq!(peer.endpoint, Some(addr(REBOUND)));
        assert_eq!(
            peer.endpoint_method,
            Some(M::Dht),
            "set by the method it roamed from"
        );
        assert!(peer.proven);
        assert_eq!(
            events.try_recv().map(|e| e.kind),
            Ok(PeerEventKind::Updated)
        );
        let candidates = store.candidates(&key(1));
        let rebound = candidates
            .iter()
            .find(|c| c.endpoint == addr(REBOUND))
            .unwrap();
        assert!(rebound.trusted && rebound.fresh && rebound.reports.is_empty());
        let history = store.endpoint_history(&key(1));
        let last = history.last().unwrap();
        assert_eq!(
            (last.to, last.rule),
            (addr(REBOUND), peerstore::EndpointRule::Trusted)
        );
        // The DHT still serves the old mapping: it does not displace the handshake's.
        clock.advance(secs(60));
        announce(&store, DHT, M::Dht);
        assert_eq!(endpoint(&store), Some(addr(REBOUND)));

        let (ranked, _) = support::on_clock(support::builder(shards));
        announce(&ranked, DHT, M::Dht);
        assert!(!ranked.confirm(&key(1), addr(REBOUND), Evidence::Handshake));
        let peer = ranked.get(&key(1)).unwrap();
        assert_eq!(
            peer.endpoint,
            Some(addr(DHT)),
            "the ranked rules weigh announcements"
        );
        assert!(peer.proven, "proven under every policy");
    });
}

/// `fresh_until` says when a candidate stops being fresh if nothing new is heard: the end of
/// the latest window that vouches for it (a LAN report's 30 s, a confirmation's trust), never
/// a time for a cached report (it vouches until another candidate is fresh), none once a
/// failure voids what vouched; and at that moment `fresh` turns false.
#[test]
fn fresh_until_is_when_a_candidate_stops_being_fresh() {
    let (store, clock) = store(EndpointPolicy::resilient(), 4);
    let t0 = clock.wall_now();
    let candidate = |endpoint: &str| {
        let candidates = store.candidates(&key(1));
        let c = candidates.iter().find(|c| c.endpoint == addr(endpoint));
        c.map(|c| (c.fresh, c.fresh_until)).unwrap()
    };
    let ns = std::time::Duration::from_nanos(1);
    announce(&store, LAN, M::Lan);
    assert_eq!(candidate(LAN), (true, Some(t0 + secs(30) + ns)));
    clock.advance(secs(30));
    assert!(
        candidate(LAN).0,
        "fresh through the window's last nanosecond"
    );
    clock.advance(ns);
    assert_eq!(candidate(LAN), (false, None));

    announce(&store, LAN, M::Lan);
    store.confirm(&key(1), addr(LAN), Evidence::Handshake);
    let trusted_until = clock.wall_now() + ResilientPolicy::new().trust_window();
    assert_eq!(
        candidate(LAN),
        (true, Some(trusted_until)),
        "trust outlasts the LAN's window"
    );
    store.note_failure(&key(1), addr(LAN));
    assert_eq!(candidate(LAN), (false, None), "a failure voids them both");

    let (store, _clock) = self::store(EndpointPolicy::resilient(), 4);
    announce(&store, DHT, M::Cache);
    let candidates = store.candidates(&key(1));
    assert_eq!(
        (candidates[0].fresh, candidates[0].fresh_until),
        (true, None),
        "the cache"
    );
}

/// A handshake "at" an address no announcement may carry is no evidence: it would otherwise
/// become a trusted candidate and the peer's endpoint, which an announcement naming it could
/// then not be refused for.
#[test]
fn a_handshake_at_a_refused_address_is_no_evidence() {
    for policy in [EndpointPolicy::resilient(), EndpointPolicy::ranked()] {
        let (store, _clock) = store(policy, 4);
        announce(&store, DHT, M::Dht);
        for refused in ["0.0.0.0:51820", "198.51.100.1:0", "[ff02::1]:51820"] {
            assert!(
                !store.confirm(&key(1), addr(refused), Evidence::Handshake),
                "{refused}"
            );
            assert!(
                store
                    .candidates(&key(1))
                    .iter()
                    .all(|c| c.endpoint != addr(refused))
            );
            assert_eq!(endpoint(&store), Some(addr(DHT)));
            let mut info = PeerInfo::new(key(1));
            info.endpoint = Some(addr(refused));
            assert!(store.update(info, M::Dht).is_err(), "{refused} announced");
        }
        assert!(!store.get(&key(1)).unwrap().proven, "nothing proven");
    }
}
