//! The resilient endpoint policy (opt-in): candidates that age, trust that evidence earns and
//! failure ends. Pure functions of their arguments, like the rest of the policy: the store
//! keeps a peer's [`Candidates`] and asks [`Candidates::choose`] which endpoint to use.
//!
//! The ranked policy keeps one endpoint per peer that never ages, so a LAN endpoint stays
//! chosen an hour after the laptop left the LAN, and two equal reporters make it flap. Here a
//! peer has up to `max_candidates` endpoints, each with the methods that reported it and when;
//! the chosen one is the first in the ranked order (rank, then IPv6, then newest) among the
//! *fresh* candidates only, and a confirmed endpoint (a handshake seen, a probe answered) is trusted
//! for a while against equal-rank challengers, until it fails.
//!
//! Trust is each candidate's own: confirming one endpoint trusts it for `trust_for` and
//! leaves the trust of the others as it was; a failure ends that endpoint's trust only. When
//! several candidates are trusted at once, the chosen one is the first in the ranked order among
//! them: the
//! rank of the best method that ever reported it, then IPv6, then the most recent
//! confirmation. An untrusted challenger never displaces a trusted candidate, unless it
//! outranks it and the policy lets rank override trust.
//!
//! A failure voids the reports made so far, judged by the order in which they came, not by
//! their times: a report made after the failure vouches again even within the same tick of the
//! store's clock, unless it carries a time from before the failure (second-hand news older than
//! the failure). A confirmation makes the voided reports vouch again.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::DiscoveryMethod;

mod candidates;

pub(crate) use candidates::{Candidates, Context};

/// How a peer's endpoint is chosen: [`PeerStoreBuilder::endpoint_policy`](crate::PeerStoreBuilder::endpoint_policy).
///
/// [`Ranked`](Self::Ranked), the default, is the reference daemon's rule; the opt-in
/// [`Resilient`](Self::Resilient) policy is tuned through its own type, [`ResilientPolicy`],
/// so tuning it can never turn one policy into the other.
///
/// ```
/// use std::time::Duration;
/// use peerstore::{DiscoveryMethod, EndpointPolicy, PeerStore, ResilientPolicy};
///
/// let store = PeerStore::builder()
///     .endpoint_policy(
///         ResilientPolicy::new()
///             .max_candidates(6)
///             .fresh_for(DiscoveryMethod::Lan, Duration::from_secs(20))
///             .trust_for(Duration::from_secs(120)),
///     )
///     .build()?;
/// assert!(matches!(store.settings().endpoint_policy, EndpointPolicy::Resilient(_)));
/// # Ok::<(), peerstore::BuildError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointPolicy {
    /// One endpoint per peer, replaced by a higher rank, never aged: the order of
    /// [`should_update_endpoint`](crate::should_update_endpoint). The default.
    #[default]
    Ranked,
    /// Candidates that age and trust that evidence earns: see [`ResilientPolicy`].
    Resilient(ResilientPolicy),
}

/// The resilient endpoint policy and its numbers: candidates that age, trust that evidence
/// earns and failure ends ([`EndpointPolicy::Resilient`]).
///
/// [`new`](Self::new) gives the documented numbers: up to 4 candidates a peer; a report keeps
/// its candidate fresh for 30 s from the LAN (six of its 5 s multicast rounds), 2 minutes
/// from a rendezvous, the store's `dead_after` from the DHT, gossip and the second-hand
/// methods, and from the cache until any other candidate is fresh; a confirmed endpoint is
/// trusted for 180 s (WireGuard's `REJECT_AFTER_TIME`); rank does not override trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResilientPolicy {
    pub(crate) max_candidates: usize,
    /// How long a report by a method keeps its candidate fresh; a method not listed keeps it
    /// fresh for the store's `dead_after`, and the cache until any other candidate is fresh.
    pub(crate) fresh_for: Vec<(DiscoveryMethod, Duration)>,
    pub(crate) trust_for: Duration,
    pub(crate) rank_overrides_trust: bool,
}

/// The most candidates a peer may keep: a bound on what one record can cost.
pub const MAX_CANDIDATES: usize = 16;

impl EndpointPolicy {
    /// The reference daemon's rule, the default: one endpoint per peer, replaced by a higher
    /// rank, never aged (see [`should_update_endpoint`](crate::should_update_endpoint)).
    #[must_use]
    pub const fn ranked() -> Self {
        EndpointPolicy::Ranked
    }

    /// The resilient policy with its documented numbers ([`ResilientPolicy::new`]).
    #[must_use]
    pub fn resilient() -> Self {
        EndpointPolicy::Resilient(ResilientPolicy::new())
    }

    /// The resilient policy's numbers, if this is it.
    #[must_use]
    pub fn as_resilient(&self) -> Option<&ResilientPolicy> {
        match self {
            EndpointPolicy::Resilient(policy) => Some(policy),
            EndpointPolicy::Ranked => None,
        }
    }

    /// How long a report by `method` keeps its candidate fresh, in a store whose
    /// [`dead_after`](crate::PeerStoreBuilder::dead_after) is given: see
    /// [`ResilientPolicy::fresh_window`]. `None` under the ranked policy, whose endpoint never
    /// ages.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerstore::{DiscoveryMethod, EndpointPolicy};
    ///
    /// let dead_after = Duration::from_secs(300);
    /// let resilient = EndpointPolicy::resilient();
    /// assert_eq!(resilient.fresh_window(&DiscoveryMethod::Lan, dead_after), Some(Duration::from_secs(30)));
    /// assert_eq!(resilient.fresh_window(&DiscoveryMethod::Gossip, dead_after), Some(dead_after));
    /// assert_eq!(resilient.fresh_window(&DiscoveryMethod::Cache, dead_after), None);
    /// assert_eq!(EndpointPolicy::ranked().fresh_window(&DiscoveryMethod::Lan, dead_after), None);
    /// ```
    #[must_use]
    pub fn fresh_window(&self, method: &DiscoveryMethod, dead_after: Duration) -> Option<Duration> {
        self.as_resilient()?.fresh_window(method, dead_after)
    }

    /// How long a confirmed endpoint is trusted; `None` under the ranked policy, which takes
    /// no evidence.
    #[must_use]
    pub fn trust_window(&self) -> Option<Duration> {
        self.as_resilient().map(ResilientPolicy::trust_window)
    }
}

impl From<ResilientPolicy> for EndpointPolicy {
    fn from(policy: ResilientPolicy) -> Self {
        EndpointPolicy::Resilient(policy)
    }
}

impl ResilientPolicy {
    /// The documented numbers (see the type's documentation).
    #[must_use]
    pub fn new() -> Self {
        ResilientPolicy {
            max_candidates: 4,
            fresh_for: vec![
                (DiscoveryMethod::Lan, Duration::from_secs(30)),
                (DiscoveryMethod::DhtRendezvous, Duration::from_secs(120)),
            ],
            trust_for: Duration::from_secs(180),
            rank_overrides_trust: false,
        }
    }

    /// How many endpoints a peer keeps as candidates (2 to [`MAX_CANDIDATES`]; the builder
    /// refuses others: a single candidate is always the chosen one, and no other endpoint
    /// could ever replace it). A new one past it replaces the candidate reported least recently
    /// that is neither chosen nor trusted now (its trust not yet run out); if every candidate
    /// is one of those, the new one is not kept.
    #[must_use]
    pub fn max_candidates(mut self, max: usize) -> Self {
        self.max_candidates = max;
        self
    }

    /// How long a report by `method` keeps its candidate fresh.
    #[must_use]
    pub fn fresh_for(mut self, method: DiscoveryMethod, window: Duration) -> Self {
        self.fresh_for.retain(|(m, _)| *m != method);
        self.fresh_for.push((method, window));
        self
    }

    /// How long a confirmed endpoint is trusted against equal-rank challengers. Each
    /// candidate's trust is its own: confirming one does not end another's.
    #[must_use]
    pub fn trust_for(mut self, trust_for: Duration) -> Self {
        self.trust_for = trust_for;
        self
    }

    /// Whether a fresh candidate of a higher rank replaces a trusted endpoint (default: no,
    /// the evidence wins until it expires or fails).
    #[must_use]
    pub fn rank_overrides_trust(mut self, overrides: bool) -> Self {
        self.rank_overrides_trust = overrides;
        self
    }

    /// How long a report by `method` keeps its candidate fresh, in a store whose
    /// [`dead_after`](crate::PeerStoreBuilder::dead_after) is given; `None` for the cache, whose
    /// reports vouch until any other candidate is fresh.
    #[must_use]
    pub fn fresh_window(&self, method: &DiscoveryMethod, dead_after: Duration) -> Option<Duration> {
        self.window(method, dead_after, |window| window)
    }

    /// How long a confirmed endpoint is trusted.
    #[must_use]
    pub fn trust_window(&self) -> Duration {
        self.trust_for
    }

    /// How long a report by `method` vouches, in the unit of `dead_after`, or `None` for the
    /// cache's "until another candidate is fresh".
    fn window<T>(
        &self,
        method: &DiscoveryMethod,
        dead_after: T,
        unit: impl Fn(Duration) -> T,
    ) -> Option<T> {
        if let Some((_, window)) = self.fresh_for.iter().find(|(m, _)| m == method) {
            return Some(unit(*window));
        }
        (*method != DiscoveryMethod::Cache).then_some(dead_after)
    }
}

impl Default for ResilientPolicy {
    fn default() -> Self {
        ResilientPolicy::new()
    }
}

/// What shows that an endpoint works, for [`PeerStore::confirm`](crate::PeerStore::confirm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Evidence {
    /// A WireGuard handshake completed with the peer at that endpoint (`wg show endpoints`
    /// and the latest handshake).
    Handshake,
    /// A probe sent there was answered, after `rtt`.
    Probe {
        /// The round trip.
        rtt: Duration,
    },
}

/// One endpoint a peer may be reached at, as the resilient policy keeps it
/// ([`PeerStore::candidates`](crate::PeerStore::candidates)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Candidate {
    /// The endpoint.
    pub endpoint: SocketAddr,
    /// Each method that reported it, with when it last did, in the order first reported.
    pub reports: Vec<(DiscoveryMethod, SystemTime)>,
    /// When evidence last showed it works.
    pub confirmed: Option<SystemTime>,
    /// The round trip of the last probe answered there.
    pub rtt: Option<Duration>,
    /// How many failures were noted since it was last confirmed or reported.
    pub failures: u32,
    /// Whether a report (or trust) still vouches for it now.
    pub fresh: bool,
    /// Whether it is trusted now: confirmed within `trust_for`, not failed since.
    pub trusted: bool,
    /// While a report within its method's window or trust vouches for it: the first moment
    /// none of them does any more, if nothing new is heard of the peer (when to probe it
    /// again, say). `None` when nothing vouches for it, or only a cached report, which has no
    /// window: it vouches until another candidate is fresh. Every candidate's `fresh` (and
    /// whether the cache still vouches) stays as it is until the earliest of the peer's
    /// candidates' `fresh_until` or the next thing heard of the peer.
    pub fresh_until: Option<SystemTime>,
}
