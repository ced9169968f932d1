//! The merge and admission rules against every sequence of operations proptest can think of:
//! the store and a plain model (`tests/model/mod.rs`) agree after every step, and the
//! invariants a mesh relies on hold on their own.
//!
//! Each property runs under the configurations it makes sense for (`model::Config`: the seed's
//! defaults, the resilient endpoint policy, tombstones, `EvictSecondHand`, a second-hand quota,
//! all of them at once, and the evidence-based admission: bans, `EvictUnproven`, the unproven
//! quota and the readmission rules), one proptest per configuration (see [`each_config!`]), so that a
//! failure names its configuration: `cargo test --test properties the_cap_holds` runs one
//! property under each, `cargo test --test properties ::tombstones` every property under one.
//!
//! 256 cases per property and configuration by default; the long run is explicit:
//! `PROPTEST_CASES=10000 cargo test --release --test properties`.

mod model;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{Announce, CAP, Config, Endpoints, Op, Subject, key, method};
use peerstore::{
    DiscoveryMethod, FullPolicy, Peer, PeerEvent, PeerEventKind, Readmission, RemovalCause,
    Tombstone, UpdateError, UpdateOutcome,
};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::FileFailurePersistence;

/// Announcements drawn so that repeats are common: most fields are often empty (saying
/// nothing), so an update that changes nothing, or only revives a dead peer, comes up too.
/// `method` picks from the model's table (`model::method`).
fn announce(method: BoxedStrategy<u8>) -> impl Strategy<Value = Announce> {
    let endpoint = prop_oneof![3 => Just(0u8), 5 => 1..9u8, 1 => 9..14u8];
    let small = || proptest::option::weighted(0.3, 0..4u8);
    let hostname = prop_oneof![4 => Just(0u8), 1 => Just(1u8), 3 => 2..4u8, 1 => 4..7u8];
    let networks = prop_oneof![4 => Just(0u8), 2 => 1..4u8, 1 => Just(4u8)];
    let nat = prop_oneof![3 => Just(0u8), 2 => 1..4u8];
    let last_seen = prop_oneof![3 => Just(0u8), 1 => 1..5u8];
    (
        (0..model::KEYS, method, endpoint),
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

/// Every method of the model's table, equally often (six of the nine are first-hand), and now
/// and then any byte, which names one of 29 invented `Other` methods: more than a record holds.
fn any_method() -> BoxedStrategy<u8> {
    prop_oneof![8 => 0..9u8, 1 => any::<u8>()].boxed()
}

/// Half first-hand (0 LAN, 1 rendezvous, 2 DHT, 3 gossip, 7 and 8 other names), half
/// second-hand (4 DHT-transitive, 5 gossip-transitive, 6 the cache): floods of second-hand
/// peers, the first-hand newcomers they would lock out, and word of tombstoned peers.
fn admission_method() -> BoxedStrategy<u8> {
    prop_oneof![
        1 => prop::sample::select(vec![0u8, 1, 2, 3, 7, 8]),
        1 => prop::sample::select(vec![4u8, 5, 6]),
    ]
    .boxed()
}

/// Operations for the seed's endpoint policy.
fn op(method: BoxedStrategy<u8>) -> BoxedStrategy<Op> {
    prop_oneof![
        8 => announce(method).prop_map(Op::Update),
        1 => (0..model::KEYS).prop_map(|key| Op::Remove { key }),
        1 => Just(Op::Cleanup),
        // Mostly small steps, some across the dead and remove timeouts.
        2 => prop_oneof![0..30u16, 250..700u16].prop_map(|secs| Op::Advance { secs }),
        1 => (0..model::KEYS, any::<u16>()).prop_map(|(key, ms)| Op::SetLatency { key, ms }),
        1 => (0..model::KEYS, any::<u8>(), any::<bool>())
            .prop_map(|(key, endpoint, probe)| Op::Confirm { key, endpoint, probe }),
        1 => (0..model::KEYS, any::<u8>()).prop_map(|(key, endpoint)| Op::Fail { key, endpoint }),
    ]
    .boxed()
}

/// Operations for the resilient policy: the same announcements, aimed more often at a few
/// peers so that they gather candidates past the limit; confirmations and failures mostly of
/// the endpoints announced; clock steps across each window (LAN 30 s, rendezvous 120 s, trust
/// 180 s, dead 300 s), landing on them exactly now and then. `focus` to 1: how much more often
/// an update or evidence names peer 0 or 1 than any peer.
fn resilient_op(method: BoxedStrategy<u8>, focus: u32) -> BoxedStrategy<Op> {
    let peer = || prop_oneof![focus => 0..2u8, 1 => 0..model::KEYS];
    let announced = || prop_oneof![6 => 1..9u8, 1 => any::<u8>()];
    prop_oneof![
        8 => (announce(method), peer()).prop_map(|(a, key)| Op::Update(Announce { key, ..a })),
        1 => (0..model::KEYS).prop_map(|key| Op::Remove { key }),
        1 => Just(Op::Cleanup),
        3 => prop_oneof![
            4 => 0..12u16,
            2 => 12..200u16,
            1 => prop::sample::select(vec![30u16, 120, 180, 300]),
            1 => 250..700u16,
        ]
        .prop_map(|secs| Op::Advance { secs }),
        1 => (0..model::KEYS, any::<u16>()).prop_map(|(key, ms)| Op::SetLatency { key, ms }),
        2 => (peer(), announced(), any::<bool>())
            .prop_map(|(key, endpoint, probe)| Op::Confirm { key, endpoint, probe }),
        2 => (peer(), announced()).prop_map(|(key, endpoint)| Op::Fail { key, endpoint }),
    ]
    .boxed()
}

/// `remove_for` with a tombstone of no time (none placed), less than a clock step, about
/// one, or several.
fn remove_for() -> impl Strategy<Value = Op> {
    let secs = prop_oneof![1 => Just(0u16), 3 => 1..60u16, 3 => 60..400u16, 1 => 400..2000u16];
    (0..model::KEYS, secs).prop_map(|(key, secs)| Op::RemoveFor { key, secs })
}

/// The operations a configuration's properties draw. The seed's and the resilient policy's
/// are those the suite drew before the admission settings came (every method equally often, no
/// `remove_for`); the other configurations draw them with methods half first-hand, half
/// second-hand, and `remove_for` too where expired peers are tombstoned.
fn ops_for(config: Config) -> BoxedStrategy<Vec<Op>> {
    let old = config == Config::SEED || config == Config::RESILIENT;
    let methods = if old { any_method } else { admission_method };
    let op = match config.endpoints {
        Endpoints::Seed => op(methods()),
        // Under every opt-in, less focused on two peers: more of them, so the cap is hit.
        Endpoints::Resilient => resilient_op(methods(), if old { 3 } else { 1 }),
    };
    let op = if config.tombstones() {
        prop_oneof![12 => op, 1 => remove_for()].boxed()
    } else {
        op
    };
    let op = if config.bans {
        prop_oneof![12 => op, 1 => ban()].boxed()
    } else {
        op
    };
    proptest::collection::vec(op, 1..60).boxed()
}

/// `ban` until lifted, or for less than a clock step, about one, or several; `unban` as often.
fn ban() -> impl Strategy<Value = Op> {
    let secs = prop_oneof![2 => Just(0u16), 1 => 1..60u16, 1 => 60..2000u16];
    prop_oneof![
        (0..model::KEYS, secs).prop_map(|(key, secs)| Op::Ban { key, secs }),
        (0..model::KEYS).prop_map(|key| Op::Unban { key }),
    ]
}

/// The configuration of `Config::EACH` called `name`.
fn config_named(name: &str) -> Config {
    Config::EACH
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no configuration is called {name}"))
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

/// Runs a property, `fn NAME(Config, &[Op]) -> Result<(), String>`, under several
/// configurations, as papaya's `tests/common.rs` runs each test over several maps: a module
/// `NAME` with one proptest per configuration, named after it (`NAME::seed`,
/// `NAME::tombstones`, ...), each drawing that configuration's operations ([`ops_for`]). A
/// failure names the property and the configuration, and its message says the configuration
/// again.
///
/// `each_config!(NAME)` runs it under every configuration of `Config::EACH` (its test
/// `NAME::configurations` checks that the list is exactly that one);
/// `each_config!(NAME over [seed, ...])` under those listed.
macro_rules! each_config {
    ($name:ident) => {
        each_config!(@module $name every [
            seed, resilient, tombstones, evict_second_hand, max_second_hand, all, evidence,
            proven_only
        ]);
    };
    ($name:ident over [$($config:ident),+ $(,)?]) => {
        each_config!(@module $name some [$($config),+]);
    };
    (@module $name:ident $which:ident [$($config:ident),+]) => {
        mod $name {
            use super::*;

            $(
                proptest! {
                    #![proptest_config(config())]

                    #[test]
                    fn $config(ops in ops_for(config_named(stringify!($config)))) {
                        let config = config_named(stringify!($config));
                        if let Err(e) = super::$name(config, &ops) {
                            let under = config.name;
                            return Err(TestCaseError::fail(format!("under {under}: {e}")));
                        }
                    }
                }
            )+

            #[test]
            fn configurations() {
                let listed = [$(stringify!($config)),+];
                each_config!(@check $which listed);
            }
        }
    };
    (@check every $listed:ident) => {
        let each: Vec<&str> = Config::EACH.iter().map(|c| c.name).collect();
        assert_eq!($listed.to_vec(), each, "every configuration, in Config::EACH's order");
    };
    (@check some $listed:ident) => {
        for name in $listed {
            config_named(name);
        }
    };
}

/// What one operation did, as the properties see it.
struct Seen<'a> {
    subject: &'a Subject,
    op: &'a Op,
    /// Every key's record before and after it, by key number.
    before: Vec<Option<Peer>>,
    after: Vec<Option<Peer>>,
    /// An update's answer.
    result: Option<Result<UpdateOutcome, UpdateError>>,
    /// Whether the store took it: an update not refused, evidence for a candidate, a removal
    /// of a stored peer, a latency for one; a cleanup and a clock step always.
    taken: bool,
    /// The peers whose endpoint it chose again (under the resilient policy): the peer of an
    /// update or evidence the store took, every peer a cleanup kept.
    chosen_again: Vec<u8>,
    /// The events it sent, in order.
    events: Vec<PeerEvent>,
    tombstones_before: Vec<Tombstone>,
    tombstones_after: Vec<Tombstone>,
    /// Seconds since the start, after it.
    now: u64,
}

impl Seen<'_> {
    /// The announcement, if the operation was an update.
    fn announce(&self) -> Option<&Announce> {
        match self.op {
            Op::Update(a) => Some(a),
            _ => None,
        }
    }

    /// The wall-clock time `secs` seconds after the start.
    fn wall_at(secs: u64) -> SystemTime {
        UNIX_EPOCH + model::START + Duration::from_secs(secs)
    }
}

fn records(subject: &Subject) -> Vec<Option<Peer>> {
    (0..model::KEYS)
        .map(|n| subject.store.get(&key(n)).map(|p| (*p).clone()))
        .collect()
}

/// Whether a record was never heard first-hand, as the store's `discovered_via` says.
fn second_hand(peer: &Peer) -> bool {
    !peer
        .discovered_via
        .iter()
        .any(DiscoveryMethod::refreshes_last_seen)
}

/// Runs `ops` on a store built for `config` and calls `check` after each; after every step,
/// whatever the property, `len` is within the cap and what `get_all` holds, and no
/// `last_seen` is in the future.
fn observe(
    config: Config,
    ops: &[Op],
    mut check: impl FnMut(&Seen<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let subject = Subject::with(config);
    let store = &subject.store;
    let mut now = 0;
    // What an operation on one peer chose again: that peer, if the store took it.
    let this = |taken: bool, n: u8| (taken, if taken { vec![n % model::KEYS] } else { vec![] });
    for (i, op) in ops.iter().enumerate() {
        let before = records(&subject);
        let tombstones_before = store.tombstones();
        let mut result = None;
        let (taken, chosen_again) = match op {
            Op::Update(a) => {
                let got = store.update(a.info(subject.wall()), method(a.method));
                let taken = got.is_ok();
                result = Some(got);
                this(taken, a.key)
            }
            Op::Confirm {
                key: k,
                endpoint,
                probe,
            } => {
                let evidence = model::evidence_of(*probe);
                let taken = model::endpoint(*endpoint)
                    .is_some_and(|addr| store.confirm(&key(*k), addr, evidence));
                this(taken, *k)
            }
            Op::Fail { key: k, endpoint } => {
                let taken = model::endpoint(*endpoint)
                    .is_some_and(|addr| store.note_failure(&key(*k), addr));
                this(taken, *k)
            }
            Op::Cleanup => {
                let _ = store.cleanup_stale();
                let kept = (0..model::KEYS).filter(|n| store.get(&key(*n)).is_some());
                (true, kept.collect())
            }
            Op::Remove { key: k } => (store.remove(&key(*k)).is_some(), vec![]),
            Op::RemoveFor { key: k, secs } => {
                let span = Duration::from_secs(u64::from(*secs));
                (store.remove_for(&key(*k), span).is_some(), vec![])
            }
            Op::Advance { secs } => {
                subject.clock.advance(Duration::from_secs(u64::from(*secs)));
                now += u64::from(*secs);
                (true, vec![])
            }
            Op::SetLatency { key: k, ms } => {
                let taken = store.set_latency(&key(*k), Duration::from_millis(u64::from(*ms)));
                (taken, vec![])
            }
            Op::Ban { key: k, secs } => {
                let banned = store.ban(&key(*k), model::ban_span(*secs), "a property's");
                (banned.is_ok_and(|gone| gone.is_some()), vec![])
            }
            Op::Unban { key: k } => (store.unban(&key(*k)), vec![]),
        };
        let seen = Seen {
            subject: &subject,
            op,
            after: records(&subject),
            before,
            result,
            taken,
            chosen_again,
            events: subject.events.try_iter().collect(),
            tombstones_before,
            tombstones_after: store.tombstones(),
            now,
        };
        let checked = (|| {
            let all = store.get_all();
            if store.len() > CAP || store.len() != all.len() {
                return Err(format!(
                    "len {} (get_all holds {}), the cap {CAP}",
                    store.len(),
                    all.len()
                ));
            }
            if let Some(peer) = all.iter().find(|p| p.last_seen > subject.wall()) {
                return Err(format!("last_seen in the future: {peer:?}"));
            }
            check(&seen)
        })();
        checked.map_err(|e| format!("step {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

/// Outcome, every field, the events in order (`readmitted` too), `len`, `get_active`,
/// `is_dead`, the candidates, the tombstones and the counters of `Stats`: the store and the
/// model agree after every step.
fn the_store_behaves_as_the_model(config: Config, ops: &[Op]) -> Result<(), String> {
    model::run_with(config, ops)
}

/// `len` never passes the cap and `last_seen` is never in the future (checked after every
/// step by `observe`); a new peer is refused as full only when the store is full or a quota
/// it counts against is (the second-hand one for a second-hand peer, the unproven one for
/// any), under `EvictSecondHand` a first-hand one only when no peer is second-hand, and under
/// `EvictUnproven` a first-hand one only when no unproven peer is second-hand and a LAN one
/// only when no peer is unproven; a tombstone refuses only a second-hand new peer, unless the
/// readmission rule is not `FirstHand`; a ban, only a banned key.
fn the_cap_holds_and_last_seen_is_never_in_the_future(
    config: Config,
    ops: &[Op],
) -> Result<(), String> {
    observe(config, ops, |seen| {
        let (Some(a), Some(Err(err))) = (seen.announce(), &seen.result) else {
            return Ok(());
        };
        let first_hand = method(a.method).refreshes_last_seen();
        let stored = || seen.subject.store.get_all();
        match err {
            UpdateError::StoreFull { .. } => {
                if seen.before[usize::from(a.key)].is_some() {
                    return Err("an update of a stored peer refused as full".into());
                }
                let second_hand_peers = stored().iter().filter(|p| second_hand(p)).count();
                let unproven = stored().iter().filter(|p| !p.proven).count();
                let unproven_second_hand = stored()
                    .iter()
                    .filter(|p| !p.proven && second_hand(p))
                    .count();
                let quota_full = (!first_hand
                    && config
                        .max_second_hand
                        .is_some_and(|n| second_hand_peers == n))
                    || config.max_unproven.is_some_and(|n| unproven == n);
                if seen.subject.store.len() != CAP && !quota_full {
                    return Err(format!(
                        "refused as full with {} peers, {second_hand_peers} of them second-hand",
                        seen.subject.store.len()
                    ));
                }
                let victims = match config.when_full {
                    FullPolicy::EvictSecondHand => second_hand_peers,
                    FullPolicy::EvictUnproven if method(a.method) == DiscoveryMethod::Lan => {
                        unproven
                    }
                    FullPolicy::EvictUnproven => unproven_second_hand,
                    _ => 0,
                };
                let unproven_quota_binds = config.when_full != FullPolicy::EvictUnproven
                    && config.max_unproven.is_some_and(|n| unproven == n);
                if first_hand && victims > 0 && !unproven_quota_binds {
                    return Err(format!(
                        "a first-hand newcomer refused as full though {victims} peers could \
                         make room"
                    ));
                }
            }
            UpdateError::Tombstoned { .. }
                if (first_hand && config.readmit == Readmission::FirstHand)
                    || seen.before[usize::from(a.key)].is_some() =>
            {
                return Err("tombstoned, but first-hand or a stored peer".into());
            }
            UpdateError::Banned { .. } => {
                let banned = seen.subject.store.banned();
                if !banned
                    .iter()
                    .any(|b| b.public_key == key(a.key % model::KEYS))
                {
                    return Err("refused as banned, but not banned".into());
                }
            }
            _ => {}
        }
        Ok(())
    })
}

/// A refused update changes nothing: no record (it inserts nothing, evicts nothing), no
/// tombstone, no event.
fn a_refused_update_changes_nothing(config: Config, ops: &[Op]) -> Result<(), String> {
    observe(config, ops, |seen| {
        if !matches!(seen.result, Some(Err(_))) {
            return Ok(());
        }
        if seen.before != seen.after {
            return Err(format!(
                "refused ({:?}) but changed the records",
                seen.result
            ));
        }
        if seen.tombstones_before != seen.tombstones_after {
            return Err("refused but changed the tombstones".into());
        }
        if !seen.events.is_empty() {
            return Err(format!("refused but sent {:?}", seen.events));
        }
        Ok(())
    })
}

/// `discovered_via` never holds a method twice, and only grows while the peer stays: the old
/// list is a prefix of the new, whatever the operation.
fn discovered_via_only_grows_without_duplicates(config: Config, ops: &[Op]) -> Result<(), String> {
    observe(config, ops, |seen| {
        for (before, after) in seen.before.iter().zip(&seen.after) {
            let Some(after) = after else { continue };
            let via: Vec<_> = after.discovered_via.iter().collect();
            for (i, m) in via.iter().enumerate() {
                if via[i + 1..].contains(m) {
                    return Err(format!("{m} twice in {via:?}"));
                }
            }
            if let Some(before) = before {
                let was: Vec<_> = before.discovered_via.iter().collect();
                if !via.starts_with(&was) {
                    return Err(format!("{was:?} -> {via:?}"));
                }
            }
        }
        Ok(())
    })
}

fn rank(peer: &Peer) -> Option<u8> {
    peer.endpoint_method.as_ref().map(DiscoveryMethod::rank)
}

/// The seed's rules: an endpoint's rank never drops while the peer stays in the store.
fn the_endpoint_rank_never_drops(config: Config, ops: &[Op]) -> Result<(), String> {
    observe(config, ops, |seen| {
        let Some(a) = seen.announce() else {
            return Ok(());
        };
        let n = usize::from(a.key);
        if let (Some(before), Some(after)) = (&seen.before[n], &seen.after[n])
            && rank(after) < rank(before)
        {
            return Err(format!(
                "rank dropped from {:?} to {:?}",
                rank(before),
                rank(after)
            ));
        }
        Ok(())
    })
}

/// The seed's rules: a LAN endpoint is replaced by the LAN only.
fn a_lan_endpoint_is_replaced_only_by_lan(config: Config, ops: &[Op]) -> Result<(), String> {
    observe(config, ops, |seen| {
        let Some(a) = seen.announce() else {
            return Ok(());
        };
        let n = usize::from(a.key);
        if let (Some(before), Some(after)) = (&seen.before[n], &seen.after[n])
            && before.endpoint_method == Some(DiscoveryMethod::Lan)
        {
            if after.endpoint_method != Some(DiscoveryMethod::Lan) {
                return Err(format!(
                    "a LAN endpoint's method became {:?}",
                    after.endpoint_method
                ));
            }
            if after.endpoint != before.endpoint && method(a.method) != DiscoveryMethod::Lan {
                return Err(format!("a LAN endpoint replaced by {}", method(a.method)));
            }
        }
        Ok(())
    })
}

/// Under the resilient policy, the endpoint is chosen when the peer is updated, given
/// evidence, or visited by the cleanup (not when it is read): right after each of those, if
/// any of its candidates is fresh, its endpoint is a fresh candidate.
fn the_chosen_endpoint_is_fresh_or_no_candidate_is(
    config: Config,
    ops: &[Op],
) -> Result<(), String> {
    observe(config, ops, |seen| {
        for &n in &seen.chosen_again {
            let k = key(n);
            let candidates = seen.subject.store.candidates(&k);
            if !candidates.iter().any(|c| c.fresh) {
                continue;
            }
            let endpoint = seen.subject.store.get(&k).and_then(|p| p.endpoint);
            if !candidates
                .iter()
                .any(|c| c.fresh && Some(c.endpoint) == endpoint)
            {
                return Err(format!(
                    "peer {n}'s endpoint {endpoint:?} is not a fresh candidate: {candidates:#?}"
                ));
            }
        }
        Ok(())
    })
}

/// Under the resilient policy, whatever method names an announcement invents: a candidate keeps
/// reports only for methods its record holds (so never more than the record's bound), and a
/// report's time never goes back while its candidate stays.
fn candidate_reports_stay_bounded_and_never_go_back(
    config: Config,
    ops: &[Op],
) -> Result<(), String> {
    let bound = DiscoveryMethod::BUILT_IN.len() + peerstore::MAX_OTHER_METHODS;
    let mut last: HashMap<(u8, SocketAddr, DiscoveryMethod), SystemTime> = HashMap::new();
    observe(config, ops, |seen| {
        let mut present = HashSet::new();
        for n in 0..model::KEYS {
            let k = key(n);
            let Some(peer) = seen.subject.store.get(&k) else {
                continue;
            };
            for c in seen.subject.store.candidates(&k) {
                if c.reports.len() > bound {
                    return Err(format!(
                        "peer {n}: {} reports of {}",
                        c.reports.len(),
                        c.endpoint
                    ));
                }
                for (method, at) in &c.reports {
                    if !peer.discovered_via.contains(method) {
                        return Err(format!(
                            "peer {n}: a report by {method}, which it never held"
                        ));
                    }
                    let slot = (n, c.endpoint, method.clone());
                    if let Some(before) = last.get(&slot)
                        && at < before
                    {
                        return Err(format!(
                            "peer {n}: {method}'s report of {} went back from {before:?} to {at:?}",
                            c.endpoint
                        ));
                    }
                    last.insert(slot.clone(), *at);
                    present.insert(slot);
                }
            }
        }
        // A candidate that went (evicted, its peer removed) starts again.
        last.retain(|slot, _| present.contains(slot));
        Ok(())
    })
}

/// Under the resilient policy: a confirmed endpoint, not failed since, is not displaced within
/// `trust_for` by an endpoint without such a confirmation of its own (under the default policy
/// rank does not override trust, so not by a higher rank either, nor a lower one).
/// Confirmations are tracked here, from what `confirm` and `note_failure` returned, each
/// endpoint's on its own: a confirmation of another endpoint of the peer leaves the earlier
/// one's as it was.
fn a_confirmed_unfailed_endpoint_is_not_displaced_within_trust_for(
    config: Config,
    ops: &[Op],
) -> Result<(), String> {
    // (peer, endpoint) -> when confirmed, in seconds since the start.
    let mut confirmed: HashMap<(u8, SocketAddr), u64> = HashMap::new();
    observe(config, ops, |seen| {
        let canonical = |n: u8| model::endpoint(n).map(peerstore::canonical_endpoint);
        match *seen.op {
            Op::Confirm {
                key: k, endpoint, ..
            } if seen.taken => {
                let (k, addr) = (k % model::KEYS, canonical(endpoint).expect("taken"));
                confirmed.insert((k, addr), seen.now);
            }
            Op::Fail { key: k, endpoint } if seen.taken => {
                confirmed.remove(&(k % model::KEYS, canonical(endpoint).expect("taken")));
            }
            _ => {}
        }
        let trusted = |n: u8, addr: SocketAddr| {
            confirmed
                .get(&(n, addr))
                .is_some_and(|at| Duration::from_secs(seen.now - at) < model::TRUST_FOR)
        };
        for n in 0..model::KEYS {
            let (Some(before), Some(after)) = (&seen.before[n as usize], &seen.after[n as usize])
            else {
                continue;
            };
            let (Some(was), Some(is)) = (before.endpoint, after.endpoint) else {
                continue;
            };
            if was != is && trusted(n, was) && !trusted(n, is) {
                return Err(format!(
                    "peer {n}: {was} (by {:?}, confirmed at {} s, not failed) displaced at {} s by \
                     {is} (by {:?}), unconfirmed",
                    before.endpoint_method,
                    confirmed[&(n, was)],
                    seen.now,
                    after.endpoint_method
                ));
            }
        }
        // A peer removed (evicted, expired) takes its confirmations with it.
        for n in 0..model::KEYS {
            if seen.after[n as usize].is_none() {
                confirmed.retain(|(peer, _), _| *peer != n);
            }
        }
        Ok(())
    })
}

/// The keys a step's events removed, with the cause.
fn removals(seen: &Seen<'_>) -> Vec<(u8, RemovalCause)> {
    seen.events
        .iter()
        .filter_map(|e| match e.kind {
            PeerEventKind::Removed { cause } => Some((e.public_key.as_bytes()[0], cause)),
            _ => None,
        })
        .collect()
}

/// Tracks, from what the store answered, the peers heard first-hand since they last went in
/// (an update by a first-hand method the store took), and calls `check` with them after each
/// step, before the step's own first-hand update is added (so an eviction the update made is
/// checked against the peers heard before it).
fn track_first_hand(
    config: Config,
    ops: &[Op],
    mut check: impl FnMut(&Seen<'_>, &HashSet<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let mut first_hand: HashSet<u8> = HashSet::new();
    observe(config, ops, |seen| {
        check(seen, &first_hand)?;
        for (n, _) in removals(seen) {
            first_hand.remove(&n);
        }
        if let (Some(a), Some(Ok(_))) = (seen.announce(), &seen.result)
            && method(a.method).refreshes_last_seen()
        {
            first_hand.insert(a.key % model::KEYS);
        }
        Ok(())
    })
}

/// Under `EvictSecondHand`: a peer heard first-hand since it went in is never evicted, an
/// eviction happens only to let a first-hand newcomer in, and `len` never passes the cap.
fn a_first_hand_peer_is_never_evicted(config: Config, ops: &[Op]) -> Result<(), String> {
    track_first_hand(config, ops, |seen, first_hand| {
        let evicted: Vec<u8> = removals(seen)
            .into_iter()
            .filter(|(_, cause)| *cause == RemovalCause::Evicted)
            .map(|(n, _)| n)
            .collect();
        if let Some(n) = evicted.iter().find(|n| first_hand.contains(n)) {
            return Err(format!("peer {n}, heard first-hand, was evicted"));
        }
        if !evicted.is_empty() {
            let newcomer = seen.announce().filter(|a| {
                method(a.method).refreshes_last_seen()
                    && seen.result == Some(Ok(UpdateOutcome::Inserted))
            });
            if newcomer.is_none() || evicted.len() > 1 {
                return Err(format!(
                    "evicted {evicted:?}, not for one first-hand newcomer"
                ));
            }
        }
        if seen.subject.store.len() > CAP {
            return Err(format!("len {} over the cap", seen.subject.store.len()));
        }
        Ok(())
    })
}

/// Under `max_second_hand(n)`: the peers never heard first-hand (tracked from what the store
/// answered, not read from `discovered_via`) never number more than `n`.
/// A key banned (and not lifted, nor run out) is never in the store, whatever is said of it.
fn a_banned_key_is_never_in_the_store(config: Config, ops: &[Op]) -> Result<(), String> {
    observe(config, ops, |seen| {
        for ban in seen.subject.store.banned() {
            if seen.subject.store.get(&ban.public_key).is_some() {
                return Err(format!("{} is banned and in the store", ban.public_key));
            }
        }
        Ok(())
    })
}

/// Under `EvictUnproven`: a peer WireGuard completed a handshake with is never evicted (it
/// leaves only by a removal, a ban or the cleanup).
fn a_proven_peer_is_never_evicted(config: Config, ops: &[Op]) -> Result<(), String> {
    observe(config, ops, |seen| {
        let evicted: Vec<peerstore::PublicKey> = seen
            .events
            .iter()
            .filter(|e| {
                e.kind
                    == PeerEventKind::Removed {
                        cause: RemovalCause::Evicted,
                    }
            })
            .map(|e| e.public_key)
            .collect();
        for n in 0..model::KEYS {
            let proven = seen.before[usize::from(n)]
                .as_ref()
                .is_some_and(|p| p.proven);
            if proven && evicted.contains(&key(n)) {
                return Err(format!("peer {n} was proven and evicted"));
            }
        }
        Ok(())
    })
}

/// Under `max_unproven(n)`: at most `n` peers the store holds are unproven, whatever methods
/// announced them.
fn unproven_peers_never_pass_their_quota(config: Config, ops: &[Op]) -> Result<(), String> {
    let quota = config.max_unproven.expect("a configuration with a quota");
    observe(config, ops, |seen| {
        let unproven = seen.after.iter().flatten().filter(|p| !p.proven).count();
        if unproven > quota {
            return Err(format!("{unproven} unproven peers: more than {quota}"));
        }
        Ok(())
    })
}

fn second_hand_peers_never_pass_the_quota(config: Config, ops: &[Op]) -> Result<(), String> {
    let quota = config
        .max_second_hand
        .expect("a configuration with a quota");
    let mut first_hand: HashSet<u8> = HashSet::new();
    observe(config, ops, |seen| {
        for (n, _) in removals(seen) {
            first_hand.remove(&n);
        }
        if let (Some(a), Some(Ok(_))) = (seen.announce(), &seen.result)
            && method(a.method).refreshes_last_seen()
        {
            first_hand.insert(a.key % model::KEYS);
        }
        let second_hand: Vec<u8> = (0..model::KEYS)
            .filter(|n| seen.after[usize::from(*n)].is_some() && !first_hand.contains(n))
            .collect();
        if second_hand.len() > quota {
            return Err(format!(
                "{second_hand:?} never heard first-hand: more than {quota}"
            ));
        }
        Ok(())
    })
}

/// Under tombstones: while a peer's tombstone stands (tracked here from `remove_for` and the
/// cleanup's expiries, cleared by a first-hand insert), no update by the cache or a
/// second-hand method inserts it: each is refused `Tombstoned` with the tombstone's end; a
/// first-hand insert over it is a readmission; and nothing else is refused `Tombstoned`.
fn a_tombstone_keeps_second_hand_word_out(config: Config, ops: &[Op]) -> Result<(), String> {
    // Key -> until, in seconds since the start.
    let mut stones: HashMap<u8, u64> = HashMap::new();
    observe(config, ops, |seen| {
        match seen.op {
            Op::RemoveFor { key: k, secs } if *secs > 0 => {
                stones.insert(k % model::KEYS, seen.now + u64::from(*secs));
            }
            Op::Cleanup => {
                for (n, _) in removals(seen) {
                    stones.insert(n, seen.now + config.tombstone_expired.as_secs());
                }
            }
            _ => {}
        }
        stones.retain(|_, until| seen.now < *until);
        if let Some(a) = seen.announce() {
            an_update_meets_the_tombstones(seen, a, &mut stones)?;
        }
        let mut listed: Vec<u8> = seen
            .tombstones_after
            .iter()
            .map(|t| t.public_key.as_bytes()[0])
            .collect();
        listed.sort_unstable();
        let mut standing: Vec<u8> = stones.keys().copied().collect();
        standing.sort_unstable();
        if listed != standing {
            return Err(format!(
                "tombstones() lists {listed:?}, standing: {standing:?}"
            ));
        }
        Ok(())
    })
}

/// One update against the tombstones standing (key -> until, in seconds since the start):
/// refused if second-hand, a readmission (which clears it) if a first-hand insert.
fn an_update_meets_the_tombstones(
    seen: &Seen<'_>,
    a: &Announce,
    stones: &mut HashMap<u8, u64>,
) -> Result<(), String> {
    {
        let (n, result) = (
            a.key % model::KEYS,
            seen.result.as_ref().expect("an update"),
        );
        if let Err(UpdateError::Invalid(_)) = result {
            // Refused before it was looked at (checked by the other properties).
            return Ok(());
        }
        let first_hand = method(a.method).refreshes_last_seen();
        match (stones.get(&n), first_hand) {
            (Some(&until), false) => {
                let want = Err(UpdateError::Tombstoned {
                    until: Seen::wall_at(until),
                });
                if *result != want || seen.after[usize::from(n)].is_some() {
                    return Err(format!(
                        "peer {n}, tombstoned until {until} s, let in by {}: {result:?}",
                        method(a.method)
                    ));
                }
            }
            (Some(_), true) if *result == Ok(UpdateOutcome::Inserted) => {
                let new = seen
                    .events
                    .iter()
                    .find(|e| matches!(e.kind, PeerEventKind::New { .. }));
                if !new.is_some_and(|e| matches!(e.kind, PeerEventKind::New { readmitted: true })) {
                    return Err(format!("a readmission of {n}, but its event is {new:?}"));
                }
                stones.remove(&n);
            }
            _ if matches!(result, Err(UpdateError::Tombstoned { .. })) => {
                return Err(format!("peer {n} refused as tombstoned, but none stands"));
            }
            _ => {
                if seen
                    .events
                    .iter()
                    .any(|e| matches!(e.kind, PeerEventKind::New { readmitted: true }))
                {
                    return Err(format!(
                        "a readmission with no tombstone: {:?}",
                        seen.events
                    ));
                }
            }
        }
        Ok(())
    }
}

// Under every configuration.
each_config!(the_store_behaves_as_the_model);
each_config!(the_cap_holds_and_last_seen_is_never_in_the_future);
each_config!(a_refused_update_changes_nothing);
each_config!(discovered_via_only_grows_without_duplicates);
// The seed's endpoint rules, under the seed's defaults.
each_config!(the_endpoint_rank_never_drops over [seed]);
each_config!(a_lan_endpoint_is_replaced_only_by_lan over [seed]);
// The resilient policy's, under the configurations that choose endpoints by it.
each_config!(the_chosen_endpoint_is_fresh_or_no_candidate_is over [resilient, all]);
each_config!(a_confirmed_unfailed_endpoint_is_not_displaced_within_trust_for over [resilient, all]);
each_config!(candidate_reports_stay_bounded_and_never_go_back over [resilient, all]);
// The admission settings', under those that set them.
each_config!(a_first_hand_peer_is_never_evicted over [evict_second_hand, all]);
each_config!(second_hand_peers_never_pass_the_quota over [max_second_hand, all]);
each_config!(a_tombstone_keeps_second_hand_word_out over [tombstones, all]);
each_config!(a_banned_key_is_never_in_the_store over [evidence, proven_only]);
each_config!(a_proven_peer_is_never_evicted over [evidence, proven_only]);
each_config!(unproven_peers_never_pass_their_quota over [proven_only]);

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

/// An announcement for peer `key` by `method` (from the model's tables), saying nothing else.
fn heard(key: u8, method: u8) -> Op {
    Op::Update(Announce {
        key,
        method,
        ..Announce::default()
    })
}

/// Ties between victims: when the least recently heard second-hand peers were heard at the
/// same instant, the one whose key sorts first goes (the order victims are kept in is by
/// time, then key), whatever the map's per-store seed. Four peers by gossip-transitive in one
/// tick, then a LAN newcomer: over 64 stores the same one is evicted, and the model (which
/// takes whichever the store did, among the tied) agrees each time.
#[test]
fn an_eviction_among_tied_victims_takes_the_first_key() {
    // Methods: 0 LAN, 5 gossip-transitive.
    let ops: Vec<Op> = (0..4).map(|k| heard(k, 5)).chain([heard(5, 0)]).collect();
    let mut victims = HashSet::new();
    for _ in 0..64 {
        let subject = Subject::with(Config::EVICT_SECOND_HAND);
        for op in &ops {
            let Op::Update(a) = op else { unreachable!() };
            subject
                .store
                .update(a.info(subject.wall()), method(a.method))
                .unwrap();
        }
        let evicted: Vec<u8> = (0..4)
            .filter(|&k| subject.store.get(&key(k)).is_none())
            .collect();
        assert_eq!(evicted.len(), 1, "one evicted");
        victims.insert(evicted[0]);
        model::run_with(Config::EVICT_SECOND_HAND, &ops).unwrap();
    }
    let first = (0..4).min_by_key(|&k| key(k)).unwrap();
    assert_eq!(
        victims,
        HashSet::from([first]),
        "the first key, in every store"
    );
    // A peer heard a moment later is not tied: the older one goes, in every store.
    let ops = [
        heard(0, 5),
        Op::Advance { secs: 1 },
        heard(1, 5),
        heard(2, 5),
        heard(3, 5),
    ];
    for _ in 0..16 {
        let mut ops = ops.to_vec();
        ops.push(heard(5, 0));
        let subject = Subject::with(Config::EVICT_SECOND_HAND);
        for op in &ops {
            match op {
                Op::Update(a) => {
                    let _ = subject
                        .store
                        .update(a.info(subject.wall()), method(a.method));
                }
                Op::Advance { secs } => {
                    subject.clock.advance(Duration::from_secs(u64::from(*secs)));
                }
                _ => unreachable!(),
            }
        }
        assert!(
            subject.store.get(&key(0)).is_none(),
            "the least recently heard"
        );
        model::run_with(Config::EVICT_SECOND_HAND, &ops).unwrap();
    }
}

/// `each_config` (the model's helper for plain tests) runs a test under every configuration
/// and says which one failed.
#[test]
fn each_config_names_the_failing_configuration() {
    let failed = std::panic::catch_unwind(|| {
        model::each_config(|config| assert_ne!(config, Config::TOMBSTONES, "deliberately"));
    })
    .unwrap_err();
    let message = failed.downcast_ref::<String>().expect("a message");
    assert!(
        message.contains("tombstones") && message.contains("deliberately"),
        "{message}"
    );
    // And the model agrees with the store under each on a short story of every rule.
    model::each_config(|config| {
        let ops = [
            heard(0, 5),
            heard(1, 6),
            heard(2, 4),
            heard(3, 2),
            Op::RemoveFor { key: 3, secs: 30 },
            heard(3, 5),
            heard(4, 0),
            heard(5, 0),
            heard(3, 1),
            Op::Advance { secs: 601 },
            Op::Cleanup,
            heard(0, 5),
            heard(0, 3),
        ];
        model::run_with(config, &ops).unwrap();
    });
}

/// Every update's answer in a story, and the tombstones listed at its end (by key number).
type Told = (
    Vec<Result<UpdateOutcome, UpdateError>>,
    Vec<(u8, RemovalCause)>,
);

/// Runs `ops` under `config` (where the model must agree with the store) and returns every
/// update's answer and the tombstones listed at the end, by key number and cause.
fn story(config: Config, ops: &[Op]) -> Told {
    if let Err(e) = model::run_with(config, ops) {
        panic!("under {}: {e}", config.name);
    }
    let (mut answers, mut stones) = (Vec::new(), Vec::new());
    observe(config, ops, |seen| {
        answers.extend(seen.result.clone());
        stones = (seen.tombstones_after.iter())
            .map(|t| (model::number(&t.public_key), t.cause))
            .collect();
        Ok(())
    })
    .unwrap();
    (answers, stones)
}

/// Where the documentation leaves a choice open, the model follows the store: each choice in
/// its shortest case, checked on the store (and the model agrees). If the crate changes one,
/// its case fails here: settle what the documentation means, and teach the model the same
/// (`Model::update_evicting`, `Model::place`, `Model::tombstones`).
#[test]
fn where_the_documentation_is_silent_the_model_follows_the_store() {
    // Methods: 0 LAN, 2 DHT, 5 gossip-transitive.
    let tombstoned =
        |r: &Result<UpdateOutcome, UpdateError>| matches!(r, Err(UpdateError::Tombstoned { .. }));
    // A second-hand newcomer both tombstoned and refused by a full store: `Tombstoned`.
    let mut ops = vec![Op::RemoveFor { key: 5, secs: 60 }];
    ops.extend((0..4).map(|k| heard(k, 2)));
    ops.push(heard(5, 5));
    let (answers, _) = story(Config::SEED, &ops);
    assert!(tombstoned(&answers[4]), "{answers:?}");
    // `remove_for` with a zero span places none, and leaves one standing as it was.
    let ops = [
        Op::RemoveFor { key: 1, secs: 60 },
        Op::RemoveFor { key: 1, secs: 0 },
        heard(1, 5),
    ];
    let (answers, stones) = story(Config::SEED, &ops);
    assert!(tombstoned(&answers[0]), "{answers:?}");
    assert_eq!(stones, [(1, RemovalCause::Explicit)]);
    // A second `remove_for` replaces the tombstone, even with a shorter span.
    let ops = [
        Op::RemoveFor { key: 1, secs: 600 },
        Op::RemoveFor { key: 1, secs: 10 },
        Op::Advance { secs: 10 },
        heard(1, 5),
    ];
    let (answers, _) = story(Config::SEED, &ops);
    assert_eq!(answers, [Ok(UpdateOutcome::Inserted)]);
    // "Oldest first": tombstones placed at one instant come in key order.
    let ops = [
        heard(3, 5),
        heard(1, 5),
        Op::Advance { secs: 601 },
        Op::RemoveFor { key: 5, secs: 60 },
        Op::Cleanup,
        Op::RemoveFor { key: 0, secs: 60 },
    ];
    let (_, stones) = story(Config::TOMBSTONES, &ops);
    let expired = RemovalCause::Expired;
    let explicit = RemovalCause::Explicit;
    assert_eq!(
        stones,
        [(0, explicit), (1, expired), (3, expired), (5, explicit)]
    );
    // "Ever heard first-hand" is the record's: heard on the DHT, removed, back by gossip, it is
    // a second-hand peer again, and the least recently heard one goes.
    let mut ops = vec![
        heard(0, 2),
        Op::Remove { key: 0 },
        heard(0, 5),
        Op::Advance { secs: 1 },
    ];
    ops.extend((1..4).map(|k| heard(k, 5)));
    ops.push(heard(4, 0));
    let (answers, _) = story(Config::EVICT_SECOND_HAND, &ops);
    assert_eq!(answers.last(), Some(&Ok(UpdateOutcome::Inserted)));
    let subject = Subject::with(Config::EVICT_SECOND_HAND);
    for op in &ops {
        match op {
            Op::Update(a) => {
                let _ = subject
                    .store
                    .update(a.info(subject.wall()), method(a.method));
            }
            Op::Remove { key: k } => drop(subject.store.remove(&key(*k))),
            Op::Advance { secs } => {
                subject.clock.advance(Duration::from_secs(u64::from(*secs)));
            }
            _ => unreachable!(),
        }
    }
    assert!(subject.store.get(&key(0)).is_none(), "peer 0 evicted");
}
