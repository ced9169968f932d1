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
//! `update_1t` mix of the benchmarks (1000 known peers, their typical announcement, the eight
//! method names in turn). `insert ROUNDS` makes ROUNDS fresh stores of 1000 and offers each
//! 2000 new peers, half of them refused at the cap: over `ROUNDS * 2000` against `insert 0`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use peerstore::{DiscoveryMethod, NatType, PeerInfo, PeerStore, PublicKey};

/// Peer `i`'s key: splitmix64 output, as random-looking as a real key.
fn key(i: usize) -> PublicKey {
    let mut state = i as u64;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    PublicKey::from_bytes(bytes)
}

/// The typical announcement of peer `i`, variant `j` (every third over IPv6).
fn info(i: usize, j: usize) -> PeerInfo {
    let ip: IpAddr = if j.is_multiple_of(3) {
        Ipv6Addr::from((0x2001_0db8_u128 << 96) | (i as u128 + 1)).into()
    } else {
        let (hi, lo) = (u8::try_from((i / 250) % 250), u8::try_from(i % 250 + 1));
        Ipv4Addr::new(198, 51, hi.unwrap_or(0), lo.unwrap_or(1)).into()
    };
    let mut info = PeerInfo::new(key(i));
    info.endpoint = Some(SocketAddr::new(ip, 51820));
    info.mesh_ip = Some(Ipv4Addr::new(10, 99, 0, 1));
    info.hostname = Some("host".into());
    info.routable_networks = ["192.168.0.0/24".parse().expect("a network")].into();
    info.nat_type = Some(NatType::Cone);
    info
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (what, n) = match (args.next(), args.next().and_then(|n| n.parse::<u64>().ok())) {
        (Some(what), Some(n)) if what == "update" || what == "insert" => (what, n),
        _ => {
            eprintln!("usage: instructions update OPS | insert ROUNDS");
            std::process::exit(2);
        }
    };
    let methods = [
        "lan",
        "dht-rendezvous",
        "dht",
        "gossip",
        "dht-transitive",
        "gossip-transitive",
        "cache",
        "other",
    ]
    .map(|name| DiscoveryMethod::other(name).expect("a method name"));
    if what == "update" {
        let pool: Vec<PeerInfo> = (0..4096).map(|j| info(j % 1000, j)).collect();
        let store = PeerStore::new();
        for i in 0..1000 {
            store
                .update(info(i, i), DiscoveryMethod::Dht)
                .expect("room");
        }
        let mut x: u32 = 1;
        for op in 0..n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let j = ((x % 1000) as usize + (op & 3) as usize * 1000) % 4096;
            let method = &methods[((x >> 10) % 8) as usize];
            black_box(store.update(pool[j].clone(), method.clone()).ok());
        }
    } else {
        for round in 0..n {
            let store = PeerStore::builder().max_peers(1000).build().expect("valid");
            for i in 0..2000 {
                let offset = usize::try_from(round).unwrap_or(0);
                black_box(store.update(info(i + offset, i), DiscoveryMethod::Dht).ok());
            }
        }
    }
}
