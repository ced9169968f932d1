//! The benchmark workloads and the two baselines, shared by `benches/store.rs` (criterion) and
//! `examples/bench_report.rs` (the one-table report), so both measure exactly the same code.
//!
//! Workloads (every one starts from a store prefilled with 1000 peers, `update(info(i, i), dht)`):
//!
//! - `info(i, j)`: key `i`; endpoint `[2001:db8::<i+1>]:51820` when `j % 3 == 0`, else
//!   `198.51.<(i/250)%250>.<i%250+1>:51820`; mesh_ip 10.99.0.1; hostname "host"; one routable
//!   network 192.168.0.0/24; NAT cone. The churn pool gives entry `j` the hostname `h<j>`.
//! - a pool of 4096 announcements, `pool[j] = info(j % 1000, j)`;
//! - keys by xorshift32 seeded `t * 7919 + 1` for thread `t`; the method by `(x >> 10) % 8`.
//!
//! The baselines:
//!
//! - [`Reference`]: the reference design in Rust: one `RwLock<HashMap<PublicKey, ReferencePeer>>`, deep
//!   copies on every read, and an event on every update sent to a clone of the subscriber list;
//! - [`Floor`]: a bare `DashMap` doing the same keyed write (an overwrite, no merge, no events)
//!   or handing out the same `Arc` snapshot on a read: what a sharded map costs at least.
#![allow(dead_code)] // the bench and the report each use a part
#![allow(
    clippy::cast_possible_truncation,
    reason = "peer indexes and thread numbers are small"
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use peerstore::{
    DiscoveryMethod, Evidence, Hostname, MethodSet, NatType, PEER_DEAD_TIMEOUT, Peer,
    PeerEventKind, PeerInfo, PeerStore, PublicKey, RoutableNetworks, Subscription,
    should_update_endpoint,
};

/// Peers every workload's store starts with.
pub const PEERS: usize = 1000;
/// Announcements in a pool.
pub const POOL: usize = 4096;

/// Peer `i`'s key: 32 bytes of splitmix64 output, as random-looking as real WireGuard keys.
pub fn key(i: usize) -> PublicKey {
    let mut state = i as u64;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    PublicKey::from_bytes(bytes)
}

/// The workload's typical announcement of peer `i`, variant `j`.
pub fn info(i: usize, j: usize) -> PeerInfo {
    let ip: IpAddr = if j.is_multiple_of(3) {
        Ipv6Addr::from((0x2001_0db8_u128 << 96) | (i as u128 + 1)).into()
    } else {
        Ipv4Addr::new(198, 51, ((i / 250) % 250) as u8, (i % 250 + 1) as u8).into()
    };
    let mut info = PeerInfo::new(key(i));
    info.endpoint = Some(SocketAddr::new(ip, 51820));
    info.mesh_ip = Some(Ipv4Addr::new(10, 99, 0, 1));
    info.hostname = Some("host".into());
    info.routable_networks = ["192.168.0.0/24".parse().expect("a network")].into();
    info.nat_type = Some(NatType::Cone);
    info
}

/// xorshift32: the workloads' key choice.
#[derive(Clone, Copy)]
pub struct XorShift(u32);

impl XorShift {
    pub fn for_thread(t: usize) -> Self {
        XorShift((t as u32).wrapping_mul(7919).wrapping_add(1))
    }

    #[inline]
    pub fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// What every workload draws from.
pub struct Workload {
    pub pool: Vec<PeerInfo>,
    pub churn_pool: Vec<PeerInfo>,
    pub methods: [DiscoveryMethod; 8],
    pub keys: Vec<PublicKey>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload::new()
    }
}

impl Workload {
    pub fn new() -> Self {
        let pool = (0..POOL).map(|j| info(j % PEERS, j)).collect();
        let churn_pool = (0..POOL)
            .map(|j| {
                let mut info = info(j % PEERS, j);
                info.hostname = Some(format!("h{j}").into());
                info
            })
            .collect();
        let methods = [
            "lan",
            "dht-rendezvous",
            "dht",
            "gossip",
            "dht-transitive",
            "gossip-transitive",
            "cache",
            "other",
        ]
        .map(|name| DiscoveryMethod::other(name).expect("a method name"));
        Workload {
            pool,
            churn_pool,
            methods,
            keys: (0..PEERS).map(key).collect(),
        }
    }

    #[inline]
    pub fn method(&self, x: u32) -> &DiscoveryMethod {
        &self.methods[((x >> 10) % 8) as usize]
    }

    /// A store of type `T` prefilled with the 1000 peers.
    pub fn prefilled<T: Target>(&self) -> T {
        let target = T::with_max_peers(peerstore::DEFAULT_MAX_PEERS);
        target.prefill(PEERS);
        target
    }
}

/// One of the three stores a workload runs against.
pub trait Target: Sync + Sized {
    /// What a read hands out.
    type Snapshot;
    /// A subscriber that never reads; dropping it unsubscribes.
    type Subscriber;
    /// A name for tables.
    const NAME: &'static str;
    /// An empty store holding at most `max_peers` peers.
    fn with_max_peers(max_peers: usize) -> Self;
    /// Merges (or, for the floor, writes) an announcement; `false` if refused (full).
    fn update(&self, info: PeerInfo, method: DiscoveryMethod) -> bool;
    fn get(&self, key: &PublicKey) -> Option<Self::Snapshot>;
    fn get_active(&self) -> Vec<Self::Snapshot>;
    fn subscribe_idle(&self) -> Self::Subscriber;

    /// Fills the store with peers `0..n`, each as `info(i, i)` heard by the DHT.
    fn prefill(&self, n: usize) {
        for i in 0..n {
            assert!(self.update(info(i, i), DiscoveryMethod::Dht), "prefill {i}");
        }
    }
}

impl Target for PeerStore {
    type Snapshot = Arc<Peer>;
    type Subscriber = Subscription;
    const NAME: &'static str = "peerstore";

    fn with_max_peers(max_peers: usize) -> Self {
        PeerStore::builder()
            .max_peers(max_peers)
            .build()
            .expect("valid store settings")
    }

    #[inline]
    fn update(&self, info: PeerInfo, method: DiscoveryMethod) -> bool {
        PeerStore::update(self, info, method).is_ok()
    }

    #[inline]
    fn get(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        PeerStore::get(self, key)
    }

    fn get_active(&self) -> Vec<Arc<Peer>> {
        PeerStore::get_active(self)
    }

    fn subscribe_idle(&self) -> Subscription {
        self.subscribe()
    }
}

/// The event the reference design sends: the peer and what happened to it, as Go's `PeerEvent`.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceEvent {
    pub public_key: PublicKey,
    pub kind: PeerEventKind,
}

/// The reference design, as the Go store does it: one lock around a map of plain records,
/// a deep copy for every reader, and an event for every update to a copy of the subscriber
/// list taken under its own lock.
pub struct Reference {
    peers: RwLock<HashMap<PublicKey, ReferencePeer>>,
    subscribers: Mutex<Vec<Sender<ReferenceEvent>>>,
    max_peers: usize,
}

impl Reference {
    fn notify(&self, key: PublicKey, kind: PeerEventKind) {
        let subscribers = self.subscribers.lock().expect("not poisoned").clone();
        let event = ReferenceEvent {
            public_key: key,
            kind,
        };
        for subscriber in &subscribers {
            // Go's `select { case ch <- ev: default: }`.
            let _ = subscriber.try_send(event);
        }
    }
}

impl Target for Reference {
    type Snapshot = ReferencePeer;
    type Subscriber = Receiver<ReferenceEvent>;
    const NAME: &'static str = "reference";

    fn with_max_peers(max_peers: usize) -> Self {
        Reference {
            peers: RwLock::default(),
            subscribers: Mutex::default(),
            max_peers,
        }
    }

    fn update(&self, info: PeerInfo, method: DiscoveryMethod) -> bool {
        let key = info.public_key;
        let now = SystemTime::now();
        let kind = {
            let mut peers = self.peers.write().expect("not poisoned");
            let len = peers.len();
            match peers.get_mut(&key) {
                Some(peer) => {
                    if let Some(endpoint) = info.endpoint {
                        let current = peer.endpoint.zip(peer.endpoint_method.as_ref());
                        if should_update_endpoint(current, endpoint, &method) {
                            peer.endpoint = Some(endpoint);
                            peer.endpoint_method = Some(method.clone());
                        }
                    }
                    if info.mesh_ip.is_some() {
                        peer.mesh_ip = info.mesh_ip;
                    }
                    if info.mesh_ipv6.is_some() {
                        peer.mesh_ipv6 = info.mesh_ipv6;
                    }
                    if info.hostname.as_ref().is_some_and(|h| !h.is_empty()) {
                        peer.hostname = info.hostname;
                    }
                    if !info.routable_networks.is_empty() {
                        peer.routable_networks = info.routable_networks;
                    }
                    peer.introducer = info.introducer;
                    if info.nat_type.is_some() {
                        peer.nat_type = info.nat_type;
                    }
                    if method.refreshes_last_seen() {
                        peer.last_seen = now;
                    }
                    if !peer.discovered_via.contains(&method) {
                        peer.discovered_via.push(method);
                    }
                    PeerEventKind::Updated
                }
                None => {
                    if len >= self.max_peers {
                        return false;
                    }
                    let has_endpoint = info.endpoint.is_some();
                    peers.insert(
                        key,
                        ReferencePeer {
                            public_key: key,
                            endpoint: info.endpoint,
                            endpoint_method: has_endpoint.then(|| method.clone()),
                            mesh_ip: info.mesh_ip,
                            mesh_ipv6: info.mesh_ipv6,
                            hostname: info.hostname,
                            routable_networks: info.routable_networks,
                            introducer: info.introducer,
                            nat_type: info.nat_type,
                            discovered_via: vec![method],
                            last_seen: info.last_seen.unwrap_or(now),
                            latency: None,
                        },
                    );
                    PeerEventKind::New { readmitted: false }
                }
            }
        };
        self.notify(key, kind);
        true
    }

    fn get(&self, key: &PublicKey) -> Option<ReferencePeer> {
        self.peers.read().expect("not poisoned").get(key).cloned()
    }

    fn get_active(&self) -> Vec<ReferencePeer> {
        let now = SystemTime::now();
        let peers = self.peers.read().expect("not poisoned");
        peers
            .values()
            .filter(|p| {
                now.duration_since(p.last_seen)
                    .map_or(true, |age| age <= PEER_DEAD_TIMEOUT)
            })
            .cloned()
            .collect()
    }

    fn subscribe_idle(&self) -> Receiver<ReferenceEvent> {
        let (sender, receiver) = crossbeam_channel::bounded(peerstore::EVENT_BUFFER_SIZE);
        self.subscribers.lock().expect("not poisoned").push(sender);
        receiver
    }
}

/// The reference's peer, as Go's struct holds it: the methods heard in a list that grows. It
/// keeps the host name and networks it is given, as Go's struct shares a decoded string.
#[derive(Debug, Clone)]
pub struct ReferencePeer {
    pub public_key: PublicKey,
    pub endpoint: Option<SocketAddr>,
    pub endpoint_method: Option<DiscoveryMethod>,
    pub mesh_ip: Option<Ipv4Addr>,
    pub mesh_ipv6: Option<Ipv6Addr>,
    pub hostname: Option<Hostname>,
    pub routable_networks: RoutableNetworks,
    pub introducer: bool,
    pub nat_type: Option<NatType>,
    pub discovered_via: Vec<DiscoveryMethod>,
    pub last_seen: SystemTime,
    pub latency: Option<Duration>,
}

/// The floor: a bare `DashMap` (default hasher). A write is an overwrite of the announcement
/// under its key (new keys counted against the cap); a read hands out an `Arc` snapshot.
pub struct Floor {
    writes: DashMap<PublicKey, PeerInfo>,
    snapshots: DashMap<PublicKey, Arc<Peer>>,
    held: AtomicUsize,
    max_peers: usize,
}

impl Target for Floor {
    type Snapshot = Arc<Peer>;
    type Subscriber = ();
    const NAME: &'static str = "floor";

    fn with_max_peers(max_peers: usize) -> Self {
        Floor {
            writes: DashMap::new(),
            snapshots: DashMap::new(),
            held: AtomicUsize::new(0),
            max_peers,
        }
    }

    #[inline]
    fn update(&self, info: PeerInfo, _method: DiscoveryMethod) -> bool {
        match self.writes.entry(info.public_key) {
            Entry::Occupied(mut entry) => {
                entry.insert(info);
            }
            Entry::Vacant(entry) => {
                if self.held.load(Ordering::Relaxed) >= self.max_peers {
                    return false;
                }
                self.held.fetch_add(1, Ordering::Relaxed);
                entry.insert(info);
            }
        }
        true
    }

    fn prefill(&self, n: usize) {
        for i in 0..n {
            let info = info(i, i);
            let mut peer = Peer::new(info.public_key, SystemTime::now());
            peer.endpoint = info.endpoint;
            peer.endpoint_method = Some(DiscoveryMethod::Dht);
            peer.mesh_ip = info.mesh_ip;
            peer.mesh_ipv6 = info.mesh_ipv6;
            peer.hostname = info.hostname.clone();
            peer.routable_networks = info.routable_networks.clone();
            peer.introducer = info.introducer;
            peer.nat_type = info.nat_type;
            peer.discovered_via = MethodSet::from(DiscoveryMethod::Dht);
            self.snapshots.insert(info.public_key, Arc::new(peer));
            assert!(self.update(info, DiscoveryMethod::Dht), "prefill {i}");
        }
    }

    #[inline]
    fn get(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        self.snapshots.get(key).map(|r| Arc::clone(&r))
    }

    fn get_active(&self) -> Vec<Arc<Peer>> {
        let mut out = Vec::with_capacity(self.snapshots.len());
        out.extend(self.snapshots.iter().map(|r| Arc::clone(&r)));
        out
    }

    fn subscribe_idle(&self) {}
}

// ---- one thread's share of a workload -------------------------------------------------------

/// `ops` updates from `pool` (the update and churn workloads).
pub fn update_ops<T: Target>(target: &T, w: &Workload, pool: &[PeerInfo], thread: usize, ops: u64) {
    let mut rng = XorShift::for_thread(thread);
    for n in 0..ops {
        let x = rng.next();
        let j = ((x % 1000) as usize + (n & 3) as usize * 1000) % POOL;
        black_box(target.update(pool[j].clone(), w.method(x).clone()));
    }
}

/// The input alone: what `update_ops` spends cloning announcements and methods (and dropping
/// them), to be taken off its figure.
pub fn clone_ops(w: &Workload, pool: &[PeerInfo], thread: usize, ops: u64) {
    let mut rng = XorShift::for_thread(thread);
    for n in 0..ops {
        let x = rng.next();
        let j = ((x % 1000) as usize + (n & 3) as usize * 1000) % POOL;
        black_box((pool[j].clone(), w.method(x).clone()));
    }
}

/// `ops` reads of one peer each.
pub fn get_ops<T: Target>(target: &T, w: &Workload, thread: usize, ops: u64) {
    let mut rng = XorShift::for_thread(thread);
    for _ in 0..ops {
        let x = rng.next();
        black_box(target.get(&w.keys[(x % 1000) as usize]));
    }
}

/// Confirms every peer's stored endpoint by a handshake, as a monitor confirms every peer that
/// answers: under the resilient policy each peer then has a trusted candidate.
pub fn confirm_every_peer(store: &PeerStore, w: &Workload) {
    for key in &w.keys {
        let endpoint = store.get(key).and_then(|p| p.endpoint);
        let trusted = store.confirm(key, endpoint.expect("an endpoint"), Evidence::Handshake);
        assert!(trusted, "a handshake at the stored endpoint confirms it");
    }
}

/// `ops` reads of every active peer.
pub fn get_active_ops<T: Target>(target: &T, ops: u64) {
    for _ in 0..ops {
        black_box(target.get_active());
    }
}

/// Updates spread over `peers` stored peers: the update workload with the key drawn from all
/// of them (for the flat-cost check at 1,000 and 1,000,000 peers).
pub fn spread_update_ops<T: Target>(
    target: &T,
    w: &Workload,
    peers: usize,
    thread: usize,
    ops: u64,
) {
    let mut rng = XorShift::for_thread(thread);
    for n in 0..ops {
        let (info, method) = spread_input(w, peers, &mut rng, n);
        black_box(target.update(info, method));
    }
}

/// The input of `spread_update_ops` alone.
pub fn spread_clone_ops(w: &Workload, peers: usize, thread: usize, ops: u64) {
    let mut rng = XorShift::for_thread(thread);
    for n in 0..ops {
        black_box(spread_input(w, peers, &mut rng, n));
    }
}

/// Op `n`'s announcement: a pool entry re-keyed to one of `peers`, as a fresh owned copy.
fn spread_input(
    w: &Workload,
    peers: usize,
    rng: &mut XorShift,
    n: u64,
) -> (PeerInfo, DiscoveryMethod) {
    let x = rng.next();
    let j = ((x % 1000) as usize + (n & 3) as usize * 1000) % POOL;
    let mut info = w.pool[j].clone();
    info.public_key = key(x as usize % peers);
    (info, w.method(x).clone())
}

/// A fresh store and 2000 new peers for it: 1000 go in, 1000 are refused as full.
pub fn insert_to_cap_input() -> Vec<PeerInfo> {
    (0..2 * PEERS).map(|i| info(i, i)).collect()
}

/// Offers every announcement of `input` to a fresh `target`; the time taken, per call.
pub fn insert_to_cap<T: Target>(input: Vec<PeerInfo>) -> Duration {
    let target = T::with_max_peers(PEERS);
    let calls = input.len() as u32;
    let start = Instant::now();
    let mut accepted = 0;
    for info in input {
        accepted += usize::from(target.update(info, DiscoveryMethod::Dht));
    }
    let elapsed = start.elapsed();
    assert_eq!(
        accepted,
        PEERS,
        "{} took the wrong number of peers",
        T::NAME
    );
    drop(target);
    elapsed / calls
}

/// Runs `work(thread)` on `threads` threads released together; the wall time from the first
/// thread's start to the last one's end. Each thread reads the clock itself: with as many
/// workers as cores, a coordinating thread may not run again until a worker is done.
pub fn on_threads(threads: usize, work: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    work(t);
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a workload thread panicked"))
            .collect()
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    last - first
}
