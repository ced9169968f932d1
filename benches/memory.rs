//! Heap bytes per stored peer, for the crate and the reference design, at 1,000 and at
//! 1,000,000 peers. Counted by `allocation-counter`, whose counting allocator this binary links
//! (which is why the timing benches live in another binary).
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Prints one line per figure, `memory <store> <shape> <peers> <bytes per peer>`, which
//! `examples/bench_report.rs` reads.

mod common;

use common::{Reference, Target, Workload, info};
use peerstore::{DiscoveryMethod, PeerStore};

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let w = Workload::new();
    let figures = [
        (PeerShape::Inserted, "inserted", 1_000),
        (PeerShape::Inserted, "inserted", 1_000_000),
        (PeerShape::Settled, "settled", 1_000),
    ];
    for (shape, name, peers) in figures {
        let ours = bytes_per_peer::<PeerStore>(&w, peers, shape);
        println!("memory peerstore {name} {peers} {ours:.1}");
    }
    for (shape, name) in [
        (PeerShape::Inserted, "inserted"),
        (PeerShape::Settled, "settled"),
    ] {
        let reference = bytes_per_peer::<Reference>(&w, 1_000, shape);
        println!("memory reference {name} 1000 {reference:.1}");
    }
    let resilient = resilient_bytes_per_peer(1_000);
    println!("memory resilient busy 1000 {resilient:.1}");
}

/// Heap bytes per peer under the resilient endpoint policy with an 8-entry history, each peer
/// with 4 candidates and a full history (8 confirmed switches among them).
fn resilient_bytes_per_peer(n: usize) -> f64 {
    use peerstore::{EndpointPolicy, Evidence};
    let held = |n: usize| {
        let mut kept = None;
        let counted = allocation_counter::measure(|| {
            let store = PeerStore::builder()
                .max_peers(n.max(1))
                .endpoint_policy(EndpointPolicy::resilient())
                .endpoint_history(8)
                .build()
                .expect("valid store settings");
            for i in 0..n {
                let mut endpoints = Vec::new();
                for port in 0..4u16 {
                    let mut announce = info(i, 1);
                    let endpoint = announce.endpoint.expect("an endpoint");
                    let endpoint = std::net::SocketAddr::new(endpoint.ip(), 40_000 + port);
                    announce.endpoint = Some(endpoint);
                    store
                        .update(announce, DiscoveryMethod::Dht)
                        .expect("stored");
                    endpoints.push(endpoint);
                }
                for switch in 0..8 {
                    store.confirm(
                        &info(i, 1).public_key,
                        endpoints[switch % 4],
                        Evidence::Handshake,
                    );
                }
            }
            kept = Some(store);
        });
        drop(kept);
        counted.bytes_current
    };
    (held(n) - held(0)) as f64 / n as f64
}

/// What a stored peer looks like when it is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerShape {
    /// As inserted: `info(i, i)` heard by the DHT.
    Inserted,
    /// After the update workload has run a while: heard by all eight methods, the endpoint
    /// set by the LAN.
    Settled,
}

/// Heap bytes each of `n` peers costs in a `T`, net of what the empty store holds.
#[must_use]
pub fn bytes_per_peer<T: Target>(w: &Workload, n: usize, shape: PeerShape) -> f64 {
    let empty = held_bytes::<T>(w, 0, shape);
    let full = held_bytes::<T>(w, n, shape);
    (full - empty) as f64 / n as f64
}

fn held_bytes<T: Target>(w: &Workload, n: usize, shape: PeerShape) -> i64 {
    let mut kept = None;
    let counted = allocation_counter::measure(|| {
        let target = T::with_max_peers(n.max(1));
        target.prefill(n);
        if shape == PeerShape::Settled {
            for method in &w.methods {
                for i in 0..n {
                    target.update(info(i, i + 1), method.clone());
                }
            }
            for i in 0..n {
                target.update(info(i, 0), DiscoveryMethod::Lan);
            }
        }
        kept = Some(target);
    });
    drop(kept);
    counted.bytes_current
}
