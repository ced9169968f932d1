//! The merge policy: which endpoint wins, how an announcement folds into a record, when a peer
//! counts as heard from, and when it is dead.
//!
//! Everything here is a pure function of its arguments: no locks, no clock reading, no store.
//! The store asks [`merge`] (or [`first_heard`] and [`new_peer`] for a new peer) what to do
//! and applies the answer in one step, so a record is never left half-merged; changing how a
//! field or `last_seen` merges is a change to this file alone. The endpoint is chosen here
//! under every policy, with the rule that decided ([`EndpointChoice`]): the store applies the
//! choice as it is and never asks twice.

pub(crate) mod resilient;

use std::borrow::Borrow;
use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::clock::{Nanos, nanos_of};
use crate::peer::is_ipv6;
use crate::{DiscoveryMethod, MethodSet, Peer, PeerInfo, UpdateOutcome};
use resilient::{Candidates, Context};

/// Why an endpoint was taken or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointRule {
    /// The peer had no endpoint: any endpoint is better than none.
    FirstEndpoint,
    /// The candidate is the current endpoint, announced again by the method that set it:
    /// taken, and nothing changes.
    Unchanged,
    /// The new method outranks the one that set the current endpoint.
    HigherRank,
    /// The new method ranks below the one that set the current endpoint.
    LowerRank,
    /// The current endpoint came from the LAN and only a newer LAN discovery replaces it.
    LanSticky,
    /// Equal rank: an IPv6 endpoint replaces an IPv4 one, and IPv4 never replaces IPv6.
    Ipv6Preferred,
    /// Equal rank, same address family: the newer endpoint wins.
    Newer,
    /// The resilient policy: the endpoint in use went stale (no report within its method's
    /// window), and the best fresh candidate took over.
    CandidateExpired,
    /// The resilient policy: evidence confirmed this endpoint, and it is trusted.
    Trusted,
    /// The resilient policy: the endpoint in use failed, and the best fresh candidate took
    /// over at once.
    Failed,
}

impl EndpointRule {
    /// A short name for tables and logs, such as `"higher rank"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            EndpointRule::FirstEndpoint => "first endpoint",
            EndpointRule::Unchanged => "same endpoint, same method",
            EndpointRule::HigherRank => "higher rank",
            EndpointRule::LowerRank => "lower rank",
            EndpointRule::LanSticky => "LAN sticky",
            EndpointRule::Ipv6Preferred => "IPv6 preferred",
            EndpointRule::Newer => "newer at equal rank",
            EndpointRule::CandidateExpired => "candidate expired",
            EndpointRule::Trusted => "trusted",
            EndpointRule::Failed => "failed",
        }
    }
}

impl fmt::Display for EndpointRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`decide_endpoint`]: whether the candidate endpoint is taken, and the rule
/// that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointDecision {
    /// Whether the candidate replaces the current endpoint.
    pub accepted: bool,
    /// The rule that decided.
    pub rule: EndpointRule,
}

impl EndpointDecision {
    /// Whether taking the candidate changes the stored endpoint or the method that set it.
    #[must_use]
    pub fn changes(&self) -> bool {
        self.accepted && self.rule != EndpointRule::Unchanged
    }
}

/// Decides whether `new`, learned by `method`, replaces the `current` endpoint (with the method
/// that set it), and says which rule decided. See [`should_update_endpoint`] for the rules.
///
/// `current` is what [`Peer::current_endpoint`] returns, or an owned
/// `Option<(SocketAddr, DiscoveryMethod)>` of the caller's; a bare `None` needs its type
/// (`None::<(SocketAddr, &DiscoveryMethod)>`).
///
/// ```
/// use peerstore::{decide_endpoint, DiscoveryMethod as M, EndpointRule};
///
/// let current = Some(("198.51.100.7:51820".parse()?, M::Dht));
/// let lan = decide_endpoint(current.clone(), "192.0.2.7:51820".parse()?, &M::Lan);
/// assert!(lan.accepted && lan.changes());
/// assert_eq!(lan.rule, EndpointRule::HigherRank);
/// let again = decide_endpoint(current, "198.51.100.7:51820".parse()?, &M::Dht);
/// assert_eq!(again.rule, EndpointRule::Unchanged);
/// assert!(again.accepted && !again.changes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// Inlined always: every update asks it, and with each new caller (the resilient policy, the
// store's history) the compiler stopped inlining a mere `#[inline]` into the merge again
// (callgrind: some 50 instructions an update, 4% of the default update).
#[inline(always)]
pub fn decide_endpoint<M: Borrow<DiscoveryMethod>>(
    current: Option<(SocketAddr, M)>,
    new: SocketAddr,
    method: &DiscoveryMethod,
) -> EndpointDecision {
    let decide = |accepted, rule| EndpointDecision { accepted, rule };
    let Some((current, current_method)) = current else {
        return decide(true, EndpointRule::FirstEndpoint);
    };
    let current_method = current_method.borrow();
    if current == new && current_method == method {
        return decide(true, EndpointRule::Unchanged);
    }
    let (old_rank, new_rank) = (current_method.rank(), method.rank());
    if new_rank > old_rank {
        return decide(true, EndpointRule::HigherRank);
    }
    if new_rank < old_rank {
        // Nothing outranks the LAN, so a LAN endpoint is only ever replaced by the LAN.
        let rule = if *current_method == DiscoveryMethod::Lan {
            EndpointRule::LanSticky
        } else {
            EndpointRule::LowerRank
        };
        return decide(false, rule);
    }
    match (is_ipv6(current), is_ipv6(new)) {
        (true, false) => decide(false, EndpointRule::Ipv6Preferred),
        (false, true) => decide(true, EndpointRule::Ipv6Preferred),
        _ => decide(true, EndpointRule::Newer),
    }
}

/// Whether an endpoint `new` learned by `method` replaces the `current` one.
///
/// - No current endpoint: any endpoint is taken.
/// - The current endpoint announced again by the method that set it is taken and changes
///   nothing ([`EndpointRule::Unchanged`]).
/// - A higher [rank](DiscoveryMethod::rank) wins; a lower one loses. Nothing outranks the LAN,
///   so a LAN endpoint is sticky: only a newer LAN discovery replaces it.
/// - At equal rank the newer endpoint wins, except that IPv4 never replaces IPv6 (and IPv6
///   does replace IPv4). An IPv4-mapped IPv6 address counts as IPv4.
///
/// ```
/// use peerstore::{should_update_endpoint, DiscoveryMethod as M};
///
/// let v4 = "198.51.100.7:51820".parse().unwrap();
/// let v6 = "[2001:db8::7]:51820".parse().unwrap();
/// assert!(should_update_endpoint(None::<(_, M)>, v4, &M::Cache));
/// assert!(should_update_endpoint(Some((v4, &M::Dht)), v6, &M::Lan));
/// assert!(!should_update_endpoint(Some((v6, &M::Lan)), v4, &M::DhtRendezvous));
/// assert!(!should_update_endpoint(Some((v6, &M::Dht)), v4, &M::Dht));
/// assert!(should_update_endpoint(Some((v4, &M::Dht)), v6, &M::Dht));
/// ```
pub fn should_update_endpoint<M: Borrow<DiscoveryMethod>>(
    current: Option<(SocketAddr, M)>,
    new: SocketAddr,
    method: &DiscoveryMethod,
) -> bool {
    decide_endpoint(current, new, method).accepted
}

/// The endpoint a policy chose for a peer, the method it counts as set by, and the rule that
/// decided: what [`merge`] plans and the store applies and writes to a peer's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointChoice {
    pub endpoint: SocketAddr,
    /// The method it counts as set by.
    pub method: DiscoveryMethod,
    pub rule: EndpointRule,
}

impl EndpointChoice {
    /// Whether making `endpoint`, set by `method`, the endpoint of a peer whose endpoint is
    /// `current` changes it: another endpoint, or the same one by a method of a higher rank.
    /// A lower rank leaves the method it counts as set by: its best report ageing out while a
    /// lesser one stays fresh is no news, and would otherwise make an `Updated` event each
    /// time.
    pub(crate) fn changes(
        endpoint: SocketAddr,
        method: &DiscoveryMethod,
        current: Option<(SocketAddr, &DiscoveryMethod)>,
    ) -> bool {
        match current {
            Some((current, by)) if current == endpoint => method.rank() > by.rank(),
            _ => true,
        }
    }

    /// Makes this `peer`'s endpoint.
    pub(crate) fn apply(self, peer: &mut Peer) {
        peer.endpoint = Some(self.endpoint);
        peer.endpoint_method = Some(self.method);
    }
}

/// What a plan does with a known peer's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointPlan {
    /// The announcement's endpoint, by the announcement's method: the ranked rules took it,
    /// by this rule.
    Announced(EndpointRule),
    /// A candidate the resilient policy chose. Boxed, so that the ranked path's plan, which
    /// every update makes, stays small.
    Chosen(Box<EndpointChoice>),
}

impl EndpointPlan {
    /// The choice this plan makes for an announcement of `announced` by `method`.
    pub(crate) fn choice(
        &self,
        announced: Option<SocketAddr>,
        method: &DiscoveryMethod,
    ) -> Option<EndpointChoice> {
        match self {
            EndpointPlan::Announced(rule) => Some(EndpointChoice {
                endpoint: announced?,
                method: method.clone(),
                rule: *rule,
            }),
            EndpointPlan::Chosen(choice) => Some((**choice).clone()),
        }
    }

    /// The endpoint it moves to.
    fn endpoint(&self, announced: Option<SocketAddr>) -> Option<SocketAddr> {
        match self {
            EndpointPlan::Announced(_) => announced,
            EndpointPlan::Chosen(choice) => Some(choice.endpoint),
        }
    }
}

/// Which policy chooses the endpoint of a known peer: [`merge`] is made once for each, so the
/// ranked path carries nothing of the resilient one.
pub(crate) trait Chooser {
    /// What to do with `peer`'s endpoint on `info`, heard by `method`, if it changes.
    fn choose(
        &self,
        peer: &Peer,
        info: &PeerInfo,
        method: &DiscoveryMethod,
    ) -> Option<EndpointPlan>;
}

/// The ranked rules ([`decide_endpoint`]): the announcement's endpoint against the current
/// one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked;

impl Chooser for Ranked {
    #[inline(always)]
    fn choose(
        &self,
        peer: &Peer,
        info: &PeerInfo,
        method: &DiscoveryMethod,
    ) -> Option<EndpointPlan> {
        let new = info.endpoint?;
        let decision = decide_endpoint(peer.current_endpoint(), new, method);
        decision
            .changes()
            .then_some(EndpointPlan::Announced(decision.rule))
    }
}

/// The resilient policy: the best of the peer's candidates, already told of the announcement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resilient<'a>(pub &'a Candidates, pub Context<'a>);

impl Chooser for Resilient<'_> {
    fn choose(&self, peer: &Peer, _: &PeerInfo, _: &DiscoveryMethod) -> Option<EndpointPlan> {
        let Resilient(candidates, cx) = self;
        let choice = candidates.choose(cx, peer.current_endpoint())?;
        Some(EndpointPlan::Chosen(Box::new(choice)))
    }
}

/// When a peer was last heard from: the instant on the store's monotonic timeline that
/// expiry counts from, and the wall time that [`Peer::last_seen`] shows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sighting {
    pub at: Nanos,
    pub wall: SystemTime,
}

impl Sighting {
    /// Heard now.
    fn now(now: Nanos, wall: SystemTime) -> Self {
        Sighting { at: now, wall }
    }

    /// Heard at a carried wall-clock time, never later than now: a skewed or hostile clock
    /// cannot keep a peer alive. Subtracting the age on the timeline cannot fail the way
    /// `Instant - age` does on a machine up for less than `age`.
    fn carried(last_seen: SystemTime, now: Nanos, wall: SystemTime) -> Self {
        match wall.duration_since(last_seen) {
            Ok(age) => Sighting {
                at: now.saturating_sub(nanos_of(age)),
                wall: last_seen,
            },
            Err(_) => Sighting::now(now, wall),
        }
    }
}

/// Whether a peer heard at `heard_at` has been silent for longer than `limit` at `now`.
/// Compared as integers: `get_active` asks this of every peer.
pub(crate) fn silent_longer_than(heard_at: Nanos, now: Nanos, limit: Nanos) -> bool {
    now.saturating_sub(heard_at) > limit
}

/// Whether deciding `last_seen` for an announcement by `method` that carries `carried` needs
/// the wall clock: a method that refreshes stamps the wall time now, and a carried time is aged
/// against it. When it does, the store reads both clocks at once before it locks the record;
/// when it does not, the wall clock is read only for a new peer ([`first_heard`]), never for
/// a known one (see [`heard`]).
pub(crate) fn needs_wall_clock(method: &DiscoveryMethod, carried: Option<SystemTime>) -> bool {
    method.refreshes_last_seen() || carried.is_some()
}

/// When a new peer's first announcement by `method` says it was heard: now for a method that
/// [refreshes](DiscoveryMethod::refreshes_last_seen) (a first-hand report means the peer was
/// heard now, new or not), else at the time it carries, or now if it carries none.
pub(crate) fn first_heard(
    method: &DiscoveryMethod,
    carried: Option<SystemTime>,
    now: Nanos,
    wall: SystemTime,
) -> Sighting {
    match carried {
        Some(t) if !method.refreshes_last_seen() => Sighting::carried(t, now, wall),
        _ => Sighting::now(now, wall),
    }
}

/// When an announcement by `method` that carries `carried` says a known peer was heard, given
/// when the store last heard it; `None` if it says nothing newer.
///
/// - A method that [refreshes](DiscoveryMethod::refreshes_last_seen) means the peer was heard
///   now (`None` if that is exactly the stored sighting, as for two updates in one tick of
///   the clock: the record is then left unwritten).
/// - The cache and the second-hand methods only carry a time, taken when it is later than
///   the stored one.
///
/// `wall` is called only when [`needs_wall_clock`] says the answer needs it.
pub(crate) fn heard(
    stored: Sighting,
    method: &DiscoveryMethod,
    carried: Option<SystemTime>,
    now: Nanos,
    wall: impl FnOnce() -> SystemTime,
) -> Option<Sighting> {
    if method.refreshes_last_seen() {
        Some(Sighting::now(now, wall())).filter(|heard| *heard != stored)
    } else {
        carried
            .map(|t| Sighting::carried(t, now, wall()))
            .filter(|heard| heard.at > stored.at)
    }
}

/// Which fields of a stored peer an announcement changes. Built by [`plan`] from shared
/// references, applied by [`apply`]: deciding never mutates, applying never fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// What the policy does with the endpoint, when it changes the peer's.
    pub endpoint: Option<EndpointPlan>,
    /// The endpoint's address changes (not only the method that set it).
    pub endpoint_moves: bool,
    pub mesh_ip: bool,
    pub mesh_ipv6: bool,
    pub hostname: bool,
    pub routable_networks: bool,
    pub introducer: bool,
    pub nat_type: bool,
    pub discovered_via: bool,
}

impl Plan {
    /// Whether anything a consumer acts on changes.
    pub fn changes(&self) -> bool {
        self.endpoint.is_some() || self.changes_a_field()
    }

    /// Whether a field other than the endpoint changes.
    fn changes_a_field(&self) -> bool {
        self.mesh_ip
            || self.mesh_ipv6
            || self.hostname
            || self.routable_networks
            || self.introducer
            || self.nat_type
            || self.discovered_via
    }
}

/// Works out what `info`, heard by `method`, changes in `peer`, its endpoint chosen by
/// `chooser`.
#[inline(always)]
pub(crate) fn plan(
    peer: &Peer,
    info: &PeerInfo,
    method: &DiscoveryMethod,
    chooser: &impl Chooser,
) -> Plan {
    fn differs<T: PartialEq>(new: &Option<T>, old: &Option<T>) -> bool {
        new.is_some() && new != old
    }
    let endpoint = chooser.choose(peer, info, method);
    let endpoint_moves = endpoint
        .as_ref()
        .is_some_and(|plan| peer.endpoint != plan.endpoint(info.endpoint));
    Plan {
        endpoint,
        endpoint_moves,
        mesh_ip: differs(&info.mesh_ip, &peer.mesh_ip),
        mesh_ipv6: differs(&info.mesh_ipv6, &peer.mesh_ipv6),
        hostname: info.hostname.as_ref().is_some_and(|h| !h.is_empty())
            && info.hostname != peer.hostname,
        routable_networks: !info.routable_networks.is_empty()
            && info.routable_networks != peer.routable_networks,
        introducer: info.introducer != peer.introducer,
        nat_type: differs(&info.nat_type, &peer.nat_type),
        discovered_via: peer.discovered_via.would_insert(method),
    }
}

/// Everything one announcement does to a known peer, decided before anything is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merge {
    /// The fields it changes.
    pub fields: Plan,
    /// When the peer now counts as last heard, if that moves.
    pub heard: Option<Sighting>,
    /// Whether the peer was dead before and is active after.
    pub revived: bool,
    /// Whether anything a consumer acts on changes ([`Plan::changes`], asked once).
    pub changes: bool,
}

impl Merge {
    /// Whether the stored record is written at all.
    pub fn writes(&self) -> bool {
        self.changes || self.heard.is_some()
    }

    /// What the update reports: a change a consumer acts on, or a dead peer come back, is
    /// [`Updated`](UpdateOutcome::Updated); a refresh alone is not.
    pub fn outcome(&self) -> UpdateOutcome {
        if self.changes || self.revived {
            UpdateOutcome::Updated
        } else {
            UpdateOutcome::Unchanged
        }
    }

    /// Whether the endpoint's address changes: what `Stats::endpoint_changes` counts.
    pub fn moves_endpoint(&self) -> bool {
        self.fields.endpoint_moves
    }
}

/// Decides how `info`, heard by `method` at `now`, folds into `peer`, last heard at
/// `heard_at`, its endpoint chosen by `chooser`; a peer silent for longer than `dead_after` is
/// dead. `wall` as for [`heard`].
#[expect(
    clippy::too_many_arguments,
    reason = "one announcement and the record it meets"
)]
#[inline(always)]
pub(crate) fn merge(
    peer: &Peer,
    heard_at: Nanos,
    info: &PeerInfo,
    method: &DiscoveryMethod,
    now: Nanos,
    dead_after: Nanos,
    wall: impl FnOnce() -> SystemTime,
    chooser: &impl Chooser,
) -> Merge {
    let stored = Sighting {
        at: heard_at,
        wall: peer.last_seen,
    };
    let heard = heard(stored, method, info.last_seen, now, wall);
    let was_dead = silent_longer_than(heard_at, now, dead_after);
    let fields = plan(peer, info, method, chooser);
    Merge {
        changes: fields.changes(),
        fields,
        heard,
        revived: was_dead && heard.is_some_and(|h| !silent_longer_than(h.at, now, dead_after)),
    }
}

/// Applies a [`Merge`] made from the same `info` and `method`, swapping the new values in:
/// `info` is left holding the values they replaced, for the caller to free after it released
/// the record's lock.
#[inline(always)]
pub(crate) fn apply(peer: &mut Peer, info: &mut PeerInfo, method: DiscoveryMethod, merge: Merge) {
    let plan = merge.fields;
    if let Some(heard) = merge.heard {
        peer.last_seen = heard.wall;
    }
    match plan.endpoint {
        Some(EndpointPlan::Announced(_)) => {
            peer.endpoint = info.endpoint;
            peer.endpoint_method = Some(method.clone());
        }
        Some(EndpointPlan::Chosen(choice)) => choice.apply(peer),
        None => {}
    }
    if plan.mesh_ip {
        peer.mesh_ip = info.mesh_ip;
    }
    if plan.mesh_ipv6 {
        peer.mesh_ipv6 = info.mesh_ipv6;
    }
    if plan.hostname {
        std::mem::swap(&mut peer.hostname, &mut info.hostname);
    }
    if plan.routable_networks {
        std::mem::swap(&mut peer.routable_networks, &mut info.routable_networks);
    }
    peer.introducer = info.introducer;
    if plan.nat_type {
        peer.nat_type = info.nat_type;
    }
    if plan.discovered_via {
        peer.discovered_via.insert(method);
    }
}

/// The peer a first announcement makes, heard as [`first_heard`] says, moving out of `info`
/// what it keeps.
pub(crate) fn new_peer(info: &mut PeerInfo, method: DiscoveryMethod, heard: Sighting) -> Peer {
    let has_endpoint = info.endpoint.is_some();
    let mut peer = Peer::new(info.public_key, heard.wall);
    peer.endpoint = info.endpoint;
    peer.endpoint_method = has_endpoint.then(|| method.clone());
    peer.mesh_ip = info.mesh_ip;
    peer.mesh_ipv6 = info.mesh_ipv6;
    peer.hostname = info.hostname.take().filter(|h| !h.is_empty());
    peer.routable_networks = std::mem::take(&mut info.routable_networks);
    peer.introducer = info.introducer;
    peer.nat_type = info.nat_type;
    peer.discovered_via = MethodSet::from(method);
    peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiscoveryMethod as M;
    use crate::{Hostname, PublicKey};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_the_rule_that_decided() {
        let v4 = addr("198.51.100.1:51820");
        let v4b = addr("198.51.100.2:51820");
        let v6 = addr("[2001:db8::1]:51820");
        let mapped = addr("[::ffff:198.51.100.3]:51820");
        let cases = [
            (None, v4, M::Cache, true, EndpointRule::FirstEndpoint),
            (
                Some((v4, M::Dht)),
                v4,
                M::Dht,
                true,
                EndpointRule::Unchanged,
            ),
            (
                Some((v4, M::Lan)),
                v4,
                M::Lan,
                true,
                EndpointRule::Unchanged,
            ),
            (
                Some((v4, M::Dht)),
                v4b,
                M::Lan,
                true,
                EndpointRule::HigherRank,
            ),
            (
                Some((v4, M::Dht)),
                v4b,
                M::Gossip,
                false,
                EndpointRule::LowerRank,
            ),
            (
                Some((v4, M::Lan)),
                v6,
                M::DhtRendezvous,
                false,
                EndpointRule::LanSticky,
            ),
            (Some((v4, M::Lan)), v4b, M::Lan, true, EndpointRule::Newer),
            (
                Some((v6, M::Lan)),
                v4,
                M::Lan,
                false,
                EndpointRule::Ipv6Preferred,
            ),
            (
                Some((v4, M::Dht)),
                v6,
                M::Dht,
                true,
                EndpointRule::Ipv6Preferred,
            ),
            (
                Some((v6, M::Dht)),
                mapped,
                M::Dht,
                false,
                EndpointRule::Ipv6Preferred,
            ),
            (
                Some((v4, M::other("a").unwrap())),
                v4b,
                M::other("b").unwrap(),
                true,
                EndpointRule::Newer,
            ),
            (
                Some((v4, M::Cache)),
                v4b,
                M::other("b").unwrap(),
                true,
                EndpointRule::HigherRank,
            ),
        ];
        for (current, new, method, accepted, rule) in cases {
            let got = decide_endpoint(current.clone(), new, &method);
            assert_eq!(
                got,
                EndpointDecision { accepted, rule },
                "{current:?} <- {new} by {method}"
            );
            assert_eq!(should_update_endpoint(current, new, &method), accepted);
        }
    }

    #[test]
    fn plan_and_apply_agree_on_what_changes() {
        let key = PublicKey::from_bytes([1; 32]);
        let mut info = PeerInfo::new(key);
        info.endpoint = Some(addr("198.51.100.1:51820"));
        info.hostname = Some("a".into());
        let heard = Sighting::now(0, SystemTime::UNIX_EPOCH);
        let mut peer = new_peer(&mut info.clone(), M::Dht, heard);
        assert!(!plan(&peer, &info, &M::Dht, &Ranked).changes());

        // Empty values say nothing; a higher method re-announcing the same endpoint takes it over.
        let mut again = PeerInfo::new(key);
        again.endpoint = info.endpoint;
        again.hostname = Some(Hostname::default());
        let p = plan(&peer, &again, &M::Lan, &Ranked);
        assert_eq!(
            p,
            Plan {
                endpoint: Some(EndpointPlan::Announced(EndpointRule::HigherRank)),
                endpoint_moves: false,
                discovered_via: true,
                ..Plan::default()
            }
        );
        let merge = Merge {
            changes: p.changes(),
            fields: p,
            heard: None,
            revived: false,
        };
        apply(&mut peer, &mut again, M::Lan, merge);
        assert_eq!(peer.endpoint_method, Some(M::Lan));
        assert_eq!(peer.hostname.as_deref(), Some("a"));
        assert_eq!(peer.discovered_via, [M::Dht, M::Lan]);
    }

    #[test]
    fn first_record_ignores_an_empty_hostname_and_sets_no_method_without_endpoint() {
        let mut info = PeerInfo::new(PublicKey::from_bytes([2; 32]));
        info.hostname = Some(Hostname::default());
        let peer = new_peer(
            &mut info,
            M::Gossip,
            Sighting::now(0, SystemTime::UNIX_EPOCH),
        );
        assert_eq!(peer.hostname, None);
        assert_eq!(peer.endpoint_method, None);
        assert_eq!(peer.discovered_via, [M::Gossip]);
    }

    const SEC: Nanos = 1_000_000_000;

    fn wall_at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + secs)
    }

    /// A wall clock the rule must not read.
    fn unread() -> SystemTime {
        panic!("the wall clock was read")
    }

    #[test]
    fn a_new_peer_is_heard_now_first_hand_else_when_its_announcement_says() {
        let now = 100 * SEC;
        let heard_now = Sighting::now(now, wall_at(100));
        for method in DiscoveryMethod::BUILT_IN {
            assert_eq!(first_heard(method, None, now, wall_at(100)), heard_now);
            let carried = first_heard(method, Some(wall_at(40)), now, wall_at(100));
            if method.refreshes_last_seen() {
                assert_eq!(carried, heard_now, "{method}: first-hand means now");
                continue;
            }
            assert_eq!(
                (carried.at, carried.wall),
                (40 * SEC, wall_at(40)),
                "{method}"
            );
            let future = first_heard(method, Some(wall_at(900)), now, wall_at(100));
            assert_eq!(future, heard_now, "{method}: the future is now");
            let older_than_the_store = first_heard(method, Some(wall_at(0)), SEC, wall_at(100));
            assert_eq!(older_than_the_store.at, -99 * SEC, "below zero, no panic");
        }
    }

    #[test]
    fn first_hand_methods_refresh_and_the_others_only_carry_a_later_time() {
        let stored = Sighting {
            at: 50 * SEC,
            wall: wall_at(50),
        };
        let now = 100 * SEC;
        for method in DiscoveryMethod::BUILT_IN {
            let carried_old = heard(stored, method, Some(wall_at(10)), now, || wall_at(100));
            let carried_new = heard(stored, method, Some(wall_at(70)), now, || wall_at(100));
            if method.refreshes_last_seen() {
                let refreshed = Some(Sighting::now(now, wall_at(100)));
                assert_eq!(carried_old, refreshed, "{method}: heard now");
                assert_eq!(carried_new, refreshed, "{method}: heard now");
                assert_eq!(
                    heard(stored, method, None, 50 * SEC, || wall_at(50)),
                    None,
                    "{method}: the same instant again writes nothing"
                );
                assert!(needs_wall_clock(method, None));
            } else {
                assert_eq!(carried_old, None, "{method}: an older time is not taken");
                let taken = carried_new.expect("a later time is taken");
                assert_eq!((taken.at, taken.wall), (70 * SEC, wall_at(70)));
                assert_eq!(heard(stored, method, None, now, unread), None, "{method}");
                assert!(!needs_wall_clock(method, None));
                assert!(needs_wall_clock(method, Some(wall_at(70))));
            }
        }
    }

    #[test]
    fn a_dead_peer_heard_again_is_revived_and_that_is_an_update() {
        let key = PublicKey::from_bytes([3; 32]);
        let mut info = PeerInfo::new(key);
        info.endpoint = Some(addr("198.51.100.1:51820"));
        let mut peer = new_peer(&mut info.clone(), M::Dht, Sighting::now(0, wall_at(0)));
        // Heard by these before, so that hearing them again changes no field.
        peer.discovered_via.extend([M::GossipTransitive, M::Cache]);
        let dead_after = 300 * SEC;
        // Heard within the dead timeout: a refresh alone is no update.
        let alive = merge(
            &peer,
            0,
            &info,
            &M::Dht,
            299 * SEC,
            dead_after,
            || wall_at(299),
            &Ranked,
        );
        assert!(alive.heard.is_some() && !alive.revived && alive.writes());
        assert_eq!(alive.outcome(), UpdateOutcome::Unchanged);
        // Silent past it, then heard first-hand: revived.
        let back = merge(
            &peer,
            0,
            &info,
            &M::Dht,
            301 * SEC,
            dead_after,
            || wall_at(301),
            &Ranked,
        );
        assert!(back.revived);
        assert_eq!(back.outcome(), UpdateOutcome::Updated);
        // A second-hand mention without a time does not revive, and reads no wall clock.
        let mention = merge(
            &peer,
            0,
            &info,
            &M::GossipTransitive,
            301 * SEC,
            dead_after,
            unread,
            &Ranked,
        );
        assert!(!mention.revived && !mention.writes());
        assert_eq!(mention.outcome(), UpdateOutcome::Unchanged);
        // ... nor does one whose time is itself past the dead timeout.
        let mut stale = info.clone();
        stale.last_seen = Some(wall_at(1));
        let old_news = merge(
            &peer,
            0,
            &stale,
            &M::Cache,
            400 * SEC,
            dead_after,
            || wall_at(400),
            &Ranked,
        );
        assert!(old_news.heard.is_some() && !old_news.revived);
        assert_eq!(old_news.outcome(), UpdateOutcome::Unchanged);
    }

    #[test]
    fn silence_is_measured_in_whole_nanoseconds_and_saturates() {
        assert!(!silent_longer_than(0, 300 * SEC, 300 * SEC));
        assert!(silent_longer_than(0, 300 * SEC + 1, 300 * SEC));
        assert!(silent_longer_than(Nanos::MIN, Nanos::MAX, 300 * SEC));
        assert!(!silent_longer_than(Nanos::MAX, Nanos::MIN, 300 * SEC));
    }
}
