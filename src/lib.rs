//! The registry of every peer a WireGuard mesh node has discovered.
//!
//! A mesh node hears of its peers many ways at once: LAN multicast, a DHT, a DHT rendezvous
//! after a NAT hole punch, gossip inside the mesh, second-hand mentions in gossip, and its own
//! cache file at start-up. Each of them calls [`PeerStore::update`]. The store merges what they
//! say into one record per peer, so that reconciliation ([`PeerStore::get_active`]), the health
//! monitor, the cache and the cleanup loop all read one consistent answer:
//!
//! - **the endpoint from the most trusted source wins**: LAN > rendezvous > DHT > gossip >
//!   transitive > other > cache, IPv6 preferred at equal rank, a LAN endpoint sticky
//!   ([`should_update_endpoint`]). That is the ranked policy, the default; the opt-in
//!   [`EndpointPolicy::resilient`] keeps candidates that age, applies the same order to the
//!   fresh ones, and trusts an endpoint that evidence confirmed ([`PeerStore::confirm`]) until
//!   it fails ([`PeerStore::note_failure`]);
//! - every other field takes the last non-empty value (`None`, an empty host name and no
//!   networks say nothing), except `introducer`, which always follows the latest announcement;
//! - a method heard first-hand ([`DiscoveryMethod::refreshes_last_seen`]) means the peer was
//!   heard now, new or not, whatever time the announcement carries; the cache and the
//!   second-hand methods only carry a time (none means now), taken for a new peer and, for a
//!   known one, when it is later than the stored one;
//! - a peer silent for 5 minutes is dead, and after 10 minutes it is removed; a dead peer heard
//!   again is [`Updated`](UpdateOutcome::Updated), like a change;
//! - at most 1000 peers are held, so a flood of fake peers cannot exhaust memory; a full store
//!   refuses a new peer, unless [`FullPolicy::EvictSecondHand`] lets one heard first-hand take
//!   the place of a peer never heard first-hand, or [`FullPolicy::EvictUnproven`] lets one
//!   heard on the LAN take the place of a peer WireGuard never completed a handshake with;
//! - a banned key ([`PeerStore::ban`]) is refused whatever any method says of it;
//! - a removed peer is forgotten at once, unless removed with a tombstone
//!   ([`PeerStore::remove_for`], [`PeerStoreBuilder::tombstone_expired`]), which refuses the
//!   cache and the second-hand methods a new record until it falls, and a first-hand one as
//!   the store's [`Readmission`] rule says (by default it lets any first-hand method in);
//! - every setting is one [`Settings`] value, which the builder checks and
//!   [`PeerStore::settings`] hands back;
//! - subscribers are told of new, changed and removed peers over bounded channels, and a slow
//!   subscriber never slows the store.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use peerstore::{DiscoveryMethod, ManualClock, PeerEventKind, PeerInfo, PeerStore, PublicKey};
//!
//! let clock = ManualClock::new();
//! let store = PeerStore::builder().clock(clock.clone()).build()?;
//! let events = store.subscribe();
//!
//! // A DHT lookup finds a peer behind NAT...
//! let key = PublicKey::from_bytes([7; 32]);
//! let mut info = PeerInfo::new(key);
//! info.endpoint = Some("198.51.100.7:51820".parse()?);
//! info.hostname = Some("edge-7".into());
//! store.update(info, DiscoveryMethod::Dht)?;
//!
//! // ...then it shows up on the LAN, whose endpoint wins.
//! let mut lan = PeerInfo::new(key);
//! lan.endpoint = Some("192.0.2.7:51820".parse()?);
//! store.update(lan, DiscoveryMethod::Lan)?;
//!
//! let peer = store.get(&key).expect("stored");
//! assert_eq!(peer.endpoint, Some("192.0.2.7:51820".parse()?));
//! assert_eq!(peer.hostname.as_deref(), Some("edge-7"));
//! assert_eq!(peer.discovered_via, [DiscoveryMethod::Dht, DiscoveryMethod::Lan]);
//!
//! // Silent for more than 5 minutes: dead. More than 10: removed by the cleanup.
//! clock.advance(Duration::from_secs(301));
//! assert!(store.get_active().is_empty());
//! clock.advance(Duration::from_secs(300));
//! assert_eq!(store.cleanup_stale(), [key]);
//!
//! let kinds: Vec<_> = events.try_iter().map(|e| e.kind).collect();
//! assert_eq!(kinds.len(), 3); // New, Updated, Removed { cause: Expired }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Threads
//!
//! Every method takes `&self` and may be called from any thread; [`PeerStore`] is a cheap
//! handle to share. Records live in a sharded map with a lock per shard: an update, a removal
//! or a read of one peer holds it while that one record is merged or read, and a read of every
//! peer ([`get_active`](PeerStore::get_active), [`get_all`](PeerStore::get_all)) or the cleanup
//! holds each shard's lock in turn while it visits that shard. Events are sent after the lock
//! is released, with `try_send`. Nothing in the crate is `async` and nothing blocks on a
//! subscriber.
//!
//! # Time
//!
//! Expiry runs on the monotonic clock, so a wall-clock jump neither expires nor revives anyone.
//! Times that announcements carry (a cache file's `last_seen`) are wall-clock times: the store
//! turns them into an age and never lets them into the future. Tests and replays drive a
//! [`ManualClock`].
//!
//! # Errors
//!
//! Every error of the crate says the whole story in its message, the cause's message
//! included, so [`source`](std::error::Error::source) is `None`: an error chain prints each
//! cause once. The cause is a field of the error for a caller who needs it (the
//! [`InvalidPeerInfo`] inside [`UpdateError::Invalid`], the `io::Error` of a
//! [`cache::CacheError`]).
//!
//! # Types from other crates
//!
//! The public API speaks std and the crate's own types, with two exceptions, both re-exported
//! so that a caller needs no dependency of its own: [`IpNet`] (a routable network) and the
//! channel types of a [`Subscription`], in [`channel`]. With the `serde` feature (on by
//! default) the public types also implement serde's `Serialize` and `Deserialize`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod ban;
#[cfg(feature = "serde")]
pub mod cache;
mod capacity;
mod cleanup;
mod clock;
mod events;
mod fields;
mod history;
mod key;
mod keymap;
mod method;
pub mod method_set;
mod outcome;
mod peer;
mod policy;
mod stats;
mod store;
mod sync;
mod tombstone;
mod victims;
#[cfg(feature = "serde")]
mod wire_time;
#[cfg(feature = "wireguard")]
pub mod wireguard;

use std::time::Duration;

pub use ban::{Ban, BanError, MAX_BAN_REASON, MAX_BANS};
pub use cleanup::CleanupHandle;
pub use clock::{Clock, ManualClock, SystemClock};
pub use events::{PeerEvent, PeerEventKind, RemovalCause, Subscription};
pub use fields::{Hostname, RoutableNetworks};
pub use history::{EndpointChange, MAX_ENDPOINT_HISTORY};
pub use key::{ParseKeyError, PublicKey};
pub use method::{
    DiscoveryMethod, InvalidMethodName, MAX_METHOD_NAME_LEN, MethodName, NatType, ParseNatTypeError,
};
pub use method_set::{MAX_OTHER_METHODS, MethodSet};
pub use outcome::{UpdateError, UpdateOutcome};
pub use peer::{
    AddressProblem, InvalidPeerInfo, MAX_HOSTNAME_LEN, MAX_ROUTABLE_NETWORKS, Peer, PeerInfo,
    canonical_endpoint,
};
pub use policy::resilient::{Candidate, EndpointPolicy, Evidence, MAX_CANDIDATES, ResilientPolicy};
pub use policy::{EndpointDecision, EndpointRule, decide_endpoint, should_update_endpoint};
pub use stats::Stats;
pub use store::{
    BuildError, FullPolicy, MAX_EVENT_BUFFER, PeerStore, PeerStoreBuilder, Readmission, Settings,
};
pub use tombstone::{MAX_TOMBSTONES, Tombstone};

/// A routable network ([`PeerInfo::routable_networks`]): the `ipnet` crate's type, part of this
/// crate's public API.
pub use ipnet::IpNet;

/// The channel types a [`Subscription`] hands out: `crossbeam-channel`'s, part of this crate's
/// public API ([`Subscription::receiver`] is there to wait on several with its `select!`).
pub mod channel {
    pub use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, TryIter, TryRecvError};
}

/// The most peers a store holds unless built with another [`max_peers`](PeerStoreBuilder::max_peers).
pub const DEFAULT_MAX_PEERS: usize = 1000;
/// A peer silent for longer than this is dead: left out of [`PeerStore::get_active`].
pub const PEER_DEAD_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// A peer silent for longer than this is removed by [`PeerStore::cleanup_stale`].
pub const PEER_REMOVE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How many events a subscriber's channel holds before it loses events.
pub const EVENT_BUFFER_SIZE: usize = 16;
/// How often the daemon's cleanup thread runs ([`PeerStore::spawn_cleanup`]).
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
