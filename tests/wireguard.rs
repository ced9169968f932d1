//! The device layer against real wireguard-go interfaces, through both backends: peers applied
//! through the `Device` trait shake hands and carry traffic, an endpoint changed through it is
//! the one packets take, a removed peer is gone, a refused batch changes nothing, and errors
//! name the interface.
//!
//! Each test builds a mesh of its own in network namespaces (`net.rs`). Without root,
//! `/dev/net/tun`, `wireguard-go`, `wg`, `ip` or `ping`, each test prints why and passes, except
//! under `CI=true`, where it fails.

#[path = "wireguard/net.rs"]
mod net;

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::time::{Duration, SystemTime};

use net::{Mesh, Node, wait_for};
use peerstore::PublicKey;
use peerstore::wireguard::{
    Device, DeviceError, DevicePeer, PeerChange, PeerConfig, Uapi, WgCommand, uapi,
};

/// Handshakes were measured at 144–166 ms after configuration; 5 s leaves room for a loaded
/// machine.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
enum Backend {
    Uapi,
    Wg,
}

impl Backend {
    fn device(self, node: &Node) -> Box<dyn Device> {
        match self {
            Backend::Uapi => Box::new(Uapi::new(&node.interface).expect("a valid name")),
            Backend::Wg => Box::new(WgCommand::new(&node.interface).expect("a valid name")),
        }
    }
}

/// `to` as a peer: at its IPv4 underlay address, routing its tunnel address, keepalive 5 s
/// (which starts a handshake as soon as it is set).
fn config_for(to: &Node) -> PeerConfig {
    let mut config = PeerConfig::new(to.public_key);
    config.endpoint = Some(to.endpoint_v4());
    config.allowed_ips = vec![to.tunnel_net()];
    config.persistent_keepalive = Some(Duration::from_secs(5));
    config
}

fn peer_of(device: &dyn Device, key: PublicKey) -> Option<DevicePeer> {
    device
        .peers()
        .expect("a snapshot of the peers")
        .into_iter()
        .find(|peer| peer.public_key == key)
}

fn keys(device: &dyn Device) -> Vec<PublicKey> {
    let mut keys: Vec<_> = device
        .peers()
        .expect("a snapshot of the peers")
        .iter()
        .map(|peer| peer.public_key)
        .collect();
    keys.sort();
    keys
}

/// Waits until `device` has shaken hands with `key` and received bytes from it.
fn handshake(device: &dyn Device, key: PublicKey) -> DevicePeer {
    let started = std::time::Instant::now();
    loop {
        let seen = peer_of(device, key);
        if let Some(peer) = seen.as_ref()
            && peer.last_handshake.is_some()
            && peer.rx_bytes > 0
        {
            return peer.clone();
        }
        assert!(
            started.elapsed() < HANDSHAKE_DEADLINE,
            "{} did not shake hands with {} within {HANDSHAKE_DEADLINE:?}; it sees {seen:?}",
            device.name(),
            key.short()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Peers nodes 0 and 1 of a mesh with each other through their devices, and waits for both
/// handshakes; returns what each then sees of the other.
///
/// One side starts the handshake: b first takes a as a peer with keepalive off (so it sends
/// nothing), then a takes b with keepalive on, which sends an initiation at once, and b gets
/// its keepalive last. Were both to initiate within the same moment, as two socket calls a
/// millisecond apart do, each would answer the other's initiation and drop the answer to its
/// own, and WireGuard would only try again after its 5 s rekey timeout.
fn connect(
    (a, da): (&Node, &dyn Device),
    (b, db): (&Node, &dyn Device),
) -> (DevicePeer, DevicePeer) {
    let mut quiet = config_for(a);
    quiet.persistent_keepalive = None;
    db.apply(&[quiet.into()]).expect("b's peer applied");
    da.apply(&[config_for(b).into()]).expect("a's peer applied");
    let a_sees_b = handshake(da, b.public_key);
    let b_sees_a = handshake(db, a.public_key);
    db.apply(&[config_for(a).into()])
        .expect("b's keepalive applied");
    (a_sees_b, b_sees_a)
}

/// Nodes 0 and 1 of `mesh` peered with each other through `backend`, both handshakes done.
fn connected(mesh: &Mesh, backend: Backend) -> (Box<dyn Device>, Box<dyn Device>) {
    let (a, b) = (&mesh.nodes[0], &mesh.nodes[1]);
    let (da, db) = (backend.device(a), backend.device(b));
    connect((a, da.as_ref()), (b, db.as_ref()));
    (da, db)
}

fn handshakes_complete_and_traffic_flows(backend: Backend) {
    if !net::ready("handshakes_complete_and_traffic_flows") {
        return;
    }
    let mesh = Mesh::new(2);
    let (a, b) = (&mesh.nodes[0], &mesh.nodes[1]);
    let (da, db) = (backend.device(a), backend.device(b));
    assert_eq!(da.name(), a.interface);
    assert_eq!(da.peers().unwrap(), [], "a fresh interface has no peers");

    // `wg show dump` reports whole seconds: allow for the truncation.
    let before = SystemTime::now() - Duration::from_secs(1);
    let (a_sees_b, b_sees_a) = connect((a, da.as_ref()), (b, db.as_ref()));
    let after = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(
        b_sees_a.persistent_keepalive, None,
        "b's keepalive comes last"
    );
    let mut b_sees_a = b_sees_a;
    b_sees_a.persistent_keepalive = peer_of(db.as_ref(), a.public_key)
        .unwrap()
        .persistent_keepalive;

    for (seen, node) in [(&a_sees_b, b), (&b_sees_a, a)] {
        assert_eq!(seen.endpoint, Some(node.endpoint_v4()));
        assert_eq!(seen.allowed_ips, [node.tunnel_net()]);
        assert_eq!(seen.persistent_keepalive, Some(Duration::from_secs(5)));
        assert!(seen.tx_bytes > 0);
        let at = seen.last_handshake.expect("shook hands");
        assert!(before <= at && at <= after, "handshake at {at:?}");
    }

    // Traffic through the tunnel: what a received goes up.
    assert!(
        a.ping_until_answered(b.tunnel, HANDSHAKE_DEADLINE),
        "no echo from {} through the tunnel",
        b.tunnel
    );
    wait_for("a's received bytes to grow", HANDSHAKE_DEADLINE, || {
        peer_of(da.as_ref(), b.public_key).filter(|peer| peer.rx_bytes > a_sees_b.rx_bytes)
    });

    // Both backends read the same interface alike.
    let other = match backend {
        Backend::Uapi => Backend::Wg,
        Backend::Wg => Backend::Uapi,
    }
    .device(a);
    let seen = peer_of(other.as_ref(), b.public_key).expect("the other backend sees b");
    assert_eq!(
        (seen.endpoint, &seen.allowed_ips, seen.persistent_keepalive),
        (
            a_sees_b.endpoint,
            &a_sees_b.allowed_ips,
            a_sees_b.persistent_keepalive
        )
    );
    let secs = |peer: &DevicePeer| {
        peer.last_handshake
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let now = peer_of(da.as_ref(), b.public_key).unwrap();
    assert_eq!(secs(&seen), secs(&now), "one handshake, read by both");
}

fn a_changed_endpoint_is_the_one_packets_take(backend: Backend) {
    if !net::ready("a_changed_endpoint_is_the_one_packets_take") {
        return;
    }
    let mesh = Mesh::new(2);
    let (a, b) = (&mesh.nodes[0], &mesh.nodes[1]);
    let (da, db) = connected(&mesh, backend);

    // b's IPv4 address goes away, so the old endpoint leads nowhere and b can no longer send
    // from it (a packet from it would make a roam back to it).
    b.remove_underlay_v4();
    // Move b to its IPv6 address, which the device writes in brackets.
    let mut moved = config_for(b);
    moved.endpoint = Some(b.endpoint_v6());
    da.apply(&[moved.into()]).unwrap();
    let seen = peer_of(da.as_ref(), b.public_key).unwrap();
    assert_eq!(seen.endpoint, Some(b.endpoint_v6()));
    assert_eq!(seen.allowed_ips, [b.tunnel_net()], "still b's networks");

    // An echo through the tunnel can only have gone over IPv6; b learned a's IPv6 address
    // from it.
    assert!(
        a.ping_until_answered(b.tunnel, HANDSHAKE_DEADLINE),
        "no echo from b at its new endpoint"
    );
    let mut last = None;
    let roamed = net::poll(HANDSHAKE_DEADLINE, || {
        last = peer_of(db.as_ref(), a.public_key);
        last.as_ref()
            .filter(|peer| peer.endpoint == Some(a.endpoint_v6()))
            .cloned()
    });
    assert!(
        roamed.is_some(),
        "b never saw a at its IPv6 address; it sees {last:?}"
    );
    assert_eq!(
        peer_of(da.as_ref(), b.public_key).unwrap().endpoint,
        Some(b.endpoint_v6())
    );
}

fn a_removed_peer_is_gone(backend: Backend) {
    if !net::ready("a_removed_peer_is_gone") {
        return;
    }
    let mesh = Mesh::new(3);
    let (a, b, c) = (&mesh.nodes[0], &mesh.nodes[1], &mesh.nodes[2]);
    let da = backend.device(a);
    // Two peers in one batch, then one removed.
    da.apply(&[config_for(b).into(), config_for(c).into()])
        .unwrap();
    let mut both = vec![b.public_key, c.public_key];
    both.sort();
    assert_eq!(keys(da.as_ref()), both);

    da.apply(&[]).unwrap();
    assert_eq!(keys(da.as_ref()), both, "an empty batch changes nothing");

    da.apply(&[PeerChange::Remove(b.public_key)]).unwrap();
    assert_eq!(keys(da.as_ref()), [c.public_key]);
    let kept = peer_of(da.as_ref(), c.public_key).unwrap();
    assert_eq!(kept.endpoint, Some(c.endpoint_v4()));

    // Removing a peer the interface does not have is not an error.
    da.apply(&[PeerChange::Remove(b.public_key)]).unwrap();
    assert_eq!(keys(da.as_ref()), [c.public_key]);

    // Allowed IPs are replaced, not added to; an empty list leaves none.
    let mut bare = config_for(c);
    bare.allowed_ips.clear();
    da.apply(&[bare.into()]).unwrap();
    assert_eq!(peer_of(da.as_ref(), c.public_key).unwrap().allowed_ips, []);
}

fn a_refused_batch_changes_nothing(backend: Backend) {
    if !net::ready("a_refused_batch_changes_nothing") {
        return;
    }
    let mesh = Mesh::new(2);
    let (a, b) = (&mesh.nodes[0], &mesh.nodes[1]);
    let da = backend.device(a);
    let mut refused = PeerConfig::new(PublicKey::from_bytes([7; 32]));
    refused.persistent_keepalive = Some(Duration::from_secs(70_000));
    let err = da
        .apply(&[config_for(b).into(), refused.into()])
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::InvalidChange { index: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: change 1, persistent_keepalive `70000s`: longer than 65535 s; nothing was sent",
            a.interface
        )
    );
    assert_eq!(da.peers().unwrap(), [], "b was not added either");
}

/// A device that refuses a request answers an errno, and the error names the interface. No
/// request the trait sends is refused by wireguard-go once checked, so this one is written by
/// hand (a keepalive beyond 16 bits) and the real answer read by the parser `Uapi` uses.
#[test]
fn uapi_a_device_errno_names_the_interface() {
    if !net::ready("uapi_a_device_errno_names_the_interface") {
        return;
    }
    let mesh = Mesh::new(1);
    let node = &mesh.nodes[0];
    let mut stream = UnixStream::connect(node.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let request = format!(
        "set=1\npublic_key={}\npersistent_keepalive_interval=70000\n\n",
        "07".repeat(32)
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n\n") && stream.read(&mut byte).unwrap() == 1 {
        reply.push(byte[0]);
    }
    let err = uapi::parse_set_reply(&node.interface, &reply).unwrap_err();
    assert!(
        matches!(err, DeviceError::Errno { errno: -22, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{}: device answered errno=-22 to set", node.interface)
    );
}

/// An interface that does not exist: the socket backend cannot connect, `wg` exits with an
/// error; both say which interface.
fn a_missing_interface_is_named(backend: Backend) {
    if !net::ready("a_missing_interface_is_named") {
        return;
    }
    let name = format!("pw{:x}none", std::process::id());
    let device: Box<dyn Device> = match backend {
        Backend::Uapi => Box::new(Uapi::new(&name).unwrap()),
        Backend::Wg => Box::new(WgCommand::new(&name).unwrap()),
    };
    let err = device
        .apply(&[PeerChange::Remove(PublicKey::from_bytes([1; 32]))])
        .unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with(&format!("{name}: ")), "{message}");
    match (backend, &err) {
        (Backend::Uapi, DeviceError::Io { .. }) => {
            assert!(message.contains(&format!("{name}.sock")), "{message}");
        }
        (Backend::Wg, DeviceError::Command { status, stderr, .. }) => {
            assert_eq!(status.code(), Some(1), "{message}");
            assert!(stderr.starts_with("Unable to"), "{message}");
        }
        _ => panic!("{backend:?}: {err:?}"),
    }
    assert!(device.peers().is_err());
}

macro_rules! both_backends {
    ($($scene:ident),* $(,)?) => {
        mod through_uapi {
            $(#[test] fn $scene() { super::$scene(super::Backend::Uapi) })*
        }
        mod through_wg {
            $(#[test] fn $scene() { super::$scene(super::Backend::Wg) })*
        }
    };
}

both_backends!(
    handshakes_complete_and_traffic_flows,
    a_changed_endpoint_is_the_one_packets_take,
    a_removed_peer_is_gone,
    a_refused_batch_changes_nothing,
    a_missing_interface_is_named,
);
