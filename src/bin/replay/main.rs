//! Replays a trace of discovery announcements into a store and shows what it decided, and why.
//!
//! ```text
//! cargo run --release --bin replay -- [TRACE.jsonl | -] [--explain KEY | --compare] [--json]
//!     [--policy seed|resilient] [--keep-going]
//! ```
//!
//! With no file it replays the embedded `examples/traces/mesh.jsonl`, thirty minutes of a mesh
//! of about 200 peers (see `examples/make_trace.rs` for the story). It prints a summary of the
//! updates and events, then the final peer table. `--explain KEY` adds every endpoint decision
//! for one peer, in order, with the rule that decided; KEY is a key, a prefix of one, or a
//! host name; under `--policy resilient` it lists each move of the endpoint, with the rule the
//! store's history gives. `--json` prints all of it as one JSON object instead.
//!
//! `--compare` replays the trace under both endpoint policies and shows, side by side, in
//! total and per peer, the endpoint changes, the flaps and the time active on a stale endpoint
//! (judged by the `Yardstick` below, the same for both).
//!
//! A trace has one JSON object per line, with `at` in seconds from the trace's start
//! (2026-11-01T00:00:00Z on the store's clock), never going back:
//!
//! ```text
//! {"at": 12, "method": "dht", "peer": {"public_key": "<base64>", "endpoint": "198.51.100.7:51820"}}
//! {"at": 720, "remove": "<base64 key>"}
//! {"at": 780, "cleanup": true}
//! {"at": 90, "confirm": "<base64 key>", "endpoint": "203.0.113.9:40001", "rtt_ms": 12}
//! {"at": 330, "fail": "<base64 key>", "endpoint": "203.0.113.9:40001"}
//! ```
//!
//! `confirm` (a handshake seen, or with `rtt_ms` a probe answered) and `fail` feed the store's
//! `confirm` and `note_failure`; they matter under `--policy resilient`, and change nothing
//! under the seed policy, the default.
//!
//! `peer` is a `PeerInfo` as JSON; its `last_seen`, if any, is whole Unix seconds (as the peer
//! cache writes it) or an RFC 3339 string. `-` reads the trace from standard input. A line that
//! cannot be used (not UTF-8, not JSON, not one of these shapes) is reported on stderr with its
//! number and skipped, and the replay goes on; it then exits with status 1, so a script notices,
//! unless told `--keep-going`. Bad arguments exit with status 2.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use peerstore::{
    DiscoveryMethod, EndpointChange, EndpointRule, Evidence, ManualClock, Peer, PeerEventKind,
    PeerStore, PublicKey, RemovalCause, Subscription, UpdateError, UpdateOutcome, decide_endpoint,
};
use serde_json::{Value, json};

mod settings;
mod trace;
mod yardstick;

use settings::{Named, Policy, Settings, WhenFull};

use trace::{Line, MAX_AT_SECS, Step, parse_trace};
use yardstick::{Said, Told, Yardstick};

/// The default trace, built into the binary so the tool runs from anywhere.
const DEFAULT_TRACE: &str = include_str!("../../../examples/traces/mesh.jsonl");
/// How many bad lines are printed one by one; the rest are counted.
const MAX_REPORTED_LINES: usize = 20;

const USAGE: &str = "usage: replay [TRACE.jsonl | -] [--explain KEY | --compare] [--json] [--policy seed|resilient]\n              [--tombstone-expired SECS] [--when-full refuse|evict-second-hand] [--max-second-hand N] [--keep-going]";

const HELP: &str = r#"Replays a trace of discovery announcements into a peer store and shows what it decided.

usage: replay [TRACE.jsonl | -] [--explain KEY | --compare] [--json] [--policy seed|resilient]
              [--tombstone-expired SECS] [--when-full refuse|evict-second-hand] [--max-second-hand N]
              [--keep-going]

  TRACE.jsonl     the trace to replay; - reads standard input; none replays the built-in
                  trace (thirty minutes of a mesh of about 200 peers)
  --explain KEY   also list every endpoint decision for one peer, with the rule that decided;
                  KEY is a public key (base64), a prefix of one, or a host name
  --json          print everything as one JSON object instead of tables
  --policy P      the endpoint policy: seed (the default) or resilient
  --tombstone-expired SECS
                  keep a tombstone for SECS for every peer the cleanup expires: second-hand
                  mentions cannot bring it back (default 0: none)
  --when-full P   what a full store does with a new peer: refuse (the default) or
                  evict-second-hand (one heard first-hand takes a second-hand peer's place)
  --max-second-hand N
                  peers never heard first-hand may fill at most N slots (default: no limit)
  --compare       replay under the seed's defaults and under the settings the options above
                  give (with none, every opt-in policy: resilient, --tombstone-expired 3600,
                  evict-second-hand) and show them side by side: endpoint changes, flaps, time
                  active on a stale endpoint, resurrections, ghost cycles, first-hand peers
                  refused as full and evictions, in total and (the endpoint figures) per peer
  --keep-going    exit 0 even when some lines could not be used (they are still reported)
  -h, --help      print this

A trace is one JSON object per line, "at" in seconds from its start, never going back:

  {"at": 12, "method": "dht", "peer": {"public_key": "<base64>", "endpoint": "198.51.100.7:51820", "last_seen": 1793491200}}
  {"at": 720, "remove": "<base64 key>"}   (with "tombstone_secs": 30, remove_for)
  {"at": 780, "cleanup": true}

and, for the endpoint policies, {"at": 90, "confirm": "<key>", "endpoint": "203.0.113.9:40001",
"rtt_ms": 12} (rtt_ms optional) and {"at": 330, "fail": "<key>", "endpoint": "203.0.113.9:40001"}.

"peer" is a PeerInfo as JSON (public_key, endpoint, mesh_ip, mesh_ipv6, hostname,
routable_networks, introducer, nat_type, last_seen as Unix seconds or RFC 3339).
A line that cannot be used is reported on stderr and skipped; the exit status is then 1
unless --keep-going. Bad arguments exit with status 2.
"#;

#[derive(Debug, Default, PartialEq)]
struct Args {
    /// `None` for the built-in trace; `-` for standard input.
    trace: Option<PathBuf>,
    explain: Option<String>,
    json: bool,
    keep_going: bool,
    help: bool,
    /// The store's settings the options give.
    settings: Settings,
    /// Whether any option of the settings was given.
    settings_given: bool,
    /// `--compare`: the seed's defaults and the settings, side by side.
    compare: bool,
}

/// A number of seconds on the command line.
fn seconds_arg(flag: &str, value: Option<&str>) -> Result<Duration, String> {
    value
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(trace::seconds)
        .ok_or_else(|| {
            format!("{flag} takes seconds, from 0 to below {MAX_AT_SECS:e}, not {value:?}")
        })
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        settings: Settings::defaults(),
        ..Args::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => parsed.json = true,
            "--keep-going" => parsed.keep_going = true,
            "--policy" => {
                parsed.settings_given = true;
                parsed.settings.policy = Policy::parse(&arg, args.next().as_deref())?;
            }
            "--tombstone-expired" => {
                parsed.settings_given = true;
                let span = seconds_arg("--tombstone-expired", args.next().as_deref())?;
                parsed.settings.tombstone_expired = (!span.is_zero()).then_some(span);
            }
            "--when-full" => {
                parsed.settings_given = true;
                parsed.settings.when_full = WhenFull::parse(&arg, args.next().as_deref())?;
            }
            "--max-second-hand" => {
                parsed.settings_given = true;
                let value = args.next();
                let n = value
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        format!("--max-second-hand takes a number of peers, not {value:?}")
                    })?;
                parsed.settings.max_second_hand = Some(n);
            }
            "--compare" => parsed.compare = true,
            "--explain" => {
                let key = args.next().ok_or("--explain needs a KEY")?;
                parsed.explain = Some(key);
            }
            "-h" | "--help" => {
                parsed.help = true;
                return Ok(parsed);
            }
            flag if flag.starts_with('-') && flag != "-" => {
                return Err(format!("unknown option {flag}\n{USAGE}"));
            }
            path if parsed.trace.is_none() => parsed.trace = Some(path.into()),
            extra => {
                return Err(format!(
                    "unexpected argument {extra:?}: one trace at a time"
                ));
            }
        }
    }
    if parsed.compare && parsed.settings_given && parsed.settings == Settings::defaults() {
        return Err(
            "--compare sets the seed's defaults against the settings the options give, and \
             these are the defaults: give an opt-in one, or none for all of them"
                .into(),
        );
    }
    if parsed.compare && parsed.explain.is_some() {
        return Err("--explain follows one policy: leave out --compare".into());
    }
    Ok(parsed)
}

/// Finds the peer `--explain` names: a whole key, a unique prefix of one, or a host name.
fn resolve(wanted: &str, lines: &[Line]) -> Result<PublicKey, String> {
    if let Ok(key) = wanted.parse() {
        return Ok(key);
    }
    let mut found: Vec<PublicKey> = Vec::new();
    for line in lines {
        if let Step::Announce { peer, .. } = &line.step {
            let info = &peer.info;
            let by_name = info.hostname.as_deref() == Some(wanted);
            if (by_name || info.public_key.to_string().starts_with(wanted))
                && !found.contains(&info.public_key)
            {
                found.push(info.public_key);
            }
        }
    }
    match found.as_slice() {
        [key] => Ok(*key),
        [] => Err(format!(
            "--explain {wanted:?}: no peer in the trace has that key or host name"
        )),
        many => Err(format!(
            "--explain {wanted:?} is ambiguous: {} peers match ({}, ...)",
            many.len(),
            many[0].short()
        )),
    }
}

/// What happened to the explained peer at one moment.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Endpoint {
        at: Duration,
        method: DiscoveryMethod,
        candidate: std::net::SocketAddr,
        current: Option<(std::net::SocketAddr, DiscoveryMethod)>,
        accepted: bool,
        rule: EndpointRule,
    },
    /// The store refused the announcement as a whole: no endpoint decision was made.
    Refused {
        at: Duration,
        method: DiscoveryMethod,
        why: String,
    },
    Removed {
        at: Duration,
        cause: RemovalCause,
    },
    /// Under the resilient policy: the endpoint moved, as the store's history tells it (an
    /// announcement, a confirmation, a failure or a cleanup moved it).
    Moved {
        at: Duration,
        change: EndpointChange,
    },
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Summary {
    /// The endpoint policy.
    policy: Policy,
    /// Every setting, as [`Settings::describe`] spells it.
    settings: String,
    lines: usize,
    bad_lines: usize,
    duration: Duration,
    announcements: usize,
    inserted: usize,
    updated: usize,
    unchanged: usize,
    refused_invalid: usize,
    refused_full: usize,
    /// Refusals of a kind this tool does not know (from a newer crate).
    refused_other: usize,
    removes: usize,
    cleanups: usize,
    confirms: usize,
    failures: usize,
    /// The store's `Stats::endpoint_changes` and `endpoint_flaps` at the end.
    endpoint_changes: u64,
    flaps: u64,
    /// How long peers were active on a stale endpoint, in all ([`Yardstick`]).
    stale: Duration,
    events_new: usize,
    events_updated: usize,
    removed_explicit: usize,
    removed_expired: usize,
    /// Removals for a cause this tool does not know (from a newer crate).
    removed_other: usize,
    events_dropped: u64,
    /// Refused by a tombstone.
    refused_tombstoned: usize,
    /// New peers heard first-hand refused as full.
    refused_full_first_hand: usize,
    /// Second-hand inserts of a peer removed explicitly before.
    resurrections: usize,
    /// Second-hand inserts of a peer that expired before: a ghost's new cycle.
    ghost_cycles: usize,
    /// `Removed { cause: Evicted }` events.
    removed_evicted: usize,
    /// `New` events of readmitted peers.
    readmitted: usize,
}

/// How many peers the replay keeps per-peer figures for; past it, those no longer in the
/// store are forgotten (their figures stay in the totals).
const MAX_TRACKED: usize = 65_536;

/// What the replay saw of one peer, across its records: its endpoint changes, its flaps, and
/// how long it was active on a stale endpoint.
#[derive(Debug, Default, Clone)]
struct Track {
    name: Option<String>,
    /// The endpoint the store held after the last line that touched the peer.
    endpoint: Option<SocketAddr>,
    /// The newest history entry counted.
    last_seq: Option<u64>,
    changes: u64,
    flaps: u64,
    stale: Duration,
    /// Stale time is counted up to here.
    since: Duration,
    /// While the peer is in the store: until when it is active.
    active_until: Option<Duration>,
    /// What the trace told of its endpoints, for the yardstick.
    told: Told,
}

impl Track {
    /// Counts the stale time up to `now`, what was said so far holding since the last count.
    fn accrue(&mut self, now: Duration, yardstick: &Yardstick) -> Duration {
        let from = self.since;
        self.since = self.since.max(now);
        let (Some(endpoint), Some(active_until)) = (self.endpoint, self.active_until) else {
            return Duration::ZERO;
        };
        let start = from.max(yardstick.fresh_until(self.told.said(), endpoint));
        let end = now.min(active_until);
        let stale = end.saturating_sub(start);
        self.stale += stale;
        stale
    }
}

struct Replay {
    store: PeerStore,
    clock: ManualClock,
    events: Subscription,
    now: Duration,
    explain: Option<PublicKey>,
    decisions: Vec<Decision>,
    summary: Summary,
    yardstick: Yardstick,
    /// Per peer, what the replay saw of it.
    tracks: HashMap<PublicKey, Track>,
    /// The peers removed so far, and how (at most [`MAX_TRACKED`]): a second-hand insert of
    /// one is a resurrection or a ghost's new cycle.
    removed_keys: HashMap<PublicKey, RemovalCause>,
    /// Whether `remove` lines keep their tombstones ([`Settings::tombstones`]).
    tombstones: bool,
}

impl Replay {
    fn new(explain: Option<PublicKey>, settings: &Settings) -> Self {
        let clock = ManualClock::starting_at(trace::trace_start());
        let max_peers = peerstore::DEFAULT_MAX_PEERS;
        // One step emits at most one event per stored peer (a cleanup that drops them all),
        // and the replay drains after every step: with this buffer nothing is dropped, and
        // `dropped` would say so if it were.
        let builder = PeerStore::builder()
            .clock(clock.clone())
            .max_peers(max_peers)
            .event_buffer(max_peers + 1);
        let store = settings
            .apply(builder)
            // For the flap count; a few changes a peer are all a trace shows.
            .endpoint_history(16)
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
            yardstick: Yardstick::new(),
            tracks: HashMap::new(),
            removed_keys: HashMap::new(),
            tombstones: settings.tombstones,
            summary: Summary {
                policy: settings.policy,
                settings: settings.describe(),
                ..Summary::default()
            },
        }
    }

    fn run(&mut self, lines: &[Line]) {
        for line in lines {
            self.clock.advance(line.at - self.now);
            self.now = line.at;
            let touched = self.touched(&line.step);
            for key in &touched {
                self.accrue(key);
            }
            if let Some((key, said)) = self.step(&line.step) {
                let key_in_store = self.store.get(&key).is_some();
                if key_in_store {
                    self.track(key).told.tell(said);
                }
            }
            for key in touched {
                self.observe(key);
            }
            self.drain();
        }
        let keys: Vec<PublicKey> = self.tracks.keys().copied().collect();
        for key in &keys {
            self.accrue(key);
        }
        self.summary.lines += lines.len();
        self.summary.duration = self.now;
        self.summary.events_dropped = self.events.dropped();
        let stats = self.store.stats();
        self.summary.endpoint_changes = stats.endpoint_changes;
        self.summary.flaps = stats.endpoint_flaps;
    }

    /// Runs one step; what it tells the stale yardstick of a peer, if anything.
    fn step(&mut self, step: &Step) -> Option<(PublicKey, Said)> {
        match step {
            Step::Announce { method, peer } => {
                let info = &peer.info;
                self.summary.announcements += 1;
                let explained = self.explain == Some(info.public_key);
                let before = explained
                    .then(|| self.store.get(&info.public_key))
                    .flatten();
                match self.store.update(info.clone(), method.clone()) {
                    Ok(UpdateOutcome::Inserted) => {
                        self.summary.inserted += 1;
                        if !method.refreshes_last_seen() {
                            match self.removed_keys.get(&info.public_key) {
                                Some(RemovalCause::Expired) => self.summary.ghost_cycles += 1,
                                Some(RemovalCause::Explicit) => self.summary.resurrections += 1,
                                // Evicted: making room is not a verdict on the peer.
                                _ => {}
                            }
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
                            }
                            UpdateError::Invalid(_) => self.summary.refused_invalid += 1,
                            UpdateError::Tombstoned { .. } => self.summary.refused_tombstoned += 1,
                            _ => self.summary.refused_other += 1,
                        }
                        if explained {
                            self.decisions.push(Decision::Refused {
                                at: self.now,
                                method: method.clone(),
                                why: err.to_string(),
                            });
                        }
                        return None;
                    }
                }
                let seed = self.summary.policy == Policy::Seed;
                if let (true, true, Some(candidate)) = (seed, explained, info.endpoint) {
                    let current = before
                        .as_deref()
                        .and_then(Peer::current_endpoint)
                        .map(|(endpoint, by)| (endpoint, by.clone()));
                    let decision = decide_endpoint(current.clone(), candidate, method);
                    self.decisions.push(Decision::Endpoint {
                        at: self.now,
                        method: method.clone(),
                        candidate,
                        current,
                        accepted: decision.accepted,
                        rule: decision.rule,
                    });
                }
                let endpoint = canonical(info.endpoint?);
                // A second-hand report is as old as the time it carries.
                let at = match info.last_seen {
                    Some(seen) if !method.refreshes_last_seen() => {
                        self.now.min(self.on_trace(seen))
                    }
                    _ => self.now,
                };
                let method = method.clone();
                Some((
                    info.public_key,
                    Said::Report {
                        endpoint,
                        method,
                        at,
                    },
                ))
            }
            Step::Remove { key, tombstone } => {
                self.summary.removes += 1;
                match tombstone.filter(|_| self.tombstones) {
                    Some(span) => self.store.remove_for(key, span),
                    None => self.store.remove(key),
                };
                None
            }
            Step::Cleanup { .. } => {
                self.summary.cleanups += 1;
                self.store.cleanup_stale();
                None
            }
            Step::Confirm { key, endpoint, rtt } => {
                self.summary.confirms += 1;
                let evidence = rtt.map_or(Evidence::Handshake, |rtt| Evidence::Probe { rtt });
                self.store.confirm(key, *endpoint, evidence);
                let (endpoint, at) = (canonical(*endpoint), self.now);
                Some((*key, Said::Confirm { endpoint, at }))
            }
            Step::Fail { key, endpoint } => {
                self.summary.failures += 1;
                self.store.note_failure(key, *endpoint);
                let endpoint = canonical(*endpoint);
                Some((*key, Said::Fail { endpoint }))
            }
        }
    }

    /// The peers a step may change: its own, or for a cleanup every one in the store.
    fn touched(&self, step: &Step) -> Vec<PublicKey> {
        match step {
            Step::Announce { peer, .. } => vec![peer.info.public_key],
            Step::Remove { key, .. } | Step::Confirm { key, .. } | Step::Fail { key, .. } => {
                vec![*key]
            }
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
            self.summary.stale += track.accrue(self.now, &self.yardstick);
        }
    }

    /// Looks at a peer after a step: in the store or not, until when active, and the endpoint
    /// changes its history recorded since the last look.
    fn observe(&mut self, key: PublicKey) {
        let Some(peer) = self.store.get(&key) else {
            if let Some(track) = self.tracks.get_mut(&key) {
                // Gone: a later record starts from nothing said.
                track.active_until = None;
                track.endpoint = None;
                track.told.forget();
            }
            return;
        };
        let active_until = self.on_trace(peer.last_seen) + self.yardstick.dead_after;
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
            let at = self.now;
            let moves = moved
                .into_iter()
                .map(|change| Decision::Moved { at, change });
            self.decisions.extend(moves);
        }
    }

    /// A wall-clock time as a time on the trace (0 for one before its start).
    fn on_trace(&self, wall: SystemTime) -> Duration {
        wall.duration_since(trace::trace_start())
            .unwrap_or_default()
    }

    fn drain(&mut self) {
        for event in self.events.try_iter() {
            match event.kind {
                PeerEventKind::New => {
                    self.summary.events_new += 1;
                    self.summary.readmitted += usize::from(event.readmitted);
                }
                PeerEventKind::Updated => self.summary.events_updated += 1,
                PeerEventKind::Removed { cause } => {
                    match cause {
                        RemovalCause::Explicit => self.summary.removed_explicit += 1,
                        RemovalCause::Expired => self.summary.removed_expired += 1,
                        RemovalCause::Evicted => self.summary.removed_evicted += 1,
                        _ => self.summary.removed_other += 1,
                    }
                    if self.removed_keys.len() < MAX_TRACKED
                        || self.removed_keys.contains_key(&event.public_key)
                    {
                        self.removed_keys.insert(event.public_key, cause);
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
    fn table(&self) -> Vec<Row> {
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
            let name = |r: &Row| (r.peer.hostname.is_none(), r.peer.hostname.clone());
            name(a)
                .cmp(&name(b))
                .then(a.peer.public_key.cmp(&b.peer.public_key))
        });
        rows
    }

    fn store_wall(&self) -> SystemTime {
        trace::trace_start() + self.now
    }
}

struct Row {
    peer: Peer,
    age: Duration,
    active: bool,
}

/// The spelling the store keeps: an IPv4-mapped address is its IPv4 address.
fn canonical(endpoint: SocketAddr) -> SocketAddr {
    SocketAddr::new(endpoint.ip().to_canonical(), endpoint.port())
}

/// `m:ss` from the trace's start.
fn clock_time(at: Duration) -> String {
    let s = at.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// An age such as `45s`, `4m05s` or `3h07m`.
fn age(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

fn via(peer: &Peer) -> String {
    let names: Vec<&str> = peer
        .discovered_via
        .iter()
        .map(peerstore::DiscoveryMethod::as_str)
        .collect();
    names.join(",")
}

fn render_text(replay: &Replay, source: &str, explained: Option<&PublicKey>) -> String {
    let s = &replay.summary;
    let rows = replay.table();
    let active = rows.iter().filter(|r| r.active).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replayed {source}: {} lines over {}, {} bad",
        s.lines,
        clock_time(s.duration),
        s.bad_lines
    );
    let _ = writeln!(
        out,
        "announcements: {} -> {} new, {} updated, {} unchanged; refused: {} invalid, {} store full",
        s.announcements, s.inserted, s.updated, s.unchanged, s.refused_invalid, s.refused_full
    );
    let _ = writeln!(out, "removes: {}; cleanups: {}", s.removes, s.cleanups);
    let _ = writeln!(
        out,
        "endpoint policy {}: {} confirmations, {} failures; {} endpoint changes, {} flaps, {} active on a stale endpoint",
        s.policy,
        s.confirms,
        s.failures,
        s.endpoint_changes,
        s.flaps,
        age(s.stale)
    );
    let _ = writeln!(
        out,
        "admission ({}): {} resurrections, {} ghost cycles, {} first-hand peers refused as full, {} evictions, {} refused by tombstones, {} readmitted",
        s.settings,
        s.resurrections,
        s.ghost_cycles,
        s.refused_full_first_hand,
        s.removed_evicted,
        s.refused_tombstoned,
        s.readmitted
    );
    let _ = writeln!(
        out,
        "events: {} new, {} updated, {} removed ({} explicit, {} expired, {} evicted), {} dropped",
        s.events_new,
        s.events_updated,
        s.removed_explicit + s.removed_expired + s.removed_evicted + s.removed_other,
        s.removed_explicit,
        s.removed_expired,
        s.removed_evicted,
        s.events_dropped
    );
    let _ = writeln!(
        out,
        "peers at the end: {} ({} active, {} dead)\n",
        rows.len(),
        active,
        rows.len() - active
    );
    let _ = writeln!(
        out,
        "{:<8}  {:<12}  {:<28}  {:<17}  {:<42}  {:>6}  STATE",
        "KEY", "HOSTNAME", "ENDPOINT", "METHOD", "DISCOVERED VIA", "AGE"
    );
    for row in &rows {
        let p = &row.peer;
        let _ = writeln!(
            out,
            "{:<8}  {:<12}  {:<28}  {:<17}  {:<42}  {:>6}  {}",
            p.public_key.short(),
            or_dash(p.hostname.as_ref().map(ToString::to_string)),
            or_dash(p.endpoint.map(|e| e.to_string())),
            or_dash(p.endpoint_method.as_ref().map(ToString::to_string)),
            via(p),
            age(row.age),
            if row.active { "active" } else { "dead" }
        );
    }
    if let Some(key) = explained {
        let name = replay.store.get(key).and_then(|p| p.hostname.clone());
        let _ = writeln!(
            out,
            "\nendpoint decisions for {key}{}:",
            name.map(|n| format!(" ({n})")).unwrap_or_default()
        );
        if replay.decisions.is_empty() {
            let _ = writeln!(out, "  (none: no announcement of it carried an endpoint)");
        }
        for decision in &replay.decisions {
            let _ = writeln!(out, "  {}", describe(decision));
        }
    }
    out
}

fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Endpoint {
            at,
            method,
            candidate,
            current,
            accepted,
            rule,
        } => format!(
            "{:>6}  {:<18} rank {:>3}  {:<28} over {:<42} {} ({rule})",
            clock_time(*at),
            method.as_str(),
            method.rank(),
            candidate.to_string(),
            current
                .as_ref()
                .map_or("no endpoint".into(), |(ep, m)| format!(
                    "{ep} ({m}, rank {})",
                    m.rank()
                )),
            match (*accepted, *rule) {
                (_, EndpointRule::Unchanged) => "unchanged",
                (true, _) => "accepted",
                (false, _) => "refused",
            },
        ),
        Decision::Refused { at, method, why } => {
            format!(
                "{:>6}  {:<18} refused as a whole: {why}",
                clock_time(*at),
                method.as_str()
            )
        }
        Decision::Moved { at, change } => format!(
            "{:>6}  moved to {:<28} from {:<28} counted as set by {} ({})",
            clock_time(*at),
            change.to.to_string(),
            change.from.map_or("no endpoint".into(), |e| e.to_string()),
            change.method.as_str(),
            change.rule
        ),
        Decision::Removed { at, cause } => format!(
            "{:>6}  removed from the store ({})",
            clock_time(*at),
            match cause {
                RemovalCause::Explicit => "explicitly",
                RemovalCause::Expired => "expired by the cleanup",
                _ => cause.as_str(),
            }
        ),
    }
}

fn render_json(replay: &Replay, source: &str, bad: &[(usize, String)]) -> Value {
    let s = &replay.summary;
    let peers: Vec<Value> = replay
        .table()
        .iter()
        .map(|row| {
            let p = &row.peer;
            let track = replay.tracks.get(&p.public_key);
            json!({
                "public_key": p.public_key.to_string(),
                "hostname": p.hostname,
                "endpoint": p.endpoint.map(|e| e.to_string()),
                "endpoint_method": p.endpoint_method.as_ref().map(peerstore::DiscoveryMethod::as_str),
                "discovered_via": p.discovered_via.iter().map(peerstore::DiscoveryMethod::as_str).collect::<Vec<_>>(),
                "mesh_ip": p.mesh_ip,
                "mesh_ipv6": p.mesh_ipv6,
                "routable_networks": p.routable_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "introducer": p.introducer,
                "nat_type": p.nat_type.map(|n| n.as_str()),
                "latency_ms": p.latency.map(|l| l.as_secs_f64() * 1e3),
                "age_secs": row.age.as_secs(),
                "state": if row.active { "active" } else { "dead" },
                "endpoint_changes": track.map_or(0, |t| t.changes),
                "endpoint_flaps": track.map_or(0, |t| t.flaps),
                "endpoint_stale": track.map_or(0.0, |t| t.stale.as_secs_f64()),
            })
        })
        .collect();
    let decisions: Vec<Value> = replay
        .decisions
        .iter()
        .map(|d| match d {
            Decision::Endpoint {
                at,
                method,
                candidate,
                current,
                accepted,
                rule,
            } => json!({
                "at": at.as_secs_f64(), "method": method.as_str(), "rank": method.rank(),
                "candidate": candidate.to_string(),
                "current": current.as_ref().map(|(ep, _)| ep.to_string()),
                "current_method": current.as_ref().map(|(_, m)| m.as_str()),
                "accepted": accepted, "rule": rule.as_str(),
            }),
            Decision::Refused { at, method, why } => json!({
                "at": at.as_secs_f64(), "method": method.as_str(), "refused": why,
            }),
            Decision::Removed { at, cause } => json!({
                "at": at.as_secs_f64(),
                "removed": cause.as_str(),
            }),
            Decision::Moved { at, change } => json!({
                "at": at.as_secs_f64(), "moved_to": change.to.to_string(),
                "from": change.from.map(|e| e.to_string()), "method": change.method.as_str(),
                "rule": change.rule.as_str(), "flap": change.flap,
            }),
        })
        .collect();
    json!({
        "trace": source,
        "summary": {
            "lines": s.lines, "bad_lines": s.bad_lines, "seconds": s.duration.as_secs_f64(),
            "announcements": s.announcements, "inserted": s.inserted, "updated": s.updated,
            "unchanged": s.unchanged, "refused_invalid": s.refused_invalid,
            "refused_full": s.refused_full, "refused_other": s.refused_other,
            "removes": s.removes, "cleanups": s.cleanups,
            "policy": s.policy.name(), "settings": s.settings, "confirms": s.confirms, "failures": s.failures,
            "resurrections": s.resurrections, "ghost_cycles": s.ghost_cycles,
            "refused_full_first_hand": s.refused_full_first_hand,
            "refused_tombstoned": s.refused_tombstoned, "readmitted": s.readmitted,
            "endpoint_changes": s.endpoint_changes, "flaps": s.flaps,
            "endpoint_stale": s.stale.as_secs_f64(),
            "events": {
                "new": s.events_new, "updated": s.events_updated,
                "removed_explicit": s.removed_explicit, "removed_expired": s.removed_expired,
                "removed_evicted": s.removed_evicted, "removed_other": s.removed_other,
                "dropped": s.events_dropped,
            },
        },
        "bad_lines": bad.iter().map(|(n, why)| json!({"line": n, "reason": why})).collect::<Vec<_>>(),
        "peers": peers,
        "decisions": replay.explain.map(|_| decisions),
    })
}

/// How many peers `--compare` lists one by one; `--json` lists them all.
const MAX_COMPARED_PEERS: usize = 30;

fn pretty(json: &Value) -> String {
    let mut text = serde_json::to_string_pretty(json).expect("JSON values serialize");
    text.push('\n');
    text
}

/// One peer's figures under both policies, for `--compare`.
struct Compared<'a> {
    key: PublicKey,
    seed: Option<&'a Track>,
    opt_in: Option<&'a Track>,
}

impl Compared<'_> {
    fn figures(track: Option<&Track>) -> (u64, u64, Duration) {
        track.map_or((0, 0, Duration::ZERO), |t| (t.changes, t.flaps, t.stale))
    }

    fn name(&self) -> Option<&str> {
        self.seed.or(self.opt_in).and_then(|t| t.name.as_deref())
    }

    fn differs(&self) -> bool {
        Self::figures(self.seed) != Self::figures(self.opt_in)
    }
}

/// Every peer either replay saw, by host name and then key, with its figures under each.
fn compared<'a>(seed: &'a Replay, opt_in: &'a Replay) -> Vec<Compared<'a>> {
    let mut keys: Vec<PublicKey> = seed
        .tracks
        .keys()
        .chain(opt_in.tracks.keys())
        .copied()
        .collect();
    keys.sort();
    keys.dedup();
    let mut peers: Vec<Compared<'a>> = keys
        .into_iter()
        .map(|key| Compared {
            key,
            seed: seed.tracks.get(&key),
            opt_in: opt_in.tracks.get(&key),
        })
        .collect();
    peers.sort_by(|a, b| {
        let name = |c: &Compared<'_>| (c.name().is_none(), c.name().map(str::to_owned));
        name(a).cmp(&name(b)).then(a.key.cmp(&b.key))
    });
    peers
}

fn compare_text(seed: &Replay, opt_in: &Replay, source: &str) -> String {
    let (a, b) = (&seed.summary, &opt_in.summary);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replayed {source} twice: {} lines over {}, {} bad; {} confirmations, {} failures",
        a.lines,
        clock_time(a.duration),
        a.bad_lines,
        a.confirms,
        a.failures
    );
    let _ = writeln!(out, "SEED: the seed's defaults; OPT-IN: {}\n", b.settings);
    let _ = writeln!(out, "{:<36}  {:>10}  {:>10}", "", "SEED", "OPT-IN");
    let both = |figure: fn(&Summary) -> String| (figure(a), figure(b));
    let rows = [
        ("endpoint changes", both(|s| s.endpoint_changes.to_string())),
        ("flaps (A -> B -> A)", both(|s| s.flaps.to_string())),
        ("active on a stale endpoint", both(|s| age(s.stale))),
        ("updated events", both(|s| s.events_updated.to_string())),
        (
            "resurrections (after a removal)",
            both(|s| s.resurrections.to_string()),
        ),
        (
            "ghost cycles (after an expiry)",
            both(|s| s.ghost_cycles.to_string()),
        ),
        (
            "first-hand peers refused as full",
            both(|s| s.refused_full_first_hand.to_string()),
        ),
        ("evictions", both(|s| s.removed_evicted.to_string())),
        (
            "peers at the end",
            (
                seed.table().len().to_string(),
                opt_in.table().len().to_string(),
            ),
        ),
    ];
    for (what, (x, y)) in rows {
        let _ = writeln!(out, "{what:<36}  {x:>10}  {y:>10}");
    }
    let _ = writeln!(
        out,
        "\nstale: no report within the resilient policy's window for its method, no confirmation\n\
         within its trust window, or a failure since; counted while the peer is active.\n\
         resurrections and ghost cycles: a second-hand insert of a peer removed, or expired, before."
    );
    let differ: Vec<Compared<'_>> = compared(seed, opt_in)
        .into_iter()
        .filter(Compared::differs)
        .collect();
    let _ = writeln!(
        out,
        "\npeers whose endpoint figures differ: {} (changes, flaps, stale time; seed / opt-in)\n",
        differ.len()
    );
    if !differ.is_empty() {
        let _ = writeln!(
            out,
            "{:<8}  {:<12}  {:>9}  {:>7}  {:>17}",
            "KEY", "HOSTNAME", "CHANGES", "FLAPS", "STALE"
        );
    }
    for peer in differ.iter().take(MAX_COMPARED_PEERS) {
        let (c0, f0, s0) = Compared::figures(peer.seed);
        let (c1, f1, s1) = Compared::figures(peer.opt_in);
        let _ = writeln!(
            out,
            "{:<8}  {:<12}  {:>9}  {:>7}  {:>17}",
            peer.key.short(),
            peer.name().unwrap_or("-"),
            format!("{c0} / {c1}"),
            format!("{f0} / {f1}"),
            format!("{} / {}", age(s0), age(s1)),
        );
    }
    if differ.len() > MAX_COMPARED_PEERS {
        let _ = writeln!(
            out,
            "... and {} more (--json lists every peer)",
            differ.len() - MAX_COMPARED_PEERS
        );
    }
    out
}

fn compare_json(seed: &Replay, opt_in: &Replay, source: &str, bad: &[(usize, String)]) -> Value {
    let figures = |track: Option<&Track>| {
        let (changes, flaps, stale) = Compared::figures(track);
        json!({"endpoint_changes": changes, "endpoint_flaps": flaps, "endpoint_stale": stale.as_secs_f64()})
    };
    let peers: Vec<Value> = compared(seed, opt_in)
        .iter()
        .map(|peer| {
            json!({
                "public_key": peer.key.to_string(),
                "hostname": peer.name(),
                "seed": figures(peer.seed),
                "opt_in": figures(peer.opt_in),
            })
        })
        .collect();
    json!({
        "trace": source,
        "seed": render_json(seed, source, bad),
        "opt_in": render_json(opt_in, source, bad),
        "peers": peers,
    })
}

pub(crate) fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let (bytes, source) = match read_trace(args.trace.as_deref()) {
        Ok(read) => read,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let (lines, bad) = parse_trace(&bytes);
    for (number, reason) in bad.iter().take(MAX_REPORTED_LINES) {
        eprintln!("{source}: line {number} skipped: {reason}");
    }
    if bad.len() > MAX_REPORTED_LINES {
        eprintln!(
            "{source}: {} more bad lines skipped",
            bad.len() - MAX_REPORTED_LINES
        );
    }
    let explain = match args
        .explain
        .as_deref()
        .map(|k| resolve(k, &lines))
        .transpose()
    {
        Ok(key) => key,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let run = |settings: &Settings| {
        let mut replay = Replay::new(explain, settings);
        replay.summary.bad_lines = bad.len();
        replay.run(&lines);
        replay
    };
    let output = if args.compare {
        let opt_in = if args.settings_given {
            args.settings.clone()
        } else {
            Settings::opt_in()
        };
        let (seed, opt_in) = (run(&Settings::seed()), run(&opt_in));
        if args.json {
            pretty(&compare_json(&seed, &opt_in, &source, &bad))
        } else {
            compare_text(&seed, &opt_in, &source)
        }
    } else {
        let replay = run(&args.settings);
        if args.json {
            pretty(&render_json(&replay, &source, &bad))
        } else {
            render_text(&replay, &source, explain.as_ref())
        }
    };
    print!("{output}");
    if bad.is_empty() || args.keep_going {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{source}: {} lines could not be used (--keep-going to exit 0 all the same)",
            bad.len()
        );
        ExitCode::FAILURE
    }
}

/// The trace's bytes and a name for it: the built-in trace, standard input (`-`) or a file.
fn read_trace(path: Option<&std::path::Path>) -> Result<(Vec<u8>, String), String> {
    use std::io::Read as _;
    match path {
        None => Ok((
            DEFAULT_TRACE.as_bytes().to_vec(),
            "examples/traces/mesh.jsonl (built in)".to_string(),
        )),
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|err| format!("cannot read the trace from standard input: {err}"))?;
            Ok((bytes, "standard input".to_string()))
        }
        Some(path) => std::fs::read(path)
            .map(|bytes| (bytes, path.display().to_string()))
            .map_err(|err| format!("cannot read trace {}: {err}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resilient endpoint policy alone.
    fn resilient() -> Settings {
        Settings {
            policy: Policy::Resilient,
            ..Settings::defaults()
        }
    }

    fn replay(text: &str, explain: Option<&str>) -> (Replay, Vec<(usize, String)>) {
        let (lines, bad) = parse_trace(text.as_bytes());
        let key = explain.map(|k| resolve(k, &lines).unwrap());
        let mut replay = Replay::new(key, &Settings::seed());
        replay.summary.bad_lines = bad.len();
        replay.run(&lines);
        (replay, bad)
    }

    fn by_name(replay: &Replay, name: &str) -> Peer {
        replay
            .table()
            .into_iter()
            .find(|r| r.peer.hostname.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not in the final table"))
            .peer
    }

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

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(a.iter().map(std::string::ToString::to_string));
        let none = args(&[]).unwrap();
        assert_eq!(
            (none.settings, none.settings_given),
            (Settings::defaults(), false)
        );
        let all = args(&["t.jsonl", "--explain", "abc", "--json"]).unwrap();
        assert_eq!(all.trace, Some("t.jsonl".into()));
        assert_eq!(all.explain.as_deref(), Some("abc"));
        assert!(all.json);
        assert!(args(&["--explain"]).unwrap_err().contains("KEY"));
        assert!(
            args(&["--frobnicate"])
                .unwrap_err()
                .contains("--frobnicate")
        );
        assert!(args(&["a", "b"]).is_err());
        let stdin = args(&["-", "--keep-going"]).unwrap();
        assert_eq!(stdin.trace, Some("-".into()));
        assert!(stdin.keep_going);
        assert!(args(&["--json", "--help", "--frobnicate"]).unwrap().help);
        assert!(args(&["--compare", "--json"]).unwrap().compare);
        let both = args(&["--compare", "--policy", "seed"]).unwrap_err();
        assert!(both.contains("defaults"), "{both}");
        let opt = args(&[
            "--compare",
            "--tombstone-expired",
            "60",
            "--when-full",
            "evict-second-hand",
            "--max-second-hand",
            "500",
        ])
        .unwrap();
        assert_eq!(
            opt.settings.tombstone_expired,
            Some(Duration::from_secs(60))
        );
        assert_eq!(opt.settings.when_full, WhenFull::EvictSecondHand);
        assert_eq!(opt.settings.max_second_hand, Some(500));
        assert!(
            args(&["--when-full", "panic"])
                .unwrap_err()
                .contains("evict-second-hand")
        );
        assert!(
            args(&["--tombstone-expired", "-1"])
                .unwrap_err()
                .contains("seconds")
        );
        assert!(
            args(&["--max-second-hand", "many"])
                .unwrap_err()
                .contains("number")
        );
        let explain = args(&["--explain", "x", "--compare"]).unwrap_err();
        assert!(explain.contains("--explain"), "{explain}");
        assert!(args(&["-x"]).is_err());
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
        assert_eq!(s.removed_explicit, 2, "the revoked key, and node-105");
        assert_eq!(s.events_dropped, 0);
        assert!(
            s.removed_expired >= 900 - s.refused_full,
            "the flood expired: {s:?}"
        );

        let table = replay.table();
        assert!(
            (150..=250).contains(&table.len()),
            "about 200 peers at the end: {}",
            table.len()
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
                Decision::Endpoint { rule, .. } => rule.as_str(),
                Decision::Removed { .. } => "removed",
                Decision::Refused { .. } => "refused",
                Decision::Moved { .. } => "moved",
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

    fn run_under(settings: &Settings, text: &str, explain: Option<&str>) -> Replay {
        let (lines, bad) = parse_trace(text.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        let key = explain.map(|k| resolve(k, &lines).unwrap());
        let mut replay = Replay::new(key, settings);
        replay.run(&lines);
        replay
    }

    fn track<'a>(replay: &'a Replay, name: &str) -> &'a Track {
        replay
            .tracks
            .values()
            .find(|t| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} was never seen"))
    }

    /// Issue 13's scenes in the built-in story, as `--compare` shows them.
    #[test]
    fn the_default_trace_shows_what_the_resilient_policy_answers() {
        let seed = run_under(&Settings::seed(), DEFAULT_TRACE, None);
        let resilient = run_under(&resilient(), DEFAULT_TRACE, Some("laptop-ben"));
        for replay in [&seed, &resilient] {
            let s = &replay.summary;
            assert!(s.confirms > 1000 && s.failures == 1, "{s:?}");
            let changes: u64 = replay.tracks.values().map(|t| t.changes).sum();
            let flaps: u64 = replay.tracks.values().map(|t| t.flaps).sum();
            let stale: Duration = replay.tracks.values().map(|t| t.stale).sum();
            assert_eq!(
                (changes, flaps, stale),
                (s.endpoint_changes, s.flaps, s.stale),
                "the peers add up to the totals ({})",
                s.policy
            );
        }
        // (A) laptop-ben left the LAN at 6:00: the seed policy keeps the LAN endpoint to the
        // end; the resilient one moves when the LAN endpoint fails, at 6:45.
        let ben = |r: &Replay| by_name(r, "laptop-ben").endpoint.unwrap().to_string();
        assert_eq!(ben(&seed), "192.168.7.60:51820");
        assert!(track(&seed, "laptop-ben").stale >= Duration::from_secs(20 * 60));
        assert_eq!(ben(&resilient), "203.0.113.9:40001");
        assert_eq!(track(&resilient, "laptop-ben").stale, Duration::ZERO);
        match resilient.decisions.as_slice() {
            [Decision::Moved { at, change }] => {
                assert_eq!(*at, Duration::from_secs(405));
                assert_eq!(change.rule, EndpointRule::Failed);
            }
            other => panic!("one move, on the failure: {other:?}"),
        }
        // (B) node-141's two DHT records, handed out in turn.
        let mirror = |r: &Replay| {
            let t = track(r, "node-141");
            (t.changes, t.flaps)
        };
        assert_eq!(mirror(&seed), (20, 19), "every announcement moves it");
        assert_eq!(mirror(&resilient), (0, 0), "the confirmed one holds");
        // In all: fewer changes, no flaps, less time on a stale endpoint.
        let (a, b) = (&seed.summary, &resilient.summary);
        assert!(b.endpoint_changes < a.endpoint_changes, "{a:?} {b:?}");
        assert_eq!((a.flaps >= 19, b.flaps), (true, 0));
        assert!(b.stale * 3 < a.stale, "{:?} vs {:?}", b.stale, a.stale);

        let text = compare_text(&seed, &resilient, "test");
        assert!(
            text.contains("laptop-ben") && text.contains("node-141"),
            "{text}"
        );
        let json = compare_json(&seed, &resilient, "test", &[]);
        assert_eq!(json["seed"]["summary"]["flaps"], a.flaps);
        assert_eq!(
            json["opt_in"]["summary"]["endpoint_changes"],
            b.endpoint_changes
        );
        let peers = json["peers"].as_array().unwrap();
        let ben = peers
            .iter()
            .find(|p| p["hostname"] == "laptop-ben")
            .unwrap();
        assert!(
            ben["seed"]["endpoint_stale"].as_f64().unwrap() >= 1200.0,
            "{ben}"
        );
        assert_eq!(ben["opt_in"]["endpoint_stale"], 0.0, "{ben}");
    }

    /// Issue 14's scenes in the built-in story: the resurrection of node-105, the ghost far-41,
    /// and the first-hand newcomers locked out by the flood.
    #[test]
    fn the_default_trace_shows_what_tombstones_and_eviction_answer() {
        let seed = run_under(&Settings::seed(), DEFAULT_TRACE, None);
        let opt_in = run_under(&Settings::opt_in(), DEFAULT_TRACE, Some("far-41"));
        let (a, b) = (&seed.summary, &opt_in.summary);
        assert!(a.resurrections >= 1, "node-105 is back at 14:02: {a:?}");
        assert!(
            a.ghost_cycles >= 2,
            "far-41 comes back every 12 minutes: {a:?}"
        );
        assert!(
            a.refused_full_first_hand >= 1,
            "locked out by the flood: {a:?}"
        );
        assert_eq!(a.removed_evicted, 0);
        assert_eq!(
            (b.resurrections, b.ghost_cycles, b.refused_full_first_hand),
            (0, 0, 0),
            "{b:?}"
        );
        assert!(
            b.removed_evicted >= 2,
            "each newcomer took a fake's place: {b:?}"
        );
        assert!(
            b.refused_tombstoned > 0 && b.readmitted >= 1,
            "laptop-ana: {b:?}"
        );
        for name in ["node-142", "lan-13"] {
            assert!(
                opt_in
                    .table()
                    .iter()
                    .any(|r| r.peer.hostname.as_deref() == Some(name))
            );
        }
        // far-41, the least recently heard second-hand peer, is the first evicted and comes
        // back; then it expires once and is refused to the end.
        let rules: Vec<&str> = opt_in
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Removed { cause, .. } => Some(cause.as_str()),
                Decision::Refused { .. } => Some("refused"),
                _ => None,
            })
            .collect();
        let expired = rules.iter().position(|r| *r == "expired").expect("expired");
        assert_eq!(rules[..expired], ["evicted"], "{rules:?}");
        assert!(rules.len() > expired + 5, "{rules:?}");
        assert!(
            rules[expired + 1..].iter().all(|r| *r == "refused"),
            "{rules:?}"
        );
        let text = compare_text(&seed, &opt_in, "test");
        assert!(
            text.contains("ghost cycles") && text.contains("evictions"),
            "{text}"
        );
        assert!(text.contains(&opt_in.summary.settings), "{text}");
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

    #[test]
    fn text_and_json_show_the_same_table() {
        let (replay, bad) = replay(DEFAULT_TRACE, Some("node-007"));
        let text = render_text(&replay, "test", replay.explain.as_ref());
        let json = render_json(&replay, "test", &bad);
        let peers = json["peers"].as_array().unwrap();
        assert_eq!(peers.len(), replay.table().len());
        assert!(
            text.contains("IPv6 preferred"),
            "node-007's switch is explained"
        );
        for peer in peers {
            let short = &peer["public_key"].as_str().unwrap()[..8];
            assert!(text.contains(short));
        }
        assert!(json["decisions"].as_array().is_some_and(|d| !d.is_empty()));
    }

    /// Issue 13 (B) as a trace: two DHT reporters alternate, and the first endpoint is
    /// confirmed; the resilient policy does not flap, and a failure moves it at once.
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
}
