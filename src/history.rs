//! A peer's endpoint changes, kept in a bounded ring when the store is built with
//! [`endpoint_history`](crate::PeerStoreBuilder::endpoint_history): the one way to see, inside
//! the process, why a peer's endpoint moved and whether it flaps.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::clock::Nanos;
use crate::{DiscoveryMethod, EndpointRule};

/// The most entries a peer's history may keep.
pub const MAX_ENDPOINT_HISTORY: usize = 256;

/// One change of a peer's endpoint ([`PeerStore::endpoint_history`](crate::PeerStore::endpoint_history)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EndpointChange {
    /// The [`PeerEvent::seq`](crate::PeerEvent::seq) of the `Updated` event that announced it.
    pub seq: u64,
    /// When, on the store's monotonic clock: the time since the store was built.
    pub at: Duration,
    /// When, on the wall clock.
    pub wall: SystemTime,
    /// The endpoint before, if the peer had one.
    pub from: Option<SocketAddr>,
    /// The endpoint after.
    pub to: SocketAddr,
    /// The method it counts as set by.
    pub method: DiscoveryMethod,
    /// The rule that decided.
    pub rule: EndpointRule,
    /// Whether it went back to the endpoint the previous change left, within the store's
    /// `dead_after` of it (A → B → A): a flap, as [`Stats::endpoint_flaps`](crate::Stats::endpoint_flaps)
    /// counts them.
    pub flap: bool,
}

/// A peer's last changes, oldest first, at most `cap` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History {
    ring: VecDeque<EndpointChange>,
}

impl History {
    /// Records `change`, dropping the oldest past `cap`; whether it is a flap (and so marked):
    /// back to the endpoint the previous change left, within `window` of it (A → B → A).
    pub(crate) fn record(
        &mut self,
        mut change: EndpointChange,
        cap: usize,
        window: Duration,
    ) -> bool {
        let flap = self.ring.back().is_some_and(|last| {
            last.from == Some(change.to)
                && change.from == Some(last.to)
                && change.at.saturating_sub(last.at) <= window
        });
        change.flap = flap;
        if cap > 0 {
            while self.ring.len() >= cap {
                self.ring.pop_front();
            }
            self.ring.push_back(change);
        }
        flap
    }

    pub(crate) fn to_vec(&self) -> Vec<EndpointChange> {
        self.ring.iter().cloned().collect()
    }
}

/// `Nanos` on the store's timeline as a `Duration` (0 before the store was built).
pub(crate) fn since_start(now: Nanos) -> Duration {
    Duration::from_nanos(u64::try_from(now).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at: u64, from: Option<&str>, to: &str) -> EndpointChange {
        EndpointChange {
            seq: at,
            at: Duration::from_secs(at),
            wall: SystemTime::UNIX_EPOCH,
            from: from.map(|f| f.parse().unwrap()),
            to: to.parse().unwrap(),
            method: DiscoveryMethod::Dht,
            rule: EndpointRule::Newer,
            flap: false,
        }
    }

    #[test]
    fn a_flap_is_a_return_within_the_window_and_the_ring_is_bounded() {
        let (a, b, c) = ("192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1");
        let window = Duration::from_secs(60);
        let mut history = History::default();
        assert!(!history.record(change(0, None, a), 2, window));
        assert!(!history.record(change(10, Some(a), b), 2, window));
        assert!(
            history.record(change(20, Some(b), a), 2, window),
            "A -> B -> A"
        );
        assert!(
            !history.record(change(30, Some(a), c), 2, window),
            "A -> C is no flap"
        );
        assert!(
            !history.record(change(200, Some(c), a), 2, window),
            "back, but too late"
        );
        let kept: Vec<(u64, bool)> = history.to_vec().iter().map(|c| (c.seq, c.flap)).collect();
        assert_eq!(kept, [(30, false), (200, false)], "the oldest dropped");
        assert!(history.record(change(210, Some(a), c), 2, window));
        assert!(history.to_vec()[1].flap, "marked as it is counted");
    }
}
