//! A mesh of WireGuard nodes driven by their stores: N nodes in network namespaces of their own,
//! each running wireguard-go, with a `PeerStore`, a `Reconciler` thread and a `Monitor` thread,
//! and a discovery thread feeding every store the other nodes' LAN announcements. It plays
//! three scenes and prints what happens as it happens:
//!
//! 1. **NAT rebinding**: node 2's port changes while discovery keeps announcing the old one;
//!    the others' devices follow it by themselves, their reconcilers leave that and hand it to
//!    the stores, which take it (the resilient policy's `Trusted` rule).
//! 2. **Address change**: node 3 (or the last) moves to another address, which discovery
//!    announces; the devices follow by roaming, or the reconcilers push it once the old
//!    address is noted failed, whichever comes first.
//! 3. **A node killed and restarted**: the last node's wireguard-go is killed; the others note
//!    it failed, remove it and take it off their devices; started again with the same key,
//!    it is readmitted and shakes hands again.
//!
//! ```sh
//! sudo cargo run --release --features wireguard --example wg_mesh -- --nodes 3
//! sudo cargo run --release --features wireguard --example wg_mesh -- --nodes 3 --json
//! ```
//!
//! It needs root, /dev/net/tun, `wireguard-go`, `wg`, `ip` and `ping` (it says which is
//! missing). Everything it makes is named `wgmesh-PID-…` (namespaces) and `pwPIDm…`
//! (interfaces), torn down at the end or on a panic. Ctrl-C stops the wireguard-go processes
//! too (the terminal signals the whole process group), but leaves the namespaces: the next
//! run deletes those of runs whose process is gone, by that prefix, before it starts.

#[path = "../tests/wireguard/net.rs"]
mod net;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use net::{Mesh, WG_PORT};
use peerstore::wireguard::{Monitor, MonitorSettings, ReconcileSettings, Reconciler, Uapi};
use peerstore::{DiscoveryMethod, EndpointPolicy, PeerEventKind, PeerInfo, PeerStore, PublicKey};
use serde_json::json;

/// The namespaces' prefix, which the next run cleans up after an interrupted one.
const PREFIX: &str = "wgmesh";
/// How often the threads run.
const TICK: Duration = Duration::from_millis(100);
/// How long a scene may take before the run fails.
const SCENE_DEADLINE: Duration = Duration::from_secs(15);

/// What a node's threads saw, sent to the main thread.
enum Note {
    Handshake {
        node: usize,
        peer: PublicKey,
        at: SystemTime,
        endpoint: Option<SocketAddr>,
    },
    Added(usize, PublicKey),
    Pushed(usize, PublicKey, Option<SocketAddr>, SocketAddr),
    Roam(usize, PublicKey, SocketAddr, bool),
    Unconfigured(usize, PublicKey),
    Failed(usize, PublicKey, &'static str),
    Recovered(usize, PublicKey),
    Removed(usize, PublicKey),
    Readmitted(usize, PublicKey),
    Error(usize, String),
}

/// What every thread shares.
struct Shared {
    stores: Vec<PeerStore>,
    keys: Vec<PublicKey>,
    tunnels: Vec<Ipv4Addr>,
    interfaces: Vec<String>,
    announced: Mutex<Vec<SocketAddr>>,
    up: Vec<AtomicBool>,
    stop: AtomicBool,
}

impl Shared {
    fn is_up(&self, node: usize) -> bool {
        self.up[node].load(Ordering::SeqCst)
    }

    fn name(&self, key: PublicKey) -> String {
        self.keys
            .iter()
            .position(|k| *k == key)
            .map_or_else(|| key.short().to_string(), |i| format!("n{}", i + 1))
    }
}

fn main() {
    let mut nodes = 3usize;
    let mut as_json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => as_json = true,
            "--nodes" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if (2..=9).contains(&n) => nodes = n,
                _ => fail("--nodes takes a number from 2 to 9"),
            },
            "-h" | "--help" => {
                println!("usage: wg_mesh [--nodes N (2-9, default 3)] [--json]");
                return;
            }
            other => fail(&format!("unknown argument `{other}` (try --help)")),
        }
    }
    if let Some(why) = net::missing() {
        eprintln!("wg_mesh cannot run here: {why}");
        std::process::exit(if std::env::var("CI").as_deref() == Ok("true") {
            1
        } else {
            0
        });
    }
    remove_leftovers();
    let started = Instant::now();
    let mesh = Mesh::named(PREFIX, nodes);
    let mut run = Run::new(mesh, as_json);
    let outcome = run.play();
    let summary = run.finish(started);
    if as_json {
        println!("{summary:#}");
    }
    if let Err(why) = outcome {
        eprintln!("wg_mesh failed: {why}");
        std::process::exit(1);
    }
}

fn fail(why: &str) -> ! {
    eprintln!("wg_mesh: {why}");
    std::process::exit(2)
}

/// Deletes the namespaces of earlier runs whose process is gone (an interrupted run), after
/// stopping what still runs inside them: that run's wireguard-go.
fn remove_leftovers() {
    let Ok(listing) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_err() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        eprintln!("removed {name}, left by an interrupted run");
    }
}

/// One run: the mesh, the threads, and what they reported.
struct Run {
    mesh: Mesh,
    shared: Arc<Shared>,
    notes: Receiver<(Instant, Note)>,
    threads: Vec<thread::JoinHandle<()>>,
    as_json: bool,
    clock: Instant,
    wall: SystemTime,
    events: Vec<serde_json::Value>,
    /// (node, peer) pairs that shook hands, and how long after the start the first time.
    handshakes: HashSet<(usize, PublicKey)>,
    handshake_ms_max: u128,
    /// Whether the first full mesh was reached (`handshake_ms_max` counts until then).
    meshed: bool,
    roams: usize,
    deaths: Vec<(usize, PublicKey)>,
    /// (node, peer) pairs whose failure stands: noted, neither recovered nor removed since.
    failing: HashSet<(usize, PublicKey)>,
    removed: Vec<(usize, PublicKey)>,
    unconfigured: Vec<(usize, PublicKey)>,
    readmitted: Vec<(usize, PublicKey)>,
    timings: serde_json::Map<String, serde_json::Value>,
}

impl Run {
    fn new(mesh: Mesh, as_json: bool) -> Run {
        let count = mesh.nodes.len();
        let stores = (0..count)
            .map(|_| {
                PeerStore::builder()
                    .endpoint_policy(EndpointPolicy::resilient())
                    .endpoint_history(32)
                    .build()
                    .expect("valid settings")
            })
            .collect();
        let shared = Arc::new(Shared {
            stores,
            keys: mesh.nodes.iter().map(|n| n.public_key).collect(),
            tunnels: mesh.nodes.iter().map(|n| n.tunnel).collect(),
            interfaces: mesh.nodes.iter().map(|n| n.interface.clone()).collect(),
            announced: Mutex::new(mesh.nodes.iter().map(net::Node::endpoint_v4).collect()),
            up: (0..count).map(|_| AtomicBool::new(true)).collect(),
            stop: AtomicBool::new(false),
        });
        let (send, notes) = channel();
        let (clock, wall) = (Instant::now(), SystemTime::now());
        let mut threads = vec![spawn_discovery(Arc::clone(&shared))];
        for node in 0..count {
            threads.push(spawn_reconciler(Arc::clone(&shared), node, send.clone()));
            threads.push(spawn_monitor(Arc::clone(&shared), node, send.clone()));
        }
        Run {
            mesh,
            shared,
            notes,
            threads,
            as_json,
            clock,
            wall,
            events: Vec::new(),
            handshakes: HashSet::new(),
            handshake_ms_max: 0,
            meshed: false,
            roams: 0,
            deaths: Vec::new(),
            failing: HashSet::new(),
            removed: Vec::new(),
            unconfigured: Vec::new(),
            readmitted: Vec::new(),
            timings: serde_json::Map::new(),
        }
    }

    fn count(&self) -> usize {
        self.mesh.nodes.len()
    }

    /// Prints (or keeps, for JSON) one line of what happened.
    fn say(&mut self, node: Option<usize>, what: &str) {
        self.say_at(Instant::now(), node, what);
    }

    /// [`say`](Self::say), for what happened `at`.
    fn say_at(&mut self, at: Instant, node: Option<usize>, what: &str) {
        let ms = at.saturating_duration_since(self.clock).as_millis();
        if self.as_json {
            let node = node.map(|n| format!("n{}", n + 1));
            self.events
                .push(json!({ "t_ms": ms, "node": node, "what": what }));
        } else {
            match node {
                Some(n) => println!("{:>6.2}s  n{}  {what}", ms as f64 / 1000.0, n + 1),
                None => println!("{:>6.2}s      {what}", ms as f64 / 1000.0),
            }
        }
    }

    /// Takes in what the threads reported so far.
    fn drain(&mut self) {
        while let Ok((at, note)) = self.notes.try_recv() {
            let name = |key| self.shared.name(key);
            let (node, line) = match note {
                Note::Handshake {
                    node,
                    peer,
                    at,
                    endpoint,
                } => {
                    if self.handshakes.insert((node, peer)) && !self.meshed {
                        let ms = at.duration_since(self.wall).unwrap_or_default().as_millis();
                        self.handshake_ms_max = self.handshake_ms_max.max(ms);
                    }
                    let at = endpoint.map_or_else(String::new, |e| format!(" at {e}"));
                    (node, format!("handshake with {}{at}", name(peer)))
                }
                Note::Added(node, peer) => (node, format!("device: added {}", name(peer))),
                Note::Pushed(node, peer, from, to) => {
                    let from = from.map_or_else(|| "none".to_owned(), |f| f.to_string());
                    (
                        node,
                        format!("device: {} endpoint {from} -> {to}", name(peer)),
                    )
                }
                Note::Roam(node, peer, to, taken) => {
                    self.roams += 1;
                    let taken = if taken {
                        "store took it"
                    } else {
                        "store kept its own"
                    };
                    (
                        node,
                        format!("roam: device follows {} to {to}, left; {taken}", name(peer)),
                    )
                }
                Note::Unconfigured(node, peer) => {
                    self.unconfigured.push((node, peer));
                    (node, format!("device: removed {}", name(peer)))
                }
                Note::Failed(node, peer, why) => {
                    self.deaths.push((node, peer));
                    self.failing.insert((node, peer));
                    (node, format!("monitor: {} failed ({why})", name(peer)))
                }
                Note::Recovered(node, peer) => {
                    self.failing.remove(&(node, peer));
                    (node, format!("monitor: {} recovered", name(peer)))
                }
                Note::Removed(node, peer) => {
                    self.removed.push((node, peer));
                    self.failing.remove(&(node, peer));
                    (
                        node,
                        format!("monitor: gave up on {}: removed from the store", name(peer)),
                    )
                }
                Note::Readmitted(node, peer) => {
                    self.readmitted.push((node, peer));
                    (node, format!("store: {} readmitted", name(peer)))
                }
                Note::Error(node, error) => (node, format!("error: {error}")),
            };
            self.say_at(at, Some(node), &line);
        }
    }

    /// Takes in reports until `done`, or fails after the scene's deadline.
    fn wait(&mut self, what: &str, mut done: impl FnMut(&Run) -> bool) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            self.drain();
            if done(self) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > SCENE_DEADLINE {
                return Err(format!(
                    "gave up after {SCENE_DEADLINE:?} waiting for {what}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn time(&mut self, name: &str, took: Duration) {
        self.timings
            .insert(name.to_owned(), json!(took.as_millis()));
    }

    /// Whether every running node's store holds `key` at `endpoint`.
    fn stores_have(&self, of: usize, endpoint: SocketAddr) -> bool {
        let key = self.shared.keys[of];
        (0..self.count())
            .filter(|&n| n != of && self.shared.is_up(n))
            .all(|n| self.shared.stores[n].get(&key).and_then(|p| p.endpoint) == Some(endpoint))
    }

    fn full_mesh(&self) -> bool {
        let count = self.count();
        (0..count).all(|a| {
            (0..count)
                .filter(|&b| b != a)
                .all(|b| self.handshakes.contains(&(a, self.shared.keys[b])))
        })
    }

    fn play(&mut self) -> Result<(), String> {
        let count = self.count();
        self.say(
            None,
            &format!("{count} nodes up; discovery, reconcilers and monitors running"),
        );
        let took = self.wait("a full mesh of handshakes", Run::full_mesh)?;
        self.meshed = true;
        self.say(None, &format!("full mesh after {} ms", took.as_millis()));
        self.time("full_mesh_ms", took);

        // 1. NAT rebinding of node 2 (index 1).
        let rebound = SocketAddr::new(self.mesh.nodes[1].underlay_v4.into(), WG_PORT + 1);
        self.say(
            Some(1),
            &format!("scene: NAT rebinding, now sending from {rebound}"),
        );
        self.mesh.nodes[1].set_listen_port(WG_PORT + 1);
        let took = self.wait("the stores to follow the rebinding", |run| {
            run.stores_have(1, rebound)
        })?;
        self.say(
            None,
            &format!(
                "every store has n2 at {rebound} after {} ms",
                took.as_millis()
            ),
        );
        self.time("rebind_noticed_ms", took);

        // 2. Address change of node 3 (or the last).
        let mover = 2.min(count - 1);
        let k = u8::try_from(mover + 1).unwrap_or(1);
        let to = Ipv4Addr::new(10, 250, 0, 100 + k);
        let port = if mover == 1 { WG_PORT + 1 } else { WG_PORT };
        let moved = SocketAddr::new(to.into(), port);
        self.say(
            Some(mover),
            &format!("scene: address change to {to}, announced"),
        );
        self.mesh.nodes[mover].move_underlay_v4(to);
        self.shared
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[mover] = moved;
        let took = self.wait("the stores to follow the move", |run| {
            run.stores_have(mover, moved)
        })?;
        let tunnel = self.shared.tunnels[mover];
        let answered = self.mesh.nodes[0].ping_until_answered(tunnel, Duration::from_secs(2));
        self.say(
            None,
            &format!(
                "every store has n{} at {moved} after {} ms; ping through the tunnel: {}",
                mover + 1,
                took.as_millis(),
                if answered { "answered" } else { "no answer" }
            ),
        );
        self.time("address_change_ms", took);
        if !answered {
            return Err("no echo through the tunnel after the address change".into());
        }

        // The old address was noted failed on the way: wait until every node hears from the
        // mover again, so that the next scene's failures are the kill's.
        self.wait("every failure to be recovered", |run| {
            run.failing.is_empty()
        })?;

        // 3. The last node killed, then restarted.
        let victim = count - 1;
        let key = self.shared.keys[victim];
        let others: Vec<usize> = (0..count).filter(|&node| node != victim).collect();
        // What the scenes before reported is taken in first: from here on, only the kill's.
        self.drain();
        let (removed_before, unconfigured_before, readmitted_before) = (
            self.removed.len(),
            self.unconfigured.len(),
            self.readmitted.len(),
        );
        self.say(Some(victim), "scene: wireguard-go killed");
        self.shared.up[victim].store(false, Ordering::SeqCst);
        self.mesh.kill(victim);
        // Every other node's monitor holds it failed (or has already removed it): a failure
        // noted a moment before the kill, as the address change's last one can be, counts as
        // noting the death, since that monitor notes no second failure until it recovers.
        let took = self.wait("the others to note the death", |run| {
            others.iter().all(|&node| {
                run.failing.contains(&(node, key))
                    || run.removed[removed_before..].contains(&(node, key))
            })
        })?;
        self.time("death_noticed_ms", took);
        let took2 = self.wait("the others to remove it", |run| {
            others
                .iter()
                .all(|&node| run.unconfigured[unconfigured_before..].contains(&(node, key)))
        })?;
        self.time("removed_ms", took + took2);
        self.say(Some(victim), "restarted with the same key");
        self.mesh.restart(victim);
        // A fresh wireguard-go listens on the usual port again, and announces that.
        let back = SocketAddr::new(self.mesh.nodes[victim].underlay_v4.into(), WG_PORT);
        self.shared
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[victim] = back;
        // Its own threads resume; its device is new and empty.
        self.handshakes
            .retain(|(node, peer)| *node != victim && *peer != key);
        self.shared.up[victim].store(true, Ordering::SeqCst);
        let took = self.wait("the restarted node back in the mesh", |run| {
            run.full_mesh()
                && others
                    .iter()
                    .all(|&node| run.readmitted[readmitted_before..].contains(&(node, key)))
        })?;
        self.say(
            None,
            &format!(
                "n{} back in the mesh after {} ms",
                victim + 1,
                took.as_millis()
            ),
        );
        self.time("readmitted_ms", took);
        Ok(())
    }

    /// Stops the threads, tears the mesh down and returns the JSON summary.
    fn finish(mut self, started: Instant) -> serde_json::Value {
        self.shared.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.drain();
        let nodes = self.count();
        drop(self.mesh);
        let mut summary = json!({
            "nodes": nodes,
            "handshake_ms_max": self.handshake_ms_max,
            "roams_noticed": self.roams,
            "deaths_noticed": self.deaths.len(),
            "removed": self.removed.len(),
            "readmitted": self.readmitted.len(),
            "run_ms": started.elapsed().as_millis(),
        });
        if let Some(map) = summary.as_object_mut() {
            map.extend(self.timings);
        }
        if !self.as_json {
            println!("summary: {summary}");
        }
        json!({ "summary": summary, "events": self.events })
    }
}

fn spawn_discovery(shared: Arc<Shared>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !shared.stop.load(Ordering::SeqCst) {
            let announced = shared
                .announced
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for (listener, store) in shared.stores.iter().enumerate() {
                for (announcer, endpoint) in announced.iter().enumerate() {
                    if listener == announcer || !shared.is_up(listener) || !shared.is_up(announcer)
                    {
                        continue;
                    }
                    let mut info = PeerInfo::new(shared.keys[announcer]);
                    info.endpoint = Some(*endpoint);
                    info.mesh_ip = Some(shared.tunnels[announcer]);
                    let _ = store.update(info, DiscoveryMethod::Lan);
                }
            }
            thread::sleep(TICK * 2);
        }
    })
}

fn spawn_reconciler(
    shared: Arc<Shared>,
    node: usize,
    notes: Sender<(Instant, Note)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Ok(device) = Uapi::new(&shared.interfaces[node]) else {
            return;
        };
        // Stamped when seen, not when the main thread gets to it.
        let send = |note: Note| {
            let _ = notes.send((Instant::now(), note));
        };
        let mut settings = ReconcileSettings::default();
        settings.persistent_keepalive = Some(Duration::from_secs(1));
        settings.unmanaged.insert(shared.keys[node]);
        let mut reconciler = Reconciler::new(settings);
        let store = &shared.stores[node];
        // The nodes start a few milliseconds apart: two peers configured within a round trip
        // of each other both initiate a handshake, each drops the answer to its own, and
        // WireGuard tries again only after its 5 s rekey timeout.
        thread::sleep(Duration::from_millis(30) * u32::try_from(node).unwrap_or(0));
        while !shared.stop.load(Ordering::SeqCst) {
            if shared.is_up(node) {
                match reconciler.reconcile(store, &device) {
                    Ok(report) => {
                        for key in report.added {
                            send(Note::Added(node, key));
                        }
                        for update in report.updated {
                            if let Some((from, to)) = update.endpoint {
                                send(Note::Pushed(node, update.public_key, from, to));
                            }
                        }
                        for roam in report.roams.into_iter().filter(|r| r.handed_over) {
                            send(Note::Roam(node, roam.public_key, roam.device, roam.taken));
                        }
                        for key in report.removed {
                            send(Note::Unconfigured(node, key));
                        }
                    }
                    Err(error) if shared.is_up(node) => {
                        send(Note::Error(node, error.to_string()));
                    }
                    Err(_) => {}
                }
            }
            thread::sleep(TICK);
        }
    })
}

fn spawn_monitor(
    shared: Arc<Shared>,
    node: usize,
    notes: Sender<(Instant, Note)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Ok(device) = Uapi::new(&shared.interfaces[node]) else {
            return;
        };
        // Stamped when seen, not when the main thread gets to it.
        let send = |note: Note| {
            let _ = notes.send((Instant::now(), note));
        };
        let mut settings = MonitorSettings::default();
        settings.rx_frozen_for = Duration::from_secs(3);
        settings.first_handshake_within = Duration::from_secs(5);
        settings.remove_after = Duration::from_secs(3);
        settings.tombstone = Duration::from_secs(60);
        let mut monitor = Monitor::new(settings);
        let store = &shared.stores[node];
        let events = store.subscribe();
        while !shared.stop.load(Ordering::SeqCst) {
            if shared.is_up(node) {
                match monitor.observe(store, &device) {
                    Ok(report) => {
                        for seen in report.confirmed {
                            send(Note::Handshake {
                                node,
                                peer: seen.public_key,
                                at: seen.at,
                                endpoint: seen.endpoint,
                            });
                        }
                        for failure in report.failed {
                            send(Note::Failed(
                                node,
                                failure.public_key,
                                failure.reason.as_str(),
                            ));
                        }
                        for key in report.recovered {
                            send(Note::Recovered(node, key));
                        }
                        for key in report.removed {
                            send(Note::Removed(node, key));
                        }
                    }
                    Err(error) if shared.is_up(node) => {
                        send(Note::Error(node, error.to_string()));
                    }
                    Err(_) => {}
                }
            }
            for event in events.try_iter() {
                if event.kind == (PeerEventKind::New { readmitted: true }) {
                    send(Note::Readmitted(node, event.public_key));
                }
            }
            thread::sleep(TICK);
        }
    })
}
