//! The store meets real WireGuard: nodes in network namespaces, each with a `PeerStore`, a
//! wireguard-go device, a `Reconciler` and a `Monitor`, and nothing but the stores telling the
//! devices who their peers are. Discovery is simulated: each store is fed the other nodes'
//! LAN announcements (endpoint = the node's underlay address and port, mesh address = its
//! tunnel address).
//!
//! The scenes: a full mesh from the stores alone, a peer learned from discovery on the device
//! within one reconcile, a NAT rebinding the store follows without a reconcile writing the old
//! endpoint back, an address change the reconciler pushes, a killed node failed, removed and
//! readmitted, a peer the store removes leaving the device, and a hand-made peer left alone.
//!
//! Each test builds a mesh of its own (`wireguard/net.rs`); every wait is a poll with a
//! deadline. Without root, `/dev/net/tun`, `wireguard-go`, `wg`, `ip` or `ping`, each test
//! prints why and passes, except under `CI=true`, where it fails.

#[path = "wireguard/net.rs"]
mod net;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use net::{Mesh, WG_PORT};
use peerstore::wireguard::{
    Device, DevicePeer, Monitor, MonitorReport, MonitorSettings, PeerChange, PeerConfig,
    ReconcileReport, ReconcileSettings, Reconciler, Uapi,
};
use peerstore::{
    DiscoveryMethod, EndpointPolicy, EndpointRule, PeerEventKind, PeerInfo, PeerStore, PublicKey,
};

/// How long any one scene may wait for what it waits for.
const DEADLINE: Duration = Duration::from_secs(10);

/// How often the rig runs a round: discovery, then each node's monitor and reconciler.
const ROUND: Duration = Duration::from_millis(50);

/// The keepalive every reconciler sets (unless a scene says otherwise): 1 s, so that a live
/// peer's bytes received grow every second.
const KEEPALIVE: Duration = Duration::from_secs(1);

/// Short windows: frozen bytes 3 s, removal 3 s after the failure.
fn monitor_settings() -> MonitorSettings {
    let mut settings = MonitorSettings::default();
    settings.rx_frozen_for = Duration::from_secs(3);
    settings.first_handshake_within = Duration::from_secs(5);
    settings.remove_after = Duration::from_secs(3);
    settings.tombstone = Duration::from_secs(30);
    settings
}

/// One node's daemon: its store, its device, its reconciler and its monitor.
struct Driver {
    store: PeerStore,
    device: Uapi,
    reconciler: Reconciler,
    monitor: Monitor,
    /// Whether its wireguard-go runs (a killed node neither announces nor is driven).
    up: bool,
}

/// What one round did on one node.
#[derive(Debug, Default)]
struct Round {
    monitor: Vec<MonitorReport>,
    reconcile: Vec<ReconcileReport>,
}

/// A mesh and a daemon on each node.
struct Rig {
    mesh: Mesh,
    drivers: Vec<Driver>,
    /// Where each node announces itself.
    announced: Vec<SocketAddr>,
    /// (listener, announcer): announcements not delivered.
    unheard: HashSet<(usize, usize)>,
}

impl Rig {
    fn new(count: usize, policy: &EndpointPolicy) -> Rig {
        Rig::with(count, policy, |_| ReconcileSettings::default())
    }

    /// A rig whose node `i` reconciles with `settings(i)` (keepalive 1 s unless it says).
    fn with(
        count: usize,
        policy: &EndpointPolicy,
        settings: impl Fn(usize) -> ReconcileSettings,
    ) -> Rig {
        let mesh = Mesh::new(count);
        let drivers = mesh
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let mut reconcile = settings(i);
                if reconcile == ReconcileSettings::default() {
                    reconcile.persistent_keepalive = Some(KEEPALIVE);
                }
                // Its own key, should discovery ever echo it back.
                reconcile.unmanaged.insert(node.public_key);
                Driver {
                    store: PeerStore::builder()
                        .endpoint_policy(policy.clone())
                        .endpoint_history(32)
                        .build()
                        .expect("a store"),
                    device: Uapi::new(&node.interface).expect("a valid name"),
                    reconciler: Reconciler::new(reconcile),
                    monitor: Monitor::new(monitor_settings()),
                    up: true,
                }
            })
            .collect();
        let announced = mesh.nodes.iter().map(net::Node::endpoint_v4).collect();
        Rig {
            mesh,
            drivers,
            announced,
            unheard: HashSet::new(),
        }
    }

    fn key(&self, node: usize) -> PublicKey {
        self.mesh.nodes[node].public_key
    }

    /// Every running node's store hears every other running node's LAN announcement.
    fn discover(&self) {
        for (listener, driver) in self.drivers.iter().enumerate() {
            for (announcer, node) in self.mesh.nodes.iter().enumerate() {
                if listener == announcer
                    || !driver.up
                    || !self.drivers[announcer].up
                    || self.unheard.contains(&(listener, announcer))
                {
                    continue;
                }
                let mut info = PeerInfo::new(node.public_key);
                info.endpoint = Some(self.announced[announcer]);
                info.mesh_ip = Some(node.tunnel);
                // The store may refuse (a tombstone against nothing first-hand is not one).
                let _ = driver.store.update(info, DiscoveryMethod::Lan);
            }
        }
    }

    /// One round: discovery, then on each running node in order its monitor and its
    /// reconciler.
    fn round(&mut self) -> Vec<Round> {
        self.discover();
        self.drivers
            .iter_mut()
            .map(|driver| {
                let mut round = Round::default();
                if driver.up {
                    round.monitor.push(
                        driver
                            .monitor
                            .observe(&driver.store, &driver.device)
                            .expect("the monitor reads the device"),
                    );
                    round.reconcile.push(
                        driver
                            .reconciler
                            .reconcile(&driver.store, &driver.device)
                            .expect("the reconciler applies its batch"),
                    );
                }
                round
            })
            .collect()
    }

    /// Runs rounds until `done` says so (given every round's reports so far), or fails the
    /// test at the deadline, saying what it waited for.
    fn until(&mut self, what: &str, mut done: impl FnMut(&Rig, &[Round]) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let rounds = self.round();
            if done(self, &rounds) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "gave up after {DEADLINE:?} waiting for {what}; last round: {rounds:#?}"
            );
            std::thread::sleep(ROUND);
        }
    }

    /// What node `on`'s device knows of node `of`.
    fn device_peer(&self, on: usize, of: usize) -> Option<DevicePeer> {
        let key = self.key(of);
        self.drivers[on]
            .device
            .peers()
            .expect("a snapshot")
            .into_iter()
            .find(|peer| peer.public_key == key)
    }

    /// Whether every running node shook hands with every other running one.
    fn full_mesh(&self) -> bool {
        let up: Vec<usize> = (0..self.drivers.len())
            .filter(|&i| self.drivers[i].up)
            .collect();
        up.iter().all(|&a| {
            up.iter().filter(|&&b| b != a).all(|&b| {
                self.device_peer(a, b)
                    .is_some_and(|peer| peer.last_handshake.is_some() && peer.rx_bytes > 0)
            })
        })
    }
}

#[test]
fn three_nodes_reach_a_full_mesh_from_their_stores_alone() {
    if !net::ready("three_nodes_reach_a_full_mesh_from_their_stores_alone") {
        return;
    }
    let mut rig = Rig::new(3, &EndpointPolicy::ranked());
    // A peer configured by hand on node 0, which no store knows: never touched.
    let stranger = PublicKey::from_bytes([42; 32]);
    let mut by_hand = PeerConfig::new(stranger);
    by_hand.allowed_ips = vec!["10.42.0.0/16".parse().unwrap()];
    rig.drivers[0].device.apply(&[by_hand.into()]).unwrap();
    for driver in &rig.drivers {
        assert!(
            driver.device.peers().unwrap().len() <= 1,
            "no peers but the hand-made one"
        );
    }

    // One round: discovery, then one reconcile each. Every peer is on every device.
    let round = rig.round();
    for (a, on) in round.iter().enumerate() {
        assert_eq!(on.reconcile[0].added.len(), 2, "node {a}: {on:?}");
        for b in (0..3).filter(|&b| b != a) {
            let peer = rig
                .device_peer(a, b)
                .expect("on the device after one reconcile");
            let node = &rig.mesh.nodes[b];
            assert_eq!(peer.endpoint, Some(node.endpoint_v4()));
            assert_eq!(peer.allowed_ips, [node.tunnel_net()]);
            assert_eq!(peer.persistent_keepalive, Some(KEEPALIVE));
        }
    }

    let took = rig.until("a full mesh of handshakes", |rig, _| rig.full_mesh());
    eprintln!("full mesh of 3 after {took:?}");
    // The monitors hand the handshakes to the stores.
    rig.until("every store to hold its peers proven", |rig, _| {
        rig.drivers.iter().all(|driver| {
            let peers = driver.store.get_all();
            peers.len() == 2 && peers.iter().all(|peer| peer.proven)
        })
    });
    assert!(rig.mesh.nodes[0].ping_until_answered(rig.mesh.nodes[2].tunnel, DEADLINE));

    // Node 0's store drops node 2 (and hears of it no more): it leaves node 0's device.
    rig.unheard.insert((0, 2));
    rig.drivers[0].store.remove(&rig.key(2));
    let round = rig.round();
    assert_eq!(round[0].reconcile[0].removed, [rig.key(2)]);
    assert!(rig.device_peer(0, 2).is_none());
    assert!(rig.device_peer(0, 1).is_some());

    // The hand-made peer went through every round untouched.
    let kept = rig.drivers[0]
        .device
        .peers()
        .unwrap()
        .into_iter()
        .find(|peer| peer.public_key == stranger)
        .expect("still there");
    assert_eq!(kept.allowed_ips, ["10.42.0.0/16".parse().unwrap()]);
    assert_eq!(round[0].reconcile[0].foreign, [stranger]);
}

/// Node 1's NAT rebinds (its interface's port changes): node 0's device follows by itself,
/// the reconciler leaves that and hands it over, and the resilient store takes it as trusted,
/// while discovery keeps announcing the old port.
#[test]
fn a_nat_rebinding_becomes_the_stores_endpoint() {
    if !net::ready("a_nat_rebinding_becomes_the_stores_endpoint") {
        return;
    }
    let mut rig = Rig::new(2, &EndpointPolicy::resilient());
    rig.until("a full mesh of handshakes", |rig, _| rig.full_mesh());
    let old = rig.mesh.nodes[1].endpoint_v4();
    let rebound = SocketAddr::new(old.ip(), WG_PORT + 1);
    let key = rig.key(1);

    rig.mesh.nodes[1].set_listen_port(rebound.port());
    let mut written_back = Vec::new();
    let took = rig.until(
        "node 0's store to take the rebound endpoint",
        |rig, rounds| {
            for update in &rounds[0].reconcile[0].updated {
                if update.public_key == key && update.endpoint.is_some() {
                    written_back.push(update.clone());
                }
            }
            rig.drivers[0].store.get(&key).unwrap().endpoint == Some(rebound)
        },
    );
    eprintln!("rebinding noticed after {took:?}");

    // A few more seconds of discovery announcing the old port: nothing writes it back.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(2) {
        for update in &rig.round()[0].reconcile[0].updated {
            if update.public_key == key && update.endpoint.is_some() {
                written_back.push(update.clone());
            }
        }
        assert_eq!(rig.device_peer(0, 1).unwrap().endpoint, Some(rebound));
        std::thread::sleep(ROUND);
    }
    assert_eq!(written_back, [], "a reconcile wrote an endpoint");

    let store = &rig.drivers[0].store;
    assert_eq!(store.get(&key).unwrap().endpoint, Some(rebound));
    let candidates = store.candidates(&key);
    let proven = candidates
        .iter()
        .find(|c| c.endpoint == rebound)
        .unwrap_or_else(|| panic!("no candidate at {rebound}: {candidates:?}"));
    assert!(proven.trusted && proven.confirmed.is_some(), "{proven:?}");
    assert!(
        candidates.iter().any(|c| c.endpoint == old),
        "still announced"
    );
    let change = store
        .endpoint_history(&key)
        .into_iter()
        .rev()
        .find(|change| change.to == rebound)
        .expect("the move is in the history");
    assert_eq!(change.rule, EndpointRule::Trusted);
    assert_eq!(change.from, Some(old));

    // The tunnel works at the new port.
    assert!(rig.mesh.nodes[0].ping_until_answered(rig.mesh.nodes[1].tunnel, DEADLINE));
}

/// Node 0 moves to another address and sends nothing (its keepalive is off): node 1's
/// device cannot learn the move by itself. Discovery announces it, the reconciler pushes it,
/// and the tunnel answers again within a second.
#[test]
fn an_address_change_is_pushed_and_traffic_resumes_within_a_second() {
    if !net::ready("an_address_change_is_pushed_and_traffic_resumes_within_a_second") {
        return;
    }
    // Node 0 is quiet and reconciles first, so that node 1's initiation finds it ready.
    let mut rig = Rig::with(2, &EndpointPolicy::ranked(), |i| {
        let mut settings = ReconcileSettings::default();
        settings.persistent_keepalive = (i == 1).then_some(KEEPALIVE);
        settings
    });
    // Node 0 never sends: node 1 must not call it dead during the scene.
    let mut patient = monitor_settings();
    patient.rx_frozen_for = Duration::from_secs(60);
    rig.drivers[1].monitor = Monitor::new(patient);
    rig.until("a full mesh of handshakes", |rig, _| rig.full_mesh());
    let key = rig.key(0);
    let old = rig.mesh.nodes[0].endpoint_v4();

    let moved_to = std::net::Ipv4Addr::new(10, 250, 0, 101);
    rig.mesh.nodes[0].move_underlay_v4(moved_to);
    let new = SocketAddr::new(moved_to.into(), WG_PORT);
    rig.announced[0] = new;
    let round = rig.round();
    let pushed = Instant::now();
    let update = round[1].reconcile[0]
        .updated
        .iter()
        .find(|update| update.public_key == key)
        .expect("node 1's reconciler updated node 0");
    assert_eq!(update.endpoint, Some((Some(old), new)));
    assert_eq!(rig.device_peer(1, 0).unwrap().endpoint, Some(new));

    assert!(
        rig.mesh.nodes[1].ping_until_answered(rig.mesh.nodes[0].tunnel, Duration::from_secs(1)),
        "no echo through the tunnel within 1 s of the push"
    );
    let resumed = pushed.elapsed();
    eprintln!("traffic resumed {resumed:?} after the push");
    assert!(resumed < Duration::from_secs(1), "{resumed:?}");
}

/// Node 2's wireguard-go is killed: the others note it failed within the frozen-bytes window,
/// remove it after the next, take it off their devices; started again with the same key, it
/// is readmitted and shakes hands again.
#[test]
fn a_killed_node_is_failed_removed_and_readmitted() {
    if !net::ready("a_killed_node_is_failed_removed_and_readmitted") {
        return;
    }
    let mut rig = Rig::new(3, &EndpointPolicy::ranked());
    rig.until("a full mesh of handshakes", |rig, _| rig.full_mesh());
    let key = rig.key(2);
    let events = rig.drivers[0].store.subscribe();

    rig.mesh.kill(2);
    rig.drivers[2].up = false;
    let killed = Instant::now();
    let mut failed = [None, None];
    rig.until("nodes 0 and 1 to note node 2 failed", |_, rounds| {
        for (node, seen) in failed.iter_mut().enumerate() {
            if seen.is_none()
                && rounds[node].monitor[0]
                    .failed
                    .iter()
                    .any(|f| f.public_key == key)
            {
                *seen = Some(killed.elapsed());
            }
        }
        failed.iter().all(Option::is_some)
    });
    let window = monitor_settings().rx_frozen_for;
    for (node, at) in failed.iter().enumerate() {
        let at = at.unwrap();
        eprintln!("node {node} noted node 2 failed {at:?} after the kill");
        assert!(at <= window + Duration::from_secs(2), "node {node}: {at:?}");
    }

    let mut removed = [false, false];
    let mut off_device = [false, false];
    rig.until("nodes 0 and 1 to remove node 2", |_, rounds| {
        for node in 0..2 {
            removed[node] |= rounds[node].monitor[0].removed.contains(&key);
            off_device[node] |= rounds[node].reconcile[0].removed.contains(&key);
        }
        off_device == [true, true]
    });
    assert_eq!(removed, [true, true]);
    let gone = killed.elapsed();
    eprintln!("node 2 removed {gone:?} after the kill");
    for node in 0..2 {
        assert!(rig.drivers[node].store.get(&key).is_none());
        assert!(rig.device_peer(node, 2).is_none());
        assert!(
            rig.drivers[node]
                .store
                .tombstones()
                .iter()
                .any(|t| t.public_key == key)
        );
    }

    rig.mesh.restart(2);
    rig.drivers[2].up = true;
    let took = rig.until("node 2 back in a full mesh", |rig, _| rig.full_mesh());
    eprintln!("node 2 back in the mesh {took:?} after its restart");
    let readmitted = events.try_iter().any(|event| {
        event.public_key == key && event.kind == (PeerEventKind::New { readmitted: true })
    });
    assert!(readmitted, "node 0's store readmitted node 2");
    assert!(rig.mesh.nodes[0].ping_until_answered(rig.mesh.nodes[2].tunnel, DEADLINE));
}

/// A change made behind the reconciler's back to a peer the store manages is undone: allowed
/// IPs set by hand are set back, a peer removed by hand is added again.
#[test]
fn a_reconciler_undoes_what_the_store_does_not_say() {
    if !net::ready("a_reconciler_undoes_what_the_store_does_not_say") {
        return;
    }
    let mut rig = Rig::new(2, &EndpointPolicy::ranked());
    rig.round();
    // Someone changes node 1's allowed IPs on node 0's device.
    let mut wrong = PeerConfig::new(rig.key(1));
    wrong.allowed_ips = vec!["10.77.0.0/16".parse().unwrap()];
    rig.drivers[0].device.apply(&[wrong.into()]).unwrap();
    let round = rig.round();
    let update = &round[0].reconcile[0].updated;
    assert!(update.len() == 1 && update[0].allowed_ips, "{update:?}");
    assert_eq!(
        rig.device_peer(0, 1).unwrap().allowed_ips,
        [rig.mesh.nodes[1].tunnel_net()]
    );
    // Removed behind its back: added again.
    rig.drivers[0]
        .device
        .apply(&[PeerChange::Remove(rig.key(1))])
        .unwrap();
    let round = rig.round();
    assert_eq!(round[0].reconcile[0].added, [rig.key(1)]);
}
