//! The stale yardstick: how long a peer was active on an endpoint that nothing vouched for,
//! judged the same way whichever policy the store ran, so that the policies can be compared
//! (`--compare`). It judges by what the trace said of the peer, not by what the store kept:
//! the seed's store keeps no candidates, nor any evidence.
//!
//! The rule is the resilient policy's freshness (`fresh_reports`, `cache_counts` and
//! `trusted_at` in `src/policy/resilient.rs`), restated here because the library offers it
//! as no function a caller can give evidence to; only each method's window
//! ([`EndpointPolicy::fresh_window`]) and the trust window
//! ([`EndpointPolicy::trust_window`]) come from the library. The restatement is simpler
//! than the rule in these cases, none of which changes a figure on the built-in trace (a
//! test in the engine compares the two on it, second by second, for every active peer):
//!
//! - a confirmation after a failure: the rule lets the reports the failure voided vouch
//!   again; here they stay void (the confirmation itself vouches for its trust window);
//! - the cache: the rule lets a cached report vouch whenever no candidate of the peer has a
//!   fresh report by another method, nor trust; here it vouches until the peer is first
//!   heard live, and never again;
//! - a second-hand report made after a failure but dated before it: the rule does not count
//!   it; here it counts from the time it carries;
//! - a confirmation of an endpoint no report named yet: the rule ignores it (it is no
//!   candidate); here it vouches;
//! - the bound: the rule keeps a few candidates a peer and drops the least recently
//!   reported; here [`MAX_SAID`] things said are kept.

use std::net::SocketAddr;
use std::time::Duration;

use peerstore::{DiscoveryMethod, EndpointPolicy};

/// How many things said of one peer the yardstick keeps: the latest of each kind, for each
/// endpoint and method, the oldest dropped past this.
const MAX_SAID: usize = 64;

/// One thing the trace said of a peer's endpoint, at a time on the trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    Report {
        endpoint: SocketAddr,
        method: DiscoveryMethod,
        at: Duration,
    },
    Confirm {
        endpoint: SocketAddr,
        at: Duration,
    },
    Fail {
        endpoint: SocketAddr,
    },
}

impl Said {
    pub fn endpoint(&self) -> SocketAddr {
        match self {
            Said::Report { endpoint, .. }
            | Said::Confirm { endpoint, .. }
            | Said::Fail { endpoint } => *endpoint,
        }
    }

    /// Whether it replaces `old`: the same kind, endpoint and method.
    fn replaces(&self, old: &Said) -> bool {
        match (self, old) {
            (Said::Report { method: a, .. }, Said::Report { method: b, .. }) => a == b,
            (Said::Confirm { .. }, Said::Confirm { .. })
            | (Said::Fail { .. }, Said::Fail { .. }) => true,
            _ => false,
        }
    }

    /// Evidence of the peer heard live: anything but the cache.
    fn is_live(&self) -> bool {
        match self {
            Said::Report { method, .. } => *method != DiscoveryMethod::Cache,
            Said::Confirm { .. } => true,
            Said::Fail { .. } => false,
        }
    }
}

/// The yardstick for "a stale endpoint", the same whichever policy runs, so that the two can
/// be compared: an endpoint is fresh while a report of it is within the resilient policy's
/// window for its method, or a confirmation within its trust window, and neither was made
/// before its last failure; a cached one is fresh until the peer is heard live.
pub struct Yardstick {
    policy: EndpointPolicy,
    /// The store's `dead_after`: how long a peer is active after it was last heard.
    pub dead_after: Duration,
}

impl Yardstick {
    pub fn new() -> Self {
        Yardstick {
            policy: EndpointPolicy::resilient(),
            dead_after: peerstore::PEER_DEAD_TIMEOUT,
        }
    }

    /// Until when what was said (oldest first) vouches for `endpoint`.
    pub fn fresh_until(&self, said: &[Said], endpoint: SocketAddr) -> Duration {
        let last_failure = said
            .iter()
            .rposition(|s| matches!(s, Said::Fail { .. }) && s.endpoint() == endpoint);
        let after = last_failure.map_or(0, |i| i + 1);
        let trust = self.policy.trust_window().unwrap_or_default();
        said.iter()
            .enumerate()
            .skip(after)
            .filter(|(_, s)| s.endpoint() == endpoint)
            .filter_map(|(i, s)| match s {
                Said::Report { method, at, .. } => {
                    match self.policy.fresh_window(method, self.dead_after) {
                        Some(window) => Some(at.saturating_add(window)),
                        // The cache: until the first live word of the peer after it.
                        None => Some(
                            said[i + 1..]
                                .iter()
                                .filter(|s| s.is_live())
                                .map(|s| match s {
                                    Said::Report { at, .. } | Said::Confirm { at, .. } => *at,
                                    Said::Fail { .. } => Duration::MAX,
                                })
                                .min()
                                .unwrap_or(Duration::MAX),
                        ),
                    }
                }
                Said::Confirm { at, .. } => Some(at.saturating_add(trust)),
                Said::Fail { .. } => None,
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// What the trace said of one peer's endpoints, oldest first: the latest of each kind for
/// each endpoint (and method), at most [`MAX_SAID`] of them.
#[derive(Debug, Default, Clone)]
pub struct Told {
    said: Vec<Said>,
}

impl Told {
    pub fn tell(&mut self, said: Said) {
        if let Some(i) = self
            .said
            .iter()
            .position(|old| old.endpoint() == said.endpoint() && said.replaces(old))
        {
            self.said.remove(i);
        }
        if self.said.len() >= MAX_SAID {
            self.said.remove(0);
        }
        self.said.push(said);
    }

    /// Forgets it all: the peer left the store, and a later record starts from nothing said.
    pub fn forget(&mut self) {
        self.said.clear();
    }

    pub fn said(&self) -> &[Said] {
        &self.said
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stale yardstick, case by case: each method's window, the cache until the peer is
    /// heard live, trust, and a failure voiding what was said before it.
    #[test]
    fn the_stale_yardstick() {
        let yardstick = Yardstick::new();
        let (a, b): (SocketAddr, SocketAddr) = (
            "192.0.2.1:1".parse().unwrap(),
            "192.0.2.2:1".parse().unwrap(),
        );
        let s = Duration::from_secs;
        let report = |endpoint, method, at| Said::Report {
            endpoint,
            method,
            at: s(at),
        };
        let until = |said: &[Said], e| yardstick.fresh_until(said, e);
        assert_eq!(until(&[], a), Duration::ZERO, "nothing said: stale");
        assert_eq!(until(&[report(a, DiscoveryMethod::Lan, 10)], a), s(40));
        assert_eq!(until(&[report(a, DiscoveryMethod::Dht, 10)], a), s(310));
        assert_eq!(
            until(&[report(a, DiscoveryMethod::Dht, 10)], b),
            Duration::ZERO
        );
        let cached = [report(a, DiscoveryMethod::Cache, 0)];
        assert_eq!(until(&cached, a), Duration::MAX, "until heard live");
        let heard = [cached[0].clone(), report(b, DiscoveryMethod::Gossip, 50)];
        assert_eq!(until(&heard, a), s(50));
        let confirmed = [
            report(a, DiscoveryMethod::Lan, 10),
            Said::Confirm {
                endpoint: a,
                at: s(20),
            },
        ];
        assert_eq!(until(&confirmed, a), s(200), "trusted for 180 s");
        let failed = [
            confirmed[0].clone(),
            confirmed[1].clone(),
            Said::Fail { endpoint: a },
        ];
        assert_eq!(
            until(&failed, a),
            Duration::ZERO,
            "a failure voids what came before"
        );
        let again = [
            failed[0].clone(),
            failed[2].clone(),
            report(a, DiscoveryMethod::Dht, 30),
        ];
        assert_eq!(until(&again, a), s(330), "and not what came after");

        let mut told = Told::default();
        for i in 0..1000 {
            let port = u16::try_from(i).unwrap();
            told.tell(report(
                SocketAddr::new(a.ip(), port),
                DiscoveryMethod::Dht,
                0,
            ));
            told.tell(report(a, DiscoveryMethod::Dht, i));
        }
        assert!(
            told.said().len() <= MAX_SAID,
            "bounded: {}",
            told.said().len()
        );
        assert!(told.said().contains(&report(a, DiscoveryMethod::Dht, 999)));
    }
}
