//! The store wired into a mesh daemon, the way a daemon uses it, on a clock sped up so that the
//! whole life of a node fits in about two seconds:
//!
//! 1. restore the peer cache before discovery starts, so known peers are dialled at once;
//! 2. start the cleanup thread;
//! 3. discovery threads call `update` (here: a LAN neighbour set, and DHT results for peers
//!    that stop answering halfway);
//! 4. a reconciliation loop reads `get_active` and would configure WireGuard from it, and a
//!    health monitor tells the store which endpoints complete handshakes (`confirm`) and
//!    gives up on peers that stopped answering (`note_failure`, then `remove_for`, so that
//!    gossip cannot bring them straight back);
//! 5. a subscriber follows the events, and when it sees a gap in `seq` or its `dropped()`
//!    count rise it resynchronises from `get_all` instead of trusting its own view;
//! 6. the cache is saved periodically and once more at shutdown.
//!
//! ```text
//! cargo run --example daemon
//! ```
//!
//! Choosing `event_buffer`: a subscriber loses events only when it falls behind by more than
//! the buffer between two reads. Size it for the largest burst the slowest subscriber must
//! absorb without resynchronising: at start-up a cache restore and the first LAN and DHT
//! rounds announce every known peer at once, so a buffer of a few times `max_peers` avoids a
//! resynchronisation at every restart; a subscriber that resynchronises cheaply (from
//! `get_all`) can take the default 16. Each event slot costs about 64 bytes per subscriber.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use peerstore::{
    DiscoveryMethod, Evidence, FullPolicy, PeerEventKind, PeerInfo, PeerStore, PublicKey,
    ResilientPolicy, cache,
};

/// The daemon's timings, sped up from production's (5 min dead, 10 min removed, a cleanup each
/// minute, a cache save every few minutes) so that peers die and go within the run.
const DEAD_AFTER: Duration = Duration::from_millis(500);
const REMOVE_AFTER: Duration = Duration::from_millis(1000);
const CLEANUP_EVERY: Duration = Duration::from_millis(200);
const ANNOUNCE_EVERY: Duration = Duration::from_millis(50);
const RECONCILE_EVERY: Duration = Duration::from_millis(100);
const SAVE_EVERY: Duration = Duration::from_millis(500);
const RUN_FOR: Duration = Duration::from_millis(2000);

fn key(n: u8) -> PublicKey {
    let mut bytes = [n; 32];
    bytes[0] = n.wrapping_mul(37);
    PublicKey::from_bytes(bytes)
}

fn info(n: u8, endpoint: &str) -> PeerInfo {
    let mut info = PeerInfo::new(key(n));
    info.endpoint = Some(endpoint.parse().expect("a valid endpoint"));
    info.mesh_ip = Some([10, 99, 0, n].into());
    info.hostname = Some(format!("node-{n}").into());
    info
}

/// What the subscriber believes the store holds, kept from events, and how it stays honest.
struct Follower {
    known: HashMap<PublicKey, bool>,
    last_seq: Option<u64>,
    last_dropped: u64,
    resyncs: usize,
}

impl Follower {
    fn resync(&mut self, store: &PeerStore) {
        self.known = store
            .get_all()
            .iter()
            .map(|p| (p.public_key, true))
            .collect();
        self.resyncs += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch_dir()?;
    let cache_file = dir.join("peers.json");
    write_previous_cache(&cache_file)?;

    let store = PeerStore::builder()
        .dead_after(DEAD_AFTER)
        .remove_after(REMOVE_AFTER)
        // Small on purpose, so that the start-up burst overflows it and the subscriber has
        // to resynchronise; see the module docs for how to choose it.
        .event_buffer(8)
        // The opt-in policies a daemon in the field wants: endpoints that age and trust what
        // handshakes confirm, peers that stay removed, and no lockout by a flood.
        .endpoint_policy(ResilientPolicy::new().trust_for(3 * RECONCILE_EVERY))
        .tombstone_expired(REMOVE_AFTER)
        .when_full(FullPolicy::EvictSecondHand)
        .build()?;

    // 1. Known peers first: the cache, before any discovery runs.
    let restored = cache::restore(&store, &cache_file)?;
    println!(
        "restored {} peers from the cache ({} too old, {} invalid)",
        restored.restored, restored.skipped_too_old, restored.skipped_invalid
    );

    // 5. The subscriber, subscribed before discovery so it misses nothing it could hear.
    let events = store.subscribe();
    // 2. The cleanup thread; it stops when `cleanup` is dropped.
    let cleanup = store.spawn_cleanup(CLEANUP_EVERY);

    let running = Arc::new(AtomicBool::new(true));
    // Set by the DHT's thread when its peers stop answering.
    let dht_silent = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();

    // 3. Discovery: LAN neighbours announce themselves every round; DHT peers 20..30 answer
    //    for the first half of the run only.
    for (method, peers) in [
        (DiscoveryMethod::Lan, 1..=8),
        (DiscoveryMethod::Dht, 20..=29),
    ] {
        let (store, running) = (store.clone(), Arc::clone(&running));
        let dht_silent = Arc::clone(&dht_silent);
        workers.push(thread::spawn(move || {
            let mut round = 0u32;
            while running.load(Ordering::Relaxed) {
                for n in peers.clone() {
                    let silent = method == DiscoveryMethod::Dht && round > 10;
                    if silent {
                        dht_silent.store(true, Ordering::Relaxed);
                    }
                    if !silent {
                        let endpoint = format!("192.0.2.{n}:51820");
                        if let Err(err) = store.update(info(n, &endpoint), method.clone()) {
                            eprintln!("discovery: refused: {err}");
                        }
                    }
                }
                round += 1;
                thread::sleep(ANNOUNCE_EVERY);
            }
        }));
    }

    // 4. The health monitor: handshakes seen (here: every LAN neighbour's) confirm their
    //    endpoints; peers that stopped answering are given up on, with a tombstone.
    let monitor = {
        let (store, running) = (store.clone(), Arc::clone(&running));
        let dht_silent = Arc::clone(&dht_silent);
        thread::spawn(move || {
            let (mut confirmed, mut given_up) = (0, 0);
            while running.load(Ordering::Relaxed) {
                for peer in store.get_active() {
                    let Some(endpoint) = peer.endpoint else {
                        continue;
                    };
                    let lan = peer.endpoint_method == Some(DiscoveryMethod::Lan);
                    if lan && store.confirm(&peer.public_key, endpoint, Evidence::Handshake) {
                        confirmed += 1;
                    } else if !lan && dht_silent.load(Ordering::Relaxed) {
                        store.note_failure(&peer.public_key, endpoint);
                        if store.remove_for(&peer.public_key, RUN_FOR).is_some() {
                            given_up += 1;
                        }
                    }
                }
                thread::sleep(RECONCILE_EVERY);
            }
            (confirmed, given_up)
        })
    };

    // 4. Reconciliation: what WireGuard would be configured with.
    let reconciler = {
        let (store, running) = (store.clone(), Arc::clone(&running));
        thread::spawn(move || {
            let mut cycles = 0;
            let mut largest = 0;
            while running.load(Ordering::Relaxed) {
                let active = store.get_active();
                largest = largest.max(active.len());
                cycles += 1;
                thread::sleep(RECONCILE_EVERY);
            }
            (cycles, largest)
        })
    };

    // 6. The periodic save, on the main thread, with the subscriber's work between saves.
    let mut follower = Follower {
        known: HashMap::new(),
        last_seq: None,
        last_dropped: 0,
        resyncs: 0,
    };
    let started = std::time::Instant::now();
    let mut saves = 0;
    while started.elapsed() < RUN_FOR {
        let until = std::time::Instant::now() + SAVE_EVERY;
        let left = || until.saturating_duration_since(std::time::Instant::now());
        while let Ok(event) = events.recv_timeout(left()) {
            let gap = follower.last_seq.is_some_and(|last| event.seq != last + 1);
            follower.last_seq = Some(event.seq);
            if gap || events.dropped() > follower.last_dropped {
                // Events were lost (to this subscriber's full channel, or it saw only part of
                // the store's changes): its view may be wrong, so take the store's.
                follower.last_dropped = events.dropped();
                follower.resync(&store);
                continue;
            }
            match event.kind {
                PeerEventKind::New { .. } | PeerEventKind::Updated => {
                    follower.known.insert(event.public_key, true);
                }
                PeerEventKind::Removed { .. } => {
                    follower.known.remove(&event.public_key);
                }
                _ => follower.resync(&store),
            }
        }
        cache::save(&store, &cache_file)?;
        saves += 1;
    }

    // Shutdown: stop discovery, then save once more, so the next start knows every peer.
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| "a discovery thread panicked")?;
    }
    let (cycles, largest) = reconciler.join().map_err(|_| "the reconciler panicked")?;
    let (confirmed, given_up) = monitor.join().map_err(|_| "the health monitor panicked")?;
    cleanup.stop();
    let written = cache::save(&store, &cache_file)?;

    let stats = store.stats();
    println!(
        "reconciliation: {cycles} cycles, at most {largest} active peers; {} active at the end",
        store.get_active().len()
    );
    println!(
        "health monitor: {confirmed} endpoints confirmed, {given_up} peers given up on; {} tombstones standing",
        store.tombstones().len()
    );
    println!(
        "subscriber: {} events lost to its full channel, {} resynchronisations, it knows {} peers",
        events.dropped(),
        follower.resyncs,
        follower.known.len()
    );
    println!(
        "store: {} inserted, {} updated, {} unchanged, {} expired; {saves} periodic saves, {written} peers saved at shutdown",
        stats.inserts, stats.updates, stats.unchanged, stats.expired
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A directory of this run's own, removed at the end.
fn scratch_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("peerstore-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The cache a previous run of the daemon left: two peers heard a minute ago.
fn write_previous_cache(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let previous = PeerStore::new();
    for n in [40, 41] {
        previous.update(
            info(n, &format!("198.51.100.{n}:51820")),
            DiscoveryMethod::Dht,
        )?;
    }
    cache::save(&previous, path)?;
    Ok(())
}
