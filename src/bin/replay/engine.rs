//! The engine: a [`Replay`] drives a store through a trace, line by line on the store's
//! manual clock, and keeps what the renderers show: the [`Summary`] of updates and events, each
//! peer's [`Track`] (endpoint changes, flaps, time on a stale endpoint), the final peer table
//! ([`Replay::table`]) and, for `--explain`, one peer's [`Decision`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use peerstore::{
    DiscoveryMethod, EndpointChange, EndpointRule, ManualClock, Peer, PeerEventKind, PeerStore,
    PublicKey, RemovalCause, Subscription, UpdateError, UpdateOutcome, decide_endpoint,
};

use crate::explain::{Decision, Pending, Verdict};
use crate::play::{self, Applied, Played};
use crate::settings::{Policy, Settings};
use crate::trace::{self, Line, Step};
use crate::yardstick::Yardstick;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// The endpoint policy.
    pub policy: Policy,
    /// Every setting, as [`Settings::describe`] spells it.
    pub settings: String,
    pub lines: usize,
    pub bad_lines: usize,
    pub duration: Duration,
    pub announcements: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub refused_invalid: usize,
    pub refused_full: usize,
    /// Refused because the key is banned.
    pub bans_refused: usize,
    /// Refusals of a kind this tool does not know (from a newer crate).
    pub refused_other: usize,
    pub removes: usize,
    /// `ban` and `unban` lines (played or not: [`Settings::bans`]).
    pub bans: usize,
    pub unbans: usize,
    pub cleanups: usize,
    pub confirms: usize,
    pub failures: usize,
    /// The store's `Stats::endpoint_changes` and `endpoint_flaps` at the end.
    pub endpoint_changes: u64,
    pub flaps: u64,
    /// How long peers were active on a stale endpoint, in all ([`Yardstick`]).
    pub stale: Duration,
    pub events_new: usize,
    pub events_updated: usize,
    pub removed_explicit: usize,
    pub removed_expired: usize,
    /// `Removed { cause: Banned }` events.
    pub removed_banned: usize,
    /// Removals for a cause this tool does not know (from a newer crate).
    pub removed_other: usize,
    pub events_dropped: u64,
    /// Refused by a tombstone.
    pub refused_tombstoned: usize,
    /// New peers heard first-hand refused as full.
    pub refused_full_first_hand: usize,
    /// Second-hand inserts of a peer removed explicitly before.
    pub resurrections: usize,
    /// Second-hand inserts of a peer that expired before: a ghost's new cycle.
    pub ghost_cycles: usize,
    /// First-hand inserts of a peer removed before (explicitly, by the cleanup or by a ban)
    /// on no news since its removal: the announcement carried no `last_seen`, or one not
    /// later than the removal. A LAN announcement is news (the peer is on the link now), as
    /// the library's `Readmission::Newer` has it.
    pub stale_readmissions: usize,
    /// Newcomers a handshake proves real (a `confirm` line with no `rtt_ms` names them after
    /// their first announcement refused as full): the longest time one waited, from an
    /// announcement refused as full to its admission (or to the trace's end, for one never
    /// admitted), and all their waits together.
    pub newcomer_wait_max: Duration,
    pub newcomer_wait_total: Duration,
    /// `Removed { cause: Evicted }` events.
    pub removed_evicted: usize,
    /// `New` events of readmitted peers.
    pub readmitted: usize,
}

/// How many peers the replay keeps per-peer figures for; past it, those no longer in the
/// store are forgotten (their figures stay in the totals).
const MAX_TRACKED: usize = 65_536;

/// A newcomer's waits to be admitted while the store is full.
#[derive(Debug, Default, Clone, Copy)]
struct Wait {
    /// While it waits: since its first announcement refused as full.
    since: Option<Duration>,
    longest: Duration,
    total: Duration,
    /// A handshake was seen with it after it was first refused: a real peer.
    proven: bool,
}

impl Wait {
    /// The wait that began at `since` ends at `now` (admitted, or the trace's end).
    fn end(&mut self, now: Duration) {
        if let Some(since) = self.since.take() {
            let waited = now.saturating_sub(since);
            self.longest = self.longest.max(waited);
            self.total += waited;
        }
    }
}

/// What the replay saw of one peer, across its records: its endpoint changes, its flaps, and
/// how long it was active on a stale endpoint.
#[derive(Debug, Default, Clone)]
pub struct Track {
    /// Its host name, as last heard.
    pub name: Option<String>,
    /// The endpoint the store held after the last line that touched the peer.
    endpoint: Option<SocketAddr>,
    /// The newest history entry counted.
    last_seq: Option<u64>,
    /// Endpoint changes, as its history recorded them.
    pub changes: u64,
    /// Of them, flaps (A -> B -> A).
    pub flaps: u64,
    /// Active on a stale endpoint, by the yardstick.
    pub stale: Duration,
    /// Stale time is counted up to here.
    since: Duration,
    /// While the peer is in the store: until when it is active.
    active_until: Option<Duration>,
    /// Whether the yardstick found its endpoint fresh when it last looked (since `since`).
    fresh: bool,
}

impl Track {
    /// Counts the stale time up to `now`, the yardstick's last judgement holding since the
    /// last count.
    fn accrue(&mut self, now: Duration) -> Duration {
        let from = self.since;
        self.since = self.since.max(now);
        let (false, Some(_), Some(active_until)) = (self.fresh, self.endpoint, self.active_until)
        else {
            return Duration::ZERO;
        };
        let stale = now.min(active_until).saturating_sub(from);
        self.stale += stale;
        stale
    }
}

pub struct Replay {
    pub store: PeerStore,
    clock: ManualClock,
    events: Subscription,
    /// The time on the trace.
    pub now: Duration,
    /// The peer `--explain` follows.
    pub explain: Option<PublicKey>,
    /// What happened to it, in order.
    pub decisions: Vec<Decision>,
    /// Its endpoint announced in the step running, if any, until the step's end tells what
    /// became of it.
    pending: Option<Pending>,
    pub summary: Summary,
    yardstick: Yardstick,
    /// Per peer, what the replay saw of it.
    pub tracks: HashMap<PublicKey, Track>,
    /// The peers removed so far, how and when (at most [`MAX_TRACKED`]): a second-hand
    /// insert of one is a resurrection or a ghost's new cycle, a first-hand one on old news a
    /// stale readmission.
    removed_keys: HashMap<PublicKey, (RemovalCause, Duration)>,
    /// Which operator lines are played ([`Settings::tombstones`], [`Settings::bans`]).
    played: Played,
    /// Newcomers refused as full, and their waits (at most [`MAX_TRACKED`]).
    waits: HashMap<PublicKey, Wait>,
    /// The line of the trace playing, as its place among the lines played.
    line: usize,
    /// Lines the store refused as a whole (a ban it did not place): their places among the
    /// lines played ([`Replay::run`]'s), and why.
    pub unused: Vec<(usize, String)>,
}

impl Replay {
    pub fn new(explain: Option<PublicKey>, settings: &Settings) -> Self {
        let clock = ManualClock::starting_at(trace::trace_start());
        let mut store = settings.store.clone();
        // One step emits at most one event per stored peer (a cleanup that drops them all),
        // and the replay drains after every step: with this buffer nothing is dropped, and
        // `dropped` would say so if it were.
        store.event_buffer = store.max_peers + 1;
        // For the flap count; a few changes a peer are all a trace shows.
        store.endpoint_history = Some(16);
        let store = PeerStore::builder()
            .settings(store)
            .clock(clock.clone())
            .build()
            .expect("valid store settings");
        let events = store.subscribe();
        Replay {
            store,
            clock,
            events,
            now: Duration::ZERO,
            explain,
            decisions: Vec::new(),
            pending: None,
            yardstick: Yardstick::new(settings),
            tracks: HashMap::new(),
            removed_keys: HashMap::new(),
            played: settings.played(),
            waits: HashMap::new(),
            line: 0,
            unused: Vec::new(),
            summary: Summary {
                policy: settings.policy(),
                settings: settings.describe(),
                ..Summary::default()
            },
        }
    }

    /// Replays `lines` and sums up.
    pub fn run(&mut self, lines: &[Line]) {
        for (i, line) in lines.iter().enumerate() {
            self.line = i;
            self.play(line);
        }
        self.finish(lines.len());
    }

    /// Replays one line: the clock moves to its time, the peers it may change have their
    /// stale time counted up to now, it runs, and they are looked at again.
    fn play(&mut self, line: &Line) {
        // The yardstick looks again at the peers whose freshness changes before this line.
        while let Some((at, key)) = self.yardstick.pop_due(line.at) {
            if let Some(track) = self.tracks.get_mut(&key) {
                self.summary.stale += track.accrue(at);
                track.fresh = self.yardstick.judge(key, track.endpoint);
            }
        }
        self.clock.advance(line.at - self.now);
        self.now = line.at;
        self.yardstick.advance_to(line.at);
        let touched = self.touched(&line.step);
        for key in &touched {
            self.accrue(key);
        }
        self.yardstick.play(&line.step);
        self.step(&line.step);
        for key in touched {
            self.observe(key);
        }
        self.drain();
    }

    /// Sums up after `lines` lines: every peer's stale time up to now, and the store's counts.
    fn finish(&mut self, lines: usize) {
        let keys: Vec<PublicKey> = self.tracks.keys().copied().collect();
        for key in &keys {
            self.accrue(key);
        }
        self.summary.lines += lines;
        self.summary.duration = self.now;
        self.summary.events_dropped = self.events.dropped();
        let stats = self.store.stats();
        self.summary.endpoint_changes = stats.endpoint_changes;
        self.summary.flaps = stats.endpoint_flaps;
        let now = self.now;
        for wait in self.waits.values_mut() {
            // Still refused at the end: it waited this long at least.
            wait.end(now);
            if wait.proven {
                let summary = &mut self.summary;
                summary.newcomer_wait_max = summary.newcomer_wait_max.max(wait.longest);
                summary.newcomer_wait_total += wait.total;
            }
        }
    }

    /// Runs one step, and counts what the store made of it.
    fn step(&mut self, step: &Step) {
        let before = match step {
            Step::Announce { peer, .. } if self.explain == Some(peer.info.public_key) => {
                self.store.get(&peer.info.public_key)
            }
            _ => None,
        };
        match (step, play::apply(&self.store, step, self.played)) {
            (Step::Announce { method, peer }, applied) => {
                let info = &peer.info;
                self.summary.announcements += 1;
                let Applied::Update(result) = applied else {
                    return;
                };
                let explained = self.explain == Some(info.public_key);
                match result {
                    Ok(UpdateOutcome::Inserted) => {
                        self.summary.inserted += 1;
                        let removed = self.removed_keys.get(&info.public_key).copied();
                        if !method.refreshes_last_seen() {
                            match removed {
                                Some((RemovalCause::Expired, _)) => self.summary.ghost_cycles += 1,
                                Some((RemovalCause::Explicit, _)) => {
                                    self.summary.resurrections += 1;
                                }
                                // Evicted: making room is not a verdict on the peer.
                                _ => {}
                            }
                        } else if let Some((cause, removed_at)) = removed
                            && cause != RemovalCause::Evicted
                            && *method != DiscoveryMethod::Lan
                            && info
                                .last_seen
                                .is_none_or(|seen| self.on_trace(seen) <= removed_at)
                        {
                            self.summary.stale_readmissions += 1;
                        }
                        if let Some(wait) = self.waits.get_mut(&info.public_key) {
                            wait.end(self.now);
                        }
                    }
                    Ok(UpdateOutcome::Updated) => self.summary.updated += 1,
                    Ok(UpdateOutcome::Unchanged) => self.summary.unchanged += 1,
                    Err(err) => {
                        match err {
                            UpdateError::StoreFull { .. } => {
                                self.summary.refused_full += 1;
                                if method.refreshes_last_seen() {
                                    self.summary.refused_full_first_hand += 1;
                                }
                                let key = info.public_key;
                                if self.waits.len() < MAX_TRACKED || self.waits.contains_key(&key) {
                                    let wait = self.waits.entry(key).or_default();
                                    wait.since.get_or_insert(self.now);
                                }
                            }
                            UpdateError::Invalid(_) => self.summary.refused_invalid += 1,
                            UpdateError::Tombstoned { .. } => self.summary.refused_tombstoned += 1,
                            UpdateError::Banned { .. } => self.summary.bans_refused += 1,
                            _ => self.summary.refused_other += 1,
                        }
                        if explained {
                            self.decisions.push(Decision::Refused {
                                at: self.now,
                                method: method.clone(),
                                why: err.to_string(),
                            });
                        }
                        return;
                    }
                }
                if let (true, Some(candidate)) = (explained, info.endpoint) {
                    let current = before
                        .as_deref()
                        .and_then(Peer::current_endpoint)
                        .map(|(endpoint, by)| (endpoint, by.clone()));
                    let announced = Pending {
                        method: method.clone(),
                        candidate,
                        current,
                    };
                    match self.summary.policy {
                        Policy::Seed => {
                            let decision =
                                decide_endpoint(announced.current.clone(), candidate, method);
                            let verdict = Verdict::Ruled {
                                accepted: decision.accepted,
                                rule: decision.rule,
                            };
                            self.decide(announced, verdict);
                        }
                        // The store's choice is known once the step is over: `observe`.
                        Policy::Resilient => self.pending = Some(announced),
                    }
                }
            }
            (Step::Remove { .. }, _) => self.summary.removes += 1,
            (Step::Cleanup { .. }, _) => self.summary.cleanups += 1,
            (Step::Confirm { key, rtt, .. }, _) => {
                self.summary.confirms += 1;
                if rtt.is_none()
                    && let Some(wait) = self.waits.get_mut(key)
                {
                    wait.proven = true;
                }
            }
            (Step::Fail { .. }, _) => self.summary.failures += 1,
            (Step::Ban { key, span, reason }, applied) => {
                self.summary.bans += 1;
                let Applied::Ban(placed) = applied else {
                    return;
                };
                let refused = placed.err().map(|err| format!("\"ban\": {err}"));
                if let Some(why) = &refused {
                    self.unused.push((self.line, why.clone()));
                }
                if self.explain == Some(*key) {
                    self.decisions.push(Decision::Banned {
                        at: self.now,
                        span: *span,
                        reason: reason.clone(),
                        refused,
                    });
                }
            }
            (Step::Unban { key }, applied) => {
                self.summary.unbans += 1;
                if let (Applied::Unban(lifted), true) = (applied, self.explain == Some(*key)) {
                    self.decisions.push(Decision::Unbanned {
                        at: self.now,
                        lifted,
                    });
                }
            }
        }
    }

    /// The peers a step may change: its own, or for a cleanup every one in the store.
    fn touched(&self, step: &Step) -> Vec<PublicKey> {
        match step {
            Step::Announce { peer, .. } => vec![peer.info.public_key],
            Step::Remove { key, .. }
            | Step::Confirm { key, .. }
            | Step::Fail { key, .. }
            | Step::Ban { key, .. }
            | Step::Unban { key } => vec![*key],
            Step::Cleanup { .. } => self
                .tracks
                .iter()
                .filter(|(_, t)| t.active_until.is_some())
                .map(|(k, _)| *k)
                .collect(),
        }
    }

    /// A peer's track, made if new; past [`MAX_TRACKED`], those out of the store are forgotten.
    fn track(&mut self, key: PublicKey) -> &mut Track {
        if self.tracks.len() >= MAX_TRACKED && !self.tracks.contains_key(&key) {
            self.tracks.retain(|_, t| t.active_until.is_some());
        }
        let now = self.now;
        self.tracks.entry(key).or_insert_with(|| Track {
            since: now,
            ..Track::default()
        })
    }

    /// Counts a peer's stale time up to now.
    fn accrue(&mut self, key: &PublicKey) {
        if let Some(track) = self.tracks.get_mut(key) {
            self.summary.stale += track.accrue(self.now);
        }
    }

    /// Looks at a peer after a step: in the store or not, until when active, and the endpoint
    /// changes its history recorded since the last look.
    fn observe(&mut self, key: PublicKey) {
        let Some(peer) = self.store.get(&key) else {
            let fresh = self.yardstick.judge(key, None);
            if let Some(track) = self.tracks.get_mut(&key) {
                track.active_until = None;
                track.endpoint = None;
                track.fresh = fresh;
            }
            return;
        };
        let dead_after = self.store.settings().dead_after;
        let active_until = self.on_trace(peer.last_seen).saturating_add(dead_after);
        let fresh = self.yardstick.judge(key, peer.endpoint);
        let moved = self.tracks.get(&key).and_then(|t| t.endpoint) != peer.endpoint;
        let history = if moved {
            self.store.endpoint_history(&key)
        } else {
            Vec::new()
        };
        let track = self.track(key);
        track.name = peer.hostname.as_ref().map(ToString::to_string);
        track.active_until = Some(active_until);
        track.endpoint = peer.endpoint;
        track.fresh = fresh;
        let mut moved = Vec::new();
        for change in history {
            if track.last_seq.is_none_or(|last| change.seq > last) {
                track.changes += 1;
                track.flaps += u64::from(change.flap);
                track.last_seq = Some(change.seq);
                moved.push(change);
            }
        }
        if self.explain == Some(key) && self.summary.policy != Policy::Seed {
            if let Some(announced) = self.pending.take() {
                let verdict = self.resilient_verdict(&announced, &peer, &moved);
                self.decide(announced, verdict);
            }
            let at = self.now;
            let moves = moved
                .into_iter()
                .map(|change| Decision::Moved { at, change });
            self.decisions.extend(moves);
        }
    }

    /// What the resilient policy made of an announced endpoint, as the store tells it after
    /// the step: the peer's endpoint now, the moves the step made (`moved`), its candidates.
    fn resilient_verdict(
        &self,
        announced: &Pending,
        peer: &Peer,
        moved: &[EndpointChange],
    ) -> Verdict {
        let candidate = peerstore::canonical_endpoint(announced.candidate);
        if let Some(change) = moved.iter().rev().find(|c| c.to == candidate) {
            return Verdict::Chosen(change.rule);
        }
        if peer.endpoint == Some(candidate) {
            return match &announced.current {
                Some((current, _)) if *current == candidate => Verdict::InUse,
                // A new record: its first endpoint is in no history.
                _ => Verdict::Chosen(EndpointRule::FirstEndpoint),
            };
        }
        let candidates = self.store.candidates(&peer.public_key);
        Verdict::NotChosen {
            kept: candidates.iter().any(|c| c.endpoint == candidate),
            trusted: candidates
                .iter()
                .any(|c| Some(c.endpoint) == peer.endpoint && c.trusted),
        }
    }

    fn decide(&mut self, announced: Pending, verdict: Verdict) {
        self.decisions.push(Decision::Endpoint {
            at: self.now,
            method: announced.method,
            candidate: announced.candidate,
            current: announced.current,
            verdict,
        });
    }

    /// A wall-clock time as a time on the trace (0 for one before its start).
    fn on_trace(&self, wall: SystemTime) -> Duration {
        wall.duration_since(trace::trace_start())
            .unwrap_or_default()
    }

    fn drain(&mut self) {
        let events: Vec<_> = self.events.try_iter().collect();
        for event in events {
            match event.kind {
                PeerEventKind::New { readmitted } => {
                    self.summary.events_new += 1;
                    self.summary.readmitted += usize::from(readmitted);
                }
                PeerEventKind::Updated => self.summary.events_updated += 1,
                PeerEventKind::Removed { cause } => {
                    match cause {
                        RemovalCause::Explicit => self.summary.removed_explicit += 1,
                        RemovalCause::Expired => self.summary.removed_expired += 1,
                        RemovalCause::Evicted => self.summary.removed_evicted += 1,
                        RemovalCause::Banned => self.summary.removed_banned += 1,
                        _ => self.summary.removed_other += 1,
                    }
                    if self.removed_keys.len() < MAX_TRACKED
                        || self.removed_keys.contains_key(&event.public_key)
                    {
                        self.removed_keys
                            .insert(event.public_key, (cause, self.now));
                    }
                    // A peer evicted for another's announcement is no key the step touched:
                    // it is out of the store from now, not from the next look at it.
                    if self.store.get(&event.public_key).is_none() {
                        self.accrue(&event.public_key);
                        self.observe(event.public_key);
                    }
                    if self.explain == Some(event.public_key) {
                        self.decisions.push(Decision::Removed {
                            at: self.now,
                            cause,
                        });
                    }
                }
                // A kind of event this tool does not know (from a newer crate).
                _ => {}
            }
        }
    }

    /// The final table: by host name, then key; peers without a name last.
    pub fn table(&self) -> Vec<Row> {
        let wall = self.store_wall();
        let mut rows: Vec<Row> = self
            .store
            .get_all()
            .iter()
            .map(|peer| Row {
                age: wall.duration_since(peer.last_seen).unwrap_or_default(),
                active: !self.store.is_dead(&peer.public_key),
                peer: Peer::clone(peer),
            })
            .collect();
        rows.sort_by(|a, b| {
            let (a, b) = (&a.peer, &b.peer);
            listing_order(a.hostname.as_deref(), &a.public_key)
                .cmp(&listing_order(b.hostname.as_deref(), &b.public_key))
        });
        rows
    }

    pub fn store_wall(&self) -> SystemTime {
        trace::trace_start() + self.now
    }
}

pub struct Row {
    pub peer: Peer,
    pub age: Duration,
    pub active: bool,
}

impl Row {
    /// `active` or `dead`, as the table says it.
    pub fn state(&self) -> &'static str {
        if self.active { "active" } else { "dead" }
    }
}

/// The order peers are listed in: by host name, then key; peers without a name last.
pub fn listing_order<'a>(
    name: Option<&'a str>,
    key: &'a PublicKey,
) -> (bool, Option<&'a str>, &'a PublicKey) {
    (name.is_none(), name, key)
}

/// What the tests of the rooms share: replays of a trace under given settings, and lookups in
/// what they kept.
#[cfg(test)]
pub mod testing {
    use super::*;
    pub(crate) use crate::DEFAULT_TRACE;
    use crate::explain::resolve;
    use crate::settings::Settings;
    use crate::trace::parse_trace;

    /// The resilient endpoint policy alone.
    pub fn resilient() -> Settings {
        let mut settings = Settings::defaults();
        settings.set_policy(Policy::Resilient);
        settings
    }

    pub fn replay(text: &str, explain: Option<&str>) -> (Replay, Vec<(usize, String)>) {
        let (lines, bad) = parse_trace(text.as_bytes());
        let key = explain.map(|k| resolve(k, &lines).unwrap());
        let mut replay = Replay::new(key, &Settings::seed());
        replay.summary.bad_lines = bad.len();
        replay.run(&lines);
        (replay, bad)
    }

    pub fn by_name(replay: &Replay, name: &str) -> Peer {
        replay
            .table()
            .into_iter()
            .find(|r| r.peer.hostname.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not in the final table"))
            .peer
    }

    pub fn run_under(settings: &Settings, text: &str, explain: Option<&str>) -> Replay {
        let (lines, bad) = parse_trace(text.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        let key = explain.map(|k| resolve(k, &lines).unwrap());
        let mut replay = Replay::new(key, settings);
        replay.run(&lines);
        replay
    }

    pub fn track<'a>(replay: &'a Replay, name: &str) -> &'a Track {
        replay
            .tracks
            .values()
            .find(|t| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} was never seen"))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::explain::resolve;
    use crate::settings::{Named as _, Readmit, WhenFull};
    use crate::trace::parse_trace;

    #[test]
    fn bad_lines_are_reported_with_their_numbers_and_skipped() {
        let key = PublicKey::from_bytes([1; 32]);
        let good = format!(
            r#"{{"at": 1, "method": "lan", "peer": {{"public_key": "{key}", "endpoint": "192.168.1.1:51820"}}}}"#
        );
        let text = [
            "this is not json",
            &good,
            r#"{"at": -1, "cleanup": true}"#,
            r#"{"method": "lan", "peer": {}}"#,
            r#"{"at": 2, "method": "lan", "peer": {"public_key": "short"}}"#,
            r#"{"at": 3, "remove": "short"}"#,
            r#"{"at": 4, "cleanup": false}"#,
            "",
            r#"{"at": 5, "cleanup": true}"#,
            r#"{"at": 4, "cleanup": true}"#,
            "[1, 2]",
        ]
        .join("\n");
        let (replay, bad) = replay(&text, None);
        let numbers: Vec<usize> = bad.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 3, 4, 5, 6, 7, 10, 11], "{bad:?}");
        assert!(bad[1].1.contains("\"at\""), "{bad:?}");
        assert!(
            bad[3].1.contains("public_key") || bad[3].1.contains("44"),
            "{bad:?}"
        );
        assert!(bad[6].1.contains("never goes back"), "{bad:?}");
        assert_eq!(replay.summary.lines, 2, "the good lines still ran");
        assert_eq!(replay.summary.inserted, 1);
        assert_eq!(replay.summary.cleanups, 1);
    }

    /// The default trace tells the story `make_trace.rs` promises; these pin it.
    #[test]
    fn the_default_trace_tells_its_story() {
        let (replay, bad) = replay(DEFAULT_TRACE, Some("laptop-ana"));
        assert!(bad.is_empty(), "{bad:?}");
        let s = &replay.summary;
        assert_eq!(s.duration, Duration::from_secs(30 * 60));
        assert_eq!(s.refused_invalid, 2, "port 0 and multicast");
        assert!(s.refused_full > 0, "the flood passes the cap: {s:?}");
        assert_eq!(
            s.removed_explicit, 4,
            "node-050, node-105, node-143 and laptop-cai (the seed plays no ban: it removes)"
        );
        assert_eq!(s.events_dropped, 0);
        assert!(
            s.removed_expired >= 900 - s.refused_full,
            "the flood expired: {s:?}"
        );

        let table = replay.table();
        // The first-hand flood's fakes outlive the trace; besides them, about 200 peers.
        let fake = |r: &crate::engine::Row| {
            r.peer
                .endpoint
                .is_some_and(|e| e.ip().to_string().starts_with("198.18."))
        };
        let fakes = table.iter().filter(|r| fake(r)).count();
        assert!(fakes >= 700, "the store filled: {fakes}");
        assert!(
            (150..=250).contains(&(table.len() - fakes)),
            "about 200 peers at the end: {}",
            table.len() - fakes
        );
        assert!(table.iter().all(|r| {
            !r.peer
                .endpoint
                .is_some_and(|e| e.ip().to_string().starts_with("100.64."))
        }));
        assert!(
            table
                .iter()
                .all(|r| r.peer.hostname.as_deref() != Some("node-050"))
        );
        assert!(
            table
                .iter()
                .all(|r| r.peer.hostname.as_deref() != Some("old-01"))
        );

        let lan = by_name(&replay, "lan-04");
        assert_eq!(
            lan.endpoint_method,
            Some(DiscoveryMethod::Lan),
            "LAN sticky"
        );
        assert!(lan.discovered_via.contains(&DiscoveryMethod::Dht));
        let v6 = by_name(&replay, "node-007");
        assert!(
            v6.endpoint.unwrap().is_ipv6(),
            "IPv6 preferred: {:?}",
            v6.endpoint
        );
        let far = by_name(&replay, "far-04");
        assert_eq!(
            far.discovered_via,
            [
                DiscoveryMethod::GossipTransitive,
                DiscoveryMethod::DhtTransitive
            ]
        );
        let silent = by_name(&replay, "node-070");
        assert!(silent.discovered_via.contains(&DiscoveryMethod::Dht));

        let laptop = by_name(&replay, "laptop-ana");
        assert_eq!(laptop.endpoint, Some("203.0.113.77:38212".parse().unwrap()));
        assert_eq!(laptop.endpoint_method, Some(DiscoveryMethod::DhtRendezvous));
        assert_eq!(
            laptop.discovered_via,
            [DiscoveryMethod::Dht, DiscoveryMethod::DhtRendezvous],
            "a new record after its removal"
        );

        let rules: Vec<&str> = replay
            .decisions
            .iter()
            .map(|d| match d {
                Decision::Endpoint { verdict, .. } => verdict.why(),
                Decision::Removed { .. } => "removed",
                Decision::Refused { .. } => "refused",
                Decision::Moved { .. } => "moved",
                Decision::Banned { .. } | Decision::Unbanned { .. } => "ban",
            })
            .collect();
        assert_eq!(rules.first(), Some(&"first endpoint"));
        assert!(rules.contains(&"LAN sticky"), "{rules:?}");
        let removed = rules
            .iter()
            .position(|r| *r == "removed")
            .expect("the laptop expired");
        assert_eq!(rules[removed + 1], "first endpoint", "{rules:?}");
        assert_eq!(rules[removed + 2], "higher rank", "{rules:?}");
    }

    /// Scene (B) as a trace of its own: two DHT reporters alternate, and the first endpoint
    /// is confirmed; the resilient policy does not flap, and a failure moves it at once.
    #[test]
    fn the_resilient_policy_answers_confirmations_and_failures_in_a_trace() {
        let key = PublicKey::from_bytes([9; 32]);
        let (a, b) = ("203.0.113.9:40001", "198.51.100.4:40002");
        let mut lines = Vec::new();
        for i in 0..20 {
            let endpoint = if i % 2 == 0 { a } else { b };
            lines.push(format!(
                r#"{{"at": {}, "method": "dht", "peer": {{"public_key": "{key}", "endpoint": "{endpoint}"}}}}"#,
                i * 5
            ));
            if i == 0 {
                lines.push(format!(
                    r#"{{"at": 0, "confirm": "{key}", "endpoint": "{a}", "rtt_ms": 12}}"#
                ));
            }
        }
        lines.push(format!(
            r#"{{"at": 100, "fail": "{key}", "endpoint": "{a}"}}"#
        ));
        let text = lines.join("\n");
        let (parsed, bad) = parse_trace(text.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        let run = |settings: Settings| {
            let mut replay = Replay::new(None, &settings);
            replay.run(&parsed);
            let endpoint = replay.store.get(&key).and_then(|p| p.endpoint);
            (replay.summary, endpoint)
        };
        let (seed, seed_end) = run(Settings::seed());
        assert_eq!((seed.endpoint_changes, seed.flaps), (19, 18), "{seed:?}");
        assert_eq!((seed.confirms, seed.failures), (1, 1));
        assert_eq!(
            seed_end,
            Some(b.parse().unwrap()),
            "the newest, whatever the evidence"
        );
        let (resilient, resilient_end) = run(resilient());
        assert_eq!(resilient.policy.name(), "resilient");
        assert_eq!(
            resilient.endpoint_changes, 1,
            "only the failure moves it: {resilient:?}"
        );
        assert_eq!(resilient_end, Some(b.parse().unwrap()));

        let refused = parse_trace(br#"{"at": 1, "confirm": "short", "endpoint": "1.2.3.4:5"}"#).1;
        assert!(refused[0].1.contains("confirm"), "{refused:?}");
        let refused = parse_trace(
            format!(r#"{{"at": 1, "fail": "{key}", "endpoint": "nowhere"}}"#).as_bytes(),
        )
        .1;
        assert!(refused[0].1.contains("endpoint"), "{refused:?}");
    }

    #[test]
    fn explain_finds_a_peer_by_key_prefix_or_name_and_refuses_ambiguity() {
        let (lines, _) = parse_trace(DEFAULT_TRACE.as_bytes());
        let laptop = resolve("laptop-ana", &lines).unwrap();
        assert_eq!(resolve(&laptop.to_string()[..10], &lines).unwrap(), laptop);
        assert_eq!(resolve(&laptop.to_string(), &lines).unwrap(), laptop);
        assert!(resolve("", &lines).unwrap_err().contains("ambiguous"));
        assert!(resolve("nobody", &lines).unwrap_err().contains("no peer"));
    }

    /// `--explain` accounts for every announcement of its peer, under every settings: each is
    /// refused as a whole or given a verdict (the resilient policy's moves come besides).
    #[test]
    fn explain_accounts_for_every_announcement_of_its_peer() {
        let (lines, _) = parse_trace(DEFAULT_TRACE.as_bytes());
        for name in ["laptop-ana", "laptop-ben", "node-141"] {
            let key = resolve(name, &lines).unwrap();
            let announced = lines
                .iter()
                .filter(|line| match &line.step {
                    Step::Announce { peer, .. } => peer.info.public_key == key,
                    _ => false,
                })
                .count();
            for settings in [Settings::seed(), resilient(), Settings::opt_in()] {
                let replay = run_under(&settings, DEFAULT_TRACE, Some(name));
                let told = replay
                    .decisions
                    .iter()
                    .filter(|d| matches!(d, Decision::Endpoint { .. } | Decision::Refused { .. }));
                let under = settings.describe();
                assert_eq!(told.count(), announced, "{name} under {under}");
            }
        }
    }

    /// The stale time the yardstick counts, looking again only at each peer's
    /// `fresh_until`, is what sampling the rule every second finds: a resilient store replays
    /// the same lines, and at every half second (every window, report and confirmation of the
    /// built-in trace falls on a whole second) each active peer's endpoint counts a second
    /// stale unless that store holds it as a fresh candidate. For the endpoints the seed's
    /// store uses, and for those the opt-in one uses. The yardstick counts on the store's
    /// nanosecond timeline, where a report is fresh through its window's last nanosecond: the
    /// two differ by a nanosecond a window at most.
    #[test]
    fn the_yardstick_counts_what_sampling_the_rule_every_second_finds() {
        let (lines, _) = parse_trace(DEFAULT_TRACE.as_bytes());
        let step = Duration::from_secs(1);
        // The two sides of `--compare`.
        for settings in [Settings::seed(), Settings::opt_in()] {
            let mut judged = Replay::new(None, &settings);
            let mut resilient = settings.clone();
            resilient.set_policy(Policy::Resilient);
            let mut store = Replay::new(None, &resilient);
            let mut sampled = Duration::ZERO;
            let mut t = step / 2;
            for line in &lines {
                while t < line.at {
                    store.clock.advance(t - store.now);
                    store.now = t;
                    for (key, track) in &judged.tracks {
                        let (Some(endpoint), Some(until)) = (track.endpoint, track.active_until)
                        else {
                            continue;
                        };
                        if t >= until {
                            continue;
                        }
                        let candidates = store.store.candidates(key);
                        if !candidates.iter().any(|c| c.endpoint == endpoint && c.fresh) {
                            sampled += step;
                        }
                    }
                    t += step;
                }
                judged.play(line);
                store.play(line);
            }
            judged.finish(lines.len());
            let under = settings.describe();
            let counted = judged.summary.stale;
            assert!(counted > Duration::from_secs(60), "{under}: {counted:?}");
            assert!(
                sampled.abs_diff(counted) < Duration::from_micros(1),
                "{under}: sampled {sampled:?}, counted {counted:?}"
            );
        }
    }

    /// A small trace's lines: announcements of key `n` by a method, with an endpoint and, if
    /// given, a carried `last_seen` (seconds on the trace); and any other line as written.
    enum L<'a> {
        Say(u64, &'a str, u8, Option<u64>),
        Raw(String),
    }

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn trace(lines: &[L<'_>]) -> String {
        let lines: Vec<String> = lines
            .iter()
            .map(|line| match line {
                L::Say(at, method, n, seen) => {
                    let seen = seen.map_or(String::new(), |s| {
                        format!(r#", "last_seen": {}"#, trace::TRACE_START_UNIX + s)
                    });
                    format!(
                        r#"{{"at": {at}, "method": "{method}", "peer": {{"public_key": "{}", "endpoint": "192.0.2.{n}:51820"{seen}}}}}"#,
                        key(*n)
                    )
                }
                L::Raw(raw) => raw.clone(),
            })
            .collect();
        lines.join("\n")
    }

    /// A ban is played under the defaults: the record goes (`Removed { Banned }`), every
    /// announcement is refused and counted until the unban; `--explain` lists both lines. The
    /// seed's side of `--compare` plays neither: the key stays in.
    #[test]
    fn ban_lines_are_played_counted_and_explained() {
        let k = key(1);
        let text = trace(&[
            L::Say(0, "dht", 1, None),
            L::Raw(format!(
                r#"{{"at": 10, "ban": "{k}", "reason": "key revoked"}}"#
            )),
            L::Say(20, "dht", 1, None),
            L::Say(30, "lan", 1, None),
            L::Raw(format!(
                r#"{{"at": 35, "confirm": "{k}", "endpoint": "192.0.2.1:51820"}}"#
            )),
            L::Raw(format!(r#"{{"at": 40, "unban": "{k}"}}"#)),
            L::Raw(format!(r#"{{"at": 41, "unban": "{k}"}}"#)),
            L::Say(50, "dht", 1, None),
            L::Raw(format!(r#"{{"at": 60, "ban": "{k}", "secs": 30}}"#)),
            L::Say(70, "dht", 1, None),
            L::Say(90, "dht", 1, None),
        ]);
        let replay = run_under(&Settings::defaults(), &text, Some(&k.to_string()));
        let s = &replay.summary;
        assert_eq!((s.bans, s.unbans), (2, 2), "{s:?}");
        assert_eq!(s.bans_refused, 3, "20, 30 and 70: {s:?}");
        assert_eq!(s.removed_banned, 2, "{s:?}");
        assert_eq!(
            s.inserted, 3,
            "at 0, after the unban, and after the span: {s:?}"
        );
        assert_eq!(s.refused_other, 0, "{s:?}");
        assert!(replay.unused.is_empty(), "{:?}", replay.unused);
        let told: Vec<String> = replay
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Banned {
                    span,
                    reason,
                    refused,
                    ..
                } => Some(format!("ban {span:?} {reason:?} {refused:?}")),
                Decision::Unbanned { lifted, .. } => Some(format!("unban {lifted}")),
                Decision::Removed { cause, .. } => Some(cause.as_str().to_string()),
                Decision::Refused { why, .. } => Some(why.clone()),
                _ => None,
            })
            .collect();
        let banned = UpdateError::Banned { until: None }.to_string();
        assert_eq!(
            told[..6],
            [
                r#"ban None Some("key revoked") None"#.to_string(),
                "banned".into(),
                banned.clone(),
                banned,
                "unban true".into(),
                "unban false".into(),
            ],
            "{told:?}"
        );
        assert_eq!(told[6], "ban Some(30s) None None", "{told:?}");
        let text = crate::render::text::render_text(&replay, "test", Some(&k));
        assert!(
            text.contains(r#"banned until lifted: "key revoked""#),
            "{text}"
        );
        assert!(text.contains("removed from the store (banned)"), "{text}");
        assert!(text.contains("unbanned (no ban stood)"), "{text}");
        let json = crate::render::json::render_json(&replay, "test", &[]);
        assert_eq!(json["summary"]["bans_refused"], 3);
        assert_eq!(json["summary"]["events"]["removed_banned"], 2);

        let seed = run_under(&Settings::seed(), &text_of_bans(), None);
        assert_eq!(seed.summary.bans, 1);
        assert_eq!(
            seed.summary.bans_refused, 0,
            "the seed's daemon has no bans"
        );
        assert!(seed.store.get(&k).is_some());
    }

    fn text_of_bans() -> String {
        let k = key(1);
        trace(&[
            L::Say(0, "dht", 1, None),
            L::Raw(format!(r#"{{"at": 10, "ban": "{k}"}}"#)),
            L::Say(20, "dht", 1, None),
        ])
    }

    /// A ban the store does not place (past its bound of bans) is no panic: the line is
    /// refused, by its place among the lines, in the library's words.
    #[test]
    fn a_ban_the_store_refuses_is_reported_by_its_line() {
        let lines: Vec<String> = (0..=peerstore::MAX_BANS)
            .map(|n| {
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
                let key = PublicKey::from_bytes(bytes);
                format!(r#"{{"at": 1, "ban": "{key}"}}"#)
            })
            .collect();
        let replay = run_under(&Settings::defaults(), &lines.join("\n"), None);
        let why = format!(
            "\"ban\": {}",
            peerstore::BanError::TooMany {
                max: peerstore::MAX_BANS
            }
        );
        assert_eq!(replay.unused, [(peerstore::MAX_BANS, why)]);
        assert_eq!(replay.summary.bans, peerstore::MAX_BANS + 1);
    }

    /// A first-hand insert of a peer removed before is a stale readmission when its
    /// announcement carries no time, or one not after the removal; not when it carries a
    /// later one, nor when it is heard on the LAN, nor after an eviction. Under
    /// `--readmit newer` the tombstone refuses the stale ones instead.
    #[test]
    fn stale_readmissions_are_first_hand_returns_on_old_news() {
        let k = key(1);
        let remove = |at: u64| {
            L::Raw(format!(
                r#"{{"at": {at}, "remove": "{k}", "tombstone_secs": 1000}}"#
            ))
        };
        let text = trace(&[
            L::Say(0, "dht", 1, None),
            remove(100),
            L::Say(110, "dht", 1, None),
            remove(200),
            L::Say(210, "dht-rendezvous", 1, Some(200)),
            remove(300),
            L::Say(310, "dht", 1, Some(301)),
            remove(400),
            L::Say(410, "lan", 1, None),
            remove(500),
            L::Say(510, "gossip-transitive", 1, Some(150)),
            L::Say(520, "dht", 1, Some(150)),
        ]);
        let seed = run_under(&Settings::seed(), &text, None);
        let s = &seed.summary;
        assert_eq!(s.stale_readmissions, 2, "at 1:50 and 3:30: {s:?}");
        assert_eq!(s.resurrections, 1, "second-hand at 8:30: {s:?}");
        let mut first_hand = Settings::defaults();
        first_hand.set_readmit(Readmit::FirstHand);
        let s = run_under(&first_hand, &text, None).summary;
        assert_eq!(
            s.stale_readmissions, 3,
            "and at 8:40, the gossip refused: {s:?}"
        );
        assert_eq!((s.readmitted, s.refused_tombstoned), (5, 1), "{s:?}");
        let mut newer = Settings::defaults();
        newer.set_readmit(Readmit::Newer);
        let s = run_under(&newer, &text, None).summary;
        assert_eq!(s.stale_readmissions, 0, "{s:?}");
        assert_eq!(s.refused_tombstoned, 4, "110, 210, 510 and 520: {s:?}");
        assert_eq!(
            s.readmitted, 2,
            "the record from after 5:00, and the LAN: {s:?}"
        );
        let json = crate::render::json::render_json(&seed, "test", &[]);
        assert_eq!(json["summary"]["stale_readmissions"], 2);

        // An evicted peer that comes back is no readmission: making room is no verdict.
        let mut evict = Settings::defaults();
        evict.store.max_peers = 1;
        evict.set_when_full(WhenFull::EvictSecondHand);
        let text = trace(&[
            L::Say(0, "gossip-transitive", 1, None),
            L::Say(10, "dht", 2, None),
            L::Raw(format!(r#"{{"at": 20, "remove": "{}"}}"#, key(2))),
            L::Say(30, "dht", 1, None),
        ]);
        let s = run_under(&evict, &text, None).summary;
        assert_eq!((s.removed_evicted, s.stale_readmissions), (1, 0), "{s:?}");
    }

    /// Newcomers a handshake proves real wait while the store is full: from their first
    /// refused announcement to their admission, or to the trace's end; one only probed, or
    /// shaken hands with only before it was refused, counts for nothing. Under
    /// evict-unproven a LAN newcomer waits for nothing.
    #[test]
    fn newcomer_waits_are_of_peers_a_handshake_proves() {
        let handshake = |at: u64, n: u8| {
            L::Raw(format!(
                r#"{{"at": {at}, "confirm": "{}", "endpoint": "192.0.2.{n}:51820"}}"#,
                key(n)
            ))
        };
        let text = trace(&[
            L::Say(0, "dht", 1, None),
            L::Say(0, "dht", 2, None),
            // A handshake before its first refusal (at 9) is no newcomer's: 6 counts not.
            handshake(5, 6),
            L::Say(9, "lan", 6, None),
            // 3 and 4, real and on the LAN, are refused; 5 is only probed.
            L::Say(10, "lan", 3, None),
            handshake(11, 3),
            L::Say(12, "lan", 4, None),
            L::Say(15, "lan", 5, None),
            L::Raw(format!(
                r#"{{"at": 16, "confirm": "{}", "endpoint": "192.0.2.5:51820", "rtt_ms": 1}}"#,
                key(5)
            )),
            L::Say(20, "lan", 3, None),
            L::Raw(format!(r#"{{"at": 25, "remove": "{}"}}"#, key(1))),
            L::Say(30, "lan", 3, None),
            L::Say(40, "lan", 4, None),
            L::Say(50, "lan", 5, None),
            handshake(60, 4),
            L::Say(100, "lan", 4, None),
        ]);
        let mut full = Settings::defaults();
        full.store.max_peers = 2;
        let s = run_under(&full, &text, None).summary;
        assert_eq!(s.refused_full, 8, "{s:?}");
        assert_eq!(
            s.newcomer_wait_max,
            Duration::from_secs(88),
            "4, to the end: {s:?}"
        );
        assert_eq!(
            s.newcomer_wait_total,
            Duration::from_secs(20 + 88),
            "3 from 0:10 to 0:30: {s:?}"
        );
        full.set_when_full(WhenFull::EvictUnproven);
        let replay = run_under(&full, &text, None);
        let s = &replay.summary;
        assert_eq!(s.refused_full, 0, "{s:?}");
        assert_eq!(
            (s.newcomer_wait_max, s.newcomer_wait_total),
            (Duration::ZERO, Duration::ZERO)
        );
        let json = crate::render::json::render_json(&replay, "test", &[]);
        assert_eq!(json["summary"]["newcomer_wait_max_secs"], 0.0);
    }
}
