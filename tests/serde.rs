//! The wire forms: keys as base64, methods and NAT types by name, announcements as JSON.
#![cfg(feature = "serde")]

mod support;

use peerstore::{DiscoveryMethod, NatType, Peer, PeerInfo, PeerStore, PublicKey};
use support::key;

#[test]
fn a_key_is_its_base64_string() {
    let json = serde_json::to_string(&key(1)).unwrap();
    assert_eq!(json, format!("\"{}\"", key(1)));
    assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), key(1));
    let err = serde_json::from_str::<PublicKey>("\"AAAA\"").unwrap_err();
    assert!(err.to_string().contains("44"), "{err}");
}

#[test]
fn methods_and_nat_types_are_their_wire_names() {
    for (method, name) in [
        (DiscoveryMethod::DhtRendezvous, "\"dht-rendezvous\""),
        (DiscoveryMethod::GossipTransitive, "\"gossip-transitive\""),
        (DiscoveryMethod::other("mdns").unwrap(), "\"mdns\""),
    ] {
        assert_eq!(serde_json::to_string(&method).unwrap(), name);
        assert_eq!(
            serde_json::from_str::<DiscoveryMethod>(name).unwrap(),
            method
        );
    }
    assert_eq!(
        serde_json::to_string(&NatType::Symmetric).unwrap(),
        "\"symmetric\""
    );
    assert!(serde_json::from_str::<NatType>("\"full-cone\"").is_err());
}

#[test]
fn an_announcement_needs_only_its_key() {
    let json = format!("{{\"public_key\": \"{}\"}}", key(3));
    let info: PeerInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(info, PeerInfo::new(key(3)));
    assert!(serde_json::from_str::<PeerInfo>("{\"hostname\": \"x\"}").is_err());

    let full = format!(
        r#"{{"public_key": "{}", "endpoint": "[2001:db8::1]:51820", "mesh_ip": "10.99.0.1",
            "hostname": "alpha", "routable_networks": ["192.168.0.0/24"], "introducer": true,
            "nat_type": "cone"}}"#,
        key(3)
    );
    let info: PeerInfo = serde_json::from_str(&full).unwrap();
    assert_eq!(info.endpoint, Some("[2001:db8::1]:51820".parse().unwrap()));
    assert_eq!(info.nat_type, Some(NatType::Cone));
    assert_eq!(
        serde_json::from_str::<PeerInfo>(&serde_json::to_string(&info).unwrap()).unwrap(),
        info
    );
}

#[test]
fn a_stored_peer_round_trips() {
    let store = PeerStore::new();
    let mut info = PeerInfo::new(key(4));
    info.endpoint = Some("198.51.100.4:51820".parse().unwrap());
    store.update(info, DiscoveryMethod::Gossip).unwrap();
    let peer = store.get(&key(4)).unwrap();
    let back: Peer = serde_json::from_str(&serde_json::to_string(&*peer).unwrap()).unwrap();
    assert_eq!(back, *peer);
}

/// Host names and network lists too long to be held inline go to the heap and come back whole:
/// through JSON, through the store and out of a snapshot.
#[test]
fn long_hostnames_and_many_networks_round_trip() {
    let hostname = "gateway-frankfurt-3.backbone.example.mesh";
    let networks = [
        "10.1.0.0/16",
        "10.2.0.0/16",
        "192.168.7.0/24",
        "fd00:1::/48",
    ];
    let json = format!(
        r#"{{"public_key": "{}", "hostname": "{hostname}", "routable_networks": {networks:?}}}"#,
        key(5)
    );
    let info: PeerInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(info.hostname.as_deref(), Some(hostname));
    assert_eq!(info.routable_networks.len(), networks.len());
    let store = PeerStore::new();
    store.update(info, DiscoveryMethod::Gossip).unwrap();
    let peer = store.get(&key(5)).unwrap();
    assert_eq!(peer.hostname.as_deref(), Some(hostname));
    let shown: Vec<String> = peer
        .routable_networks
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    assert_eq!(shown, networks);
    let back: Peer = serde_json::from_str(&serde_json::to_string(&*peer).unwrap()).unwrap();
    assert_eq!(back, *peer);
}

/// A trace's `"last_seen": 5` (Unix seconds, as the cache file writes) was refused on
/// every line; only serde's `{"secs_since_epoch": ..}` parsed.
#[test]
fn last_seen_is_unix_seconds_or_rfc_3339_and_is_written_as_it_is_read() {
    use std::time::{Duration, UNIX_EPOCH};
    let with = |last_seen: &str| {
        serde_json::from_str::<PeerInfo>(&format!(
            r#"{{"public_key": "{}", "last_seen": {last_seen}}}"#,
            key(1)
        ))
    };
    let info = with("5").unwrap();
    assert_eq!(info.last_seen, Some(UNIX_EPOCH + Duration::from_secs(5)));
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["last_seen"], 5, "written as Unix seconds");
    let rfc = with(r#""2026-11-01T00:00:00Z""#).unwrap();
    assert_eq!(
        rfc.last_seen,
        Some(UNIX_EPOCH + Duration::from_secs(1_793_491_200))
    );
    assert!(with("null").unwrap().last_seen.is_none());
    let err = with("1.5").unwrap_err().to_string();
    assert!(err.contains("last_seen"), "{err}");
}
