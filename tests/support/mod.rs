//! Helpers shared by the integration tests: keys, announcements and a store on a manual clock.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, SystemTime};

use peerstore::{ManualClock, PeerInfo, PeerStore, PeerStoreBuilder, PublicKey, SystemClock};

/// A directory of one test's own, under the system's temporary directory, removed when dropped.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("peerstore-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixed wall-clock start, so failures print the same times on every run.
pub const START: Duration = Duration::from_secs(1_763_800_000);

pub fn key(n: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[31] = 0x5a;
    PublicKey::from_bytes(bytes)
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// An announcement of peer `n` with an endpoint.
pub fn at(n: u32, endpoint: &str) -> PeerInfo {
    let mut info = PeerInfo::new(key(n));
    info.endpoint = Some(addr(endpoint));
    info
}

pub fn clock() -> ManualClock {
    ManualClock::starting_at(SystemTime::UNIX_EPOCH + START)
}

/// A store with default limits on a manual clock.
pub fn store() -> (PeerStore, ManualClock) {
    on_clock(PeerStore::builder())
}

/// The store `builder` makes, on a manual clock at [`START`], and the clock: every test's
/// store comes from here or from [`builder`].
pub fn on_clock(builder: PeerStoreBuilder) -> (PeerStore, ManualClock) {
    let clock = clock();
    (builder.clock(clock.clone()).build().unwrap(), clock)
}

/// The map's shard counts every behaviour is tested under, forced so that a 2-core machine
/// and a 64-core one test the same thing: the fewest the map takes (most keys share a
/// shard and its lock) and many (most keys have a shard of their own).
pub const SHARDS: [usize; 2] = [2, 64];

/// Runs `test` once per shard count in [`SHARDS`] (for `PeerStoreBuilder::shards`); a failure
/// says which.
pub fn each_shards(test: impl Fn(usize)) {
    for shards in SHARDS {
        within(&format!("{shards} shards"), || test(shards));
    }
}

/// Runs `test` once per shard count, on a store with default limits on a manual clock.
pub fn each(test: impl Fn(PeerStore, ManualClock)) {
    each_shards(|shards| {
        let (store, clock) = on_clock(builder(shards));
        test(store, clock);
    });
}

/// A builder of a store with `shards` shards.
pub fn builder(shards: usize) -> PeerStoreBuilder {
    PeerStore::builder().shards(shards)
}

/// Runs `test`, for which time does not matter, once per shard count on a manual clock and
/// once per shard count on the system clock.
pub fn each_clock(test: impl Fn(PeerStore)) {
    for shards in SHARDS {
        within(&format!("{shards} shards, a manual clock"), || {
            test(builder(shards).clock(clock()).build().unwrap());
        });
        within(&format!("{shards} shards, the system clock"), || {
            test(builder(shards).clock(SystemClock).build().unwrap());
        });
    }
}

/// Runs `test`, and if it panics, panics again saying under which configuration.
fn within(config: &str, test: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test)) {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        panic!("under {config}: {message}");
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// How many threads the concurrency tests race.
pub const THREADS: usize = 8;
/// How long racing threads may take before the test calls it a deadlock (Miri runs a
/// thousand times slower).
pub const DEADLINE: Duration = Duration::from_secs(if cfg!(miri) { 900 } else { 60 });

/// Runs `work(thread index)` on `THREADS` threads released together; panics if they do not all
/// finish before the deadline (a deadlock) and re-raises any thread's panic.
pub fn race<T: Send + 'static>(work: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    race_on(THREADS, work)
}

/// [`race`] on `threads` threads.
pub fn race_on<T: Send + 'static>(
    threads: usize,
    work: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    race_within(threads, DEADLINE, work)
}

/// [`race_on`], for work that runs for a while on purpose: a deadlock is called only when
/// the threads have not all finished `deadline` after they were started.
pub fn race_within<T: Send + 'static>(
    threads: usize,
    deadline: Duration,
    work: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let deadline = std::time::Instant::now() + deadline;
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(threads));
    let (done, finished) = mpsc::channel();
    for t in 0..threads {
        let (work, barrier, done) = (Arc::clone(&work), Arc::clone(&barrier), done.clone());
        std::thread::spawn(move || {
            barrier.wait();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(t)));
            let _ = done.send((t, result));
        });
    }
    let mut results: Vec<Option<T>> = (0..threads).map(|_| None).collect();
    for _ in 0..threads {
        let (t, result) = finished
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("threads did not finish before the deadline: deadlock?");
        match result {
            Ok(value) => results[t] = Some(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every thread reported"))
        .collect()
}

/// `normal`, or `miri` under Miri: a store's size or an amount of work that Miri, a thousand
/// times slower, needs smaller (the race it sets up stays the same).
pub fn sized(normal: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { normal }
}

/// `normal` rounds, or a token few under Miri, which runs a thousand times slower.
pub fn rounds(normal: usize) -> usize {
    sized(normal, 2)
}
