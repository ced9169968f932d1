//! Helpers shared by the integration tests: keys, announcements and a store on a manual clock.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use peerstore::{ManualClock, PeerInfo, PeerStore, PublicKey};

/// A fixed wall-clock start, so failures print the same times on every run.
pub const START: Duration = Duration::from_secs(1_763_800_000);

pub fn key(n: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[31] = 0x5a;
    PublicKey::from_bytes(bytes)
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// An announcement of peer `n` with an endpoint.
pub fn at(n: u32, endpoint: &str) -> PeerInfo {
    let mut info = PeerInfo::new(key(n));
    info.endpoint = Some(addr(endpoint));
    info
}

pub fn clock() -> ManualClock {
    ManualClock::starting_at(SystemTime::UNIX_EPOCH + START)
}

/// A store with default limits on a manual clock.
pub fn store() -> (PeerStore, ManualClock) {
    let clock = clock();
    (PeerStore::builder().clock(clock.clone()).build(), clock)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
