//! The resilient endpoint policy (opt-in): candidates that age, trust that evidence earns and
//! failure ends. Pure functions of their arguments, like the rest of the policy: the store
//! keeps a peer's [`Candidates`] and asks [`Candidates::choose`] which endpoint to use.
//!
//! The seed policy keeps one endpoint per peer that never ages, so a LAN endpoint stays
//! chosen an hour after the laptop left the LAN, and two equal reporters make it flap. Here a
//! peer has up to `max_candidates` endpoints, each with the methods that reported it and when;
//! the chosen one is the seed's order (rank, then IPv6, then newest) over the *fresh*
//! candidates only, and a confirmed endpoint (a handshake seen, a probe answered) is trusted
//! for a while against equal-rank challengers, until it fails.
//!
//! Trust is each candidate's own: confirming one endpoint trusts it for `trust_for` and
//! leaves the trust of the others as it was; a failure ends that endpoint's trust only. When
//! several candidates are trusted at once, the chosen one is the seed's order among them: the
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
use crate::clock::{Nanos, nanos_of};

/// How a peer's endpoint is chosen: [`PeerStoreBuilder::endpoint_policy`](crate::PeerStoreBuilder::endpoint_policy).
///
/// ```
/// use std::time::Duration;
/// use peerstore::{DiscoveryMethod, EndpointPolicy, PeerStore};
///
/// let store = PeerStore::builder()
///     .endpoint_policy(
///         EndpointPolicy::resilient()
///             .max_candidates(6)
///             .fresh_for(DiscoveryMethod::Lan, Duration::from_secs(20))
///             .trust_for(Duration::from_secs(120)),
///     )
///     .build()?;
/// # Ok::<(), peerstore::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPolicy {
    pub(crate) resilient: Option<Resilient>,
}

/// The numbers of the resilient policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resilient {
    pub max_candidates: usize,
    /// How long a report by a method keeps its candidate fresh; a method not listed keeps it
    /// fresh for the store's `dead_after`, and the cache until any other candidate is fresh.
    pub fresh_for: Vec<(DiscoveryMethod, Duration)>,
    pub trust_for: Duration,
    pub rank_overrides_trust: bool,
}

impl Resilient {
    /// The numbers [`EndpointPolicy::resilient`] documents.
    fn standard() -> Self {
        Resilient {
            max_candidates: 4,
            fresh_for: vec![
                (DiscoveryMethod::Lan, Duration::from_secs(30)),
                (DiscoveryMethod::DhtRendezvous, Duration::from_secs(120)),
            ],
            trust_for: Duration::from_secs(180),
            rank_overrides_trust: false,
        }
    }
}

impl Resilient {
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

/// The most candidates a peer may keep: a bound on what one record can cost.
pub const MAX_CANDIDATES: usize = 16;

impl EndpointPolicy {
    /// The seed's policy, the default: one endpoint per peer, replaced by a higher rank, never
    /// aged (see [`should_update_endpoint`](crate::should_update_endpoint)).
    #[must_use]
    pub fn seed() -> Self {
        EndpointPolicy { resilient: None }
    }

    /// Candidates that age and trust that evidence earns: up to 4 candidates a peer; a
    /// report keeps its candidate fresh for 30 s from the LAN (six of its 5 s multicast
    /// rounds), 2 minutes from a rendezvous, the store's `dead_after` from the DHT, gossip and
    /// the second-hand methods, and from the cache until any other candidate is fresh; a
    /// confirmed endpoint is trusted for 180 s (WireGuard's `REJECT_AFTER_TIME`); rank does
    /// not override trust.
    #[must_use]
    pub fn resilient() -> Self {
        EndpointPolicy {
            resilient: Some(Resilient::standard()),
        }
    }

    /// Whether this is the seed's policy.
    #[must_use]
    pub fn is_seed(&self) -> bool {
        self.resilient.is_none()
    }

    fn tune(self, change: impl FnOnce(&mut Resilient)) -> Self {
        let mut resilient = self.resilient.unwrap_or_else(Resilient::standard);
        change(&mut resilient);
        EndpointPolicy {
            resilient: Some(resilient),
        }
    }

    /// How many endpoints a peer keeps as candidates (1 to [`MAX_CANDIDATES`]; the builder
    /// refuses others). A new one past it replaces the candidate reported least recently
    /// that is neither chosen nor trusted now (its trust not yet run out); if every candidate
    /// is one of those, the new one is not kept. Tuning the seed policy makes it the resilient
    /// one.
    #[must_use]
    pub fn max_candidates(self, max: usize) -> Self {
        self.tune(|r| r.max_candidates = max)
    }

    /// How long a report by `method` keeps its candidate fresh.
    #[must_use]
    pub fn fresh_for(self, method: DiscoveryMethod, window: Duration) -> Self {
        self.tune(|r| {
            r.fresh_for.retain(|(m, _)| *m != method);
            r.fresh_for.push((method, window));
        })
    }

    /// How long a confirmed endpoint is trusted against equal-rank challengers. Each
    /// candidate's trust is its own: confirming one does not end another's.
    #[must_use]
    pub fn trust_for(self, trust_for: Duration) -> Self {
        self.tune(|r| r.trust_for = trust_for)
    }

    /// Whether a fresh candidate of a higher rank replaces a trusted endpoint (default: no,
    /// the evidence wins until it expires or fails).
    #[must_use]
    pub fn rank_overrides_trust(self, overrides: bool) -> Self {
        self.tune(|r| r.rank_overrides_trust = overrides)
    }
}

impl EndpointPolicy {
    /// How long a report by `method` keeps its candidate fresh, in a store whose
    /// [`dead_after`](crate::PeerStoreBuilder::dead_after) is given. `None` for the cache, whose
    /// reports vouch until any other candidate is fresh, and for every method under the seed
    /// policy, whose endpoint never ages.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerstore::{DiscoveryMethod, EndpointPolicy};
    ///
    /// let policy = EndpointPolicy::resilient();
    /// let dead_after = Duration::from_secs(300);
    /// assert_eq!(policy.fresh_window(&DiscoveryMethod::Lan, dead_after), Some(Duration::from_secs(30)));
    /// assert_eq!(policy.fresh_window(&DiscoveryMethod::Gossip, dead_after), Some(dead_after));
    /// assert_eq!(policy.fresh_window(&DiscoveryMethod::Cache, dead_after), None);
    /// ```
    #[must_use]
    pub fn fresh_window(&self, method: &DiscoveryMethod, dead_after: Duration) -> Option<Duration> {
        self.resilient
            .as_ref()?
            .window(method, dead_after, |window| window)
    }

    /// How long a confirmed endpoint is trusted; `None` under the seed policy, which takes no
    /// evidence.
    #[must_use]
    pub fn trust_window(&self) -> Option<Duration> {
        self.resilient.as_ref().map(|r| r.trust_for)
    }
}

impl Default for EndpointPolicy {
    fn default() -> Self {
        EndpointPolicy::seed()
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
}

/// One report of a candidate: by which method, when (on the store's timeline and the wall).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    method: DiscoveryMethod,
    at: Nanos,
    wall: SystemTime,
    /// Made before the candidate's last failure: it no longer vouches (until a confirmation).
    void: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CandidateState {
    endpoint: SocketAddr,
    reports: Vec<Report>,
    confirmed: Option<(Nanos, SystemTime)>,
    rtt: Option<Duration>,
    failures: u32,
    /// When it last failed, if it was not confirmed since: a report that carries a time from
    /// before then is older news than the failure and does not vouch.
    failed_at: Option<Nanos>,
    /// Until when its last confirmation trusts it (`None`: never confirmed, or failed since).
    trusted_until: Option<Nanos>,
}

/// A peer's candidates, each with its own trust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Candidates {
    list: Vec<CandidateState>,
}

/// The endpoint the policy chose, the method it counts as set by, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    pub endpoint: SocketAddr,
    pub method: DiscoveryMethod,
    /// No candidate is fresh: this is the last chosen one, kept rather than dropped.
    pub stale: bool,
    /// Why it is chosen over the endpoint in use.
    pub rule: crate::EndpointRule,
}

impl Choice {
    /// The peer's endpoint and the method that set it, as a choice.
    pub(crate) fn current(peer: &crate::Peer) -> Option<Self> {
        let (endpoint, method) = peer.current_endpoint()?;
        Some(Choice {
            endpoint,
            method: method.clone(),
            stale: false,
            rule: crate::EndpointRule::Unchanged,
        })
    }

    /// Whether making this the peer's endpoint changes it: another endpoint, or the same one
    /// by a method of a higher rank. A lower rank leaves the method it counts as set by: its
    /// best report ageing out while a lesser one stays fresh is no news, and would otherwise
    /// make an `Updated` event each time.
    pub(crate) fn changes(&self, peer: &crate::Peer) -> bool {
        match peer.current_endpoint() {
            Some((endpoint, method)) if endpoint == self.endpoint => {
                self.method.rank() > method.rank()
            }
            _ => true,
        }
    }

    /// Makes this the peer's endpoint.
    pub(crate) fn apply(&self, peer: &mut crate::Peer) {
        peer.endpoint = Some(self.endpoint);
        peer.endpoint_method = Some(self.method.clone());
    }
}

/// The store's view that freshness is judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'p> {
    pub policy: &'p Resilient,
    pub now: Nanos,
    pub dead_after: Nanos,
}

impl Context<'_> {
    /// How long a report by `method` vouches, or `None` for the cache's "until another
    /// candidate is fresh".
    fn window(&self, method: &DiscoveryMethod) -> Option<Nanos> {
        self.policy.window(method, self.dead_after, nanos_of)
    }
}

impl CandidateState {
    /// The reports that still vouch for it now: within their method's window, made after its
    /// last failure and not dated before it. `cache_counts` says whether cache reports still do.
    fn fresh_reports<'a>(
        &'a self,
        cx: &'a Context<'_>,
        cache_counts: bool,
    ) -> impl Iterator<Item = &'a Report> + 'a {
        self.reports.iter().filter(move |r| {
            let after_failure = !r.void && self.failed_at.is_none_or(|failed| r.at >= failed);
            let within = match cx.window(&r.method) {
                Some(window) => cx.now.saturating_sub(r.at) <= window,
                None => cache_counts,
            };
            after_failure && within
        })
    }

    /// Whether its trust has not run out at `now`.
    fn trusted_at(&self, now: Nanos) -> bool {
        self.trusted_until.is_some_and(|until| now < until)
    }

    /// The report it counts as set by when its trust vouches for it: the best method that ever
    /// reported it (the newest report of that rank).
    fn best_ever(&self) -> Option<&Report> {
        self.reports.iter().max_by_key(|r| (r.method.rank(), r.at))
    }

    fn to_public(&self, cx: &Context<'_>, cache_counts: bool) -> Candidate {
        let trusted = self.trusted_at(cx.now);
        Candidate {
            endpoint: self.endpoint,
            reports: self
                .reports
                .iter()
                .map(|r| (r.method.clone(), r.wall))
                .collect(),
            confirmed: self.confirmed.map(|(_, wall)| wall),
            rtt: self.rtt,
            failures: self.failures,
            fresh: trusted || self.fresh_reports(cx, cache_counts).next().is_some(),
            trusted,
        }
    }
}

impl Candidates {
    /// A peer's first candidate.
    pub(crate) fn first(
        endpoint: SocketAddr,
        method: DiscoveryMethod,
        at: Nanos,
        wall: SystemTime,
    ) -> Self {
        Candidates {
            list: vec![CandidateState::new(endpoint, method, at, wall)],
        }
    }

    /// Records that `method` reported `endpoint`, dated `at` (a second-hand method's carried
    /// time may be older than `cx.now`); the report resets the candidate's failures. A new
    /// endpoint past `max_candidates` replaces the candidate reported least recently that is
    /// not `keep` (the chosen one) and not trusted at `cx.now`; if there is none, it is not
    /// kept.
    pub(crate) fn report(
        &mut self,
        endpoint: SocketAddr,
        method: DiscoveryMethod,
        at: Nanos,
        wall: SystemTime,
        cx: &Context<'_>,
        keep: Option<SocketAddr>,
    ) {
        if let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) {
            let report = Report {
                method,
                at,
                wall,
                void: false,
            };
            match c.reports.iter_mut().find(|r| r.method == report.method) {
                Some(old) => *old = report,
                None => c.reports.push(report),
            }
            c.failures = 0;
            return;
        }
        if self.list.len() >= cx.policy.max_candidates {
            let evict = self
                .list
                .iter()
                .enumerate()
                .filter(|(_, c)| Some(c.endpoint) != keep && !c.trusted_at(cx.now))
                .min_by_key(|(_, c)| c.reports.iter().map(|r| r.at).max())
                .map(|(i, _)| i);
            match evict {
                Some(i) => {
                    self.list.remove(i);
                }
                // Every candidate is chosen or trusted: the newcomer waits for a slot.
                None => return,
            }
        }
        self.list
            .push(CandidateState::new(endpoint, method, at, wall));
    }

    /// Evidence that `endpoint` works, at `at`: it is confirmed and trusted for `trust_for`.
    /// `false` if it is not a candidate.
    pub(crate) fn confirm(
        &mut self,
        endpoint: SocketAddr,
        evidence: crate::Evidence,
        at: Nanos,
        wall: SystemTime,
        trust_for: Duration,
    ) -> bool {
        let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) else {
            return false;
        };
        c.confirmed = Some((at, wall));
        c.failures = 0;
        // Evidence that it works: what was reported of it before it failed vouches again.
        c.failed_at = None;
        for r in &mut c.reports {
            r.void = false;
        }
        if let crate::Evidence::Probe { rtt } = evidence {
            c.rtt = Some(rtt);
        }
        c.trusted_until = Some(at.saturating_add(nanos_of(trust_for)));
        true
    }

    /// `endpoint` stopped answering at `at`: its trust ends at once (the other candidates'
    /// stays) and the reports made so far no longer vouch for it; one made later does, unless
    /// it carries a time from before `at`. `false` if it is not a candidate.
    pub(crate) fn fail(&mut self, endpoint: SocketAddr, at: Nanos) -> bool {
        let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) else {
            return false;
        };
        c.failures = c.failures.saturating_add(1);
        c.failed_at = Some(at);
        for r in &mut c.reports {
            r.void = true;
        }
        c.trusted_until = None;
        true
    }

    /// Whether cache reports still vouch: until any candidate has a fresh report by another
    /// method (or trust).
    fn cache_counts(&self, cx: &Context<'_>) -> bool {
        let trusted = self.list.iter().any(|c| c.trusted_at(cx.now));
        !trusted
            && !self.list.iter().any(|c| {
                c.fresh_reports(cx, false)
                    .any(|r| r.method != DiscoveryMethod::Cache)
            })
    }

    /// The endpoint to use now, given the one in use (`current`): the seed's order (rank, then
    /// IPv6, then newest) over the fresh candidates, a trusted one kept against any but a
    /// higher rank (and that only if the policy lets rank override trust), and the current one
    /// kept, marked stale, when no candidate is fresh.
    ///
    /// When several candidates are trusted, the one kept is the first in the seed's order
    /// among them: the rank of the best method that ever reported it, then IPv6, then the most
    /// recent confirmation (then the later candidate in the list), and it counts as set by
    /// that best method. An untrusted candidate displaces it only by outranking it (the rank
    /// of its best fresh report above that method's) while the policy lets rank override
    /// trust.
    pub(crate) fn choose(&self, cx: &Context<'_>, current: Option<&Choice>) -> Option<Choice> {
        let cache_counts = self.cache_counts(cx);
        // Each fresh candidate with its best fresh report: (rank, IPv6, newest).
        let scored = self.list.iter().filter_map(|c| {
            let best = c
                .fresh_reports(cx, cache_counts)
                .max_by_key(|r| (r.method.rank(), r.at))?;
            let newest = c.fresh_reports(cx, cache_counts).map(|r| r.at).max()?;
            Some((c, best, newest))
        });
        let key = |(c, best, newest): &(&CandidateState, &Report, Nanos)| {
            (best.method.rank(), is_ipv6(c.endpoint), *newest)
        };
        let best = scored.max_by_key(key);
        // Trust vouches on its own; a trusted candidate counts as set by the best method that
        // ever reported it. Among several: (that rank, IPv6, most recent confirmation).
        let trusted_choice = self
            .list
            .iter()
            .filter(|c| c.trusted_at(cx.now))
            .filter_map(|c| Some((c, c.best_ever()?)))
            .max_by_key(|(c, best)| {
                let confirmed = c.confirmed.map(|(at, _)| at);
                (best.method.rank(), is_ipv6(c.endpoint), confirmed)
            })
            .map(|(c, best)| Choice {
                endpoint: c.endpoint,
                method: best.method.clone(),
                stale: false,
                rule: crate::EndpointRule::Trusted,
            });
        // Why the best fresh candidate replaces the one in use, if it does.
        let why = |c: &CandidateState, report: &Report| {
            let Some(current) = current else {
                return crate::EndpointRule::FirstEndpoint;
            };
            if current.endpoint == c.endpoint {
                return crate::EndpointRule::Unchanged;
            }
            match self.list.iter().find(|s| s.endpoint == current.endpoint) {
                None => crate::EndpointRule::CandidateExpired,
                Some(s)
                    if s.failed_at.is_some()
                        && s.fresh_reports(cx, cache_counts).next().is_none() =>
                {
                    crate::EndpointRule::Failed
                }
                Some(s) if s.fresh_reports(cx, cache_counts).next().is_none() => {
                    crate::EndpointRule::CandidateExpired
                }
                Some(_) => {
                    crate::decide_endpoint(
                        Some((current.endpoint, &current.method)),
                        c.endpoint,
                        &report.method,
                    )
                    .rule
                }
            }
        };
        let fresh = |c: &CandidateState, report: &Report| Choice {
            endpoint: c.endpoint,
            method: report.method.clone(),
            stale: false,
            rule: why(c, report),
        };
        match (best, trusted_choice) {
            (Some((c, report, _)), Some(trusted)) => {
                let outranks = report.method.rank() > trusted.method.rank();
                if c.endpoint != trusted.endpoint && outranks && cx.policy.rank_overrides_trust {
                    Some(Choice {
                        rule: crate::EndpointRule::HigherRank,
                        ..fresh(c, report)
                    })
                } else {
                    Some(trusted)
                }
            }
            (None, Some(trusted)) => Some(trusted),
            (Some((c, report, _)), None) => Some(fresh(c, report)),
            (None, None) => current.map(|c| Choice {
                stale: true,
                ..c.clone()
            }),
        }
    }

    /// The candidates as callers see them.
    pub(crate) fn to_public(&self, cx: &Context<'_>) -> Vec<Candidate> {
        let cache_counts = self.cache_counts(cx);
        self.list
            .iter()
            .map(|c| c.to_public(cx, cache_counts))
            .collect()
    }
}

impl CandidateState {
    /// A new candidate, with its first report.
    fn new(endpoint: SocketAddr, method: DiscoveryMethod, at: Nanos, wall: SystemTime) -> Self {
        CandidateState {
            endpoint,
            reports: vec![Report {
                method,
                at,
                wall,
                void: false,
            }],
            confirmed: None,
            rtt: None,
            failures: 0,
            failed_at: None,
            trusted_until: None,
        }
    }
}

fn is_ipv6(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_ipv6()
}
