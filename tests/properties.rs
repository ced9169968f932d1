//! The merge rules against every sequence of operations proptest can think of: the store and a
//! plain model (`tests/model/mod.rs`) agree after every step, and the invariants a mesh relies
//! on hold on their own.
//!
//! 256 cases per property by default; the long run is explicit:
//! `PROPTEST_CASES=10000 cargo test --release --test properties`.

mod model;

use std::time::Duration;

use model::{Announce, CAP, Op, Subject, key, method};
use peerstore::{DiscoveryMethod, Peer, UpdateError};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Announcements drawn so that repeats are common: most fields are often empty (saying
/// nothing), so an update that changes nothing, or only revives a dead peer, comes up too.
fn announce() -> impl Strategy<Value = Announce> {
    let endpoint = prop_oneof![3 => Just(0u8), 5 => 1..9u8, 1 => 9..14u8];
    let small = || proptest::option::weighted(0.3, 0..4u8);
    let hostname = prop_oneof![4 => Just(0u8), 1 => Just(1u8), 3 => 2..4u8, 1 => 4..7u8];
    let networks = prop_oneof![4 => Just(0u8), 2 => 1..4u8, 1 => Just(4u8)];
    let nat = prop_oneof![3 => Just(0u8), 2 => 1..4u8];
    let last_seen = prop_oneof![3 => Just(0u8), 1 => 1..5u8];
    (
        (0..model::KEYS, 0..9u8, endpoint),
        (small(), small()),
        (hostname, networks, proptest::bool::weighted(0.2), nat),
        (last_seen, 0..2000u16),
    )
        .prop_map(
            |(
                (key, method, endpoint),
                (mesh_ip, mesh_ipv6),
                (hostname, networks, introducer, nat),
                (last_seen, seen_secs),
            )| Announce {
                key,
                method,
                endpoint,
                mesh_ip,
                mesh_ipv6,
                hostname,
                networks,
                introducer,
                nat,
                last_seen,
                seen_secs,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => announce().prop_map(Op::Update),
        1 => (0..model::KEYS).prop_map(|key| Op::Remove { key }),
        1 => Just(Op::Cleanup),
        // Mostly small steps, some across the dead and remove timeouts.
        2 => prop_oneof![0..30u16, 250..700u16].prop_map(|secs| Op::Advance { secs }),
        1 => (0..model::KEYS, any::<u16>()).prop_map(|(key, ms)| Op::SetLatency { key, ms }),
        1 => (0..model::KEYS, any::<u8>(), any::<bool>())
            .prop_map(|(key, endpoint, probe)| Op::Confirm { key, endpoint, probe }),
        1 => (0..model::KEYS, any::<u8>()).prop_map(|(key, endpoint)| Op::Fail { key, endpoint }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..60)
}

/// 256 cases unless `PROPTEST_CASES` says otherwise (proptest reads it into the default). A
/// failing case is saved in `proptest-regressions/properties.txt` (cargo runs the tests from
/// the package's root) and tried first on every later run: commit it with the fix.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Runs `ops` on the real store and calls `check(op, before, after, result)` for each update,
/// where `before`/`after` are the record of the announced key around it.
fn observe(
    ops: &[Op],
    mut check: impl FnMut(&Subject, &Announce, Option<&Peer>, Option<&Peer>, &Result<(), UpdateError>),
) {
    let subject = Subject::new();
    for op in ops {
        match op {
            Op::Update(a) => {
                let k = key(a.key);
                let before = subject.store.get(&k).map(|p| (*p).clone());
                let result = subject
                    .store
                    .update(a.info(subject.wall()), method(a.method))
                    .map(|_| ());
                let after = subject.store.get(&k).map(|p| (*p).clone());
                check(&subject, a, before.as_ref(), after.as_ref(), &result);
            }
            Op::Remove { key: k } => {
                subject.store.remove(&key(*k));
            }
            Op::Cleanup => {
                subject.store.cleanup_stale();
            }
            Op::Advance { secs } => subject.clock.advance(Duration::from_secs(u64::from(*secs))),
            Op::SetLatency { key: k, ms } => {
                subject
                    .store
                    .set_latency(&key(*k), Duration::from_millis(u64::from(*ms)));
            }
            Op::Confirm {
                key: k, endpoint, ..
            }
            | Op::Fail { key: k, endpoint } => {
                if let Some(addr) = model::endpoint(*endpoint) {
                    subject.store.note_failure(&key(*k), addr);
                }
            }
        }
        assert!(
            subject.store.len() <= CAP,
            "len {} over the cap",
            subject.store.len()
        );
        for peer in subject.store.get_all() {
            assert!(
                peer.last_seen <= subject.wall(),
                "last_seen in the future: {peer:?}"
            );
        }
    }
}

fn rank(peer: &Peer) -> Option<u8> {
    peer.endpoint_method.as_ref().map(DiscoveryMethod::rank)
}

proptest! {
    #![proptest_config(config())]

    /// Outcome, every field, the events in order, `len`, `get_active` and `is_dead`: the
    /// store and the model agree after every step.
    #[test]
    fn the_store_behaves_as_the_model(ops in ops()) {
        if let Err(diff) = model::run(&ops) {
            return Err(TestCaseError::fail(diff));
        }
    }

    /// An endpoint's rank never drops while the peer stays in the store.
    #[test]
    fn the_endpoint_rank_never_drops(ops in ops()) {
        observe(&ops, |_, a, before, after, _| {
            if let (Some(before), Some(after)) = (before, after) {
                assert_rank_kept(rank(after), rank(before), a);
            }
        });
    }

    /// A LAN endpoint is replaced by the LAN only.
    #[test]
    fn a_lan_endpoint_is_replaced_only_by_lan(ops in ops()) {
        observe(&ops, |_, a, before, after, _| {
            if let (Some(before), Some(after)) = (before, after)
                && before.endpoint_method == Some(DiscoveryMethod::Lan)
            {
                assert_eq!(after.endpoint_method, Some(DiscoveryMethod::Lan), "{a:?}");
                if after.endpoint != before.endpoint {
                    assert_eq!(method(a.method), DiscoveryMethod::Lan, "{a:?}");
                }
            }
        });
    }

    /// `discovered_via` never holds a method twice, and only grows: the old list is a prefix.
    #[test]
    fn discovered_via_only_grows_without_duplicates(ops in ops()) {
        observe(&ops, |_, a, before, after, _| {
            if let Some(after) = after {
                let via: Vec<_> = after.discovered_via.iter().collect();
                for (i, m) in via.iter().enumerate() {
                    assert!(!via[i + 1..].contains(m), "{m} twice in {via:?}");
                }
                if let Some(before) = before {
                    let was: Vec<_> = before.discovered_via.iter().collect();
                    assert!(via.starts_with(&was), "{a:?}: {was:?} -> {via:?}");
                }
            }
        });
    }

    /// A refused update leaves the record exactly as it was (and inserts nothing).
    #[test]
    fn a_refused_update_changes_nothing(ops in ops()) {
        observe(&ops, |_, a, before, after, result| {
            if result.is_err() {
                assert_eq!(before, after, "{a:?} was refused but changed the record");
            }
        });
    }

    /// `len` never passes the cap and `last_seen` is never in the future (checked after every
    /// step by `observe`); a new peer is refused only when the store is full.
    #[test]
    fn the_cap_holds_and_last_seen_is_never_in_the_future(ops in ops()) {
        observe(&ops, |subject, a, before, _, result| {
            if let Err(UpdateError::StoreFull { .. }) = result {
                assert!(before.is_none(), "{a:?}: an update of a stored peer refused as full");
                assert_eq!(subject.store.len(), CAP);
            }
        });
    }
}

fn assert_rank_kept(after: Option<u8>, before: Option<u8>, a: &Announce) {
    assert!(
        after >= before,
        "rank dropped from {before:?} to {after:?} on {a:?}"
    );
}

/// The model is a real check: it catches a store that differs from it (here, the model is run
/// against a sequence where the store's answer is known and a wrong expectation is injected).
#[test]
fn the_model_reports_a_difference() {
    let mut subject = Subject::new();
    let mut model = model::Model::default();
    let insert = Op::Update(Announce {
        key: 1,
        endpoint: 1,
        ..Announce::default()
    });
    model::step(&mut subject, &mut model, &insert).unwrap();
    // The store alone hears of a second peer: the next comparison must fail.
    let mut info = peerstore::PeerInfo::new(key(2));
    info.endpoint = Some("198.51.100.2:51820".parse().unwrap());
    subject.store.update(info, DiscoveryMethod::Dht).unwrap();
    let err = model::step(&mut subject, &mut model, &Op::Cleanup).unwrap_err();
    assert!(err.contains("events") || err.contains("len"), "{err}");
}
