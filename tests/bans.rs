//! Bans: a key the operator ruled out stays out whatever any method, the cache or evidence
//! says, until it is lifted or its span runs out. Measured on the reference defaults first:
//! a revoked key that the DHT keeps serving comes back at its next announcement.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use peerstore::{
    BanError, Clock, DiscoveryMethod as M, Evidence, MAX_BAN_REASON, MAX_BANS, PeerEventKind,
    PeerInfo, RemovalCause, UpdateError, UpdateOutcome,
};
use support::{addr, at, key, on_clock, secs};

const EVERY_METHOD: [M; 7] = [
    M::Lan,
    M::DhtRendezvous,
    M::Dht,
    M::Gossip,
    M::GossipTransitive,
    M::DhtTransitive,
    M::Cache,
];

/// The operator revokes a key with `remove_for(key, 60 min)`; the DHT keeps announcing its
/// signed record. With a tombstone the next DHT announcement brings it back; with a ban,
/// nothing does.
#[test]
fn a_revoked_key_stays_out_whatever_the_dht_keeps_serving() {
    support::each_shards(|shards| {
        let (store, clock) = on_clock(support::builder(shards));
        store.update(at(1, "198.51.100.1:1"), M::Dht).unwrap();
        store.remove_for(&key(1), secs(3600));
        clock.advance(secs(110));
        let back = store.update(at(1, "198.51.100.1:1"), M::Dht);
        assert_eq!(
            back,
            Ok(UpdateOutcome::Inserted),
            "a tombstone lets it back"
        );

        let events = store.subscribe();
        let removed = store.ban(&key(1), None, "key revoked").unwrap();
        assert_eq!(removed.map(|p| p.public_key), Some(key(1)));
        let kinds: Vec<_> = events.try_iter().map(|e| e.kind).collect();
        let cause = RemovalCause::Banned;
        assert_eq!(kinds, [PeerEventKind::Removed { cause }]);
        for round in 0..20 {
            clock.advance(secs(180));
            for method in EVERY_METHOD {
                let mut info = at(1, "198.51.100.1:1");
                info.last_seen = Some(clock.wall_now());
                let refused = store.update(info, method.clone());
                let banned = Err(UpdateError::Banned { until: None });
                assert_eq!(refused, banned, "round {round}, {method}");
            }
            store.cleanup_stale();
        }
        assert!(store.get(&key(1)).is_none());
        assert!(!store.confirm(&key(1), addr("198.51.100.1:1"), Evidence::Handshake));
        let stats = store.stats();
        assert_eq!((stats.banned, stats.peers), (1, 0));
        assert_eq!(
            stats.rejected_banned,
            20 * 7 + 1,
            "every refusal, the confirm too"
        );
        assert!(events.try_recv().is_err(), "nothing was inserted");

        let bans = store.banned();
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].public_key, bans[0].until), (key(1), None));
        assert_eq!(bans[0].reason, "key revoked");
        assert!(store.unban(&key(1)));
        assert!(!store.unban(&key(1)), "lifted once");
        assert!(store.banned().is_empty());
        assert_eq!(
            store.update(PeerInfo::new(key(1)), M::Dht),
            Ok(UpdateOutcome::Inserted)
        );
    });
}

#[test]
fn a_ban_for_a_span_runs_out_and_a_ban_of_an_unknown_key_stands_all_the_same() {
    let (store, clock) = on_clock(support::builder(2));
    assert!(
        store
            .ban(&key(2), Some(secs(60)), "flooding")
            .unwrap()
            .is_none()
    );
    let until = Some(clock.wall_now() + secs(60));
    assert_eq!(store.banned()[0].until, until);
    let refused = store.update(PeerInfo::new(key(2)), M::Lan);
    assert_eq!(refused, Err(UpdateError::Banned { until }));
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("banned until Unix time")
    );
    clock.advance(secs(59));
    assert!(store.update(PeerInfo::new(key(2)), M::Lan).is_err());
    clock.advance(secs(1));
    assert_eq!(
        store.update(PeerInfo::new(key(2)), M::Lan),
        Ok(UpdateOutcome::Inserted)
    );
    assert!(store.banned().is_empty(), "ran out");
    // Banned again, a ban is replaced, not added.
    store.ban(&key(3), None, "one").unwrap();
    store.ban(&key(3), Some(secs(5)), "two").unwrap();
    let bans = store.banned();
    assert_eq!((bans.len(), bans[0].reason.as_str()), (1, "two"));
    // A tombstone stands under a ban, and after it is lifted.
    store.update(PeerInfo::new(key(4)), M::Dht).unwrap();
    store.remove_for(&key(4), secs(3600));
    store.ban(&key(4), None, "").unwrap();
    assert!(store.unban(&key(4)));
    let second_hand = store.update(PeerInfo::new(key(4)), M::GossipTransitive);
    assert!(matches!(second_hand, Err(UpdateError::Tombstoned { .. })));
}

#[test]
fn a_bad_ban_is_refused_naming_what_is_wrong_and_changes_nothing() {
    let (store, _) = on_clock(support::builder(2));
    store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
    let long = "x".repeat(MAX_BAN_REASON + 1);
    let too_long = store.ban(&key(1), None, &long).unwrap_err();
    let max = MAX_BAN_REASON;
    assert_eq!(too_long, BanError::ReasonTooLong { len: max + 1, max });
    assert!(too_long.to_string().contains(&format!("{} bytes", max + 1)));
    let forged = store
        .ban(&key(1), None, "fine\r\nroot login ok")
        .unwrap_err();
    assert_eq!(forged, BanError::ReasonControl { found: '\r', at: 4 });
    assert_eq!(
        store.ban(&key(1), Some(secs(0)), "").unwrap_err(),
        BanError::ZeroSpan
    );
    assert!(store.get(&key(1)).is_some(), "nothing was removed");
    assert!(store.banned().is_empty());
}

#[test]
// Four thousand bans is minutes under Miri, and this is no unsafe code's test.
#[cfg_attr(miri, ignore)]
fn bans_are_bounded_and_none_is_dropped_to_make_room() {
    let (store, _) = on_clock(support::builder(2));
    for n in 0..u32::try_from(MAX_BANS).unwrap() {
        store.ban(&key(n), None, "").unwrap();
    }
    let past = u32::try_from(MAX_BANS).unwrap();
    let refused = store.ban(&key(past), None, "one more").unwrap_err();
    assert_eq!(refused, BanError::TooMany { max: MAX_BANS });
    assert!(refused.to_string().contains("limit of 4096 bans"));
    assert_eq!(store.banned().len(), MAX_BANS);
    assert!(
        store.update(PeerInfo::new(key(0)), M::Lan).is_err(),
        "the first still stands"
    );
    assert!(store.update(PeerInfo::new(key(past)), M::Lan).is_ok());
}

/// Threads announce one key over and over while another bans it: once `ban` returns, the key
/// is never held again, whatever was in flight.
#[test]
fn a_ban_racing_announcements_of_its_key_leaves_no_record() {
    for round in 0..support::rounds(50) {
        let (store, _) = on_clock(support::builder(2));
        let banned = Arc::new(AtomicBool::new(false));
        let (s, b) = (store.clone(), Arc::clone(&banned));
        support::race(move |t| {
            if t == 0 {
                s.ban(&key(1), None, "revoked").unwrap();
                b.store(true, Ordering::SeqCst);
                return;
            }
            let mut after_ban = 0;
            while after_ban < 50 {
                let was_banned = b.load(Ordering::SeqCst);
                let result = s.update(at(1, "198.51.100.1:1"), M::Dht);
                if was_banned {
                    assert_eq!(result, Err(UpdateError::Banned { until: None }));
                    after_ban += 1;
                }
            }
        });
        assert!(store.get(&key(1)).is_none(), "round {round}");
        assert_eq!(store.len(), 0, "round {round}: its slot was given back");
    }
}
