//! Every benchmark workload, quickly, in one table: the crate against the reference design and
//! the bare-`DashMap` floor, the ratios, and whether each performance target is met.
//!
//! ```text
//! cargo run --release --example bench_report
//! ```
//!
//! Each figure is the median of several rounds run in this one process, the three stores taking
//! turns within a round, so that a noisy machine moves them together. The workloads and the
//! baselines are the ones `benches/store.rs` runs (`benches/common`). Memory is counted in
//! another process, `cargo bench --bench memory`, because its counting allocator doubles the
//! cost of every allocation in the binary that links it.

#[path = "../benches/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Floor, Reference, Target, Workload};
use peerstore::PeerStore;

/// Rounds per figure: the median is reported.
const ROUNDS: usize = 7;

/// The reference Go store's figures (WORKLOADS.md), the low end of each range, in ns.
mod go {
    pub const UPDATE_1T: f64 = 223.0;
    pub const UPDATE_2T: f64 = 481.0;
    pub const CHURN_2T: f64 = 475.0;
    pub const CHURN_2T_16SUBS: f64 = 885.0;
    pub const GET_1T: f64 = 136.0;
    pub const GET_2T: f64 = 230.0;
    pub const GET_ACTIVE_1T: f64 = 104_000.0;
    pub const GET_ACTIVE_2T: f64 = 212_000.0;
}

/// ns per thread-op of `ops` ops on each of `threads` threads.
fn per_op(threads: usize, ops: u64, work: impl Fn(usize, u64) + Sync) -> f64 {
    let elapsed = common::on_threads(threads, |t| work(t, ops));
    elapsed.as_nanos() as f64 / ops as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One row: the same workload on the three stores, median of `ROUNDS` interleaved rounds.
struct Row {
    name: &'static str,
    ours: f64,
    reference: f64,
    floor: f64,
    /// The input alone (cloning the announcements), where measured.
    input: f64,
    go: Option<f64>,
}

/// Runs `measure` for each store in turn, `ROUNDS` times, after one warm-up round.
fn row(
    name: &'static str,
    go: Option<f64>,
    measure: impl FnMut(usize) -> f64, // 0: ours, 1: reference, 2: floor
) -> Row {
    row_of(name, go, 3, measure)
}

/// The median of `ROUNDS` interleaved rounds of each of `measures` figures, after one warm-up
/// round.
fn medians(measures: usize, mut measure: impl FnMut(usize) -> f64) -> Vec<f64> {
    let mut samples = vec![Vec::new(); measures];
    for round in 0..=ROUNDS {
        for (which, sample) in samples.iter_mut().enumerate() {
            let ns = measure(which);
            if round > 0 {
                sample.push(ns);
            }
        }
    }
    samples.into_iter().map(median).collect()
}

/// `row` with `measures` figures per round; a fourth is the workload's input alone.
fn row_of(
    name: &'static str,
    go: Option<f64>,
    measures: usize,
    measure: impl FnMut(usize) -> f64,
) -> Row {
    let mut medians = medians(measures, measure).into_iter();
    let mut next = || medians.next().unwrap_or(f64::NAN);
    Row {
        name,
        ours: next(),
        reference: next(),
        floor: next(),
        input: next(),
        go,
    }
}

/// The three stores, prefilled, to run one workload against.
struct Stores {
    ours: PeerStore,
    reference: Reference,
    floor: Floor,
}

impl Stores {
    fn prefilled(w: &Workload) -> Self {
        Stores {
            ours: w.prefilled(),
            reference: w.prefilled(),
            floor: w.prefilled(),
        }
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn main() {
    let started = Instant::now();
    let w = Workload::new();
    let mut rows = Vec::new();

    // update: existing peers, 1 and 2 threads.
    let s = Stores::prefilled(&w);
    let ops = 200_000;
    for (name, threads, go) in [
        ("update_1t", 1, go::UPDATE_1T),
        ("update_2t", 2, go::UPDATE_2T),
    ] {
        // A fourth figure each round: the input alone, to be taken off.
        rows.push(row_of(name, Some(go), 4, |which| match which {
            0 => per_op(threads, ops, |t, n| {
                common::update_ops(&s.ours, &w, &w.pool, t, n);
            }),
            3 => per_op(threads, ops, |t, n| common::clone_ops(&w, &w.pool, t, n)),
            1 => per_op(threads, ops, |t, n| {
                common::update_ops(&s.reference, &w, &w.pool, t, n);
            }),
            _ => per_op(threads, ops, |t, n| {
                common::update_ops(&s.floor, &w, &w.pool, t, n);
            }),
        }));
    }
    drop(s);

    // churn: every update changes the record; 0 and 16 subscribers that never read.
    for (name, subscribers, go) in [
        ("churn_2t", 0, go::CHURN_2T),
        ("churn_2t_16subs", 16, go::CHURN_2T_16SUBS),
    ] {
        let s = Stores::prefilled(&w);
        let _subs = (0..subscribers)
            .map(|_| {
                (
                    s.ours.subscribe_idle(),
                    s.reference.subscribe_idle(),
                    s.floor.subscribe_idle(),
                )
            })
            .collect::<Vec<_>>();
        rows.push(row(name, Some(go), |which| match which {
            0 => per_op(2, ops, |t, n| {
                common::update_ops(&s.ours, &w, &w.churn_pool, t, n);
            }),
            1 => per_op(2, ops, |t, n| {
                common::update_ops(&s.reference, &w, &w.churn_pool, t, n);
            }),
            _ => per_op(2, ops, |t, n| {
                common::update_ops(&s.floor, &w, &w.churn_pool, t, n);
            }),
        }));
    }

    // reads
    let s = Stores::prefilled(&w);
    let ops = 500_000;
    for (name, threads, go) in [("get_1t", 1, go::GET_1T), ("get_2t", 2, go::GET_2T)] {
        rows.push(row(name, Some(go), |which| match which {
            0 => per_op(threads, ops, |t, n| common::get_ops(&s.ours, &w, t, n)),
            1 => per_op(threads, ops, |t, n| common::get_ops(&s.reference, &w, t, n)),
            _ => per_op(threads, ops, |t, n| common::get_ops(&s.floor, &w, t, n)),
        }));
    }
    let ops = 300;
    for (name, threads, go) in [
        ("get_active_1000_1t", 1, go::GET_ACTIVE_1T),
        ("get_active_1000_2t", 2, go::GET_ACTIVE_2T),
    ] {
        rows.push(row(name, Some(go), |which| match which {
            0 => per_op(threads, ops, |_, n| common::get_active_ops(&s.ours, n)),
            1 => per_op(threads, ops, |_, n| common::get_active_ops(&s.reference, n)),
            _ => per_op(threads, ops, |_, n| common::get_active_ops(&s.floor, n)),
        }));
    }
    drop(s);

    // insert_to_cap: fresh stores, 2000 new peers each.
    rows.push(row("insert_to_cap", None, |which| {
        let per_call: Vec<Duration> = (0..10)
            .map(|_| {
                let input = common::insert_to_cap_input();
                match which {
                    0 => common::insert_to_cap::<PeerStore>(input),
                    1 => common::insert_to_cap::<Reference>(input),
                    _ => common::insert_to_cap::<Floor>(input),
                }
            })
            .collect();
        median(per_call.iter().map(|d| d.as_nanos() as f64).collect())
    }));

    print_table(&rows);

    // The opt-in policies against the defaults, interleaved the same way.
    let policies = Policies::measure(&w);
    policies.print();

    // Updates stalled by a reader of every peer.
    let stall = ReadStall::measure(&w);
    stall.print();

    // The full policies: the cap and a flood, under each.
    let admission = Admission::measure();
    admission.print();

    // flat per-peer cost: 1,000 against 1,000,000 peers (ours and the floor).
    let scaling = Scaling::measure(&w);
    scaling.print();

    // memory
    let mem = Memory::measure();
    mem.print();

    let find = |name: &str| rows.iter().find(|r| r.name == name).expect("a row");
    let (u1, u2) = (find("update_1t"), find("update_2t"));
    let (c0, c16) = (find("churn_2t"), find("churn_2t_16subs"));
    let (g1, g2) = (find("get_1t"), find("get_2t"));
    let (a1, a2) = (find("get_active_1000_1t"), find("get_active_1000_2t"));
    // The floor's whole update against ours net of cloning the input both take.
    let net_ratio = (u1.ours - u1.input) / u1.floor;
    let resilient_update = policies.get("update_1t", 1) / policies.get("update_1t", 0);
    let confirm = policies.get("confirm_1t", 1) / policies.get("update_1t", 0);
    let (refused_ns, refused_held) = admission.get("second_hand_newcomers_at_the_cap", 0);
    let resilient_peer = mem.get("resilient", "busy", 1_000);
    let targets = [
        (
            "update_1t >= 4x faster than Go (223 ns)",
            go::UPDATE_1T / u1.ours,
            go::UPDATE_1T / u1.ours >= 4.0,
        ),
        (
            "update_1t net of cloning the input <= 1.3x the floor's update",
            net_ratio,
            net_ratio <= 1.3,
        ),
        (
            "resilient policy: update_1t <= 1.5x the defaults'",
            resilient_update,
            resilient_update <= 1.5,
        ),
        (
            "resilient policy: a confirmation <= 2x an update under the defaults",
            confirm,
            confirm <= 2.0,
        ),
        (
            "a newcomer refused at the cap <= 40 ns (ns)",
            refused_ns,
            refused_ns <= 40.0 && refused_held == common::PEERS,
        ),
        (
            "memory: resilient peer (4 candidates, 8-entry history) <= 1 KiB",
            resilient_peer,
            resilient_peer <= 1024.0,
        ),
        (
            "update p99 with get_active looping on another thread <= 2x without",
            stall.p99_ratio(),
            stall.p99_ratio() <= 2.0,
        ),
        (
            "2 threads: aggregate update throughput >= 1.6x one thread's",
            2.0 * u1.ours / u2.ours,
            2.0 * u1.ours / u2.ours >= 1.6,
        ),
        (
            "churn_2t_16subs <= 2.5x churn_2t",
            c16.ours / c0.ours,
            c16.ours / c0.ours <= 2.5,
        ),
        (
            "churn_2t_16subs >= 3x faster than Go (885 ns)",
            go::CHURN_2T_16SUBS / c16.ours,
            go::CHURN_2T_16SUBS / c16.ours >= 3.0,
        ),
        (
            "get_1t >= 5x faster than Go (136 ns)",
            go::GET_1T / g1.ours,
            go::GET_1T / g1.ours >= 5.0,
        ),
        (
            "get_2t >= 5x faster than Go (230 ns)",
            go::GET_2T / g2.ours,
            go::GET_2T / g2.ours >= 5.0,
        ),
        (
            "get_active_1000_1t >= 10x faster than Go (104 µs)",
            go::GET_ACTIVE_1T / a1.ours,
            go::GET_ACTIVE_1T / a1.ours >= 10.0,
        ),
        (
            "get_active_1000_2t >= 10x faster than Go (212 µs)",
            go::GET_ACTIVE_2T / a2.ours,
            go::GET_ACTIVE_2T / a2.ours >= 10.0,
        ),
        (
            "memory: typical peer (as inserted) <= 400 bytes, 1,000 peers",
            mem.get("peerstore", "inserted", 1_000),
            mem.get("peerstore", "inserted", 1_000) <= 400.0,
        ),
        (
            "memory: typical peer (as inserted) <= 400 bytes, 1,000,000 peers",
            mem.get("peerstore", "inserted", 1_000_000),
            mem.get("peerstore", "inserted", 1_000_000) <= 400.0,
        ),
        (
            "memory: settled peer (heard by all 8 methods) <= 400 bytes, 1,000 peers",
            mem.get("peerstore", "settled", 1_000),
            mem.get("peerstore", "settled", 1_000) <= 400.0,
        ),
        (
            "update at 1,000,000 peers within 2x of 1,000",
            scaling.update_ratio(),
            scaling.update_ratio() <= 2.0,
        ),
        (
            "get_active per peer at 1,000,000 within 2x of 1,000 (linear)",
            scaling.get_active_ratio(),
            scaling.get_active_ratio() <= 2.0,
        ),
    ];
    println!("\nTargets");
    println!("| target | measured | met |");
    println!("|---|---:|---|");
    let mut missed = 0;
    for (what, value, met) in targets {
        missed += usize::from(!met);
        println!(
            "| {what} | {value:.2} | {} |",
            if met { "yes" } else { "NO" }
        );
    }
    println!(
        "\n{} of {} targets met; took {:.1} s",
        targets.len() - missed,
        targets.len(),
        started.elapsed().as_secs_f64()
    );
}

fn print_table(rows: &[Row]) {
    println!(
        "Median of {ROUNDS} interleaved rounds, ns per thread-op (wall time / ops each thread ran)"
    );
    println!(
        "| workload | peerstore | reference design | DashMap floor | reference / peerstore | peerstore / floor | input alone | Go (low) | Go / peerstore |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let go = r.go.map_or("–".to_owned(), fmt_ns);
        let vs_go =
            r.go.map_or("–".to_owned(), |g| format!("{:.1}x", g / r.ours));
        let input = if r.input.is_nan() {
            "–".to_owned()
        } else {
            fmt_ns(r.input)
        };
        println!(
            "| {} | {} | {} | {} | {:.1}x | {:.2}x | {} | {} | {} |",
            r.name,
            fmt_ns(r.ours),
            fmt_ns(r.reference),
            fmt_ns(r.floor),
            r.reference / r.ours,
            r.ours / r.floor,
            input,
            go,
            vs_go,
        );
    }
}

/// The update and get_active workloads at 1,000 and at 1,000,000 stored peers.
struct Scaling {
    /// (peers, update ns, update net of input ns, get_active ns per peer) for ours and the floor.
    ours: Vec<(usize, f64, f64, f64)>,
    floor: Vec<(usize, f64, f64, f64)>,
}

impl Scaling {
    const SIZES: [usize; 2] = [1_000, 1_000_000];

    fn measure(w: &Workload) -> Self {
        Scaling {
            ours: Self::SIZES.map(|n| Self::one::<PeerStore>(w, n)).to_vec(),
            floor: Self::SIZES.map(|n| Self::one::<Floor>(w, n)).to_vec(),
        }
    }

    fn one<T: Target>(w: &Workload, peers: usize) -> (usize, f64, f64, f64) {
        let target = T::with_max_peers(peers);
        target.prefill(peers);
        let ops = 100_000;
        let mut update = Vec::new();
        let mut input = Vec::new();
        let mut active = Vec::new();
        // A warm-up pass first: every peer heard by several methods, as in the 1,000 case.
        for round in 0..=3 {
            let u = per_op(1, ops, |t, n| {
                common::spread_update_ops(&target, w, peers, t, n);
            });
            let i = per_op(1, ops, |t, n| common::spread_clone_ops(w, peers, t, n));
            let reads = (10_000_000 / peers).clamp(3, 300) as u64;
            let a = per_op(1, reads, |_, n| common::get_active_ops(&target, n)) / peers as f64;
            if round > 0 {
                update.push(u);
                input.push(i);
                active.push(a);
            }
        }
        let (u, i) = (median(update), median(input));
        (peers, u, u - i, median(active))
    }

    fn update_ratio(&self) -> f64 {
        self.ours[1].1 / self.ours[0].1
    }

    fn get_active_ratio(&self) -> f64 {
        self.ours[1].3 / self.ours[0].3
    }

    fn print(&self) {
        println!("\nFlat per-peer cost (update keys spread over every stored peer, 1 thread)");
        println!(
            "| peers | peerstore update | net of input | floor update | net of input | peerstore get_active per peer | floor get_active per peer |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for (o, f) in self.ours.iter().zip(&self.floor) {
            println!(
                "| {} | {} | {} | {} | {} | {:.2} ns | {:.2} ns |",
                o.0,
                fmt_ns(o.1),
                fmt_ns(o.2),
                fmt_ns(f.1),
                fmt_ns(f.2),
                o.3,
                f.3
            );
        }
    }
}

/// Heap bytes per stored peer, from `cargo bench --bench memory`.
struct Memory {
    /// (store, shape, peers, bytes per peer)
    figures: Vec<(String, String, usize, f64)>,
    problem: Option<String>,
}

impl Memory {
    fn measure() -> Self {
        let output = Command::new(env!("CARGO"))
            .args(["bench", "--quiet", "--bench", "memory", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output();
        let output = match output {
            Ok(o) if o.status.success() => o,
            Ok(o) => return Memory::failed(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => return Memory::failed(format!("cannot run cargo: {e}")),
        };
        let figures = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                match f[..] {
                    ["memory", store, shape, peers, bytes] => Some((
                        store.to_owned(),
                        shape.to_owned(),
                        peers.parse().ok()?,
                        bytes.parse().ok()?,
                    )),
                    _ => None,
                }
            })
            .collect();
        Memory {
            figures,
            problem: None,
        }
    }

    fn failed(why: String) -> Self {
        Memory {
            figures: Vec::new(),
            problem: Some(why),
        }
    }

    /// Bytes per peer, or infinity when not measured (so the target reads as missed).
    fn get(&self, store: &str, shape: &str, peers: usize) -> f64 {
        self.figures
            .iter()
            .find(|f| f.0 == store && f.1 == shape && f.2 == peers)
            .map_or(f64::INFINITY, |f| f.3)
    }

    fn print(&self) {
        println!("\nHeap bytes per stored peer (requested bytes, `cargo bench --bench memory`)");
        if let Some(problem) = &self.problem {
            println!("not measured: {problem}");
            return;
        }
        println!("| store | shape of the peer | peers | bytes per peer |");
        println!("|---|---|---:|---:|");
        for (store, shape, peers, bytes) in &self.figures {
            println!("| {store} | {shape} | {peers} | {bytes:.0} |");
        }
    }
}

/// What a full store costs under each full policy, in one run: `insert_to_cap`
/// (2000 new peers by the DHT into a fresh store of 1000), a flood (1000 new second-hand
/// peers, then 1000 new first-hand ones: each first-hand newcomer evicts a fake under
/// `EvictSecondHand`, and finds room under the quota), and LAN newcomers to a store a
/// first-hand flood filled (100 proven peers, 900 DHT fakes, then 1000 LAN newcomers: each
/// takes a fake's place under `EvictUnproven`; the others refuse them).
struct Admission {
    /// Per workload: its name, then per configuration the time per call and the peers taken.
    rows: Vec<(&'static str, [(f64, usize); 4])>,
}

/// A workload of [`Admission`]: what fills the store first (not timed), then what is timed.
type Announcements = Vec<(peerstore::PeerInfo, peerstore::DiscoveryMethod)>;

impl Admission {
    const CONFIGS: [&'static str; 4] = [
        "Refuse",
        "EvictSecondHand",
        "max_second_hand(500)",
        "EvictUnproven",
    ];

    fn store(config: usize) -> PeerStore {
        use peerstore::FullPolicy;
        let builder = PeerStore::builder().max_peers(common::PEERS);
        match config {
            0 => builder,
            1 => builder.when_full(FullPolicy::EvictSecondHand),
            2 => builder.max_second_hand(common::PEERS / 2),
            _ => builder.when_full(FullPolicy::EvictUnproven),
        }
        .build()
        .expect("valid store settings")
    }

    /// Feeds `prefill` (proving the first `proven` of it by a handshake), then `input`, to a
    /// fresh store of `config`; the time per call of `input`, and the peers held.
    fn run(
        config: usize,
        prefill: &Announcements,
        proven: usize,
        input: &Announcements,
    ) -> (f64, usize) {
        let store = Admission::store(config);
        for (i, (info, method)) in prefill.iter().enumerate() {
            let _ = store.update(info.clone(), method.clone());
            if i < proven
                && let Some(endpoint) = info.endpoint
            {
                let _ = store.confirm(&info.public_key, endpoint, peerstore::Evidence::Handshake);
            }
        }
        let input = input.to_vec();
        let calls = input.len() as f64;
        let start = Instant::now();
        for (info, method) in input {
            let _ = std::hint::black_box(store.update(info, method));
        }
        let ns = start.elapsed().as_nanos() as f64 / calls;
        (ns, store.len())
    }

    fn measure() -> Self {
        use peerstore::DiscoveryMethod as M;
        let peers = common::PEERS;
        let to_cap: Announcements = common::insert_to_cap_input()
            .into_iter()
            .map(|info| (info, M::Dht))
            .collect();
        let flood: Announcements = (0..2 * peers)
            .map(|i| {
                let method = if i < peers {
                    M::GossipTransitive
                } else {
                    M::Dht
                };
                (common::info(i, i), method)
            })
            .collect();
        let first_hand_flood: Announcements =
            (0..peers).map(|i| (common::info(i, i), M::Dht)).collect();
        let lan: Announcements = (peers..2 * peers)
            .map(|i| (common::info(i, i), M::Lan))
            .collect();
        // Second-hand newcomers at a store full of first-hand peers: every policy refuses them.
        let refused: Announcements = (peers..2 * peers)
            .map(|i| (common::info(i, i), M::GossipTransitive))
            .collect();
        let mut rows = Vec::new();
        for (name, prefill, proven, input) in [
            ("insert_to_cap", &Vec::new(), 0, &to_cap),
            ("flood_then_first_hand", &Vec::new(), 0, &flood),
            (
                "lan_newcomers_after_a_first_hand_flood",
                &first_hand_flood,
                peers / 10,
                &lan,
            ),
            (
                "second_hand_newcomers_at_the_cap",
                &first_hand_flood,
                0,
                &refused,
            ),
        ] {
            let mut held = [0; 4];
            let figures = medians(4, |config| {
                let (ns, len) = Admission::run(config, prefill, proven, input);
                held[config] = len;
                ns
            });
            rows.push((
                name,
                std::array::from_fn(|config| (figures[config], held[config])),
            ));
        }
        Admission { rows }
    }

    /// A figure by workload and configuration.
    fn get(&self, name: &str, config: usize) -> (f64, usize) {
        let row = self.rows.iter().find(|(n, _)| *n == name);
        row.map_or((f64::NAN, 0), |(_, figures)| figures[config])
    }

    fn print(&self) {
        println!();
        println!(
            "Full policies: median of {ROUNDS} interleaved rounds, a fresh store of 1000 each; per call, and the peers it then holds"
        );
        println!("| workload | {} |", Self::CONFIGS.join(" | "));
        println!("|---|---:|---:|---:|---:|");
        for (name, figures) in &self.rows {
            let cells: Vec<String> = figures
                .iter()
                .map(|(ns, held)| format!("{} ({held})", fmt_ns(*ns)))
                .collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
    }
}

/// The opt-in policies' costs against the defaults', in one run: each configuration a column.
struct Policies {
    rows: Vec<(&'static str, [f64; 5])>,
}

impl Policies {
    const CONFIGS: [&'static str; 5] = [
        "defaults",
        "resilient",
        "tombstones (1 h, readmit newer)",
        "resilient + history(8)",
        "resilient, every peer confirmed",
    ];

    fn store(config: usize) -> PeerStore {
        use peerstore::{EndpointPolicy, Readmission};
        let builder = PeerStore::builder();
        match config {
            0 => builder,
            1 => builder.endpoint_policy(EndpointPolicy::resilient()),
            2 => builder
                .tombstone_expired(Duration::from_secs(3600))
                .readmit(Readmission::Newer),
            3 => builder
                .endpoint_policy(EndpointPolicy::resilient())
                .endpoint_history(8),
            _ => builder.endpoint_policy(EndpointPolicy::resilient()),
        }
        .build()
        .expect("valid store settings")
    }

    fn measure(w: &Workload) -> Self {
        use peerstore::Evidence;
        let stores: [PeerStore; 5] = std::array::from_fn(|config| {
            let store = Policies::store(config);
            store.prefill(common::PEERS);
            store
        });
        // The last: its candidates trusted throughout.
        common::confirm_every_peer(&stores[4], w);
        // Each peer's endpoint as stored: what a confirmation names.
        let endpoints: Vec<_> = w
            .keys
            .iter()
            .map(|k| {
                stores[0]
                    .get(k)
                    .and_then(|p| p.endpoint)
                    .expect("an endpoint")
            })
            .collect();
        let mut rows = Vec::new();
        let ops = 200_000;
        let figures = |measure: &dyn Fn(usize) -> f64| -> [f64; 5] {
            let medians = medians(5, measure);
            std::array::from_fn(|config| medians[config])
        };
        rows.push((
            "update_1t",
            figures(&|config| {
                per_op(1, ops, |t, n| {
                    common::update_ops(&stores[config], w, &w.pool, t, n);
                })
            }),
        ));
        rows.push((
            "confirm_1t",
            figures(&|config| {
                per_op(1, ops, |_, n| {
                    for i in 0..n {
                        let peer =
                            usize::try_from(i).unwrap_or(0).wrapping_mul(7919) % common::PEERS;
                        std::hint::black_box(stores[config].confirm(
                            &w.keys[peer],
                            endpoints[peer],
                            Evidence::Handshake,
                        ));
                    }
                })
            }),
        ));
        rows.push((
            "get_active_1000_1t",
            figures(&|config| per_op(1, 300, |_, n| common::get_active_ops(&stores[config], n))),
        ));
        Policies { rows }
    }

    /// A figure by workload and configuration.
    fn get(&self, name: &str, config: usize) -> f64 {
        let row = self.rows.iter().find(|(n, _)| *n == name);
        row.map_or(f64::NAN, |(_, figures)| figures[config])
    }

    fn print(&self) {
        println!();
        println!(
            "Opt-in policies: median of {ROUNDS} interleaved rounds, 1000 peers (in brackets: against the defaults)"
        );
        println!("| workload | {} |", Self::CONFIGS.join(" | "));
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, figures) in &self.rows {
            let cells: Vec<String> = figures
                .iter()
                .enumerate()
                .map(|(config, ns)| match config {
                    0 => fmt_ns(*ns),
                    _ => format!("{} ({:.2}x)", fmt_ns(*ns), ns / figures[0]),
                })
                .collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
    }
}

/// How much `get_active` in a loop on one thread slows updates on another: the 50th, 99th and
/// 99.9th percentile of an update's latency (each timed alone, the timer's cost included)
/// with no reader, and with one.
struct ReadStall {
    /// Per percentile: (no reader, a reader), ns.
    percentiles: [(f64, f64); 3],
}

impl ReadStall {
    /// In thousandths.
    const PERCENTILES: [usize; 3] = [500, 990, 999];

    /// The update latencies of one run, sorted: `reader` runs `get_active` in a loop meanwhile.
    fn latencies(w: &Workload, reader: bool) -> Vec<u64> {
        let store: PeerStore = w.prefilled();
        let ops = 200_000;
        let done = std::sync::atomic::AtomicBool::new(false);
        let mut latencies = std::thread::scope(|s| {
            if reader {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::black_box(store.get_active());
                    }
                });
            }
            let updates = s.spawn(|| {
                let mut rng = common::XorShift::for_thread(0);
                let mut latencies = Vec::with_capacity(ops);
                for n in 0..ops {
                    let x = rng.next();
                    let j = ((x % 1000) as usize + (n & 3) * 1000) % common::POOL;
                    let (info, method) = (w.pool[j].clone(), w.method(x).clone());
                    let start = Instant::now();
                    let _ = std::hint::black_box(store.update(info, method));
                    latencies.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                latencies
            });
            updates.join().expect("the update thread")
        });
        latencies.sort_unstable();
        latencies
    }

    fn measure(w: &Workload) -> Self {
        let mut samples = [
            [Vec::new(), Vec::new()],
            [Vec::new(), Vec::new()],
            [Vec::new(), Vec::new()],
        ];
        for round in 0..=ROUNDS {
            for reader in [false, true] {
                let latencies = ReadStall::latencies(w, reader);
                if round == 0 {
                    continue;
                }
                for (i, p) in Self::PERCENTILES.iter().enumerate() {
                    let at = (latencies.len() * p / 1000).min(latencies.len() - 1);
                    samples[i][usize::from(reader)].push(latencies[at] as f64);
                }
            }
        }
        let percentiles = samples.map(|[alone, read]| (median(alone), median(read)));
        ReadStall { percentiles }
    }

    /// The p99 with a reader over the p99 without.
    fn p99_ratio(&self) -> f64 {
        let (alone, read) = self.percentiles[1];
        read / alone
    }

    fn print(&self) {
        println!();
        println!(
            "Updates while another thread runs get_active in a loop: an update's latency, timed one by one (the timer included), median of {ROUNDS} rounds"
        );
        println!("| percentile | no reader | get_active looping | ratio |");
        println!("|---|---:|---:|---:|");
        for (p, (alone, read)) in Self::PERCENTILES.iter().zip(self.percentiles) {
            println!(
                "| p{} | {} | {} | {:.2}x |",
                *p as f64 / 10.0,
                fmt_ns(alone),
                fmt_ns(read),
                read / alone
            );
        }
    }
}
