//! What an update did, or why it was refused: the vocabulary the store, the policy and the
//! counters share, in a room below all three.

use std::fmt;
use std::time::SystemTime;

use crate::InvalidPeerInfo;

/// What an [`update`](crate::PeerStore::update) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateOutcome {
    /// The peer was new and is now stored.
    Inserted,
    /// Something a consumer acts on changed (a field, the endpoint's method, a new discovery
    /// method), or a dead peer became active again.
    Updated,
    /// Nothing changed but, perhaps, when the peer was last seen.
    Unchanged,
}

/// Why an [`update`](crate::PeerStore::update) was refused. The store is left exactly as it was.
///
/// Its message includes the cause's, so [`source`](std::error::Error::source) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// The peer is new and the store already holds `capacity` peers.
    StoreFull {
        /// The store's [`max_peers`](crate::PeerStoreBuilder::max_peers).
        capacity: usize,
    },
    /// The announcement holds a value the store will not keep.
    Invalid(InvalidPeerInfo),
    /// The peer was removed with a tombstone
    /// ([`PeerStore::remove_for`](crate::PeerStore::remove_for), or
    /// [`PeerStoreBuilder::tombstone_expired`](crate::PeerStoreBuilder::tombstone_expired)) that
    /// stands until `until`, and this announcement cannot lift it: the cache and the
    /// second-hand methods never do, and a first-hand one only as the store's
    /// [`Readmission`](crate::Readmission) rule says (by default, any first-hand method does).
    Tombstoned {
        /// When the tombstone falls, on the store's wall clock.
        until: SystemTime,
    },
    /// The key is banned ([`PeerStore::ban`](crate::PeerStore::ban)): no method, nor the
    /// cache, brings it in until the ban is lifted or runs out.
    Banned {
        /// Until when the ban stands, on the wall clock; `None` until it is lifted.
        until: Option<SystemTime>,
    },
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::StoreFull { capacity } => write!(
                f,
                "peer store is full: it holds its limit of {capacity} peers, so a new peer is refused"
            ),
            UpdateError::Invalid(invalid) => write!(f, "invalid announcement: {invalid}"),
            UpdateError::Banned { until: None } => {
                f.write_str("peer is banned until the ban is lifted: no announcement brings it in")
            }
            UpdateError::Banned { until: Some(until) } => write!(
                f,
                "peer is banned until Unix time {}: no announcement brings it in before then",
                unix_secs(*until)
            ),
            UpdateError::Tombstoned { until } => write!(
                f,
                "peer was removed and is tombstoned until Unix time {}: this announcement cannot \
                 bring it back before then (the cache and second-hand methods never do; a \
                 first-hand one as the store's readmission rule allows)",
                unix_secs(*until)
            ),
        }
    }
}

impl std::error::Error for UpdateError {}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl From<InvalidPeerInfo> for UpdateError {
    fn from(invalid: InvalidPeerInfo) -> Self {
        UpdateError::Invalid(invalid)
    }
}
