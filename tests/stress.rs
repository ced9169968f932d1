//! Every operation at once from many threads, then the books are checked: `len`, the map, the
//! stats counters, what each thread saw happen, and a replay of every event must all agree.
//!
//! The default runs are short; the heavy ones and the 60-second soak are explicit:
//! `cargo test --release --test stress -- --ignored` (`STRESS_OPS` and `SOAK_SECS` override their sizes).
#![allow(
    clippy::cast_possible_truncation,
    reason = "random draws are reduced to the small ranges they pick from"
)]

mod support;

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use peerstore::{
    Clock, DiscoveryMethod as M, ManualClock, PeerEvent, PeerEventKind, PeerInfo, PeerStore,
    PublicKey, Subscription, UpdateError, UpdateOutcome,
};
use support::{DEADLINE, THREADS, key, race_on, race_within};

/// A small, fast, per-thread random sequence (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: usize) -> Self {
        Rng(0x9e37_79b9_7f4a_7c15 ^ (seed as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const METHODS: &[M] = M::BUILT_IN;

/// What one thread saw its own calls do.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    inserts: u64,
    updates: u64,
    unchanged: u64,
    full: u64,
    invalid: u64,
    removed: u64,
    expired: u64,
}

impl std::ops::Add for Tally {
    type Output = Tally;
    fn add(self, o: Tally) -> Tally {
        Tally {
            inserts: self.inserts + o.inserts,
            updates: self.updates + o.updates,
            unchanged: self.unchanged + o.unchanged,
            full: self.full + o.full,
            invalid: self.invalid + o.invalid,
            removed: self.removed + o.removed,
            expired: self.expired + o.expired,
        }
    }
}

/// One thread's mix of every operation; thread 0 also moves the clock.
fn churn(
    store: &PeerStore,
    clock: &ManualClock,
    t: usize,
    ops: usize,
    keys: u64,
    over_cap: &AtomicBool,
    events: &Subscription,
) -> (Tally, Vec<PeerEvent>) {
    let mut heard = Vec::new();
    let mut rng = Rng::new(t);
    let mut tally = Tally::default();
    for _ in 0..ops {
        let k = key(rng.below(keys) as u32);
        match rng.below(100) {
            0..=59 => {
                let mut info = PeerInfo::new(k);
                let port = 1 + rng.below(3) as u16;
                info.endpoint = Some(if rng.below(50) == 0 {
                    "0.0.0.0:1".parse().unwrap() // refused: unspecified
                } else {
                    std::net::SocketAddr::from(([198, 51, 100, rng.below(4) as u8 + 1], port))
                });
                info.hostname = (rng.below(4) == 0).then(|| format!("h{}", rng.below(3)).into());
                info.introducer = rng.below(8) == 0;
                let method = METHODS[rng.below(METHODS.len() as u64) as usize].clone();
                match store.update(info, method) {
                    Ok(UpdateOutcome::Inserted) => tally.inserts += 1,
                    Ok(UpdateOutcome::Updated) => tally.updates += 1,
                    Ok(UpdateOutcome::Unchanged) => tally.unchanged += 1,
                    Err(UpdateError::StoreFull { .. }) => tally.full += 1,
                    Err(UpdateError::Invalid(_)) => tally.invalid += 1,
                    Err(other) => panic!("refused in a way this test does not know: {other}"),
                }
            }
            60..=69 => {
                let _ = store.get(&k);
            }
            70..=72 => {
                let _ = store.get_all();
            }
            73..=77 => {
                let _ = store.get_active();
            }
            78..=83 => tally.removed += u64::from(store.remove(&k).is_some()),
            84..=86 => tally.expired += store.cleanup_stale().len() as u64,
            87..=91 => {
                store.set_latency(&k, Duration::from_millis(rng.below(500)));
            }
            92..=94 => {
                // A subscriber that comes and goes without reading.
                let sub = store.subscribe();
                let _ = store.get(&k);
                store.unsubscribe(sub);
            }
            _ if t == 0 => clock.advance(Duration::from_secs(rng.below(400))),
            _ => {
                let _ = store.is_dead(&k);
            }
        }
        if store.len() > store.max_peers() {
            over_cap.store(true, Ordering::Relaxed);
        }
        // The accounting subscriber is read by every thread after every operation, so it
        // keeps up however the threads are scheduled.
        heard.extend(events.try_iter());
    }
    (tally, heard)
}

/// Races `threads` threads of `ops` operations each, sharing one subscriber that they read
/// as they go, then checks that everything agrees.
fn every_operation_at_once(threads: usize, ops: usize) {
    // Under Miri the threads run few operations, so a small cap: with 64 the run hit it in
    // some schedules and not in others.
    const CAP: usize = if cfg!(miri) { 24 } else { 64 };
    let clock = ManualClock::new();
    let store = PeerStore::builder()
        .clock(clock.clone())
        .max_peers(CAP)
        // Every subscription allocates its whole buffer, and each thread subscribes now and
        // then: under Miri, which steps through every slot, a small one (the accounting
        // subscriber is drained after every operation, so it never holds many).
        .event_buffer(if cfg!(miri) { 256 } else { 8192 })
        .build()
        .unwrap();
    let events = Arc::new(store.subscribe());
    let over_cap = Arc::new(AtomicBool::new(false));
    let results = {
        let (store, clock, over_cap, events) = (
            store.clone(),
            clock.clone(),
            Arc::clone(&over_cap),
            Arc::clone(&events),
        );
        race_on(threads, move |t| {
            let keys = if cfg!(miri) { 70 } else { 96 };
            churn(&store, &clock, t, ops, keys, &over_cap, &events)
        })
    };
    let mut log: Vec<PeerEvent> = events.try_iter().collect();
    let mut tally = Tally::default();
    for (t, heard) in results {
        tally = tally + t;
        log.extend(heard);
    }
    assert!(!over_cap.load(Ordering::Relaxed), "len passed the cap");

    // The map, the counter and the threads' own view agree.
    let stored: HashSet<PublicKey> = store.get_all().iter().map(|p| p.public_key).collect();
    assert_eq!(store.len(), stored.len());
    assert_eq!(
        tally.inserts - tally.removed - tally.expired,
        store.len() as u64,
        "{tally:?}"
    );
    let stats = store.stats();
    assert_eq!(stats.peers, store.len());
    assert_eq!(
        (stats.inserts, stats.updates, stats.unchanged),
        (tally.inserts, tally.updates, tally.unchanged)
    );
    assert_eq!(
        (stats.rejected_full, stats.rejected_invalid),
        (tally.full, tally.invalid)
    );
    assert_eq!(
        (stats.removed, stats.expired),
        (tally.removed, tally.expired)
    );
    assert!(
        tally.full > 0 && tally.expired > 0,
        "the run hit the cap and the expiry: {tally:?}"
    );

    // Every change was heard once; replayed in `seq` order the events never insert a held
    // peer or remove a missing one, and end at the store's key set.
    assert_eq!(events.dropped(), 0, "the subscriber lost events");
    log.sort_by_key(|e| e.seq);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "a seq twice");
    let mut held: HashSet<PublicKey> = HashSet::new();
    let (mut news, mut updates, mut removals) = (0u64, 0u64, 0u64);
    for e in &log {
        match e.kind {
            PeerEventKind::New { .. } => {
                news += 1;
                assert!(held.insert(e.public_key), "New for a held peer: {e:?}");
            }
            PeerEventKind::Updated => {
                updates += 1;
                assert!(
                    held.contains(&e.public_key),
                    "Updated for a missing peer: {e:?}"
                );
            }
            PeerEventKind::Removed { .. } => {
                removals += 1;
                assert!(
                    held.remove(&e.public_key),
                    "Removed for a missing peer: {e:?}"
                );
            }
            other => panic!("an event this test does not know: {other:?}"),
        }
    }
    assert_eq!(
        (news, updates, removals),
        (tally.inserts, tally.updates, tally.removed + tally.expired)
    );
    assert_eq!(held, stored, "the event replay and the store disagree");
}

#[test]
fn every_operation_at_once_keeps_the_books() {
    // Under Miri a few hundred operations: enough to hit the cap and the expiry.
    let ops = if cfg!(miri) { 100 } else { 3000 };
    every_operation_at_once(THREADS, ops);
}

/// A number from the environment, or `default`.
fn from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "heavy: run explicitly (see the README's Testing section)"]
fn every_operation_at_once_heavy_16_threads() {
    every_operation_at_once(16, from_env("STRESS_OPS", 200_000) as usize);
}

#[test]
#[ignore = "heavy: run explicitly (see the README's Testing section)"]
fn every_operation_at_once_heavy_8_threads() {
    every_operation_at_once(8, from_env("STRESS_OPS", 400_000) as usize);
}

/// The process's resident memory in bytes (Linux), or `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A subscriber that keeps up: per key, the state its latest (highest `seq`) event says.
/// Events of one key can arrive out of `seq` order (two threads publish after their locks),
/// so the highest `seq` wins rather than the last to arrive.
#[derive(Default)]
struct Follower {
    latest: HashMap<PublicKey, (u64, bool)>,
    news: u64,
    updates: u64,
}

impl Follower {
    fn hear(&mut self, event: peerstore::PeerEvent) {
        let present = !matches!(event.kind, PeerEventKind::Removed { .. });
        self.news += u64::from(matches!(event.kind, PeerEventKind::New { .. }));
        self.updates += u64::from(event.kind == PeerEventKind::Updated);
        let entry = self.latest.entry(event.public_key).or_insert((0, false));
        if event.seq >= entry.0 {
            *entry = (event.seq, present);
        }
    }

    fn held(&self) -> HashSet<PublicKey> {
        self.latest
            .iter()
            .filter(|(_, (_, present))| *present)
            .map(|(k, _)| *k)
            .collect()
    }
}

/// A mesh of 1000 peers announced by LAN, DHT, gossip and transitive gossip from 8 threads for
/// `SOAK_SECS` (60) seconds, time running 100 times faster on a manual clock so that peers
/// expire and the real cleanup thread (every 5 ms) removes them; 4 subscribers, one of which
/// never reads. Memory must stay flat after the first 10 seconds, the 3 readers lose nothing,
/// and the books balance at the end.
#[test]
#[ignore = "a 60-second soak: run explicitly (see the README's Testing section)"]
fn soak_a_mesh_of_1000_peers_for_60_seconds() {
    let run_for = Duration::from_secs(from_env("SOAK_SECS", 60));
    let clock = ManualClock::new();
    let store = PeerStore::builder()
        .clock(clock.clone())
        .event_buffer(4096)
        .build()
        .unwrap();
    let cleanup = store.spawn_cleanup(Duration::from_millis(5));
    let deaf = store.subscribe();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let events = store.subscribe();
            std::thread::spawn(move || {
                let mut follower = Follower::default();
                while let Ok(event) = events.recv() {
                    follower.hear(event);
                }
                (follower, events.dropped())
            })
        })
        .collect();
    // Simulated time: one second every 10 ms of real time.
    let ticker = {
        let (clock, stop) = (clock.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                clock.advance(Duration::from_secs(1));
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push(resident_bytes());
                std::thread::sleep(Duration::from_secs(1));
            }
            samples
        })
    };

    let tallies = {
        let (store, clock) = (store.clone(), clock.clone());
        race_within(THREADS, run_for + DEADLINE, move |t| {
            let methods = [M::Lan, M::Dht, M::Gossip, M::GossipTransitive];
            let mut rng = Rng::new(t);
            let mut tally = Tally::default();
            let started = Instant::now();
            let epoch = clock.now();
            while started.elapsed() < run_for {
                // The mesh drifts: each simulated minute a tenth of it goes quiet and another
                // tenth of a pool of 3000 keys joins, so a key that leaves stays away long
                // enough to expire.
                let minute = (clock.now() - epoch).as_secs() / 60;
                for _ in 0..200 {
                    let n = (minute * 100 + rng.below(1000)) % 3000;
                    let mut info = PeerInfo::new(key(n as u32));
                    info.endpoint = Some(std::net::SocketAddr::from((
                        [198, 51, (n / 250) as u8, (n % 250) as u8 + 1],
                        51820,
                    )));
                    info.hostname = Some(format!("node-{n}").into());
                    let method = methods[rng.below(4) as usize].clone();
                    if method == M::GossipTransitive {
                        info.last_seen =
                            Some(clock.wall_now() - Duration::from_secs(rng.below(90)));
                    }
                    match store.update(info, method) {
                        Ok(UpdateOutcome::Inserted) => tally.inserts += 1,
                        Ok(_) => {}
                        Err(UpdateError::StoreFull { .. }) => tally.full += 1,
                        Err(err) => panic!("refused: {err}"),
                    }
                    if rng.below(500) == 0 {
                        let _ = store.get_active();
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            tally
        })
    };
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    let samples: Vec<u64> = sampler.join().unwrap().into_iter().flatten().collect();
    cleanup.stop();

    // Flat memory: after the first 10 s, never more than 10% (plus 4 MB of slack for the
    // allocator) above the most seen in them.
    if samples.len() > 12 {
        let warm = samples[..10].iter().copied().max().unwrap();
        let late = samples[10..].iter().copied().max().unwrap();
        assert!(
            late <= warm + warm / 10 + (4 << 20),
            "memory grew: {} MB in the first 10 s, {} MB later ({samples:?})",
            warm >> 20,
            late >> 20
        );
    }

    let stats = store.stats();
    let all: HashSet<PublicKey> = store.get_all().iter().map(|p| p.public_key).collect();
    assert_eq!(store.len(), all.len());
    assert!(store.len() <= store.max_peers());
    assert_eq!(
        stats.inserts - stats.removed - stats.expired,
        store.len() as u64
    );
    let inserts: u64 = tallies.iter().map(|t| t.inserts).sum();
    assert_eq!(stats.inserts, inserts);
    assert!(
        stats.expired > 0,
        "peers expired and were cleaned up: {stats:?}"
    );
    assert!(
        deaf.dropped() > 0,
        "the deaf subscriber lost events, as it should"
    );
    drop(deaf);
    // Dropping the store's last handle ends the readers' channels.
    let expected_news = stats.inserts;
    drop(store);
    for reader in readers {
        let (follower, dropped) = reader.join().unwrap();
        assert_eq!(dropped, 0, "a subscriber that keeps up lost events");
        assert_eq!(follower.news, expected_news);
        assert_eq!(
            follower.held(),
            all,
            "a reader's view differs from the store"
        );
    }
}

/// Eight threads at once ban and unban keys, flood the store with fresh keys by the DHT,
/// bring LAN newcomers, prove peers by handshakes and announce banned keys, under
/// `EvictUnproven` with an unproven quota: the cap and the quota hold at every step, a banned
/// key is never left in the store once its ban is placed, and at the end the books balance
/// (the stats, the map, the events replayed) and every slot comes back.
#[test]
// Under Miri a few operations a thread reach none of the paths this checks (the cap, an
// eviction, a refused ban); the plain and release runs race it in full, and Miri runs the
// store's concurrency through the tests above.
#[cfg_attr(miri, ignore)]
fn bans_floods_and_handshakes_at_once_keep_the_books() {
    const CAP: usize = 64;
    const UNPROVEN: usize = 40;
    // Each thread bans, unbans and announces four keys of its own (so that no other thread
    // lifts a ban it just placed), and floods keys of its own.
    const BANNED_POOL: u32 = 4;
    let ops = 2000;
    let clock = ManualClock::new();
    let store = PeerStore::builder()
        .clock(clock.clone())
        .max_peers(CAP)
        .when_full(peerstore::FullPolicy::EvictUnproven)
        .max_unproven(UNPROVEN)
        .event_buffer(1 << 20)
        .build()
        .unwrap();
    let events = store.subscribe();
    let shared = store.clone();
    race_on(THREADS, move |t| {
        let t = t as u32;
        let endpoint = support::addr("198.51.100.1:51820");
        for i in 0..ops {
            let pooled = key(t * BANNED_POOL + (i * 7) % BANNED_POOL);
            let fresh = key(1000 + t * 100_000 + i);
            match i % 10 {
                0 => {
                    if let Ok(removed) = shared.ban(&pooled, None, "stress") {
                        drop(removed);
                        assert!(shared.get(&pooled).is_none(), "a banned key stayed");
                    }
                }
                1 => drop(shared.unban(&pooled)),
                2 | 3 => {
                    let mut info = PeerInfo::new(pooled);
                    info.endpoint = Some(endpoint);
                    let _ = shared.update(info, M::Dht);
                }
                4 => drop(shared.confirm(&pooled, endpoint, peerstore::Evidence::Handshake)),
                5 => {
                    let _ = shared.update(PeerInfo::new(fresh), M::Lan);
                }
                6 => {
                    let _ = shared.update(PeerInfo::new(fresh), M::Dht);
                    let _ = shared.confirm(&fresh, endpoint, peerstore::Evidence::Handshake);
                }
                _ => {
                    let _ = shared.update(PeerInfo::new(fresh), M::Dht);
                }
            }
            // (The quota is checked at rest: a visit of every shard while others evict and
            // insert is no snapshot, and may count a victim and its newcomer both.)
            assert!(shared.len() <= CAP, "over the cap");
        }
    });
    for ban in store.banned() {
        assert!(store.get(&ban.public_key).is_none(), "banned and held");
    }
    let unproven = store.get_all().iter().filter(|p| !p.proven).count();
    assert!(unproven <= UNPROVEN, "{unproven} unproven at rest");
    let stats = store.stats();
    assert_eq!(
        stats.inserts,
        stats.removed + stats.expired + stats.evicted + stats.banned + store.len() as u64,
        "{stats:?}"
    );
    assert!(
        stats.evicted > 0
            && stats.banned > 0
            && stats.rejected_banned > 0
            && stats.rejected_full > 0,
        "the race went through every path: {stats:?}"
    );
    let mut log: Vec<PeerEvent> = events.try_iter().collect();
    assert_eq!(events.dropped(), 0);
    log.sort_by_key(|e| e.seq);
    let mut held: HashSet<PublicKey> = HashSet::new();
    for e in &log {
        match e.kind {
            PeerEventKind::New { .. } => assert!(held.insert(e.public_key), "New twice: {e:?}"),
            PeerEventKind::Removed { .. } => assert!(held.remove(&e.public_key), "{e:?}"),
            _ => assert!(held.contains(&e.public_key), "{e:?}"),
        }
    }
    let stored: HashSet<PublicKey> = store.get_all().iter().map(|p| p.public_key).collect();
    assert_eq!(held, stored, "the event replay and the store disagree");
    // Everyone expires; then the quota admits `UNPROVEN` newcomers again, and no more.
    clock.advance(Duration::from_secs(700));
    store.cleanup_stale();
    assert_eq!(store.len(), 0);
    let admitted = (0..UNPROVEN as u32 + 10)
        .filter(|n| {
            store
                .update(PeerInfo::new(key(9_000_000 + n)), M::Dht)
                .is_ok()
        })
        .count();
    assert_eq!(
        admitted, UNPROVEN,
        "every unproven slot came back, and only those"
    );
}
