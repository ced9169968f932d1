//! Writes the replay tool's default trace, `examples/traces/mesh.jsonl`: thirty minutes in the
//! life of a mesh node and its ~200 peers, as the store would hear them.
//!
//! ```text
//! cargo run --example make_trace > examples/traces/mesh.jsonl
//! ```
//!
//! Each line is written through the replay's own type for a trace line
//! (`src/bin/replay/trace.rs`, included below), so what this writes is what the replay reads.
//! The output is a pure function of these two files (a fixed seed, no clock), so CI
//! regenerates it and compares. The story, minute by minute:
//!
//! - **0:00** the node starts and restores its cache: 20 peers it knew, last seen 1 to 9
//!   minutes ago, and 10 it will never hear of again, 5 of them already older than 10 minutes
//!   (gone at the first cleanup).
//! - **0:03 on** 12 LAN neighbours (`lan-01`..`lan-12`, three of them introducers) multicast
//!   every minute. The DHT finds some of them too, behind the office NAT: refused, a LAN
//!   endpoint is sticky.
//! - **0:10 – 5:00** the DHT finds 140 peers (`node-001`..`node-140`) behind NAT and
//!   re-announces them every 4 minutes, each record carrying the time its peer signed it
//!   (what `--readmit newer` weighs; the other policies take a first-hand record as news
//!   from now). Those behind a cone NAT get punched by a DHT
//!   rendezvous, whose endpoint (the NAT's mapping, another port) outranks the DHT's; the
//!   rendezvous repeats every 10 minutes. Gateways gossip their routes.
//! - **1:00 on** the introducers gossip 40 peers second-hand (`far-01`..`far-40`), with the
//!   time they last heard of them; the DHT mentions some of them as well.
//! - **every minute** the cleanup loop runs.
//! - **every two minutes** WireGuard completes a handshake with each live peer at the endpoint
//!   that works (the NAT's mapping once punched), and the health monitor's probes of the LAN
//!   neighbours are answered: `confirm` lines, which the resilient endpoint policy trusts.
//! - **2:00 – 8:00** scene (A): `laptop-ben` is on the LAN until 6:00, then at a café that the
//!   DHT announces every minute from 6:30; the LAN endpoint fails at 6:45 (a `fail` line) and
//!   handshakes come from the café from 8:00. The seed policy keeps the LAN endpoint forever.
//! - **3:00 – 12:30** scene (B): the DHT hands out two records of `node-141` in turn, 20
//!   times; only the first works. The seed policy changes the endpoint 19 times.
//! - **1:00 on** a ghost, `far-41`: gossiped second-hand every minute with no time of its own,
//!   never heard first-hand. The seed's store expires it and takes it back, every 12 minutes.
//! - **11:30, 12:30** first-hand newcomers during the flood: `node-142` (DHT) and `lan-13`
//!   (LAN). The seed refuses them as full until the fakes expire; under `evict-second-hand`
//!   or `evict-unproven` each takes a fake's place.
//! - **14:00** the health monitor removes `node-105` (silent since 10:00) with a 30-minute
//!   tombstone; gossip keeps mentioning it second-hand. The seed resurrects it at 14:02.
//! - **0:05 – 8:05** the laptop `laptop-ana` is on the LAN; the DHT sees it through the NAT,
//!   refused (LAN sticky). At 8:05 its lid closes: dead after 13:05, removed by the cleanup at
//!   19:00. At 23:00 it wakes up on another network, found by the DHT (the record it signed
//!   on waking: news from after its removal) and then punched.
//! - **10:00** `node-101`..`node-115` go silent for good: dead at 15:00, removed after 20:00.
//!   A hostile gossip message announces `node-020` at port 0 and `node-021` at a multicast
//!   address: both refused, the records untouched.
//! - **11:00** a flood of 900 fake peers arrives by transitive gossip within two seconds: the
//!   store fills to its cap of 1000 and refuses the rest; the fakes are never heard again and
//!   the cleanup drops them after 21:00.
//! - **12:00** the operator removes `node-050`, whose key was revoked.
//! - **15:00** `node-007` moves to IPv6: at equal rank IPv6 wins, and its later IPv4
//!   announcements are refused.
//! - **1:30 on** a revoked key: the DHT serves `laptop-cai`'s signed record (signed at 1:20)
//!   every 3 minutes to the end. At 9:00 the laptop is reported stolen: the operator bans
//!   the key (a `ban` line, no span) and removes it with a one-hour tombstone (`remove_for`).
//!   The seed's daemon has no bans, so `--compare`'s seed side plays no `ban` line: its
//!   operator could only remove, and the remove is all that side does (a plain one, as it
//!   has no tombstones either). That keeps the comparison honest: the seed takes the key
//!   back at 10:30 on its old record (a stale readmission) and keeps it; a store with bans
//!   refuses each of the 7 announcements after the ban.
//! - **0:40 – 9:30** a dead peer: `node-143` publishes a new record every two minutes and
//!   dies at 3:30. At 5:00 the health monitor's probes time out (`fail`) and it removes the
//!   peer with a 30-minute tombstone; the DHT keeps serving what it has, with no time at 5:20,
//!   then the last record (signed at 2:40) at 6:20 and 7:20. The first-hand rule readmits it
//!   at 5:20 (a stale readmission, as the seed's re-insert is); `--readmit newer` refuses all
//!   three. At 9:30 the peer is back and publishes a new record: taken under every rule.
//! - **24:00** a first-hand flood: 1,100 fresh keys announced by the DHT within a minute,
//!   never heard again and never in a handshake. The store fills to its cap and the fakes
//!   outlive the trace (the final table holds them). Four real peers join the LAN during and
//!   after it, `lan-14` at 24:55, `lan-15` at 25:00, `lan-16` at 26:00 and `lan-17` at 27:30,
//!   multicast every minute and complete a handshake two seconds after their first
//!   announcement (a store that refused one has no record for it: its daemon never
//!   configured the peer). The seed refuses them, but for a slot a cleanup frees, to the end;
//!   under `evict-second-hand` too, since the flood's own keys past the cap took the places
//!   of the second-hand peers first (as they do under `evict-unproven`: a DHT newcomer may
//!   evict a peer never heard first-hand); under `evict-unproven` each takes an unproven
//!   fake's place at its first announcement.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerstore::{DiscoveryMethod as M, IpNet, NatType, PublicKey};

#[path = "../src/bin/replay/trace.rs"]
#[allow(dead_code, reason = "the reader's half of the trace is the replay's")]
mod trace;

use trace::{Announced, Line, Step, TRACE_START_UNIX, True};

/// The story's length.
const END: u64 = 30 * 60;

/// splitmix64: a tiny, fixed random sequence, so the story is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn key(&mut self) -> PublicKey {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        PublicKey::from_bytes(bytes)
    }
}

/// The trace being written: its lines, sorted (stably) by time at the end.
#[derive(Default)]
struct Trace {
    lines: Vec<Line>,
}

impl Trace {
    fn push(&mut self, at: u64, step: Step) {
        self.lines.push(Line {
            at: Duration::from_secs(at),
            step,
        });
    }

    fn announce(&mut self, at: u64, method: M, peer: Announced) {
        if at <= END {
            self.push(at, Step::Announce { method, peer });
        }
    }

    fn remove(&mut self, at: u64, key: PublicKey) {
        self.push(
            at,
            Step::Remove {
                key,
                tombstone: None,
            },
        );
    }

    /// The health monitor gives up on `key`: removed, with a tombstone for `secs`.
    fn remove_for(&mut self, at: u64, key: PublicKey, secs: u64) {
        let tombstone = Some(Duration::from_secs(secs));
        self.push(at, Step::Remove { key, tombstone });
    }

    /// The operator bans `key` until it is lifted, saying why.
    fn ban(&mut self, at: u64, key: PublicKey, reason: &str) {
        let reason = Some(reason.to_owned());
        self.push(
            at,
            Step::Ban {
                key,
                span: None,
                reason,
            },
        );
    }

    fn cleanup(&mut self, at: u64) {
        self.push(at, Step::Cleanup { cleanup: True });
    }

    /// Evidence that `endpoint` works: a handshake the daemon saw, or with `rtt_ms` a probe
    /// the health monitor sent and had answered.
    fn confirm(&mut self, at: u64, key: PublicKey, endpoint: SocketAddr, rtt_ms: Option<u64>) {
        if at <= END {
            let rtt = rtt_ms.map(Duration::from_millis);
            self.push(at, Step::Confirm { key, endpoint, rtt });
        }
    }

    /// The health monitor gave up on `endpoint`: its probes time out.
    fn fail(&mut self, at: u64, key: PublicKey, endpoint: SocketAddr) {
        self.push(at, Step::Fail { endpoint, key });
    }

    /// Handshakes at `endpoint` every two minutes (WireGuard's rekey) from `from` until
    /// before `until`, a few seconds late now and then.
    fn handshakes(
        &mut self,
        rng: &mut Rng,
        key: PublicKey,
        endpoint: SocketAddr,
        from: u64,
        until: u64,
    ) {
        let mut at = from;
        while at < until.min(END + 1) {
            self.confirm(at, key, endpoint, None);
            at += 120 + rng.range(0, 5);
        }
    }
}

/// An address written in this file.
fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address:port")
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().expect("an IPv4 address")
}

/// A wall-clock time `ago` seconds before second `at` of the trace, as `PeerInfo` carries it:
/// whole Unix seconds, as the cache writes them.
fn seen(at: u64, ago: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TRACE_START_UNIX + at - ago.min(TRACE_START_UNIX))
}

struct Node {
    key: PublicKey,
    name: String,
    mesh_ip: Ipv4Addr,
    /// Where the DHT says it is: its NAT's public address.
    endpoint: SocketAddr,
    /// The NAT's mapping for us, learned by the rendezvous (cone NATs only).
    punched: Option<SocketAddr>,
    nat: NatType,
    first: u64,
    routes: Vec<IpNet>,
}

fn main() {
    let mut rng = Rng(0x0005_eed0_fa11_5ee5);
    let mut t = Trace::default();

    // The DHT's peers, some of them in the cache.
    let nodes: Vec<Node> = (1..=140u64)
        .map(|n| {
            let nat = match (n, rng.range(0, 10)) {
                (7, _) => NatType::Symmetric, // the IPv6 mover keeps its DHT endpoint
                (_, 0..=6) => NatType::Cone,
                (_, 7..=8) => NatType::Symmetric,
                _ => NatType::Unknown,
            };
            let net = if n % 2 == 0 {
                "198.51.100"
            } else {
                "203.0.113"
            };
            let port = rng.range(20_000, 60_000);
            Node {
                key: rng.key(),
                name: format!("node-{n:03}"),
                mesh_ip: ip(&format!("10.42.{}.{}", 1 + n / 200, n % 200 + 1)),
                endpoint: addr(&format!("{net}.{}:{port}", n + 2)),
                punched: (nat == NatType::Cone)
                    .then(|| addr(&format!("{net}.{}:{}", n + 2, port + 1))),
                nat,
                first: rng.range(10, 300),
                routes: if n % 15 == 0 {
                    let route = format!("192.168.{}.0/24", 100 + n / 15);
                    vec![route.parse().expect("a network")]
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let silent_from = |n: usize| match n + 1 {
        101..=115 => 600,
        50 => 720,
        _ => END + 1,
    };

    // 0:00 — the cache restore.
    for node in nodes.iter().step_by(6) {
        let info = Announced::new(node.key)
            .endpoint(node.endpoint)
            .mesh_ip(node.mesh_ip)
            .hostname(&node.name)
            .nat_type(node.nat)
            .last_seen(seen(0, rng.range(60, 540)));
        t.announce(0, M::Cache, info);
    }
    for n in 1..=10u64 {
        let ago = if n <= 5 {
            rng.range(660, 1200)
        } else {
            rng.range(120, 540)
        };
        let info = Announced::new(rng.key())
            .endpoint(addr(&format!("192.0.2.{n}:51820")))
            .mesh_ip(ip(&format!("10.42.9.{n}")))
            .hostname(&format!("old-{n:02}"))
            .last_seen(seen(0, ago));
        t.announce(0, M::Cache, info);
    }

    // The LAN neighbours, and what the DHT says of three of them.
    let lan: Vec<(PublicKey, u64)> = (1..=12u64).map(|n| (rng.key(), n)).collect();
    for &(key, n) in &lan {
        let endpoint = addr(&format!("192.168.7.{}:51820", 10 + n));
        let mut at = 3 + n * 4;
        while at <= END {
            let info = Announced::new(key)
                .endpoint(endpoint)
                .mesh_ip(ip(&format!("10.42.0.{n}")))
                .hostname(&format!("lan-{n:02}"))
                .introducer(n <= 3)
                .nat_type(NatType::Cone);
            t.announce(at, M::Lan, info);
            at += 60 + rng.range(0, 3) - 1;
        }
        // The health monitor probes each neighbour every two minutes: answered in a ms.
        for at in (3 + n * 4 + 2..=END).step_by(120) {
            t.confirm(at, key, endpoint, Some(1));
        }
        if n % 4 == 0 {
            for at in [90 + n, 390 + n, 990 + n] {
                let behind_nat = addr(&format!("198.51.100.250:{}", 40_000 + n));
                t.announce(at, M::Dht, Announced::new(key).endpoint(behind_nat));
            }
        }
    }

    // The DHT's peers: announcements, rendezvous, gossip.
    let v6 = addr("[2001:db8:7::1]:51820");
    for (i, node) in nodes.iter().enumerate() {
        let stop = silent_from(i);
        let mut at = node.first;
        while at < stop && at <= END {
            let endpoint = if i + 1 == 7 && (900..1300).contains(&at) {
                v6
            } else {
                node.endpoint
            };
            // The record the DHT returns carries the time the peer signed it, 20 s before.
            let info = Announced::new(node.key)
                .endpoint(endpoint)
                .mesh_ip(node.mesh_ip)
                .hostname(&node.name)
                .nat_type(node.nat)
                .last_seen(seen(at, 20));
            t.announce(at, M::Dht, info);
            at += 240 + rng.range(0, 20);
        }
        let mut first_punch = None;
        if let Some(punched) = node.punched {
            let mut at = node.first + rng.range(5, 40);
            first_punch = Some(at);
            while at < stop && at <= END {
                let info = Announced::new(node.key).endpoint(punched);
                t.announce(at, M::DhtRendezvous, info);
                at += 600 + rng.range(0, 30);
            }
        }
        // Handshakes on the endpoint that works: the NAT's mapping once punched, else the
        // DHT's (node-007's IPv6 one once it has it).
        match (node.punched, first_punch) {
            (Some(punched), Some(from)) => {
                t.handshakes(&mut rng, node.key, punched, from + 3, stop);
            }
            _ if i + 1 == 7 => {
                t.handshakes(&mut rng, node.key, node.endpoint, node.first + 3, 900);
                t.handshakes(&mut rng, node.key, v6, 903, stop);
            }
            _ => t.handshakes(&mut rng, node.key, node.endpoint, node.first + 3, stop),
        }
        if !node.routes.is_empty() {
            let mut at = node.first + 30;
            while at < stop && at <= END {
                let info = Announced::new(node.key).routable_networks(node.routes.clone());
                t.announce(at, M::Gossip, info);
                at += 180;
            }
        }
    }
    // 15:00 — node-007 announces its IPv6 endpoint; its DHT announcements above carry it
    // until 21:40 and then its old IPv4 one again, which the store refuses.
    let n7 = &nodes[6];
    t.announce(900, M::Dht, Announced::new(n7.key).endpoint(v6));

    // Second-hand: the introducers gossip peers they heard of, with when.
    for n in 1..=40u64 {
        let key = rng.key();
        let endpoint = addr(&format!(
            "192.0.2.{}:{}",
            100 + n,
            rng.range(20_000, 60_000)
        ));
        let mut at = 60 + rng.range(0, 240);
        while at <= END {
            let info = Announced::new(key)
                .endpoint(endpoint)
                .hostname(&format!("far-{n:02}"))
                .mesh_ip(ip(&format!("10.42.5.{n}")))
                .last_seen(seen(at, rng.range(5, 90)));
            t.announce(at, M::GossipTransitive, info);
            if n % 4 == 0 {
                let info = Announced::new(key)
                    .endpoint(endpoint)
                    .last_seen(seen(at, 120));
                t.announce(at + 7, M::DhtTransitive, info);
            }
            at += 300 + rng.range(0, 30);
        }
    }

    // The laptop: on the LAN, asleep, then elsewhere.
    let laptop = rng.key();
    let laptop_lan = addr("192.168.7.50:51820");
    let lan_laptop = Announced::new(laptop)
        .endpoint(laptop_lan)
        .mesh_ip(ip("10.42.0.50"))
        .hostname("laptop-ana")
        .nat_type(NatType::Cone);
    for at in (5..=485).step_by(60) {
        t.announce(at, M::Lan, lan_laptop.clone());
    }
    for at in [125, 365] {
        let info = Announced::new(laptop).endpoint(addr("198.51.100.250:41641"));
        t.announce(at, M::Dht, info);
    }
    for at in (7..=485).step_by(120) {
        t.confirm(at, laptop, laptop_lan, Some(1));
    }
    // Its DHT record is the one it signed on waking at 22:55: a time after its removal, which
    // is what `--readmit newer` lifts its tombstone for.
    for at in (1380..=END).step_by(240) {
        let info = Announced::new(laptop)
            .endpoint(addr("203.0.113.77:38211"))
            .mesh_ip(ip("10.42.0.50"))
            .hostname("laptop-ana")
            .nat_type(NatType::Cone)
            .last_seen(seen(1375, 0));
        t.announce(at, M::Dht, info);
    }
    let laptop_punched = addr("203.0.113.77:38212");
    let info = Announced::new(laptop).endpoint(laptop_punched);
    t.announce(1395, M::DhtRendezvous, info);
    t.handshakes(&mut rng, laptop, laptop_punched, 1398, END + 1);

    // 10:00 — hostile input: refused, records untouched.
    let port_0 = Announced::new(nodes[19].key).endpoint(addr("198.51.100.22:0"));
    t.announce(600, M::Gossip, port_0);
    let multicast = Announced::new(nodes[20].key).endpoint(addr("224.0.0.251:51820"));
    t.announce(601, M::Gossip, multicast);

    // 11:00 — the flood.
    for n in 0..900u64 {
        let fake = addr(&format!("100.64.{}.{}:51820", n / 250, n % 250 + 1));
        let info = Announced::new(rng.key()).endpoint(fake);
        t.announce(660 + n / 450, M::GossipTransitive, info);
    }

    // 12:00 — a revoked key.
    t.remove(720, nodes[49].key);

    for at in (60..=END).step_by(60) {
        t.cleanup(at);
    }

    // 2:00 – 6:00 — scene (A): `laptop-ben` on the LAN, probed every two minutes, leaves at
    // 6:00 for a café; the DHT has its new address from 6:30, every minute. At 6:45 the
    // health monitor gives up on the LAN endpoint; from 8:00 WireGuard hears handshakes from
    // the café (the laptop roamed). The seed policy keeps the LAN endpoint to the end.
    let ben = rng.key();
    let (ben_lan, ben_cafe) = (addr("192.168.7.60:51820"), addr("203.0.113.9:40001"));
    let ben_info = |endpoint| {
        Announced::new(ben)
            .endpoint(endpoint)
            .mesh_ip(ip("10.42.0.60"))
            .hostname("laptop-ben")
            .nat_type(NatType::Cone)
    };
    for at in (120..=360).step_by(60) {
        t.announce(at, M::Lan, ben_info(ben_lan));
    }
    for at in (122..=360).step_by(120) {
        t.confirm(at, ben, ben_lan, Some(1));
    }
    for at in (390..=END).step_by(60) {
        t.announce(at, M::Dht, ben_info(ben_cafe));
    }
    t.fail(405, ben, ben_lan);
    t.handshakes(&mut rng, ben, ben_cafe, 480, END + 1);

    // 3:00 – 12:30 — scene (B): the DHT holds two records of `node-141`, its address and a
    // stale one, and hands out each in turn: 20 announcements, 30 s apart. Handshakes work on
    // the first only. The seed policy changes the endpoint 19 times; then only the good record
    // is left.
    let mirror = rng.key();
    let (good, old) = (addr("198.51.100.141:51820"), addr("203.0.113.141:51820"));
    for i in 0..20u64 {
        let endpoint = if i % 2 == 0 { good } else { old };
        let info = Announced::new(mirror)
            .endpoint(endpoint)
            .mesh_ip(ip("10.42.1.141"))
            .hostname("node-141");
        t.announce(180 + 30 * i, M::Dht, info);
    }
    for at in (990..=END).step_by(240) {
        t.announce(at, M::Dht, Announced::new(mirror).endpoint(good));
    }
    t.handshakes(&mut rng, mirror, good, 183, END + 1);

    // 11:30 and 12:30 — first-hand newcomers while the flood fills the store: `node-142`
    // found by the DHT, `lan-13` on the LAN. The seed refuses both as full until the fakes
    // expire; evict-second-hand lets each take a fake's place at once.
    let newcomer = rng.key();
    let newcomer_at = addr("198.51.100.142:51820");
    for at in (690..=END).step_by(240) {
        let info = Announced::new(newcomer)
            .endpoint(newcomer_at)
            .mesh_ip(ip("10.42.1.142"))
            .hostname("node-142");
        t.announce(at, M::Dht, info);
    }
    t.handshakes(&mut rng, newcomer, newcomer_at, 693, END + 1);
    let lan13 = rng.key();
    let lan13_at = addr("192.168.7.23:51820");
    for at in (750..=END).step_by(60) {
        let info = Announced::new(lan13)
            .endpoint(lan13_at)
            .mesh_ip(ip("10.42.0.13"))
            .hostname("lan-13");
        t.announce(at, M::Lan, info);
    }
    for at in (752..=END).step_by(120) {
        t.confirm(at, lan13, lan13_at, Some(1));
    }

    // 14:00 — resurrection: the health monitor gives up on `node-105` (silent since 10:00)
    // and removes it with a 30-minute tombstone; the introducers go on gossiping it
    // second-hand every two minutes, with the time they last heard of it.
    let gone = &nodes[104];
    t.remove_for(840, gone.key, 1800);
    for at in (842..=END).step_by(120) {
        let info = Announced::new(gone.key)
            .endpoint(gone.endpoint)
            .hostname(&gone.name)
            .last_seen(seen(at, at - 600));
        t.announce(at, M::GossipTransitive, info);
    }

    // 1:00 on — a ghost: `far-41`, mentioned second-hand every minute with no time of its
    // own, never heard first-hand. The seed lets it expire and re-adds it, every 12 minutes.
    let ghost = rng.key();
    for at in (60..=END).step_by(60) {
        let info = Announced::new(ghost)
            .endpoint(addr("192.0.2.141:41641"))
            .hostname("far-41");
        t.announce(at, M::GossipTransitive, info);
    }

    // The scenes below draw from a sequence of their own, so that the lines above stay as
    // they were.
    let mut rng = Rng(0x0b0a_4ed5_ca1e_0001);

    // 1:30 on — a revoked key: `laptop-cai`'s record, signed at 1:20, is served by the DHT
    // every 3 minutes to the end. At 9:00 the operator bans the key (the laptop was stolen)
    // and, for the seed's daemon, which has no bans, removes it with a one-hour tombstone.
    let cai = rng.key();
    let cai_at = addr("203.0.113.150:41000");
    for at in (90..=END).step_by(180) {
        let info = Announced::new(cai)
            .endpoint(cai_at)
            .mesh_ip(ip("10.42.0.70"))
            .hostname("laptop-cai")
            .last_seen(seen(80, 0));
        t.announce(at, M::Dht, info);
    }
    t.handshakes(&mut rng, cai, cai_at, 93, 540);
    t.ban(540, cai, "key revoked: laptop stolen");
    t.remove_for(540, cai, 3600);

    // 0:40 – 3:30 and 9:30 on — a dead peer: `node-143` publishes a new record every two
    // minutes while alive, and dies at 3:30. At 5:00 the health monitor's probes time out and
    // it removes the peer with a 30-minute tombstone; the DHT keeps serving what it had: with
    // no time at 5:20, then its last record (signed at 2:40) at 6:20 and 7:20. At 9:30 the
    // peer is back and publishes a new record.
    let dead = rng.key();
    let dead_at = addr("198.51.100.143:51820");
    let dead_info = |seen_at: Option<u64>| {
        let info = Announced::new(dead)
            .endpoint(dead_at)
            .mesh_ip(ip("10.42.1.143"))
            .hostname("node-143");
        match seen_at {
            Some(at) => info.last_seen(seen(at, 0)),
            None => info,
        }
    };
    for at in (40..210).step_by(120).chain((570..=END).step_by(120)) {
        t.announce(at, M::Dht, dead_info(Some(at)));
    }
    t.handshakes(&mut rng, dead, dead_at, 43, 210);
    t.handshakes(&mut rng, dead, dead_at, 573, END + 1);
    t.fail(300, dead, dead_at);
    t.remove_for(300, dead, 1800);
    t.announce(320, M::Dht, dead_info(None));
    for at in [380, 440] {
        t.announce(at, M::Dht, dead_info(Some(160)));
    }

    // 24:00 — a first-hand flood: 1,100 fresh keys announced by the DHT within a minute,
    // never heard again and never in a handshake. The store fills to its cap; the fakes stay
    // past the trace's end. Four real peers join the LAN during and after it, `lan-14` ..
    // `lan-17`, multicast every minute and complete a handshake two seconds after their first
    // announcement, then every two minutes (a store that refused one has no record for these
    // handshakes: its daemon never configured the peer).
    for n in 0..1100u64 {
        let fake = addr(&format!("198.18.{}.{}:51820", n / 250, n % 250 + 1));
        t.announce(
            1440 + n * 60 / 1100,
            M::Dht,
            Announced::new(rng.key()).endpoint(fake),
        );
    }
    for (n, first) in [(14u64, 1495u64), (15, 1500), (16, 1560), (17, 1650)] {
        let key = rng.key();
        let endpoint = addr(&format!("192.168.7.{}:51820", 10 + n));
        for at in (first..=END).step_by(60) {
            let info = Announced::new(key)
                .endpoint(endpoint)
                .mesh_ip(ip(&format!("10.42.0.{n}")))
                .hostname(&format!("lan-{n:02}"))
                .nat_type(NatType::Cone);
            t.announce(at, M::Lan, info);
        }
        t.handshakes(&mut rng, key, endpoint, first + 2, END + 1);
    }

    t.lines.sort_by_key(|line| line.at);
    for line in t.lines {
        println!(
            "{}",
            serde_json::to_string(&line).expect("a trace line serializes")
        );
    }
}
