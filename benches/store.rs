//! Criterion benchmarks of every workload in the reference design's benchmark set, each run
//! against the crate, the reference design in Rust and the bare-`DashMap` floor
//! (`benches/common`). Figures are per thread-op: wall time divided by the ops each thread ran.
//!
//! ```text
//! cargo bench --bench store
//! ```
//!
//! `examples/bench_report.rs` runs the same workloads quickly and prints them as one table.

mod common;

use std::time::Duration;

use common::{Floor, Reference, Target, Workload};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use peerstore::PeerStore;

/// ns per thread-op for `iters` ops on each of `threads` threads.
fn threaded(threads: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    common::on_threads(threads, |t| work(t, iters))
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn updates<T: Target>(g: &mut BenchmarkGroup<'_, WallTime>, w: &Workload, threads: usize) {
    let store: T = w.prefilled();
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| {
            threaded(threads, iters, |t, n| {
                common::update_ops(&store, w, &w.pool, t, n);
            })
        });
    });
}

fn churn<T: Target>(g: &mut BenchmarkGroup<'_, WallTime>, w: &Workload, subscribers: usize) {
    let store: T = w.prefilled();
    let _idle: Vec<_> = (0..subscribers).map(|_| store.subscribe_idle()).collect();
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| {
            threaded(2, iters, |t, n| {
                common::update_ops(&store, w, &w.churn_pool, t, n);
            })
        });
    });
}

fn gets<T: Target>(g: &mut BenchmarkGroup<'_, WallTime>, w: &Workload, threads: usize) {
    let store: T = w.prefilled();
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| threaded(threads, iters, |t, n| common::get_ops(&store, w, t, n)));
    });
}

fn get_actives<T: Target>(g: &mut BenchmarkGroup<'_, WallTime>, w: &Workload, threads: usize) {
    let store: T = w.prefilled();
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| threaded(threads, iters, |_, n| common::get_active_ops(&store, n)));
    });
}

fn inserts<T: Target>(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.bench_function(T::NAME, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| common::insert_to_cap::<T>(common::insert_to_cap_input()))
                .sum()
        });
    });
}

fn spread_updates<T: Target>(g: &mut BenchmarkGroup<'_, WallTime>, w: &Workload, peers: usize) {
    let store = T::with_max_peers(peers);
    store.prefill(peers);
    g.bench_function(format!("{}/{peers}", T::NAME), |b| {
        b.iter_custom(|iters| {
            threaded(1, iters, |t, n| {
                common::spread_update_ops(&store, w, peers, t, n);
            })
        });
    });
    g.bench_function(format!("{}/{peers}/get_active", T::NAME), |b| {
        b.iter_custom(|iters| threaded(1, iters, |_, n| common::get_active_ops(&store, n)));
    });
}

fn benches(c: &mut Criterion) {
    let w = Workload::new();
    {
        let mut g = group(c, "input_clone_1t");
        g.bench_function("clone", |b| {
            b.iter_custom(|iters| threaded(1, iters, |t, n| common::clone_ops(&w, &w.pool, t, n)));
        });
    }
    for (name, threads) in [("update_1t", 1), ("update_2t", 2)] {
        let mut g = group(c, name);
        updates::<PeerStore>(&mut g, &w, threads);
        updates::<Reference>(&mut g, &w, threads);
        updates::<Floor>(&mut g, &w, threads);
    }
    for (name, subscribers) in [("churn_2t", 0), ("churn_2t_16subs", 16)] {
        let mut g = group(c, name);
        churn::<PeerStore>(&mut g, &w, subscribers);
        churn::<Reference>(&mut g, &w, subscribers);
        churn::<Floor>(&mut g, &w, subscribers);
    }
    for (name, threads) in [("get_1t", 1), ("get_2t", 2)] {
        let mut g = group(c, name);
        gets::<PeerStore>(&mut g, &w, threads);
        gets::<Reference>(&mut g, &w, threads);
        gets::<Floor>(&mut g, &w, threads);
    }
    for (name, threads) in [("get_active_1000_1t", 1), ("get_active_1000_2t", 2)] {
        let mut g = group(c, name);
        get_actives::<PeerStore>(&mut g, &w, threads);
        get_actives::<Reference>(&mut g, &w, threads);
        get_actives::<Floor>(&mut g, &w, threads);
    }
    {
        // One iteration is one call: a fresh store per 2000 calls, setup untimed.
        let mut g = group(c, "insert_to_cap");
        inserts::<PeerStore>(&mut g);
        inserts::<Reference>(&mut g);
        inserts::<Floor>(&mut g);
    }
    {
        // Flat per-peer cost: update and get_active at 1,000 and 1,000,000 stored peers.
        let mut g = group(c, "scaling");
        for peers in [1_000, 1_000_000] {
            spread_updates::<PeerStore>(&mut g, &w, peers);
            spread_updates::<Floor>(&mut g, &w, peers);
        }
    }
}

criterion_group!(store, benches);
criterion_main!(store);
