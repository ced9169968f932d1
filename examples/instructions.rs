//! A fixed amount of store work for an instruction counter: the figures of BENCHMARKS.md's
//! "Instructions" table, which stay put on a noisy machine where times do not.
//!
//! ```text
//! cargo build --release --example instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/instructions update 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/instructions update 100000
//! ```
//!
//! The difference of the two counts over 100,000 is the instructions an update: the
//! benchmarks' `update_1t` workload (1000 known peers, their typical announcements, the eight
//! method names), one thread. The other workloads, each taken the same way:
//!
//! - `floor OPS`: `update OPS` on the benchmarks' bare `DashMap` floor;
//! - `clone OPS`: only the cloning of the inputs `update` takes;
//! - `resilient OPS`: `update OPS` under `EndpointPolicy::resilient()`;
//! - `resilient-trusted OPS`: the same, each peer's endpoint first confirmed by a handshake,
//!   as a monitor confirms every peer that answers;
//! - `confirm OPS` / `resilient-confirm OPS`: a handshake at each peer's stored endpoint, under
//!   the ranked / the resilient policy;
//! - `refuse OPS`: a full store (1000 peers, its cap) offered new peers, each refused, their
//!   announcements cloned from a pool; `refuse-input OPS` only clones them;
//! - `insert ROUNDS`: the benchmarks' `insert_to_cap` ROUNDS times (a fresh store of 1000
//!   offered 2000 new peers, half refused at the cap), over `ROUNDS * 2000` calls.
#![allow(dead_code)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::Target;
use peerstore::{EndpointPolicy, Evidence, PeerStore};

const WORKLOADS: [&str; 10] = [
    "update",
    "refuse",
    "refuse-input",
    "floor",
    "clone",
    "resilient",
    "resilient-trusted",
    "confirm",
    "resilient-confirm",
    "insert",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let (what, n) = match (args.next(), args.next().and_then(|n| n.parse::<u64>().ok())) {
        (Some(what), Some(n)) if WORKLOADS.contains(&what.as_str()) => (what, n),
        _ => {
            eprintln!("usage: instructions {} OPS", WORKLOADS.join("|"));
            std::process::exit(2);
        }
    };
    let workload = common::Workload::new();
    let under = |policy: EndpointPolicy| {
        let store = PeerStore::builder()
            .endpoint_policy(policy)
            .build()
            .expect("valid store settings");
        store.prefill(common::PEERS);
        store
    };
    match what.as_str() {
        "update" => {
            let store: PeerStore = workload.prefilled();
            common::update_ops(&store, &workload, &workload.pool, 0, n);
        }
        "floor" => {
            let floor: common::Floor = workload.prefilled();
            common::update_ops(&floor, &workload, &workload.pool, 0, n);
        }
        "clone" => common::clone_ops(&workload, &workload.pool, 0, n),
        "refuse" | "refuse-input" => {
            let store = PeerStore::builder()
                .max_peers(common::PEERS)
                .build()
                .expect("valid store settings");
            store.prefill(common::PEERS);
            let newcomers: Vec<_> = (0..common::PEERS)
                .map(|i| common::info(common::PEERS + i, i))
                .collect();
            for i in 0..n {
                let info = newcomers[usize::try_from(i).unwrap_or(0) % common::PEERS].clone();
                if what == "refuse" {
                    let refused = store.update(info, peerstore::DiscoveryMethod::Dht);
                    assert!(refused.is_err(), "a full store refuses a newcomer");
                } else {
                    std::hint::black_box(info);
                }
            }
        }
        "resilient" | "resilient-trusted" => {
            let store = under(EndpointPolicy::resilient());
            if what == "resilient-trusted" {
                common::confirm_every_peer(&store, &workload);
            }
            common::update_ops(&store, &workload, &workload.pool, 0, n);
        }
        "confirm" | "resilient-confirm" => {
            let store = under(if what == "confirm" {
                EndpointPolicy::ranked()
            } else {
                EndpointPolicy::resilient()
            });
            let endpoints: Vec<_> = (workload.keys.iter())
                .map(|k| store.get(k).and_then(|p| p.endpoint).expect("an endpoint"))
                .collect();
            for i in 0..n {
                let peer = usize::try_from(i).unwrap_or(0).wrapping_mul(7919) % common::PEERS;
                std::hint::black_box(store.confirm(
                    &workload.keys[peer],
                    endpoints[peer],
                    Evidence::Handshake,
                ));
            }
        }
        _ => {
            for _ in 0..n {
                std::hint::black_box(common::insert_to_cap::<PeerStore>(
                    common::insert_to_cap_input(),
                ));
            }
        }
    }
}
