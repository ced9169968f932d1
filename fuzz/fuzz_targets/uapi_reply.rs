//! Arbitrary bytes as a WireGuard device's answer: the UAPI `get` and `set` reply parsers and
//! the `wg show dump` parser never panic, refuse with a message that names the interface, and
//! what they accept stays within the limits and reads back the same once written out again.
#![no_main]

use std::fmt::Write as _;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use peerstore::wireguard::{DevicePeer, MAX_ALLOWED_IPS, MAX_PEERS, uapi, wg_command};

const INTERFACE: &str = "fuzz0";

fn check_limits(peers: &[DevicePeer]) {
    assert!(peers.len() <= MAX_PEERS);
    let mut keys: Vec<_> = peers.iter().map(|peer| peer.public_key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), peers.len(), "a peer listed twice was accepted");
    for peer in peers {
        assert!(peer.allowed_ips.len() <= MAX_ALLOWED_IPS);
        assert_ne!(peer.persistent_keepalive, Some(std::time::Duration::ZERO));
    }
}

fn since_epoch(peer: &DevicePeer) -> (u64, u32) {
    peer.last_handshake.map_or((0, 0), |at| {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("a handshake after 1970");
        (since.as_secs(), since.subsec_nanos())
    })
}

/// The peers as wireguard-go answers `get=1`.
fn as_get_reply(peers: &[DevicePeer]) -> String {
    let mut out = String::from("listen_port=51820\n");
    for peer in peers {
        out.push_str("public_key=");
        for byte in peer.public_key.as_bytes() {
            let _ = write!(out, "{byte:02X}");
        }
        out.push('\n');
        if let Some(endpoint) = peer.endpoint {
            let _ = writeln!(out, "endpoint={endpoint}");
        }
        let (secs, nanos) = since_epoch(peer);
        let _ = writeln!(out, "last_handshake_time_sec={secs}");
        let _ = writeln!(out, "last_handshake_time_nsec={nanos}");
        let _ = writeln!(
            out,
            "rx_bytes={}\ntx_bytes={}",
            peer.rx_bytes, peer.tx_bytes
        );
        let keepalive = peer.persistent_keepalive.map_or(0, |k| k.as_secs());
        let _ = writeln!(out, "persistent_keepalive_interval={keepalive}");
        for network in &peer.allowed_ips {
            let _ = writeln!(out, "allowed_ip={network}");
        }
    }
    out.push_str("errno=0\n\n");
    out
}

/// The peers as `wg show IF dump` prints them.
fn as_dump(peers: &[DevicePeer]) -> String {
    let mut out = String::from("(none)\t(none)\t51820\toff\n");
    for peer in peers {
        let endpoint = peer.endpoint.map_or("(none)".to_owned(), |e| e.to_string());
        let networks: Vec<String> = peer.allowed_ips.iter().map(ToString::to_string).collect();
        let networks = if networks.is_empty() {
            "(none)".to_owned()
        } else {
            networks.join(",")
        };
        let keepalive = peer
            .persistent_keepalive
            .map_or("off".to_owned(), |k| k.as_secs().to_string());
        let _ = writeln!(
            out,
            "{}\t(none)\t{endpoint}\t{networks}\t{}\t{}\t{}\t{keepalive}",
            peer.public_key,
            since_epoch(peer).0,
            peer.rx_bytes,
            peer.tx_bytes
        );
    }
    out
}

fn check_error(err: &peerstore::wireguard::DeviceError) {
    assert_eq!(err.interface(), INTERFACE);
    assert!(err.to_string().starts_with("fuzz0: "), "{err}");
}

fuzz_target!(|data: &[u8]| {
    match uapi::parse_get_reply(INTERFACE, data) {
        Ok(peers) => {
            check_limits(&peers);
            let again = uapi::parse_get_reply(INTERFACE, as_get_reply(&peers).as_bytes())
                .expect("written peers read back");
            assert_eq!(again, peers);
        }
        Err(err) => check_error(&err),
    }
    if let Err(err) = uapi::parse_set_reply(INTERFACE, data) {
        check_error(&err);
    }
    match wg_command::parse_dump(INTERFACE, data) {
        Ok(peers) => {
            check_limits(&peers);
            assert!(
                peers.iter().all(|peer| since_epoch(peer).1 == 0),
                "dump times are whole seconds"
            );
            let again = wg_command::parse_dump(INTERFACE, as_dump(&peers).as_bytes())
                .expect("written peers read back");
            assert_eq!(again, peers);
        }
        Err(err) => check_error(&err),
    }
});
