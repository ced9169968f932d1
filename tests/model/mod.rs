//! A model of the store: one thread, a `HashMap`, the merge rules written out plainly from the
//! documentation. `run` drives the real store and the model with the same operations under the
//! seed's defaults, `run_with` under another [`Config`] (an endpoint policy, tombstones, a full
//! policy, a second-hand quota), and both report the first step where they disagree.
//!
//! Shared by the property tests (`tests/properties.rs`) and the `ops` fuzz target, so it depends on
//! nothing but the crate and std. Only `decide_endpoint` (the ranked endpoint rule table, itself
//! pinned case by case in the crate's tests) and `canonical_endpoint` (the one spelling of an
//! address) are taken from the crate; the resilient policy's rules are written out here from
//! its documentation (see [`Candidates`]), not taken from `src/policy/resilient.rs`, and so are
//! the admission rules (tombstones, the full policies and the quota: see [`Model::update`]),
//! not taken from `src/store/admission.rs` or `src/tombstone.rs`. The store is built from
//! [`Config::settings`], the crate's own `Settings` value.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use peerstore::{
    Candidate, Clock, DiscoveryMethod, EndpointPolicy, Evidence, FullPolicy, ManualClock,
    MethodSet, NatType, Peer, PeerEventKind, PeerInfo, PeerStore, PublicKey, Readmission,
    RemovalCause, Settings, Stats, Subscription, Tombstone, UpdateError, UpdateOutcome,
    canonical_endpoint, decide_endpoint,
};

/// How many distinct peers the operations name: more than the cap, so the cap is hit.
pub const KEYS: u8 = 6;
/// The model store's cap.
pub const CAP: usize = 4;
pub const DEAD_AFTER: Duration = Duration::from_secs(300);
pub const REMOVE_AFTER: Duration = Duration::from_secs(600);
/// Where the wall clock starts (2025-11-22), so carried times can reach back to 1970.
pub const START: Duration = Duration::from_secs(1_763_800_000);

/// The numbers `EndpointPolicy::resilient()` documents, written out.
pub const MAX_CANDIDATES: usize = 4;
pub const LAN_FRESH: Duration = Duration::from_secs(30);
pub const RENDEZVOUS_FRESH: Duration = Duration::from_secs(120);
pub const TRUST_FOR: Duration = Duration::from_secs(180);
/// The round trip a `Probe` confirmation reports.
pub const PROBE_RTT: Duration = Duration::from_millis(12);

/// How long the tombstone of an expired peer stands under the configurations that keep one
/// (`PeerStoreBuilder::tombstone_expired`): longer than most runs of clock steps between two
/// cleanups, shorter than a long run's, so that tombstones both stand and fall.
pub const TOMBSTONE_EXPIRED: Duration = Duration::from_secs(900);
/// The second-hand quota (`PeerStoreBuilder::max_second_hand`) of the configurations that set
/// one: half the cap, so the quota binds before the cap does.
pub const MAX_SECOND_HAND: usize = 2;
/// The unproven quota (`PeerStoreBuilder::max_unproven`) of the configuration that sets one:
/// below the cap, so that it binds before the cap does and proven peers fill the rest.
pub const MAX_UNPROVEN: usize = 3;

/// Which endpoint policy the store is built with and the model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endpoints {
    /// `EndpointPolicy::ranked()`, the default: one endpoint, the seed's rules, evidence ignored.
    #[default]
    Seed,
    /// `EndpointPolicy::resilient()` with its documented numbers (above); rank does not
    /// override trust.
    Resilient,
}

/// How the store is built, and so which rules the model follows: an endpoint policy and the
/// admission settings (tombstones, the full policy, the second-hand quota). Every store has [`CAP`], [`DEAD_AFTER`] and
/// [`REMOVE_AFTER`]; `remove_for` works under every configuration (the operations drawn for a
/// configuration decide whether it is called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// What a failure calls it (the name of its proptest, too).
    pub name: &'static str,
    pub endpoints: Endpoints,
    /// `PeerStoreBuilder::tombstone_expired`; zero (the default) keeps none.
    pub tombstone_expired: Duration,
    /// `PeerStoreBuilder::when_full`.
    pub when_full: FullPolicy,
    /// `PeerStoreBuilder::max_second_hand`; `None`, the default, is no quota.
    pub max_second_hand: Option<usize>,
    /// `PeerStoreBuilder::readmit`.
    pub readmit: Readmission,
    /// `PeerStoreBuilder::max_unproven`; `None`, the default, is no quota.
    pub max_unproven: Option<usize>,
    /// Whether the operations drawn for it ban and unban keys (bans are no setting: every
    /// store has them).
    pub bans: bool,
}

impl Config {
    /// The defaults: the seed's endpoint policy, no tombstones, `FullPolicy::Refuse`, no quota.
    pub const SEED: Config = Config {
        name: "seed",
        endpoints: Endpoints::Seed,
        tombstone_expired: Duration::ZERO,
        when_full: FullPolicy::Refuse,
        max_second_hand: None,
        readmit: Readmission::FirstHand,
        max_unproven: None,
        bans: false,
    };
    /// The resilient endpoint policy, the rest default.
    pub const RESILIENT: Config = Config {
        name: "resilient",
        endpoints: Endpoints::Resilient,
        ..Config::SEED
    };
    /// Expired peers tombstoned for [`TOMBSTONE_EXPIRED`] (and, in the operations drawn for it,
    /// `remove_for`).
    pub const TOMBSTONES: Config = Config {
        name: "tombstones",
        tombstone_expired: TOMBSTONE_EXPIRED,
        ..Config::SEED
    };
    /// `FullPolicy::EvictSecondHand`, the rest default.
    pub const EVICT_SECOND_HAND: Config = Config {
        name: "evict_second_hand",
        when_full: FullPolicy::EvictSecondHand,
        ..Config::SEED
    };
    /// `max_second_hand(MAX_SECOND_HAND)`, the rest default.
    pub const MAX_SECOND_HAND: Config = Config {
        name: "max_second_hand",
        max_second_hand: Some(MAX_SECOND_HAND),
        ..Config::SEED
    };
    /// Every opt-in at once: the resilient policy, tombstones, eviction and the quota.
    pub const ALL: Config = Config {
        name: "all",
        endpoints: Endpoints::Resilient,
        tombstone_expired: TOMBSTONE_EXPIRED,
        when_full: FullPolicy::EvictSecondHand,
        max_second_hand: Some(MAX_SECOND_HAND),
        ..Config::SEED
    };
    /// The evidence-based admission: bans, `FullPolicy::EvictUnproven`, and tombstones that
    /// only news newer than the removal lifts (`Readmission::Newer`).
    pub const EVIDENCE: Config = Config {
        name: "evidence",
        tombstone_expired: TOMBSTONE_EXPIRED,
        when_full: FullPolicy::EvictUnproven,
        readmit: Readmission::Newer,
        bans: true,
        ..Config::SEED
    };
    /// The evidence-based admission at its tightest, with the resilient policy: the unproven
    /// quota, and tombstones that nothing lifts (`Readmission::Never`).
    pub const PROVEN_ONLY: Config = Config {
        name: "proven_only",
        endpoints: Endpoints::Resilient,
        tombstone_expired: TOMBSTONE_EXPIRED,
        when_full: FullPolicy::EvictUnproven,
        max_second_hand: Some(MAX_SECOND_HAND),
        readmit: Readmission::Never,
        max_unproven: Some(MAX_UNPROVEN),
        bans: true,
    };

    /// Every configuration the properties and the fuzz target run under.
    pub const EACH: [Config; 8] = [
        Config::SEED,
        Config::RESILIENT,
        Config::TOMBSTONES,
        Config::EVICT_SECOND_HAND,
        Config::MAX_SECOND_HAND,
        Config::ALL,
        Config::EVIDENCE,
        Config::PROVEN_ONLY,
    ];

    pub fn policy(self) -> EndpointPolicy {
        match self.endpoints {
            Endpoints::Seed => EndpointPolicy::ranked(),
            Endpoints::Resilient => EndpointPolicy::resilient(),
        }
    }

    /// The store's settings for this configuration: the one place the model's rules are told
    /// to the store (with [`CAP`], [`DEAD_AFTER`] and [`REMOVE_AFTER`]).
    pub fn settings(self) -> Settings {
        let mut settings = Settings::default();
        settings.max_peers = CAP;
        settings.dead_after = DEAD_AFTER;
        settings.remove_after = REMOVE_AFTER;
        settings.event_buffer = 64;
        settings.endpoint_policy = self.policy();
        settings.tombstone_expired = self.tombstones().then_some(self.tombstone_expired);
        settings.when_full = self.when_full;
        settings.max_second_hand = self.max_second_hand;
        settings.readmit = self.readmit;
        settings.max_unproven = self.max_unproven;
        settings
    }

    /// Whether expired peers leave tombstones.
    pub fn tombstones(self) -> bool {
        !self.tombstone_expired.is_zero()
    }

    /// Whether a newcomer to a full store may evict.
    pub fn evicts(self) -> bool {
        self.when_full != FullPolicy::Refuse
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::SEED
    }
}

/// Runs `test` once per configuration in [`Config::EACH`]; if it panics, panics again naming
/// the configuration.
pub fn each_config(test: impl Fn(Config)) {
    for config in Config::EACH {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(config)))
        {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("under the {} configuration: {message}", config.name);
        }
    }
}

/// One operation, as small numbers that `Op::*` methods turn into values, so that proptest and
/// the fuzzer can both make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Update(Announce),
    Remove {
        key: u8,
    },
    /// `remove_for` with a tombstone of `secs` seconds (zero keeps none).
    RemoveFor {
        key: u8,
        secs: u16,
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
    /// `ban` for `secs` seconds (zero: until lifted).
    Ban {
        key: u8,
        secs: u16,
    },
    Unban {
        key: u8,
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
        // One of 29 invented names: more than a record holds (`MAX_OTHER_METHODS`).
        _ => DiscoveryMethod::other(&format!("plugin-{}", n / 9)).unwrap(),
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
    /// The resilient policy's candidates (empty under the seed's).
    candidates: Candidates,
}

impl Entry {
    /// Whether any method that heard the peer (since it last went in) refreshes `last_seen`.
    fn first_hand(&self) -> bool {
        self.via.iter().any(DiscoveryMethod::refreshes_last_seen)
    }
}

/// One method's latest report of a candidate.
#[derive(Debug, Clone)]
struct Report {
    method: DiscoveryMethod,
    /// Nanoseconds since the start: when the report says the peer was heard there.
    at: i128,
    wall: SystemTime,
    /// Made before the candidate's last failure: it no longer vouches.
    void: bool,
}

/// One endpoint a peer may be reached at.
#[derive(Debug, Clone)]
struct Cand {
    endpoint: SocketAddr,
    /// One report a method, in the order the methods first reported it.
    reports: Vec<Report>,
    confirmed: Option<SystemTime>,
    rtt: Option<Duration>,
    failures: u32,
    /// When it last failed, unless confirmed since: a report dated before then (a carried
    /// time) does not vouch.
    failed_at: Option<i128>,
    /// When it was last confirmed.
    confirmed_at: Option<i128>,
    /// Until when its own trust lasts: set by `confirm`, ended by `note_failure`.
    trusted_until: Option<i128>,
    /// The method a candidate first known from a handshake counts as set by.
    label: Option<DiscoveryMethod>,
}

/// A candidate as `PeerStore::candidates` shows it, comparable field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateView {
    pub endpoint: SocketAddr,
    pub reports: Vec<(DiscoveryMethod, SystemTime)>,
    pub confirmed: Option<SystemTime>,
    pub rtt: Option<Duration>,
    pub failures: u32,
    pub fresh: bool,
    pub trusted: bool,
    pub fresh_until: Option<SystemTime>,
}

impl From<&Candidate> for CandidateView {
    fn from(c: &Candidate) -> Self {
        CandidateView {
            endpoint: c.endpoint,
            reports: c.reports.clone(),
            confirmed: c.confirmed,
            rtt: c.rtt,
            failures: c.failures,
            fresh: c.fresh,
            trusted: c.trusted,
            fresh_until: c.fresh_until,
        }
    }
}

/// The resilient policy, rule by rule, as its documentation states it (module docs of the
/// policy, `EndpointPolicy::resilient`, `PeerStore::confirm`, `note_failure`, `candidates`):
///
/// 1. A peer keeps up to [`MAX_CANDIDATES`] endpoints, in the order they became candidates,
///    each with one report a method, of the methods the record can hold (every built-in one,
///    and `Other` names while its `discovered_via` holds fewer than `MAX_OTHER_METHODS`; a
///    report by any other name is not kept), dated the later of its reports' times (when on
///    both clocks): older news by the same method does not age it.
/// 2. A report is dated like `last_seen`: now for a first-hand method, else the time the
///    announcement carries (never later than now), or now if it carries none.
/// 3. A report vouches while it is no older than its method's window (LAN 30 s, rendezvous
///    2 min, the cache: while no candidate has a vouching report by another method and none
///    is trusted; every other method: `dead_after`), and only if it was made after the
///    candidate's last failure (by order: one made in the same tick of the clock counts) and
///    is not dated before it (a carried time older than the failure).
/// 4. A candidate is fresh when a report vouches for it, or it is trusted.
/// 5. Trust is each candidate's own. `confirm` trusts its endpoint for [`TRUST_FOR`] (until
///    then, not at it), resets its failures and makes its voided reports vouch again; the
///    other candidates' trust stays as it was. `note_failure` voids its reports so far,
///    counts a failure and ends its trust at once (only its own). A report resets the
///    candidate's failures (they count "since it was last confirmed or reported"). A
///    handshake (not a probe) at an endpoint that is no candidate makes it one, with no
///    report, labelled by the method of the endpoint in use (else the first method that
///    heard the peer), and confirms it; past the limit it replaces the candidate reported
///    least recently (one with no report first) that is neither in use nor trusted, or is
///    not kept if there is none. Under every policy a handshake makes a known peer proven.
/// 6. The chosen endpoint: if any candidate is trusted, the first of the trusted ones in the
///    seed's order among them (the rank of the best method that ever reported it, or of its
///    label if none did, then IPv6,
///    then the most recent confirmation), set by that best method (rank does not override
///    trust); else the best fresh candidate in the seed's order (the rank of its best vouching
///    report, then IPv6, then its newest vouching report), set by that best report's method;
///    else the endpoint in use stays (stale).
/// 7. A new endpoint past the limit replaces the candidate reported least recently (its newest
///    report of any method) that is neither the endpoint in use nor trusted now (its trust not
///    run out at the store's now, whatever the report is dated), and, when the newcomer's own
///    report would not vouch now (rule 3, the cache's as the other candidates stand), is not
///    fresh either; if every candidate is one of those, the new endpoint is not kept.
/// 8. The choice is made again after every accepted update of a known peer, every `confirm` and
///    `note_failure` that named a candidate, and for every peer the cleanup keeps. It changes
///    the peer when it names another address, or the same address by a method of a higher
///    rank (a better report ageing out while a lesser one vouches is no news); a change is an
///    `Updated` event.
///
/// Ties the documentation leaves open are broken the way the crate breaks them (any other
/// choice would show as a difference): between equal reports of one candidate, and between
/// equal candidates (trusted or fresh), the later in its list wins; between candidates
/// reported equally long ago, the one that became a candidate first is replaced.
#[derive(Debug, Clone, Default)]
struct Candidates {
    list: Vec<Cand>,
}

/// How long a report by `method` vouches; `None` for the cache.
fn window(method: &DiscoveryMethod) -> Option<i128> {
    match method {
        DiscoveryMethod::Lan => Some(nanos(LAN_FRESH)),
        DiscoveryMethod::DhtRendezvous => Some(nanos(RENDEZVOUS_FRESH)),
        DiscoveryMethod::Cache => None,
        _ => Some(nanos(DEAD_AFTER)),
    }
}

/// The seed's order of two (rank, IPv6, newest) keys, spelled out.
fn seed_order_at_least(a: (u8, bool, i128), b: (u8, bool, i128)) -> bool {
    if a.0 != b.0 {
        return a.0 > b.0;
    }
    if a.1 != b.1 {
        return a.1;
    }
    a.2 >= b.2
}

/// The report a candidate counts as set by: the highest rank, then the newest, then the later
/// one in the list.
fn best_report<'a>(reports: impl Iterator<Item = &'a Report>) -> Option<&'a Report> {
    let mut best: Option<&Report> = None;
    for r in reports {
        let better = match best {
            None => true,
            Some(b) => {
                r.method.rank() > b.method.rank()
                    || (r.method.rank() == b.method.rank() && r.at >= b.at)
            }
        };
        if better {
            best = Some(r);
        }
    }
    best
}

impl Candidates {
    /// Whether `c`'s own trust lasts at `now`.
    fn trusted_at(c: &Cand, now: i128) -> bool {
        c.trusted_until.is_some_and(|until| now < until)
    }

    /// Whether any candidate is trusted at `now`.
    fn any_trusted(&self, now: i128) -> bool {
        self.list.iter().any(|c| Candidates::trusted_at(c, now))
    }

    /// Whether a report by `r.method` of `c` vouches at `now`, given whether the cache's do.
    fn vouches(c: &Cand, r: &Report, now: i128, cache_vouches: bool) -> bool {
        // Made before the failure, or made after it but dated before it (a carried time).
        let voided = r.void || c.failed_at.is_some_and(|failed| r.at < failed);
        if voided {
            return false;
        }
        match window(&r.method) {
            Some(window) => now - r.at <= window,
            None => cache_vouches,
        }
    }

    /// Whether the cache's reports still vouch at `now`.
    fn cache_vouches(&self, now: i128) -> bool {
        if self.any_trusted(now) {
            return false;
        }
        let live = self.list.iter().any(|c| {
            c.reports.iter().any(|r| {
                r.method != DiscoveryMethod::Cache && Candidates::vouches(c, r, now, false)
            })
        });
        !live
    }

    fn vouching<'a>(&self, c: &'a Cand, now: i128) -> Vec<&'a Report> {
        let cache = self.cache_vouches(now);
        c.reports
            .iter()
            .filter(|r| Candidates::vouches(c, r, now, cache))
            .collect()
    }

    fn is_fresh(&self, c: &Cand, now: i128) -> bool {
        Candidates::trusted_at(c, now) || !self.vouching(c, now).is_empty()
    }

    /// Rule 6: the endpoint to use at `now` and the method it counts as set by; `None` keeps
    /// the one in use.
    fn choose(&self, now: i128) -> Option<(SocketAddr, DiscoveryMethod)> {
        // The trusted ones first, in the seed's order: (best rank ever, IPv6, confirmed last).
        let mut trusted: Option<((u8, bool, i128), SocketAddr, DiscoveryMethod)> = None;
        for c in self.list.iter().filter(|c| Candidates::trusted_at(c, now)) {
            let by = best_report(c.reports.iter()).map(|r| &r.method);
            let by = by.or(c.label.as_ref()).expect("a report or a label");
            let confirmed = c.confirmed_at.expect("a trusted candidate was confirmed");
            let order = (by.rank(), c.endpoint.is_ipv6(), confirmed);
            if trusted
                .as_ref()
                .is_none_or(|(b, _, _)| seed_order_at_least(order, *b))
            {
                trusted = Some((order, c.endpoint, by.clone()));
            }
        }
        if let Some((_, endpoint, method)) = trusted {
            return Some((endpoint, method));
        }
        let mut best: Option<((u8, bool, i128), SocketAddr, DiscoveryMethod)> = None;
        for c in &self.list {
            let vouching = self.vouching(c, now);
            let Some(by) = best_report(vouching.iter().copied()) else {
                continue;
            };
            let newest = vouching.iter().map(|r| r.at).max().expect("one vouches");
            let order = (by.method.rank(), c.endpoint.is_ipv6(), newest);
            if best
                .as_ref()
                .is_none_or(|(b, _, _)| seed_order_at_least(order, *b))
            {
                best = Some((order, c.endpoint, by.method.clone()));
            }
        }
        best.map(|(_, endpoint, method)| (endpoint, method))
    }

    /// Rules 1, 5 and 7: `method` reported `endpoint`, dated `at`/`wall`, while `in_use` is the
    /// peer's endpoint, `via` the methods its record was heard by and `now` the store's time.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        endpoint: SocketAddr,
        method: DiscoveryMethod,
        at: i128,
        wall: SystemTime,
        in_use: Option<SocketAddr>,
        via: &MethodSet,
        now: i128,
    ) {
        let others = via
            .iter()
            .filter(|m| matches!(m, DiscoveryMethod::Other(_)))
            .count();
        let holds = via.contains(&method)
            || !matches!(method, DiscoveryMethod::Other(_))
            || others < peerstore::MAX_OTHER_METHODS;
        if !holds {
            return;
        }
        let report = Report {
            method,
            at,
            wall,
            void: false,
        };
        if let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) {
            match c.reports.iter().position(|r| r.method == report.method) {
                Some(i) if report.at < c.reports[i].at => {}
                Some(i) => c.reports[i] = report,
                None => c.reports.push(report),
            }
            c.failures = 0;
            return;
        }
        if self.list.len() >= MAX_CANDIDATES {
            let newcomer_vouches = match window(&report.method) {
                Some(window) => now - report.at <= window,
                None => self.cache_vouches(now),
            };
            let mut victim: Option<(usize, Option<i128>)> = None;
            for (i, c) in self.list.iter().enumerate() {
                if Some(c.endpoint) == in_use || Candidates::trusted_at(c, now) {
                    continue;
                }
                if !newcomer_vouches && self.is_fresh(c, now) {
                    continue;
                }
                // A candidate no method reported counts as reported longest ago.
                let last = c.reports.iter().map(|r| r.at).max();
                if victim.is_none_or(|(_, oldest)| last < oldest) {
                    victim = Some((i, last));
                }
            }
            // Every candidate in use or trusted: the new one is not kept.
            let Some((i, _)) = victim else {
                return;
            };
            self.list.remove(i);
        }
        self.list.push(Cand {
            endpoint,
            reports: vec![report],
            confirmed: None,
            rtt: None,
            failures: 0,
            failed_at: None,
            confirmed_at: None,
            trusted_until: None,
            label: None,
        });
    }

    /// Rule 5: evidence for `endpoint` (a probe's round trip, or a handshake's none), while
    /// `in_use` is the peer's endpoint and `label` what a new candidate counts as set by;
    /// `false` if it is no candidate and the evidence does not make it one.
    fn confirm(
        &mut self,
        endpoint: SocketAddr,
        rtt: Option<Duration>,
        now: i128,
        wall: SystemTime,
        in_use: Option<SocketAddr>,
        label: Option<DiscoveryMethod>,
    ) -> bool {
        if !self.list.iter().any(|c| c.endpoint == endpoint) {
            let (None, Some(label)) = (rtt, label) else {
                return false;
            };
            if self.list.len() >= MAX_CANDIDATES {
                let mut victim: Option<(usize, Option<i128>)> = None;
                for (i, c) in self.list.iter().enumerate() {
                    if Some(c.endpoint) == in_use || Candidates::trusted_at(c, now) {
                        continue;
                    }
                    let last = c.reports.iter().map(|r| r.at).max();
                    if victim.is_none_or(|(_, oldest)| last < oldest) {
                        victim = Some((i, last));
                    }
                }
                let Some((i, _)) = victim else {
                    return false;
                };
                self.list.remove(i);
            }
            self.list.push(Cand {
                endpoint,
                reports: Vec::new(),
                confirmed: None,
                rtt: None,
                failures: 0,
                failed_at: None,
                confirmed_at: None,
                trusted_until: None,
                label: Some(label),
            });
        }
        let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) else {
            return false;
        };
        c.confirmed = Some(wall);
        c.confirmed_at = Some(now);
        c.failures = 0;
        // Evidence that it works: what was reported of it before it failed vouches again.
        c.failed_at = None;
        for r in &mut c.reports {
            r.void = false;
        }
        if rtt.is_some() {
            c.rtt = rtt;
        }
        c.trusted_until = Some(now + nanos(TRUST_FOR));
        true
    }

    /// Rule 5: `endpoint` failed at `now`; `false` if it is no candidate.
    fn fail(&mut self, endpoint: SocketAddr, now: i128) -> bool {
        let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) else {
            return false;
        };
        c.failures += 1;
        c.failed_at = Some(now);
        for r in &mut c.reports {
            r.void = true;
        }
        c.trusted_until = None;
        true
    }

    fn view(&self, now: i128) -> Vec<CandidateView> {
        self.list
            .iter()
            .map(|c| CandidateView {
                endpoint: c.endpoint,
                reports: c
                    .reports
                    .iter()
                    .map(|r| (r.method.clone(), r.wall))
                    .collect(),
                confirmed: c.confirmed,
                rtt: c.rtt,
                failures: c.failures,
                fresh: self.is_fresh(c, now),
                trusted: Candidates::trusted_at(c, now),
                fresh_until: Candidates::fresh_until(c, now),
            })
            .collect()
    }

    /// Until when (the first moment after) a report within its window or trust vouches for
    /// `c`, as of `now`: the latest end among those that vouch now.
    fn fresh_until(c: &Cand, now: i128) -> Option<SystemTime> {
        let mut latest: Option<(i128, SystemTime)> = None;
        for r in &c.reports {
            if let Some(window) = window(&r.method)
                && Candidates::vouches(c, r, now, false)
            {
                let end = r.at + window + 1;
                let wall = r.wall + Duration::from_nanos(u64::try_from(window + 1).unwrap());
                if latest.is_none_or(|(e, _)| end > e) {
                    latest = Some((end, wall));
                }
            }
        }
        if let (true, Some(until), Some(at), Some(wall)) = (
            Candidates::trusted_at(c, now),
            c.trusted_until,
            c.confirmed_at,
            c.confirmed,
        ) && latest.is_none_or(|(e, _)| until > e)
        {
            let span = Duration::from_nanos(u64::try_from(until - at).unwrap());
            latest = Some((until, wall + span));
        }
        latest.map(|(_, wall)| wall)
    }
}

/// The expected result of one `update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Ok(UpdateOutcome),
    Full,
    /// Refused by a tombstone that stands until then (on the wall clock, compared exactly).
    Tombstoned {
        until: SystemTime,
    },
    /// Refused by a ban that stands until then (`None`: until lifted).
    Banned {
        until: Option<SystemTime>,
    },
    /// Refused, naming this field.
    Invalid(&'static str),
    /// Refused in a way the model does not know.
    Unknown(String),
}

/// An event as a subscriber sees it, but its seq (checked on its own: it only grows).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub key: PublicKey,
    pub kind: PeerEventKind,
    /// `PeerEvent::readmitted`: a `New` over a tombstone.
    pub readmitted: bool,
}

/// The number `key` was made from (see [`key`]), which failures print.
pub fn number(key: &PublicKey) -> u8 {
    key.as_bytes()[0]
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer {} {:?}", number(&self.key), self.kind)?;
        if self.readmitted {
            write!(f, " (readmitted)")?;
        }
        Ok(())
    }
}

impl Event {
    pub fn of(key: PublicKey, kind: PeerEventKind) -> Self {
        Event {
            key,
            kind,
            readmitted: false,
        }
    }
}

/// A tombstone as the model keeps it.
#[derive(Debug, Clone, Copy)]
struct Stone {
    /// When it was placed, in nanoseconds since the start: the order `tombstones()` lists them.
    placed: i128,
    /// It stands while `now < until`.
    until: i128,
    since_wall: SystemTime,
    until_wall: SystemTime,
    cause: RemovalCause,
}

/// A tombstone as `PeerStore::tombstones` shows it, comparable field by field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TombstoneView {
    pub key: PublicKey,
    pub since: SystemTime,
    pub until: SystemTime,
    pub cause: RemovalCause,
}

impl std::fmt::Debug for TombstoneView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Times in seconds since the start, where the operations' clock steps count.
        let secs = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH + START)
                .map_or(-1.0, |d| d.as_secs_f64())
        };
        write!(
            f,
            "peer {} {:?} from {} s until {} s",
            number(&self.key),
            self.cause,
            secs(self.since),
            secs(self.until)
        )
    }
}

impl From<&Tombstone> for TombstoneView {
    fn from(t: &Tombstone) -> Self {
        TombstoneView {
            key: t.public_key,
            since: t.since,
            until: t.until,
            cause: t.cause,
        }
    }
}

/// The counters of `Stats` the model knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub inserts: u64,
    pub updates: u64,
    pub unchanged: u64,
    pub rejected_invalid: u64,
    pub rejected_full: u64,
    pub rejected_tombstoned: u64,
    pub rejected_banned: u64,
    pub readmitted: u64,
    pub evicted: u64,
    pub removed: u64,
    pub expired: u64,
    pub banned: u64,
    /// How many times a peer's endpoint address changed.
    pub endpoint_changes: u64,
}

impl From<&Stats> for Counts {
    fn from(s: &Stats) -> Self {
        Counts {
            inserts: s.inserts,
            updates: s.updates,
            unchanged: s.unchanged,
            rejected_invalid: s.rejected_invalid,
            rejected_full: s.rejected_full,
            rejected_tombstoned: s.rejected_tombstoned,
            rejected_banned: s.rejected_banned,
            banned: s.banned,
            readmitted: s.readmitted,
            evicted: s.evicted,
            removed: s.removed,
            expired: s.expired,
            endpoint_changes: s.endpoint_changes,
        }
    }
}

#[derive(Debug, Default)]
pub struct Model {
    config: Config,
    peers: HashMap<PublicKey, Entry>,
    /// Tombstones, standing or run out (one that ran out is never looked at again, and goes at
    /// the next look or cleanup). The store keeps at most `MAX_TOMBSTONES` (4096), dropping
    /// the oldest: the model has no such bound, since its [`KEYS`] keys can never hold more
    /// than six.
    tombstones: HashMap<PublicKey, Stone>,
    /// Bans: until when each stands (`None`: until lifted), standing or run out.
    bans: HashMap<PublicKey, (Option<i128>, SystemTime, Option<SystemTime>)>,
    /// Nanoseconds since the start, on the monotonic clock.
    now: i128,
    counts: Counts,
    /// The victims the last update could have evicted (the least recently heard second-hand
    /// peers, tied), for a failure's message.
    tied: Vec<PublicKey>,
}

fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).expect("a test span")
}

impl Model {
    pub fn new(config: Config) -> Self {
        Model {
            config,
            ..Model::default()
        }
    }

    pub fn config(&self) -> Config {
        self.config
    }

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

    /// Applies an update; returns the expected result and the events it emits, in order.
    pub fn update(&mut self, info: PeerInfo, method: DiscoveryMethod) -> (Expected, Vec<Event>) {
        self.update_evicting(info, method, None)
    }

    /// Applies an update, where `victim` is the peer the store evicted for it, if any: when
    /// the update must evict and several peers are the least recently heard second-hand ones,
    /// the documentation does not say which goes (the store takes the first its map visits,
    /// an order seeded per store), so the model takes the store's if it is one of them. Any
    /// other victim, or none, is a difference (the model then takes the lowest key of the
    /// tied, and the events tell the two apart).
    ///
    /// The admission rules of a new peer, in the order the store applies them (the
    /// documentation lists the errors, not their precedence; this order is the store's):
    ///
    /// 1. An invalid announcement is refused (`Invalid`), whatever else holds.
    /// 2. A ban standing (`now < until`, or with no end) refuses every method with
    ///    `Banned { until }`.
    /// 3. A tombstone standing (`now < until`) refuses a method that does not refresh
    ///    `last_seen` (the cache, the transitive ones) with `Tombstoned { until }`, even when
    ///    the store is also full; a first-hand method lifts it as the readmission rule says
    ///    (`FirstHand`: always; `Newer`: a LAN announcement, or one whose carried `last_seen`,
    ///    as given, is later than the removal's wall time; `Never`: never) and goes in over it
    ///    (if there is room): the tombstone is cleared and its `New` is `readmitted`.
    /// 4. Under `max_second_hand(n)`, a second-hand newcomer while `n` peers were never heard
    ///    first-hand is refused `StoreFull`.
    /// 5. Under `max_unproven(n)`, a newcomer while `n` peers are unproven is refused
    ///    `StoreFull`, unless under `EvictUnproven` it may evict (rule 6), which frees an
    ///    unproven peer's slot.
    /// 6. At the cap: under `EvictSecondHand` a first-hand newcomer evicts the least recently
    ///    heard peer never heard first-hand (`Removed { cause: Evicted }`, then its `New`);
    ///    under `EvictUnproven` a first-hand newcomer evicts the least recently heard unproven
    ///    peer never heard first-hand, and a LAN newcomer, if there is none, the least
    ///    recently heard unproven one; if there is none, and under `Refuse`, and for a
    ///    second-hand newcomer, `StoreFull`. Among victims heard at the same instant, the
    ///    lowest key goes.
    ///
    /// "Heard first-hand" is any method in `discovered_via` that refreshes `last_seen`; "least
    /// recently heard" is the oldest `last_seen` on the store's clock (a carried time counts).
    pub fn update_evicting(
        &mut self,
        info: PeerInfo,
        method: DiscoveryMethod,
        victim: Option<PublicKey>,
    ) -> (Expected, Vec<Event>) {
        self.tied.clear();
        if let Some(field) = Model::refused_field(&info) {
            self.counts.rejected_invalid += 1;
            return (Expected::Invalid(field), Vec::new());
        }
        // An IPv4-mapped endpoint is stored as the IPv4 address it maps.
        let mut info = info;
        info.endpoint = info.endpoint.map(canonical_endpoint);
        let now = self.now;
        let wall = self.wall();
        let carried = info.last_seen.map(|t| self.carried(t));
        let Some(entry) = self.peers.get_mut(&info.public_key) else {
            let raw = info.last_seen;
            return self.admit(info, method, carried, raw, victim);
        };
        let was_dead = now - entry.seen_at > nanos(DEAD_AFTER);
        let old = entry.peer.clone();
        match (self.config.endpoints, info.endpoint) {
            (Endpoints::Seed, Some(new)) => {
                let p = &mut entry.peer;
                let current = p.endpoint.zip(p.endpoint_method.as_ref());
                if decide_endpoint(current, new, &method).accepted {
                    p.endpoint = Some(new);
                    p.endpoint_method = Some(method.clone());
                }
            }
            (Endpoints::Seed, None) => {}
            (Endpoints::Resilient, reported) => {
                if let Some(new) = reported {
                    // Dated as `last_seen` would be for a new peer (rule 2).
                    let (at, at_wall) = match carried {
                        Some((t, age)) if !method.refreshes_last_seen() => (now - age, t),
                        _ => (now, wall),
                    };
                    let (in_use, via) = (entry.peer.endpoint, &entry.peer.discovered_via);
                    entry
                        .candidates
                        .report(new, method.clone(), at, at_wall, in_use, via, now);
                }
                Model::rechoose(entry, now);
            }
        }
        if old.endpoint != entry.peer.endpoint {
            self.counts.endpoint_changes += 1;
        }
        let p = &mut entry.peer;
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
            self.counts.updates += 1;
            let event = Event::of(info.public_key, PeerEventKind::Updated);
            (Expected::Ok(UpdateOutcome::Updated), vec![event])
        } else {
            self.counts.unchanged += 1;
            (Expected::Ok(UpdateOutcome::Unchanged), Vec::new())
        }
    }

    /// A new peer (rules 2 to 6 of [`Model::update_evicting`]); `raw` is the `last_seen` the
    /// announcement carried, as given.
    fn admit(
        &mut self,
        info: PeerInfo,
        method: DiscoveryMethod,
        carried: Option<(SystemTime, i128)>,
        raw: Option<SystemTime>,
        victim: Option<PublicKey>,
    ) -> (Expected, Vec<Event>) {
        let key = info.public_key;
        let first_hand = method.refreshes_last_seen();
        if let Some(until) = self.ban_standing(&key) {
            self.counts.rejected_banned += 1;
            return (Expected::Banned { until }, Vec::new());
        }
        let stone = self.standing(&key);
        if let Some(stone) = stone {
            let lifts = first_hand
                && match self.config.readmit {
                    Readmission::Newer => {
                        method == DiscoveryMethod::Lan || raw.is_some_and(|t| t > stone.since_wall)
                    }
                    Readmission::Never => false,
                    _ => true,
                };
            if !lifts {
                self.counts.rejected_tombstoned += 1;
                let until = stone.until_wall;
                return (Expected::Tombstoned { until }, Vec::new());
            }
        }
        if !first_hand
            && self
                .config
                .max_second_hand
                .is_some_and(|n| self.second_hand() >= n)
        {
            self.counts.rejected_full += 1;
            return (Expected::Full, Vec::new());
        }
        let unproven_full = self
            .config
            .max_unproven
            .is_some_and(|n| self.unproven() >= n);
        if unproven_full && self.config.when_full != FullPolicy::EvictUnproven {
            self.counts.rejected_full += 1;
            return (Expected::Full, Vec::new());
        }
        let mut events = Vec::new();
        if self.peers.len() >= CAP || unproven_full {
            self.tied = self.victims(&method);
            let Some(&lowest) = self.tied.first() else {
                self.counts.rejected_full += 1;
                return (Expected::Full, Vec::new());
            };
            let out = victim.filter(|v| self.tied.contains(v)).unwrap_or(lowest);
            self.peers.remove(&out);
            self.counts.evicted += 1;
            let evicted = PeerEventKind::Removed {
                cause: RemovalCause::Evicted,
            };
            events.push(Event::of(out, evicted));
        }
        let readmitted = stone.is_some();
        if readmitted {
            self.tombstones.remove(&key);
            self.counts.readmitted += 1;
        }
        let (now, wall) = (self.now, self.wall());
        // First-hand means heard now; only the other methods' carried times count.
        let (last_seen, age) = carried.filter(|_| !first_hand).unwrap_or((wall, 0));
        let mut peer = Peer::new(key, last_seen);
        let mut candidates = Candidates::default();
        if let (Endpoints::Resilient, Some(endpoint)) = (self.config.endpoints, info.endpoint) {
            let via = MethodSet::new();
            candidates.report(
                endpoint,
                method.clone(),
                now - age,
                last_seen,
                None,
                &via,
                now,
            );
        }
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
            key,
            Entry {
                peer,
                via: vec![method],
                seen_at: now - age,
                candidates,
            },
        );
        self.counts.inserts += 1;
        events.push(Event {
            key,
            kind: PeerEventKind::New { readmitted },
            readmitted,
        });
        (Expected::Ok(UpdateOutcome::Inserted), events)
    }

    /// `key`'s tombstone, if one stands now; one that ran out is dropped.
    fn standing(&mut self, key: &PublicKey) -> Option<Stone> {
        let stone = *self.tombstones.get(key)?;
        if self.now < stone.until {
            return Some(stone);
        }
        self.tombstones.remove(key);
        None
    }

    /// Places a tombstone for `key` standing for `span` from now, replacing any it had; a zero
    /// span places none (and leaves one standing as it was).
    fn place(&mut self, key: PublicKey, span: Duration, cause: RemovalCause) {
        if span.is_zero() {
            return;
        }
        let stone = Stone {
            placed: self.now,
            until: self.now + nanos(span),
            since_wall: self.wall(),
            until_wall: self.wall() + span,
            cause,
        };
        self.tombstones.insert(key, stone);
    }

    /// How many peers were never heard first-hand.
    pub fn second_hand(&self) -> usize {
        self.peers.values().filter(|e| !e.first_hand()).count()
    }

    /// How many peers were never proven.
    pub fn unproven(&self) -> usize {
        self.peers.values().filter(|e| !e.peer.proven).count()
    }

    /// The victims a newcomer heard by `method` may evict now, tied (rule 6): empty if none.
    fn victims(&self, method: &DiscoveryMethod) -> Vec<PublicKey> {
        if !method.refreshes_last_seen() {
            return Vec::new();
        }
        let unproven = |e: &Entry| !e.peer.proven;
        match self.config.when_full {
            FullPolicy::EvictSecondHand => self.least_recently_heard(|e| !e.first_hand()),
            FullPolicy::EvictUnproven => {
                let second_hand = self.least_recently_heard(|e| unproven(e) && !e.first_hand());
                if !second_hand.is_empty() || *method != DiscoveryMethod::Lan {
                    return second_hand;
                }
                self.least_recently_heard(unproven)
            }
            _ => Vec::new(),
        }
    }

    /// `key`'s ban, if one stands now (until when, on the wall clock).
    fn ban_standing(&self, key: &PublicKey) -> Option<Option<SystemTime>> {
        let (until, _, until_wall) = self.bans.get(key)?;
        until
            .is_none_or(|until| self.now < until)
            .then_some(*until_wall)
    }

    /// `ban`: the key's record goes (`Removed { cause: Banned }`), and a ban stands for `span`
    /// (until lifted if `None`), replacing any it had.
    pub fn ban(&mut self, key: &PublicKey, span: Option<Duration>) -> Option<Peer> {
        let wall = self.wall();
        let until = span.map(|span| self.now + nanos(span));
        self.bans
            .insert(*key, (until, wall, span.map(|span| wall + span)));
        let gone = self.peers.remove(key).map(|e| e.peer);
        if gone.is_some() {
            self.counts.banned += 1;
        }
        gone
    }

    /// `unban`: whether a ban stood.
    pub fn unban(&mut self, key: &PublicKey) -> bool {
        let standing = self.ban_standing(key).is_some();
        self.bans.remove(key);
        standing
    }

    /// `PeerStore::banned` as the model sees it: the standing bans' keys and ends, in key
    /// order.
    pub fn banned(&self) -> Vec<(PublicKey, Option<SystemTime>)> {
        let mut bans: Vec<_> = self
            .bans
            .keys()
            .filter_map(|k| Some((*k, self.ban_standing(k)?)))
            .collect();
        bans.sort_by_key(|(k, _)| *k);
        bans
    }

    /// The peers `which` picks last heard longest ago, in key order.
    fn least_recently_heard(&self, which: impl Fn(&Entry) -> bool) -> Vec<PublicKey> {
        let picked = || self.peers.iter().filter(|(_, e)| which(e));
        let Some(oldest) = picked().map(|(_, e)| e.seen_at).min() else {
            return Vec::new();
        };
        let mut tied: Vec<PublicKey> = picked()
            .filter(|(_, e)| e.seen_at == oldest)
            .map(|(k, _)| *k)
            .collect();
        tied.sort();
        tied
    }

    /// The victims the last update could have evicted, tied (empty if it evicted none).
    pub fn tied(&self) -> &[PublicKey] {
        &self.tied
    }

    /// `PeerStore::tombstones` as the model sees them now: the standing ones, oldest placed
    /// first. The documentation says "oldest first"; tombstones placed at the same instant
    /// (one cleanup's) come in key order, as the store sorts them.
    pub fn tombstones(&self) -> Vec<TombstoneView> {
        let mut standing: Vec<(i128, TombstoneView)> = self
            .tombstones
            .iter()
            .filter(|(_, s)| self.now < s.until)
            .map(|(k, s)| {
                let view = TombstoneView {
                    key: *k,
                    since: s.since_wall,
                    until: s.until_wall,
                    cause: s.cause,
                };
                (s.placed, view)
            })
            .collect();
        standing.sort_by_key(|(placed, t)| (*placed, t.key));
        standing.into_iter().map(|(_, t)| t).collect()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Rule 8: the endpoint chosen again; whether it changed. The caller counts a change of
    /// address.
    fn rechoose(entry: &mut Entry, now: i128) -> bool {
        let Some((endpoint, method)) = entry.candidates.choose(now) else {
            return false;
        };
        let p = &mut entry.peer;
        if p.endpoint == Some(endpoint)
            && p.endpoint_method
                .as_ref()
                .is_some_and(|m| method.rank() <= m.rank())
        {
            return false;
        }
        p.endpoint = Some(endpoint);
        p.endpoint_method = Some(method);
        true
    }

    /// Chooses `key`'s endpoint again (after evidence or a cleanup): the `Updated` event it
    /// emits, if it changed.
    fn rechoose_peer(&mut self, key: &PublicKey) -> Option<PeerEventKind> {
        let now = self.now;
        let entry = self.peers.get_mut(key)?;
        let before = entry.peer.endpoint;
        if !Model::rechoose(entry, now) {
            return None;
        }
        if before != entry.peer.endpoint {
            self.counts.endpoint_changes += 1;
        }
        Some(PeerEventKind::Updated)
    }

    pub fn endpoint_changes(&self) -> u64 {
        self.counts.endpoint_changes
    }

    pub fn remove(&mut self, key: &PublicKey) -> Option<Peer> {
        self.remove_for(key, Duration::ZERO)
    }

    /// `remove_for`: the peer goes (if it is there) and a tombstone stands for `span` (placed
    /// even if the peer is not there; a zero span places none).
    pub fn remove_for(&mut self, key: &PublicKey, span: Duration) -> Option<Peer> {
        self.place(*key, span, RemovalCause::Explicit);
        let gone = self.peers.remove(key).map(|e| e.peer);
        if gone.is_some() {
            self.counts.removed += 1;
        }
        gone
    }

    /// The peers the cleanup removes, in key order; each leaves a tombstone under
    /// `tombstone_expired`.
    pub fn cleanup(&mut self) -> Vec<PublicKey> {
        let now = self.now;
        self.tombstones.retain(|_, s| now < s.until);
        self.bans
            .retain(|_, (until, _, _)| until.is_none_or(|until| now < until));
        let mut gone: Vec<PublicKey> = self
            .peers
            .iter()
            .filter(|(_, e)| self.silent_longer_than(e, REMOVE_AFTER))
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.peers.remove(k);
            self.place(*k, self.config.tombstone_expired, RemovalCause::Expired);
        }
        self.counts.expired += gone.len() as u64;
        gone.sort();
        gone
    }

    /// After a cleanup, under the resilient policy: the peers kept whose endpoint the cleanup
    /// changed (a candidate went stale, a trust ran out), in key order.
    pub fn cleanup_rechoose(&mut self) -> Vec<PublicKey> {
        if self.config.endpoints == Endpoints::Seed {
            return Vec::new();
        }
        let mut keys: Vec<PublicKey> = self.peers.keys().copied().collect();
        keys.sort();
        keys.retain(|k| self.rechoose_peer(k).is_some());
        keys
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += nanos(by);
    }

    /// Evidence or a failure under the seed policy: known only for the peer's own endpoint,
    /// and nothing changes.
    pub fn evidence(&self, key: &PublicKey, endpoint: Option<SocketAddr>) -> bool {
        let endpoint = endpoint.map(canonical_endpoint);
        self.peers
            .get(key)
            .is_some_and(|e| endpoint.is_some() && e.peer.endpoint == endpoint)
    }

    /// `confirm` (with a probe's round trip, or a handshake's none): what it returns and the
    /// event it emits.
    pub fn confirm(
        &mut self,
        key: &PublicKey,
        endpoint: Option<SocketAddr>,
        rtt: Option<Duration>,
    ) -> (bool, Option<PeerEventKind>) {
        // An address no announcement may carry is no evidence: nothing changes.
        if let Some(endpoint) = endpoint {
            let mut info = PeerInfo::new(*key);
            info.endpoint = Some(endpoint);
            if Model::refused_field(&info).is_some() {
                return (false, None);
            }
        }
        // Evidence for a banned key, which has no record, is refused and counted.
        if endpoint.is_some() && !self.peers.contains_key(key) && self.ban_standing(key).is_some() {
            self.counts.rejected_banned += 1;
        }
        // A handshake proves a known peer, under every policy (with no address there is no
        // call to make).
        if let (None, Some(_), Some(entry)) = (rtt, endpoint, self.peers.get_mut(key)) {
            entry.peer.proven = true;
        }
        if self.config.endpoints == Endpoints::Seed {
            return (self.evidence(key, endpoint), None);
        }
        let (now, wall) = (self.now, self.wall());
        let Some(endpoint) = endpoint.map(canonical_endpoint) else {
            return (false, None);
        };
        let Some(entry) = self.peers.get_mut(key) else {
            return (false, None);
        };
        let in_use = entry.peer.endpoint;
        let label = entry
            .peer
            .endpoint_method
            .clone()
            .or(entry.via.first().cloned());
        if !entry
            .candidates
            .confirm(endpoint, rtt, now, wall, in_use, label)
        {
            return (false, None);
        }
        (true, self.rechoose_peer(key))
    }

    /// `note_failure`: what it returns and the event it emits.
    pub fn fail(
        &mut self,
        key: &PublicKey,
        endpoint: Option<SocketAddr>,
    ) -> (bool, Option<PeerEventKind>) {
        if self.config.endpoints == Endpoints::Seed {
            return (self.evidence(key, endpoint), None);
        }
        let now = self.now;
        let Some(endpoint) = endpoint.map(canonical_endpoint) else {
            return (false, None);
        };
        let Some(entry) = self.peers.get_mut(key) else {
            return (false, None);
        };
        if !entry.candidates.fail(endpoint, now) {
            return (false, None);
        }
        (true, self.rechoose_peer(key))
    }

    /// `PeerStore::candidates` as the model sees them now (none under the seed policy).
    pub fn candidates(&self, key: &PublicKey) -> Vec<CandidateView> {
        self.peers
            .get(key)
            .map(|e| e.candidates.view(self.now))
            .unwrap_or_default()
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
    pub config: Config,
    last_seq: Option<u64>,
    /// How many events the subscriber received (`Stats::events_sent`, one subscriber).
    received: u64,
}

impl Subject {
    /// Under the seed's defaults.
    pub fn new() -> Self {
        Subject::with(Config::SEED)
    }

    pub fn with(config: Config) -> Self {
        let clock = ManualClock::starting_at(UNIX_EPOCH + START);
        let store = PeerStore::builder()
            .settings(config.settings())
            .clock(clock.clone())
            .build()
            .unwrap();
        let events = store.subscribe();
        Subject {
            store,
            clock,
            events,
            config,
            last_seq: None,
            received: 0,
        }
    }

    pub fn wall(&self) -> SystemTime {
        self.clock.wall_now()
    }

    /// The events since the last call, in the order received, checking that `seq` only grows.
    fn drain(&mut self) -> Result<Vec<Event>, String> {
        let mut out = Vec::new();
        for e in self.events.try_iter() {
            if self.last_seq.is_some_and(|last| e.seq <= last) {
                return Err(format!(
                    "event seq went from {:?} to {}",
                    self.last_seq, e.seq
                ));
            }
            self.last_seq = Some(e.seq);
            self.received += 1;
            out.push(Event {
                key: e.public_key,
                kind: e.kind,
                readmitted: matches!(e.kind, PeerEventKind::New { readmitted: true }),
            });
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
        Err(UpdateError::Tombstoned { until }) => Expected::Tombstoned { until: *until },
        Err(UpdateError::Invalid(why)) => Expected::Invalid(why.field()),
        Err(UpdateError::Banned { until }) => Expected::Banned { until: *until },
        Err(other) => Expected::Unknown(other.to_string()),
    }
}

/// Runs `ops` against the store and the model under the seed's defaults; `Err` says at which
/// step and how they differ.
pub fn run(ops: &[Op]) -> Result<(), String> {
    run_with(Config::SEED, ops)
}

/// Runs `ops` against the store and the model under `config`.
pub fn run_with(config: Config, ops: &[Op]) -> Result<(), String> {
    let mut subject = Subject::with(config);
    let mut model = Model::new(config);
    for (i, op) in ops.iter().enumerate() {
        step(&mut subject, &mut model, op).map_err(|e| format!("step {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

/// The span `Op::Ban` bans for: zero seconds is until lifted.
pub fn ban_span(secs: u16) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
}

/// The evidence `Op::Confirm` gives.
pub fn evidence_of(probe: bool) -> Evidence {
    if probe {
        Evidence::Probe { rtt: PROBE_RTT }
    } else {
        Evidence::Handshake
    }
}

/// The expected events of a removal.
fn removal(key: PublicKey, cause: RemovalCause) -> Event {
    Event::of(key, PeerEventKind::Removed { cause })
}

/// One operation on both, then a comparison of everything observable.
pub fn step(subject: &mut Subject, model: &mut Model, op: &Op) -> Result<(), String> {
    assert_eq!(subject.config, model.config(), "one configuration for both");
    let store = &subject.store;
    let mut expected_events: Vec<Event> = Vec::new();
    // The store's events, when the model needed them first (an eviction's victim).
    let mut seen: Option<Vec<Event>> = None;
    match op {
        Op::Update(a) => {
            let info = a.info(subject.wall());
            let m = method(a.method);
            let got = store.update(info.clone(), m.clone());
            let events = subject.drain()?;
            let victim = events
                .iter()
                .find(|e| {
                    e.kind
                        == PeerEventKind::Removed {
                            cause: RemovalCause::Evicted,
                        }
                })
                .map(|e| e.key);
            let (want, events_wanted) = model.update_evicting(info, m, victim);
            if expected_of(&got) != want {
                return Err(format!("update returned {got:?}, the model says {want:?}"));
            }
            if let Err(UpdateError::StoreFull { capacity }) = got
                && capacity != CAP
            {
                return Err(format!("StoreFull names capacity {capacity}"));
            }
            expected_events = events_wanted;
            seen = Some(events);
        }
        Op::Remove { key: k } => {
            let got = store.remove(&key(*k)).map(|p| (*p).clone());
            let want = model.remove(&key(*k));
            if got != want {
                return Err(format!("remove returned {got:?}, the model says {want:?}"));
            }
            if want.is_some() {
                expected_events.push(removal(key(*k), RemovalCause::Explicit));
            }
        }
        Op::RemoveFor { key: k, secs } => {
            let span = Duration::from_secs(u64::from(*secs));
            let got = store.remove_for(&key(*k), span).map(|p| (*p).clone());
            let want = model.remove_for(&key(*k), span);
            if got != want {
                return Err(format!(
                    "remove_for returned {got:?}, the model says {want:?}"
                ));
            }
            if want.is_some() {
                expected_events.push(removal(key(*k), RemovalCause::Explicit));
            }
        }
        Op::Cleanup => {
            let mut got = store.cleanup_stale();
            got.sort();
            let want = model.cleanup();
            if got != want {
                return Err(format!("cleanup removed {got:?}, the model says {want:?}"));
            }
            expected_events.extend(want.iter().map(|k| removal(*k, RemovalCause::Expired)));
            let moved = model.cleanup_rechoose();
            expected_events.extend(moved.iter().map(|k| Event::of(*k, PeerEventKind::Updated)));
            expected_events.sort_by_key(|e| e.key);
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
            let rtt = probe.then_some(PROBE_RTT);
            let (want, event) = model.confirm(&key(*k), endpoint(*n), rtt);
            let got =
                endpoint(*n).is_some_and(|addr| store.confirm(&key(*k), addr, evidence_of(*probe)));
            if got != want {
                return Err(format!("confirm returned {got}, the model says {want}"));
            }
            expected_events.extend(event.map(|kind| Event::of(key(*k), kind)));
        }
        Op::Fail {
            key: k,
            endpoint: n,
        } => {
            let (want, event) = model.fail(&key(*k), endpoint(*n));
            let got = endpoint(*n).is_some_and(|addr| store.note_failure(&key(*k), addr));
            if got != want {
                return Err(format!(
                    "note_failure returned {got}, the model says {want}"
                ));
            }
            expected_events.extend(event.map(|kind| Event::of(key(*k), kind)));
        }
        Op::SetLatency { key: k, ms } => {
            let latency = Duration::from_millis(u64::from(*ms));
            let got = store.set_latency(&key(*k), latency);
            let want = model.set_latency(&key(*k), latency);
            if got != want {
                return Err(format!("set_latency returned {got}, the model says {want}"));
            }
        }
        Op::Ban { key: k, secs } => {
            let span = ban_span(*secs);
            let got = store
                .ban(&key(*k), span, "the model's")
                .map_err(|e| format!("ban refused: {e}"))?
                .map(|p| (*p).clone());
            let want = model.ban(&key(*k), span);
            if got != want {
                return Err(format!("ban returned {got:?}, the model says {want:?}"));
            }
            if want.is_some() {
                expected_events.push(removal(key(*k), RemovalCause::Banned));
            }
        }
        Op::Unban { key: k } => {
            let (got, want) = (store.unban(&key(*k)), model.unban(&key(*k)));
            if got != want {
                return Err(format!("unban returned {got}, the model says {want}"));
            }
        }
    }

    let mut events = match seen {
        Some(events) => events,
        None => subject.drain()?,
    };
    if matches!(op, Op::Cleanup) {
        // One cleanup's events come in the map's order (their seqs in the same order, which
        // `drain` checked): compared as sets.
        events.sort_by_key(|e| e.key);
    }
    if events != expected_events {
        let tied = match model.tied() {
            [] => String::new(),
            tied => {
                let tied: Vec<u8> = tied.iter().map(number).collect();
                format!(" (the model would evict any of peers {tied:?})")
            }
        };
        return Err(format!(
            "events {events:?}, the model says {expected_events:?}{tied}"
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
        let got: Vec<CandidateView> = store.candidates(&k).iter().map(Into::into).collect();
        let want = model.candidates(&k);
        if got != want {
            return Err(format!(
                "candidates of {n} differ:\n store {got:#?}\n model {want:#?}"
            ));
        }
    }
    let got: Vec<TombstoneView> = store.tombstones().iter().map(Into::into).collect();
    let want = model.tombstones();
    if got != want {
        return Err(format!(
            "tombstones differ:\n store {got:#?}\n model {want:#?}"
        ));
    }
    let mut got: Vec<_> = store
        .banned()
        .iter()
        .map(|b| (b.public_key, b.until))
        .collect();
    got.sort_by_key(|(k, _)| *k);
    if got != model.banned() {
        return Err(format!(
            "bans differ:\n store {got:?}\n model {:?}",
            model.banned()
        ));
    }
    let stats = store.stats();
    let (got, want) = (Counts::from(&stats), model.counts());
    if got != want {
        return Err(format!("stats differ:\n store {got:?}\n model {want:?}"));
    }
    if (stats.peers, stats.events_sent, stats.events_dropped) != (model.len(), subject.received, 0)
    {
        return Err(format!(
            "stats say {} peers, {} events sent and {} dropped; the model holds {} and the \
             subscriber received {}",
            stats.peers,
            stats.events_sent,
            stats.events_dropped,
            model.len(),
            subject.received
        ));
    }
    Ok(())
}
