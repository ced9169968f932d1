//! The store in a mesh node, in miniature: three discovery threads feed it, a subscriber prints
//! what changed, and reconciliation's view (the active peers) is printed at the end.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::thread;

use peerstore::{DiscoveryMethod, PeerInfo, PeerStore, PublicKey};

/// Peer `n`'s key: its number in the first byte, so the short form tells them apart.
fn key(n: u8) -> PublicKey {
    let mut bytes = [n; 32];
    bytes[0] = n.wrapping_mul(37);
    PublicKey::from_bytes(bytes)
}

fn announce(store: &PeerStore, n: u8, endpoint: &str, method: DiscoveryMethod) {
    let mut info = PeerInfo::new(key(n));
    info.endpoint = Some(endpoint.parse().expect("a valid endpoint"));
    info.hostname = Some(format!("node-{n}").into());
    info.mesh_ip = Some([10, 99, 0, n].into());
    if let Err(err) = store.update(info, method) {
        eprintln!("refused: {err}");
    }
}

fn main() {
    let store = PeerStore::builder()
        .event_buffer(256)
        .build()
        .expect("valid store settings");
    let events = store.subscribe();

    // The subscriber: what the WireGuard reconciler or a log would watch.
    let printer = thread::spawn(move || {
        for event in events.receiver() {
            let what = event.kind.as_str();
            println!(
                "event #{:<3} {:<8} {}",
                event.seq,
                what,
                event.public_key.short()
            );
        }
    });

    // Discovery: the DHT finds peers 1..=6 behind NAT, gossip repeats some of them, and the LAN
    // sees peers 1 and 2 directly — their LAN endpoints win over what the DHT said.
    let discovery = [
        (1..=6, "203.0.113.{}:51820", DiscoveryMethod::Dht),
        (4..=8, "198.51.100.{}:51820", DiscoveryMethod::Gossip),
        (1..=2, "[fd00::{}]:51820", DiscoveryMethod::Lan),
    ]
    .map(|(peers, endpoint, method)| {
        let store = store.clone();
        thread::spawn(move || {
            for n in peers {
                announce(
                    &store,
                    n,
                    &endpoint.replace("{}", &n.to_string()),
                    method.clone(),
                );
            }
        })
    });
    for thread in discovery {
        thread.join().expect("a discovery thread panicked");
    }

    // The health monitor gives up on peer 8.
    store.remove(&key(8));

    // What reconciliation would configure now.
    let mut active = store.get_active();
    active.sort_by_key(|peer| peer.hostname.clone());
    let stats = store.stats();

    // Dropping the last handle closes every subscriber's channel: the printer drains and ends.
    drop(store);
    printer.join().expect("the printer panicked");

    println!(
        "\n{:<9} {:<8} {:<22} {:<7} discovered via",
        "key", "host", "endpoint", "method"
    );
    for peer in &active {
        let via: Vec<&str> = peer
            .discovered_via
            .iter()
            .map(peerstore::DiscoveryMethod::as_str)
            .collect();
        println!(
            "{:<9} {:<8} {:<22} {:<7} {}",
            peer.public_key.short(),
            peer.hostname.as_deref().unwrap_or("-"),
            peer.endpoint.map(|e| e.to_string()).unwrap_or_default(),
            peer.endpoint_method.as_ref().map_or("-", |m| m.as_str()),
            via.join(", ")
        );
    }
    println!(
        "\n{} peers active; {} inserts, {} updates, {} unchanged, {} removed",
        active.len(),
        stats.inserts,
        stats.updates,
        stats.unchanged,
        stats.removed
    );
}
