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
//! method names), one thread. `insert ROUNDS` runs the benchmarks' `insert_to_cap` ROUNDS
//! times (a fresh store of 1000 offered 2000 new peers, half refused at the cap): the
//! difference against `insert 0` over `ROUNDS * 2000`. `floor OPS` is `update OPS` on the
//! benchmarks' bare `DashMap` floor, and `clone OPS` only clones the inputs `update` takes.
#![allow(dead_code)]

#[path = "../benches/common/mod.rs"]
mod common;

use peerstore::PeerStore;

fn main() {
    let mut args = std::env::args().skip(1);
    let (what, n) = match (args.next(), args.next().and_then(|n| n.parse::<u64>().ok())) {
        (Some(what), Some(n))
            if ["update", "insert", "floor", "clone"].contains(&what.as_str()) =>
        {
            (what, n)
        }
        _ => {
            eprintln!("usage: instructions update OPS | floor OPS | clone OPS | insert ROUNDS");
            std::process::exit(2);
        }
    };
    let workload = common::Workload::new();
    if what == "update" {
        let store: PeerStore = workload.prefilled();
        common::update_ops(&store, &workload, &workload.pool, 0, n);
    } else if what == "floor" {
        let floor: common::Floor = workload.prefilled();
        common::update_ops(&floor, &workload, &workload.pool, 0, n);
    } else if what == "clone" {
        common::clone_ops(&workload, &workload.pool, 0, n);
    } else {
        for _ in 0..n {
            std::hint::black_box(common::insert_to_cap::<PeerStore>(
                common::insert_to_cap_input(),
            ));
        }
    }
}
