//! A peer's candidates under the resilient policy: their reports, their trust, and the choice
//! among them ([`Candidates::choose`]). The policy's numbers come from its
//! [`ResilientPolicy`](super::ResilientPolicy), through a [`Context`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::super::{EndpointChoice, decide_endpoint};
use super::{Candidate, ResilientPolicy};
use crate::clock::{Nanos, nanos_of};
use crate::method_set::{FIRST_OTHER, built_in_code, built_in_method};
use crate::peer::is_ipv6;
use crate::{DiscoveryMethod, EndpointRule, MAX_OTHER_METHODS, MethodSet};

/// A method as a peer's candidates keep it, in one byte: a built-in method's code as a
/// [`MethodSet`] numbers it, or past those the place of an `Other` name in [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Code(u8);

impl Code {
    const CACHE: Code = match built_in_code(&DiscoveryMethod::Cache) {
        Some(code) => Code(code),
        None => panic!("the cache is a built-in method"),
    };
}

/// The `Other` names a peer's candidates were reported by, for their [`Code`]s: a report
/// then takes 40 bytes instead of 72, and a choice reads that much less of the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Names {
    /// At most [`MAX_OTHER_METHODS`], as the peer's `discovered_via` holds.
    others: Vec<DiscoveryMethod>,
}

impl Names {
    /// The code of `method`, which it is given if it has none; `None` for an `Other` name
    /// past the [`MAX_OTHER_METHODS`] kept, which then reports nothing (no candidate reports
    /// by a method the record cannot hold).
    fn code(&mut self, method: &DiscoveryMethod) -> Option<Code> {
        if let Some(code) = built_in_code(method) {
            return Some(Code(code));
        }
        let i = match self.others.iter().position(|m| m == method) {
            Some(i) => i,
            None if self.others.len() < MAX_OTHER_METHODS => {
                self.others.push(method.clone());
                self.others.len() - 1
            }
            None => return None,
        };
        Some(Code(FIRST_OTHER + u8::try_from(i).ok()?))
    }

    /// The method `code` stands for.
    fn method(&self, code: Code) -> &DiscoveryMethod {
        match code.0 {
            0..FIRST_OTHER => built_in_method(code.0),
            // Every code past the built-in ones was given by `code`, for a name kept here.
            other => &self.others[usize::from(other - FIRST_OTHER)],
        }
    }
}

/// How long a report vouches, in 8 bytes: a span on the store's timeline (never negative),
/// or the cache's "until another candidate is fresh".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window(Nanos);

impl Window {
    /// The cache's "until another candidate is fresh".
    const UNTIL_ANOTHER_IS_FRESH: Window = Window(-1);

    fn new(span: Option<Nanos>) -> Self {
        span.map_or(Window::UNTIL_ANOTHER_IS_FRESH, |span| Window(span.max(0)))
    }

    /// The span, or `None` for the cache's "until another candidate is fresh".
    fn get(self) -> Option<Nanos> {
        (self.0 >= 0).then_some(self.0)
    }
}

/// One report of a candidate: by which method, when (on the store's timeline and the wall).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    method: Code,
    at: Nanos,
    wall: SystemTime,
    /// How long it vouches: its method's window in the store's policy, which a store keeps for
    /// its life, looked up once here rather than on every choice.
    window: Window,
    /// Its method's rank, which the choice weighs it by.
    rank: u8,
    /// Made before the candidate's last failure: it no longer vouches (until a confirmation).
    void: bool,
}

impl Report {
    fn new(
        method: &DiscoveryMethod,
        code: Code,
        at: Nanos,
        wall: SystemTime,
        cx: &Context<'_>,
    ) -> Self {
        Report {
            window: Window::new(cx.window(method)),
            rank: method.rank(),
            method: code,
            at,
            wall,
            void: false,
        }
    }
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
    /// For an endpoint first known from a handshake, which no method had reported: the method
    /// it counts as set by until one does (the method the peer's endpoint came from before).
    label: Option<Code>,
}

/// A peer's candidates, each with its own trust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Candidates {
    list: Vec<CandidateState>,
    names: Names,
}

/// The store's view that freshness is judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'p> {
    pub policy: &'p ResilientPolicy,
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

/// Whether a report vouches for its candidate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vouch {
    /// No: made before the candidate's last failure (or dated before it), or its window ran
    /// out.
    No,
    /// Yes, within its method's window.
    Windowed,
    /// A cached report: while the cache still counts (no candidate has a fresh report by
    /// another method, nor trust).
    IfCacheCounts,
}

impl CandidateState {
    /// Whether `r`, one of its reports, vouches for it now.
    #[inline]
    fn vouch(&self, r: &Report, cx: &Context<'_>) -> Vouch {
        let after_failure = !r.void && self.failed_at.is_none_or(|failed| r.at >= failed);
        match r.window.get() {
            _ if !after_failure => Vouch::No,
            Some(window) if cx.now.saturating_sub(r.at) <= window => Vouch::Windowed,
            Some(_) => Vouch::No,
            None => Vouch::IfCacheCounts,
        }
    }

    /// The reports that still vouch for it now: within their method's window, made after its
    /// last failure and not dated before it. `cache_counts` says whether cache reports still do.
    fn fresh_reports<'a>(
        &'a self,
        cx: &'a Context<'_>,
        cache_counts: bool,
    ) -> impl Iterator<Item = &'a Report> + 'a {
        self.reports
            .iter()
            .filter(move |r| match self.vouch(r, cx) {
                Vouch::Windowed => true,
                Vouch::IfCacheCounts => cache_counts,
                Vouch::No => false,
            })
    }

    /// Whether its trust has not run out at `now`.
    fn trusted_at(&self, now: Nanos) -> bool {
        self.trusted_until.is_some_and(|until| now < until)
    }

    /// The method it counts as set by when its trust vouches for it: the best method that ever
    /// reported it (the newest report of that rank), or, if none did, its label.
    fn best_ever(&self) -> Option<Code> {
        let best = self.reports.iter().max_by_key(|r| (r.rank, r.at));
        best.map(|r| r.method).or(self.label)
    }

    fn to_public(&self, cx: &Context<'_>, cache_counts: bool, names: &Names) -> Candidate {
        let trusted = self.trusted_at(cx.now);
        Candidate {
            endpoint: self.endpoint,
            reports: self
                .reports
                .iter()
                .map(|r| (names.method(r.method).clone(), r.wall))
                .collect(),
            confirmed: self.confirmed.map(|(_, wall)| wall),
            rtt: self.rtt,
            failures: self.failures,
            fresh: trusted || self.fresh_reports(cx, cache_counts).next().is_some(),
            trusted,
            fresh_until: self.fresh_until(cx),
        }
    }

    /// The first moment, on the wall clock, none of the reports within their window nor the
    /// trust that vouch for it at `cx.now` does any more.
    fn fresh_until(&self, cx: &Context<'_>) -> Option<SystemTime> {
        // A report vouches while `now - at <= window`: no longer from 1 ns after that.
        let reports = self.fresh_reports(cx, false).filter_map(|r| {
            let end = r.at.saturating_add(r.window.get()?).saturating_add(1);
            Some((end, r.at, r.wall))
        });
        let trust = self
            .trusted_until
            .filter(|_| self.trusted_at(cx.now))
            .zip(self.confirmed)
            .map(|(end, (at, wall))| (end, at, wall));
        let (end, at, wall) = reports.chain(trust).max_by_key(|(end, ..)| *end)?;
        let span = u64::try_from(end.saturating_sub(at)).ok()?;
        wall.checked_add(Duration::from_nanos(span))
    }
}

impl Candidates {
    /// A peer's first candidate.
    pub(crate) fn first(
        endpoint: SocketAddr,
        method: &DiscoveryMethod,
        at: Nanos,
        wall: SystemTime,
        cx: &Context<'_>,
    ) -> Self {
        let mut names = Names::default();
        let list = match names.code(method) {
            Some(code) => vec![CandidateState::new(endpoint, method, code, at, wall, cx)],
            None => Vec::new(),
        };
        Candidates { list, names }
    }

    /// Records that `method` reported `endpoint`, dated `at` (a second-hand method's carried
    /// time may be older than `cx.now`); the report resets the candidate's failures.
    ///
    /// - A candidate keeps one report per method, and only for the methods the record can
    ///   hold (`heard_by`, its `discovered_via`, bounded at [`MAX_OTHER_METHODS`](crate::MAX_OTHER_METHODS) names of its
    ///   own): a method past that bound reports nothing, so a flood of invented method names
    ///   costs what `discovered_via` does.
    /// - A report keeps the later of its two times, as `last_seen` does: older news of the same
    ///   endpoint by the same method does not age it.
    /// - A new endpoint past `max_candidates` replaces the candidate reported least recently
    ///   that is not `keep` (the chosen one) and not trusted at `cx.now`; a newcomer that is
    ///   not fresh itself replaces only a candidate that is not fresh either. If there is none,
    ///   it is not kept.
    #[expect(
        clippy::too_many_arguments,
        reason = "one report and what it is weighed by"
    )]
    pub(crate) fn report(
        &mut self,
        endpoint: SocketAddr,
        method: &DiscoveryMethod,
        at: Nanos,
        wall: SystemTime,
        cx: &Context<'_>,
        keep: Option<SocketAddr>,
        heard_by: &MethodSet,
    ) {
        if !heard_by.contains(method) && !heard_by.would_insert(method) {
            return;
        }
        let Some(code) = self.names.code(method) else {
            return;
        };
        if let Some(c) = self.list.iter_mut().find(|c| c.endpoint == endpoint) {
            match c.reports.iter_mut().find(|r| r.method == code) {
                // Older news: the later time stands.
                Some(old) if at < old.at => {}
                // Newer: the same method, so the same window and rank.
                Some(old) => {
                    (old.at, old.wall, old.void) = (at, wall, false);
                }
                None => c.reports.push(Report::new(method, code, at, wall, cx)),
            }
            c.failures = 0;
            return;
        }
        let newcomer = CandidateState::new(endpoint, method, code, at, wall, cx);
        if self.list.len() >= cx.policy.max_candidates {
            let cache_counts = self.cache_counts(cx);
            // Judged by the one rule: a newcomer has no failure yet.
            let fresh_newcomer = newcomer.fresh_reports(cx, cache_counts).next().is_some();
            let evict = self
                .list
                .iter()
                .enumerate()
                .filter(|(_, c)| Some(c.endpoint) != keep && !c.trusted_at(cx.now))
                .filter(|(_, c)| {
                    fresh_newcomer || c.fresh_reports(cx, cache_counts).next().is_none()
                })
                .min_by_key(|(_, c)| c.reports.iter().map(|r| r.at).max())
                .map(|(i, _)| i);
            match evict {
                Some(i) => {
                    self.list.remove(i);
                }
                // Every candidate is chosen, trusted or fresher than the newcomer: it waits
                // for a slot.
                None => return,
            }
        }
        self.list.push(newcomer);
    }

    /// Evidence that `endpoint` works, at `cx.now`: it is confirmed and trusted for the
    /// policy's `trust_for`. `false` if it is not a candidate, unless the evidence is a
    /// handshake: WireGuard authenticated the peer there, so it becomes a candidate that
    /// counts as set by `label` until a method reports it. Past `max_candidates` it replaces
    /// the candidate reported least recently that is not `keep` (the chosen one) and not
    /// trusted; if there is none, it is not kept (`false`).
    pub(crate) fn confirm(
        &mut self,
        endpoint: SocketAddr,
        evidence: crate::Evidence,
        wall: SystemTime,
        cx: &Context<'_>,
        keep: Option<SocketAddr>,
        label: Option<&DiscoveryMethod>,
    ) -> bool {
        let at = cx.now;
        let trust_for = cx.policy.trust_for;
        let i = match self.list.iter().position(|c| c.endpoint == endpoint) {
            Some(i) => i,
            None => {
                let (crate::Evidence::Handshake, Some(label)) = (evidence, label) else {
                    return false;
                };
                let Some(code) = self.names.code(label) else {
                    return false;
                };
                if self.list.len() >= cx.policy.max_candidates {
                    let evict = self
                        .list
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| Some(c.endpoint) != keep && !c.trusted_at(at))
                        .min_by_key(|(_, c)| c.reports.iter().map(|r| r.at).max())
                        .map(|(i, _)| i);
                    let Some(i) = evict else {
                        return false;
                    };
                    self.list.remove(i);
                }
                self.list.push(CandidateState {
                    reports: Vec::new(),
                    label: Some(code),
                    ..CandidateState::new(endpoint, label, code, at, wall, cx)
                });
                self.list.len() - 1
            }
        };
        let c = &mut self.list[i];
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
            && !self
                .list
                .iter()
                .any(|c| c.fresh_reports(cx, false).any(|r| r.method != Code::CACHE))
    }

    /// The endpoint to use now, given the one in use (`current`, as
    /// [`Peer::current_endpoint`](crate::Peer::current_endpoint) gives it), if that changes
    /// it ([`EndpointChoice::changes`]): the ranked order (rank, then IPv6, then newest) over
    /// the fresh candidates, a trusted one kept against any but a higher rank (and that only
    /// if the policy lets rank override trust), and the current one kept when no candidate is
    /// fresh.
    ///
    /// When several candidates are trusted, the one kept is the first in the ranked order
    /// among them: the rank of the best method that ever reported it, then IPv6, then the most
    /// recent confirmation (then the later candidate in the list), and it counts as set by
    /// that best method. An untrusted candidate displaces it only by outranking it (the rank
    /// of its best fresh report above that method's) while the policy lets rank override
    /// trust.
    // Out of line: the ranked merge, which never calls it, stays as small as it was.
    #[inline(never)]
    pub(crate) fn choose(
        &self,
        cx: &Context<'_>,
        current: Option<(SocketAddr, &DiscoveryMethod)>,
    ) -> Option<EndpointChoice> {
        // Trust vouches on its own; a trusted candidate counts as set by the best method that
        // ever reported it. Among several: (that rank, IPv6, most recent confirmation).
        let trusted_choice = self
            .list
            .iter()
            .filter(|c| c.trusted_at(cx.now))
            .filter_map(|c| Some((c, self.names.method(c.best_ever()?))))
            .max_by_key(|(c, best)| {
                let confirmed = c.confirmed.map(|(at, _)| at);
                (best.rank(), is_ipv6(c.endpoint), confirmed)
            });
        // A trusted candidate that rank may not override is the choice whatever the fresh
        // reports say: they are not weighed at all.
        let weigh_reports = trusted_choice.is_none() || cx.policy.rank_overrides_trust;
        let cache_counts = weigh_reports && self.cache_counts(cx);
        // Each fresh candidate with its best fresh report: (rank, IPv6, newest).
        let scored = self.list.iter().filter_map(|c| {
            // One pass: the best report (the last of the highest (rank, time)) and the newest.
            let mut best: Option<(&Report, Nanos)> = None;
            for r in c.fresh_reports(cx, cache_counts) {
                best = match best {
                    Some((b, newest)) if (r.rank, r.at) < (b.rank, b.at) => {
                        Some((b, newest.max(r.at)))
                    }
                    Some((_, newest)) => Some((r, newest.max(r.at))),
                    None => Some((r, r.at)),
                };
            }
            best.map(|(best, newest)| (c, best, newest))
        });
        let key = |(c, best, newest): &(&CandidateState, &Report, Nanos)| {
            (best.rank, is_ipv6(c.endpoint), *newest)
        };
        let best = if weigh_reports {
            scored.max_by_key(key)
        } else {
            None
        };
        // Why the best fresh candidate replaces the one in use, if it does.
        let why = |c: &CandidateState, report: &Report| {
            let Some((current, current_method)) = current else {
                return EndpointRule::FirstEndpoint;
            };
            if current == c.endpoint {
                return EndpointRule::Unchanged;
            }
            match self.list.iter().find(|s| s.endpoint == current) {
                None => EndpointRule::CandidateExpired,
                Some(s)
                    if s.failed_at.is_some()
                        && s.fresh_reports(cx, cache_counts).next().is_none() =>
                {
                    EndpointRule::Failed
                }
                Some(s) if s.fresh_reports(cx, cache_counts).next().is_none() => {
                    EndpointRule::CandidateExpired
                }
                // The one in use is still fresh, by its best fresh report (its label may be a
                // method whose report aged out): the rule that lets the challenger past it.
                Some(s) => {
                    let best = s
                        .fresh_reports(cx, cache_counts)
                        .max_by_key(|r| (r.rank, r.at))
                        .map_or(current_method, |r| self.names.method(r.method));
                    let method = self.names.method(report.method);
                    let decision = decide_endpoint(Some((current, best)), c.endpoint, method);
                    if decision.accepted {
                        decision.rule
                    } else {
                        EndpointRule::CandidateExpired
                    }
                }
            }
        };
        /// Why the choice is made: a rule, or the fresh report to ask `why` of.
        enum Why<'r> {
            Rule(EndpointRule),
            Fresh(&'r Report),
        }
        // The candidate chosen, the method it counts as set by, and why; `why` is asked only
        // of a choice that changes the endpoint.
        let (chosen, method, because) = match (best, trusted_choice) {
            (Some((c, report, _)), Some((t, t_best))) => {
                let outranks = report.rank > t_best.rank();
                if c.endpoint != t.endpoint && outranks && cx.policy.rank_overrides_trust {
                    (
                        c,
                        self.names.method(report.method),
                        Why::Rule(EndpointRule::HigherRank),
                    )
                } else {
                    (t, t_best, Why::Rule(EndpointRule::Trusted))
                }
            }
            (None, Some((t, t_best))) => (t, t_best, Why::Rule(EndpointRule::Trusted)),
            (Some((c, report, _)), None) => {
                (c, self.names.method(report.method), Why::Fresh(report))
            }
            // No candidate is fresh: the one in use stays, which changes nothing.
            (None, None) => return None,
        };
        if !EndpointChoice::changes(chosen.endpoint, method, current) {
            return None;
        }
        let rule = match because {
            Why::Rule(rule) => rule,
            Why::Fresh(report) => why(chosen, report),
        };
        Some(EndpointChoice {
            endpoint: chosen.endpoint,
            method: method.clone(),
            rule,
        })
    }

    /// The candidates as callers see them.
    pub(crate) fn to_public(&self, cx: &Context<'_>) -> Vec<Candidate> {
        let cache_counts = self.cache_counts(cx);
        self.list
            .iter()
            .map(|c| c.to_public(cx, cache_counts, &self.names))
            .collect()
    }
}

impl CandidateState {
    /// A new candidate, with its first report.
    fn new(
        endpoint: SocketAddr,
        method: &DiscoveryMethod,
        code: Code,
        at: Nanos,
        wall: SystemTime,
        cx: &Context<'_>,
    ) -> Self {
        CandidateState {
            endpoint,
            reports: vec![Report::new(method, code, at, wall, cx)],
            confirmed: None,
            rtt: None,
            failures: 0,
            failed_at: None,
            trusted_until: None,
            label: None,
        }
    }
}
