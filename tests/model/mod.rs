//! A model of the store: one thread, a `HashMap`, the merge rules written out plainly from the
//! documentation. `run` drives the real store and the model with the same operations and
//! reports the first step where they disagree.
//!
//! Shared by the property tests (`tests/properties.rs`) and the `ops` fuzz target, so it depends on
//! nothing but the crate and std. Only `decide_endpoint` (the endpoint rule table, itself
//! pinned case by case in the crate's tests) is taken from the crate.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use peerstore::{
    Clock, DiscoveryMethod, ManualClock, MethodSet, NatType, Peer, PeerEventKind, PeerInfo,
    PeerStore, PublicKey, RemovalCause, Subscription, UpdateError, UpdateOutcome, decide_endpoint,
};

/// How many distinct peers the operations name: more than the cap, so the cap is hit.
pub const KEYS: u8 = 6;
/// The model store's cap.
pub const CAP: usize = 4;
pub const DEAD_AFTER: Duration = Duration::from_secs(300);
pub const REMOVE_AFTER: Duration = Duration::from_secs(600);
/// Where the wall clock starts (2025-11-22), so carried times can reach back to 1970.
pub const START: Duration = Duration::from_secs(1_763_800_000);

/// One operation, as small numbers that `Op::*` methods turn into values, so that proptest and
/// the fuzzer can both make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Update(Announce),
    Remove {
        key: u8,
    },
    Cleanup,
    Advance {
        secs: u16,
    },
    SetLatency {
        key: u8,
        ms: u16,
    },
    /// `confirm` of an endpoint from the table (with a probe's round trip when `probe`).
    Confirm {
        key: u8,
        endpoint: u8,
        probe: bool,
    },
    /// `note_failure` of an endpoint from the table.
    Fail {
        key: u8,
        endpoint: u8,
    },
}

/// An announcement, field by field; each number picks from a small table of values, good and bad.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Announce {
    pub key: u8,
    pub method: u8,
    pub endpoint: u8,
    pub mesh_ip: Option<u8>,
    pub mesh_ipv6: Option<u8>,
    pub hostname: u8,
    pub networks: u8,
    pub introducer: bool,
    pub nat: u8,
    pub last_seen: u8,
    pub seen_secs: u16,
}

pub fn key(n: u8) -> PublicKey {
    let mut bytes = [0xa5; 32];
    bytes[0] = n % KEYS;
    PublicKey::from_bytes(bytes)
}

pub fn method(n: u8) -> DiscoveryMethod {
    match n % 9 {
        0 => DiscoveryMethod::Lan,
        1 => DiscoveryMethod::DhtRendezvous,
        2 => DiscoveryMethod::Dht,
        3 => DiscoveryMethod::Gossip,
        4 => DiscoveryMethod::DhtTransitive,
        5 => DiscoveryMethod::GossipTransitive,
        6 => DiscoveryMethod::Cache,
        7 => DiscoveryMethod::other("mdns").unwrap(),
        _ => DiscoveryMethod::other("carrier-pigeon").unwrap(),
    }
}

pub fn endpoint(n: u8) -> Option<SocketAddr> {
    let s = match n % 14 {
        0 => return None,
        1 => "198.51.100.1:51820",
        2 => "198.51.100.1:51821",
        3 => "198.51.100.2:51820",
        4 => "192.168.1.5:51820",
        5 => "203.0.113.9:4000",
        6 => "[2001:db8::1]:51820",
        7 => "[2001:db8::2]:51820",
        8 => "[::ffff:198.51.100.3]:51820",
        // Refused: one of each problem.
        9 => "198.51.100.1:0",
        10 => "0.0.0.0:51820",
        11 => "224.0.0.251:51820",
        12 => "255.255.255.255:51820",
        _ => "[ff02::1]:51820",
    };
    Some(s.parse().expect("table address"))
}

pub fn hostname(n: u8) -> Option<String> {
    match n % 11 {
        0 => None,
        1 => Some(String::new()),
        2 => Some("alpha".into()),
        3 => Some("beta.mesh".into()),
        4 => Some("has space".into()),
        5 => Some("x".repeat(254)),
        // Longer than a host name is held inline.
        6 => Some("gateway-frankfurt-3.backbone.example.mesh".into()),
        7 => Some("tab\there".into()),
        // Characters that disguise a name: a right-to-left override, a zero-width space, a BOM.
        8 => Some("evil\u{202e}gpj.exe".into()),
        9 => Some("zero\u{200b}width".into()),
        _ => Some("\u{feff}bom".into()),
    }
}

/// A mesh IPv4 address: mostly usable ones (a link-local one among them), and one of each
/// refusal.
pub fn mesh_ip(n: u8) -> Ipv4Addr {
    match n % 12 {
        0..=6 => Ipv4Addr::new(10, 99, 0, n % 4),
        7 => Ipv4Addr::new(169, 254, 0, 7),
        8 => Ipv4Addr::UNSPECIFIED,
        9 => Ipv4Addr::BROADCAST,
        10 => Ipv4Addr::new(224, 0, 0, 1),
        _ => Ipv4Addr::LOCALHOST,
    }
}

/// A mesh IPv6 address, the same way; an IPv4-mapped loopback address is loopback too.
pub fn mesh_ipv6(n: u8) -> Ipv6Addr {
    match n % 12 {
        0..=6 => Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(n % 4)),
        7 => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7),
        8 => Ipv6Addr::UNSPECIFIED,
        9 => Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        10 => Ipv6Addr::LOCALHOST,
        _ => Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
    }
}

pub fn networks(n: u8) -> Vec<IpNet> {
    match n % 6 {
        0 => Vec::new(),
        1 => vec!["10.0.0.0/8".parse().unwrap()],
        2 => vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
        3 => vec!["192.168.0.0/16".parse().unwrap()],
        // More than a peer holds inline.
        4 => ["10.1.0.0/16", "10.2.0.0/16", "fd00:1::/48"]
            .map(|n| n.parse().unwrap())
            .to_vec(),
        _ => (0..=256u32)
            .map(|i| IpNet::from(ipnet::Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap()))
            .collect(),
    }
}

pub fn nat(n: u8) -> Option<NatType> {
    match n % 4 {
        0 => None,
        1 => Some(NatType::Cone),
        2 => Some(NatType::Symmetric),
        _ => Some(NatType::Unknown),
    }
}

impl Announce {
    /// The `PeerInfo` this stands for, on a clock whose wall time is `wall`.
    pub fn info(&self, wall: SystemTime) -> PeerInfo {
        let secs = Duration::from_secs(u64::from(self.seen_secs));
        let mut info = PeerInfo::new(key(self.key));
        info.endpoint = endpoint(self.endpoint);
        info.mesh_ip = self.mesh_ip.map(mesh_ip);
        info.mesh_ipv6 = self.mesh_ipv6.map(mesh_ipv6);
        info.hostname = hostname(self.hostname).map(Into::into);
        info.routable_networks = networks(self.networks).into();
        info.introducer = self.introducer;
        info.nat_type = nat(self.nat);
        info.last_seen = match self.last_seen % 5 {
            0 => None,
            1 => Some(wall - secs),
            2 => Some(wall + secs),
            3 => Some(UNIX_EPOCH),
            _ => Some(wall - secs * 60),
        };
        info
    }
}

/// What the model says the store must hold for one peer.
#[derive(Debug, Clone)]
struct Entry {
    peer: Peer,
    /// Every method heard, in order: kept as a plain list here and copied into
    /// `peer.discovered_via`, so the store's compact set is checked against it.
    via: Vec<DiscoveryMethod>,
    /// Nanoseconds since the start when the peer last counted as heard from (may be negative).
    seen_at: i128,
}

/// The expected result of one `update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Ok(UpdateOutcome),
    Full,
    /// Refused, naming this field.
    Invalid(&'static str),
    /// Refused in a way the model does not know.
    Unknown(String),
}

#[derive(Debug, Default)]
pub struct Model {
    peers: HashMap<PublicKey, Entry>,
    /// Nanoseconds since the start, on the monotonic clock.
    now: i128,
}

fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).expect("a test span")
}

impl Model {
    fn wall(&self) -> SystemTime {
        UNIX_EPOCH
            + START
            + Duration::from_nanos(u64::try_from(self.now).expect("time only advances"))
    }

    fn silent_longer_than(&self, entry: &Entry, limit: Duration) -> bool {
        self.now - entry.seen_at > nanos(limit)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// The refusal rules, written out: the field named, or `None` for an acceptable announcement.
    fn refused_field(info: &PeerInfo) -> Option<&'static str> {
        if let Some(ep) = info.endpoint {
            let ip = ep.ip().to_canonical();
            let broadcast = matches!(ip, std::net::IpAddr::V4(v4) if v4 == Ipv4Addr::BROADCAST);
            if ip.is_unspecified() || ip.is_multicast() || broadcast || ep.port() == 0 {
                return Some("endpoint");
            }
        }
        let unusable = |ip: std::net::IpAddr| {
            let ip = ip.to_canonical();
            let broadcast = matches!(ip, std::net::IpAddr::V4(v4) if v4 == Ipv4Addr::BROADCAST);
            ip.is_unspecified() || ip.is_multicast() || broadcast || ip.is_loopback()
        };
        if info.mesh_ip.is_some_and(|ip| unusable(ip.into())) {
            return Some("mesh_ip");
        }
        if info.mesh_ipv6.is_some_and(|ip| unusable(ip.into())) {
            return Some("mesh_ipv6");
        }
        // The format and separator characters the table below uses, written out.
        let disguising = |c: char| {
            matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2028}' | '\u{2029}')
                || matches!(c, '\u{2066}'..='\u{2069}' | '\u{feff}')
        };
        if let Some(h) = &info.hostname
            && (h.len() > 253
                || h.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || disguising(c)))
        {
            return Some("hostname");
        }
        if info.routable_networks.len() > 256 {
            return Some("routable_networks");
        }
        None
    }

    /// A carried time as (wall time kept, age): never in the future.
    fn carried(&self, t: SystemTime) -> (SystemTime, i128) {
        match self.wall().duration_since(t) {
            Ok(age) => (t, nanos(age)),
            Err(_) => (self.wall(), 0),
        }
    }

    /// Applies an update; returns the expected result and the event it emits, if any.
    pub fn update(
        &mut self,
        info: PeerInfo,
        method: DiscoveryMethod,
    ) -> (Expected, Option<PeerEventKind>) {
        if let Some(field) = Model::refused_field(&info) {
            return (Expected::Invalid(field), None);
        }
        // An IPv4-mapped endpoint is stored as the IPv4 address it maps.
        let mut info = info;
        info.endpoint = info
            .endpoint
            .map(|e| SocketAddr::new(e.ip().to_canonical(), e.port()));
        let now = self.now;
        let wall = self.wall();
        let carried = info.last_seen.map(|t| self.carried(t));
        let Some(entry) = self.peers.get_mut(&info.public_key) else {
            if self.peers.len() >= CAP {
                return (Expected::Full, None);
            }
            // First-hand means heard now; only the other methods' carried times count.
            let (last_seen, age) = carried
                .filter(|_| !method.refreshes_last_seen())
                .unwrap_or((wall, 0));
            let mut peer = Peer::new(info.public_key, last_seen);
            peer.endpoint = info.endpoint;
            peer.endpoint_method = info.endpoint.map(|_| method.clone());
            peer.mesh_ip = info.mesh_ip;
            peer.mesh_ipv6 = info.mesh_ipv6;
            peer.hostname = info.hostname.filter(|h| !h.is_empty());
            peer.routable_networks = info.routable_networks;
            peer.introducer = info.introducer;
            peer.nat_type = info.nat_type;
            peer.discovered_via = MethodSet::from(method.clone());
            self.peers.insert(
                peer.public_key,
                Entry {
                    peer,
                    via: vec![method],
                    seen_at: now - age,
                },
            );
            return (
                Expected::Ok(UpdateOutcome::Inserted),
                Some(PeerEventKind::New),
            );
        };
        let was_dead = now - entry.seen_at > nanos(DEAD_AFTER);
        let old = entry.peer.clone();
        let p = &mut entry.peer;
        if let Some(new) = info.endpoint {
            let current = p.endpoint.zip(p.endpoint_method.as_ref());
            if decide_endpoint(current, new, &method).accepted {
                p.endpoint = Some(new);
                p.endpoint_method = Some(method.clone());
            }
        }
        if info.mesh_ip.is_some() {
            p.mesh_ip = info.mesh_ip;
        }
        if info.mesh_ipv6.is_some() {
            p.mesh_ipv6 = info.mesh_ipv6;
        }
        if info.hostname.as_ref().is_some_and(|h| !h.is_empty()) {
            p.hostname = info.hostname;
        }
        if !info.routable_networks.is_empty() {
            p.routable_networks = info.routable_networks;
        }
        p.introducer = info.introducer;
        if info.nat_type.is_some() {
            p.nat_type = info.nat_type;
        }
        if !entry.via.contains(&method) {
            entry.via.push(method.clone());
            p.discovered_via = entry.via.iter().cloned().collect();
        }
        if method.refreshes_last_seen() {
            p.last_seen = wall;
            entry.seen_at = now;
        } else if let Some((t, age)) = carried
            && now - age > entry.seen_at
        {
            p.last_seen = t;
            entry.seen_at = now - age;
        }
        let mut comparable = p.clone();
        comparable.last_seen = old.last_seen;
        let changed = comparable != old;
        let revived = was_dead && now - entry.seen_at <= nanos(DEAD_AFTER);
        if changed || revived {
            (
                Expected::Ok(UpdateOutcome::Updated),
                Some(PeerEventKind::Updated),
            )
        } else {
            (Expected::Ok(UpdateOutcome::Unchanged), None)
        }
    }

    pub fn remove(&mut self, key: &PublicKey) -> Option<Peer> {
        self.peers.remove(key).map(|e| e.peer)
    }

    pub fn cleanup(&mut self) -> Vec<PublicKey> {
        let mut gone: Vec<PublicKey> = self
            .peers
            .iter()
            .filter(|(_, e)| self.silent_longer_than(e, REMOVE_AFTER))
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.peers.remove(k);
        }
        gone.sort();
        gone
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += nanos(by);
    }

    /// Evidence or a failure under the seed policy: known only for the peer's own endpoint,
    /// and nothing changes.
    pub fn evidence(&self, key: &PublicKey, endpoint: Option<SocketAddr>) -> bool {
        let canonical = endpoint.map(|e| SocketAddr::new(e.ip().to_canonical(), e.port()));
        self.peers
            .get(key)
            .is_some_and(|e| canonical.is_some() && e.peer.endpoint == canonical)
    }

    pub fn set_latency(&mut self, key: &PublicKey, latency: Duration) -> bool {
        match self.peers.get_mut(key) {
            Some(e) => {
                e.peer.latency = Some(latency);
                true
            }
            None => false,
        }
    }

    pub fn peers(&self) -> Vec<Peer> {
        let mut all: Vec<Peer> = self.peers.values().map(|e| e.peer.clone()).collect();
        all.sort_by_key(|p| p.public_key);
        all
    }

    pub fn active(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .peers
            .iter()
            .filter(|(_, e)| !self.silent_longer_than(e, DEAD_AFTER))
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }
}

/// The real store, built to match the model, with one subscriber that hears everything.
pub struct Subject {
    pub store: PeerStore,
    pub clock: ManualClock,
    pub events: Subscription,
    last_seq: Option<u64>,
}

impl Subject {
    pub fn new() -> Self {
        let clock = ManualClock::starting_at(UNIX_EPOCH + START);
        let store = PeerStore::builder()
            .clock(clock.clone())
            .max_peers(CAP)
            .dead_after(DEAD_AFTER)
            .remove_after(REMOVE_AFTER)
            .event_buffer(64)
            .build()
            .unwrap();
        let events = store.subscribe();
        Subject {
            store,
            clock,
            events,
            last_seq: None,
        }
    }

    pub fn wall(&self) -> SystemTime {
        self.clock.wall_now()
    }

    /// The events since the last call, checking that `seq` only grows.
    fn drain(&mut self) -> Result<Vec<(PublicKey, PeerEventKind)>, String> {
        let mut out = Vec::new();
        for e in self.events.try_iter() {
            if self.last_seq.is_some_and(|last| e.seq <= last) {
                return Err(format!(
                    "event seq went from {:?} to {}",
                    self.last_seq, e.seq
                ));
            }
            self.last_seq = Some(e.seq);
            out.push((e.public_key, e.kind));
        }
        Ok(out)
    }
}

impl Default for Subject {
    fn default() -> Self {
        Subject::new()
    }
}

fn expected_of(result: &Result<UpdateOutcome, UpdateError>) -> Expected {
    match result {
        Ok(outcome) => Expected::Ok(*outcome),
        Err(UpdateError::StoreFull { .. }) => Expected::Full,
        Err(UpdateError::Invalid(why)) => Expected::Invalid(why.field()),
        Err(other) => Expected::Unknown(other.to_string()),
    }
}

/// Runs `ops` against the store and the model; `Err` says at which step and how they differ.
pub fn run(ops: &[Op]) -> Result<(), String> {
    let mut subject = Subject::new();
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        step(&mut subject, &mut model, op).map_err(|e| format!("step {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

/// One operation on both, then a comparison of everything observable.
pub fn step(subject: &mut Subject, model: &mut Model, op: &Op) -> Result<(), String> {
    let store = &subject.store;
    let mut expected_events: Vec<(PublicKey, PeerEventKind)> = Vec::new();
    match op {
        Op::Update(a) => {
            let info = a.info(subject.wall());
            let m = method(a.method);
            let got = store.update(info.clone(), m.clone());
            let (want, event) = model.update(info.clone(), m);
            if expected_of(&got) != want {
                return Err(format!("update returned {got:?}, the model says {want:?}"));
            }
            if let Err(UpdateError::StoreFull { capacity }) = got
                && capacity != CAP
            {
                return Err(format!("StoreFull names capacity {capacity}"));
            }
            expected_events.extend(event.map(|kind| (info.public_key, kind)));
        }
        Op::Remove { key: k } => {
            let got = store.remove(&key(*k)).map(|p| (*p).clone());
            let want = model.remove(&key(*k));
            if got != want {
                return Err(format!("remove returned {got:?}, the model says {want:?}"));
            }
            if want.is_some() {
                expected_events.push((
                    key(*k),
                    PeerEventKind::Removed {
                        cause: RemovalCause::Explicit,
                    },
                ));
            }
        }
        Op::Cleanup => {
            let mut got = store.cleanup_stale();
            got.sort();
            let want = model.cleanup();
            if got != want {
                return Err(format!("cleanup removed {got:?}, the model says {want:?}"));
            }
            expected_events.extend(want.iter().map(|k| {
                (
                    *k,
                    PeerEventKind::Removed {
                        cause: RemovalCause::Expired,
                    },
                )
            }));
        }
        Op::Advance { secs } => {
            let by = Duration::from_secs(u64::from(*secs));
            subject.clock.advance(by);
            model.advance(by);
        }
        Op::Confirm {
            key: k,
            endpoint: n,
            probe,
        } => {
            let want = model.evidence(&key(*k), endpoint(*n));
            let got = endpoint(*n).is_some_and(|addr| {
                let evidence = if *probe {
                    peerstore::Evidence::Probe {
                        rtt: Duration::from_millis(12),
                    }
                } else {
                    peerstore::Evidence::Handshake
                };
                store.confirm(&key(*k), addr, evidence)
            });
            if got != want {
                return Err(format!("confirm returned {got}, the model says {want}"));
            }
        }
        Op::Fail {
            key: k,
            endpoint: n,
        } => {
            let want = model.evidence(&key(*k), endpoint(*n));
            let got = endpoint(*n).is_some_and(|addr| store.note_failure(&key(*k), addr));
            if got != want {
                return Err(format!(
                    "note_failure returned {got}, the model says {want}"
                ));
            }
        }
        Op::SetLatency { key: k, ms } => {
            let latency = Duration::from_millis(u64::from(*ms));
            let got = store.set_latency(&key(*k), latency);
            let want = model.set_latency(&key(*k), latency);
            if got != want {
                return Err(format!("set_latency returned {got}, the model says {want}"));
            }
        }
    }

    let mut events = subject.drain()?;
    if matches!(op, Op::Cleanup) {
        // One cleanup's removals come in the map's order.
        events.sort_by_key(|(k, _)| *k);
    }
    if events != expected_events {
        return Err(format!(
            "events {events:?}, the model says {expected_events:?}"
        ));
    }
    let store = &subject.store;
    if store.len() != model.len() {
        return Err(format!(
            "len {} vs the model's {}",
            store.len(),
            model.len()
        ));
    }
    let mut got: Vec<Peer> = store.get_all().iter().map(|p| (**p).clone()).collect();
    got.sort_by_key(|p| p.public_key);
    let want = model.peers();
    if got != want {
        return Err(format!("peers differ:\n store {got:#?}\n model {want:#?}"));
    }
    let mut active: Vec<PublicKey> = store.get_active().iter().map(|p| p.public_key).collect();
    active.sort();
    if active != model.active() {
        return Err(format!(
            "active {active:?} vs the model's {:?}",
            model.active()
        ));
    }
    for n in 0..KEYS {
        let k = key(n);
        let dead = !model.active().contains(&k);
        if store.is_dead(&k) != dead {
            return Err(format!("is_dead({n}) is {}, the model says {dead}", !dead));
        }
    }
    Ok(())
}
