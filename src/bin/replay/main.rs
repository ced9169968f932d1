//! `replay`: replays a trace of discovery announcements into a peer store and shows what it
//! decided, and why. `replay --help` prints its usage, its options and the trace's format:
//! they are written once, in [`HELP`] (whose first lines are [`USAGE`]), and nowhere else.
//! With no trace it replays the built-in one, `examples/traces/mesh.jsonl` (its story is in
//! `examples/make_trace.rs`, which writes it).
//!
//! The rooms:
//!
//! - `trace`: one line of a trace as a type, which the replay reads and `make_trace` writes;
//! - `settings`: the store settings a replay runs under, and the one function that turns
//!   them into a store builder's;
//! - `engine`: the `Replay` that drives a store through a trace and keeps what it saw;
//! - `yardstick`: when a peer is active on a stale endpoint, judged alike for every policy;
//! - `render`: the replay as text, as JSON, and two replays side by side (`--compare`).
//!
//! This file reads the arguments and the trace, and runs `main`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod engine;
mod explain;
mod play;
mod render;
mod settings;
mod trace;
mod yardstick;

use engine::Replay;
use explain::resolve;
use render::compare::{compare_json, compare_text};
use render::json::render_json;
use render::pretty;
use render::text::render_text;
use settings::{Named, Policy, Readmit, Settings, WhenFull};
use trace::{MAX_AT_SECS, parse_numbered};

/// The default trace, built into the binary so the tool runs from anywhere.
const DEFAULT_TRACE: &str = include_str!("../../../examples/traces/mesh.jsonl");
/// How many bad lines are printed one by one; the rest are counted.
const MAX_REPORTED_LINES: usize = 20;

/// The usage lines, [`USAGE`] and the head of [`HELP`] alike.
macro_rules! usage {
    () => {
        "usage: replay [TRACE.jsonl | -] [--explain KEY | --compare] [--json] [--policy seed|resilient]
              [--tombstone-expired SECS] [--readmit first-hand|newer|never]
              [--when-full refuse|evict-second-hand|evict-unproven] [--max-second-hand N]
              [--max-unproven N] [--keep-going]"
    };
}

/// What a bad argument's message ends with.
const USAGE: &str = usage!();

/// `--help`: the usage, every option, and the trace's format.
const HELP: &str = concat!(
    "Replays a trace of discovery announcements into a peer store and shows what it decided.\n\n",
    usage!(),
    r#"

  TRACE.jsonl     the trace to replay; - reads standard input; none replays the built-in
                  trace (thirty minutes of a mesh of about 200 peers)
  --explain KEY   also list every endpoint decision for one peer, with the rule that decided;
                  KEY is a public key (base64), a prefix of one, or a host name
  --json          print everything as one JSON object instead of tables
  --policy P      the endpoint policy: seed (the default) or resilient
  --tombstone-expired SECS
                  keep a tombstone for SECS for every peer the cleanup expires: second-hand
                  mentions cannot bring it back (default 0: none)
  --when-full P   what a full store does with a new peer: refuse (the default),
                  evict-second-hand (one heard first-hand takes a second-hand peer's place)
                  or evict-unproven (a peer proven by a handshake is never evicted; one heard
                  on the LAN takes the place of a peer never proven, another first-hand one
                  only a second-hand peer's)
  --readmit R     what lifts a tombstone early: first-hand (the default: any first-hand
                  method), newer (only news from after the removal: a LAN announcement, or
                  a record whose last_seen is later than the removal) or never
  --max-second-hand N
                  peers never heard first-hand may fill at most N slots (default: no limit)
  --max-unproven N
                  peers never proven by a handshake may fill at most N slots (default: no
                  limit)
  --compare       replay under the seed's defaults and under the settings the options above
                  give (with none, every opt-in policy: resilient, --tombstone-expired 3600,
                  --readmit newer, evict-unproven) and show them side by side: endpoint
                  changes, flaps, time active on a stale endpoint, resurrections, ghost
                  cycles, stale readmissions, announcements refused as banned, first-hand
                  peers refused as full, how long newcomers a handshake proves waited, and
                  evictions, in total and (the endpoint figures) per peer. The seed's daemon
                  has no tombstones and no bans: on its side a remove_for is a remove, and
                  ban and unban lines are not played
  --keep-going    exit 0 even when some lines could not be used (they are still reported)
  -h, --help      print this

A trace is one JSON object per line, "at" in seconds from its start, never going back:

  {"at": 12, "method": "dht", "peer": {"public_key": "<base64>", "endpoint": "198.51.100.7:51820", "last_seen": 1793491200}}
  {"at": 720, "remove": "<base64 key>"}   (with "tombstone_secs": 30, remove_for)
  {"at": 780, "cleanup": true}

and, for the endpoint policies, {"at": 90, "confirm": "<key>", "endpoint": "203.0.113.9:40001",
"rtt_ms": 12} (rtt_ms optional) and {"at": 330, "fail": "<key>", "endpoint": "203.0.113.9:40001"}.
A confirm with rtt_ms is a probe answered; without, a handshake (the peer is proven).
The operator's bans: {"at": 900, "ban": "<key>", "secs": 3600, "reason": "key revoked"} (secs
and reason optional: no secs bans until an unban; a reason is at most 256 bytes, with no
control character) and {"at": 960, "unban": "<key>"}.

"peer" is a PeerInfo as JSON (public_key, endpoint, mesh_ip, mesh_ipv6, hostname,
routable_networks, introducer, nat_type, last_seen as Unix seconds or RFC 3339).
A line that cannot be used is reported on stderr and skipped; the exit status is then 1
unless --keep-going. Bad arguments exit with status 2.
"#
);

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

/// A number of peers on the command line.
fn peers_arg(flag: &str, value: Option<&str>) -> Result<usize, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} takes a number of peers, not {value:?}"))
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
                let policy = Policy::parse(&arg, args.next().as_deref())?;
                parsed.settings.set_policy(policy);
            }
            "--tombstone-expired" => {
                parsed.settings_given = true;
                let span = seconds_arg(&arg, args.next().as_deref())?;
                parsed.settings.store.tombstone_expired = (!span.is_zero()).then_some(span);
            }
            "--when-full" => {
                parsed.settings_given = true;
                let when_full = WhenFull::parse(&arg, args.next().as_deref())?;
                parsed.settings.set_when_full(when_full);
            }
            "--readmit" => {
                parsed.settings_given = true;
                let readmit = Readmit::parse(&arg, args.next().as_deref())?;
                parsed.settings.set_readmit(readmit);
            }
            "--max-second-hand" => {
                parsed.settings_given = true;
                let n = peers_arg(&arg, args.next().as_deref())?;
                parsed.settings.store.max_second_hand = Some(n);
            }
            "--max-unproven" => {
                parsed.settings_given = true;
                let n = peers_arg(&arg, args.next().as_deref())?;
                parsed.settings.store.max_unproven = Some(n);
            }
            "--compare" => parsed.compare = true,
            "--explain" => {
                let key = args.next().ok_or_else(|| format!("{arg} needs a KEY"))?;
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

fn main() -> ExitCode {
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
    let (numbered, mut bad) = parse_numbered(&bytes);
    let (numbers, lines): (Vec<usize>, Vec<trace::Line>) = numbered.into_iter().unzip();
    report(&source, &bad, "skipped");
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
    // A line the store refused as a whole (a ban it did not place) could not be used either:
    // reported by its number once the replay ran, and counted with the bad lines.
    let unused = |replay: &Replay| -> Vec<(usize, String)> {
        let unused = replay.unused.iter();
        unused.map(|(i, why)| (numbers[*i], why.clone())).collect()
    };
    let run = |settings: &Settings| {
        let mut replay = Replay::new(explain, settings);
        replay.run(&lines);
        replay.summary.bad_lines = bad.len() + replay.unused.len();
        replay
    };
    let refused: Vec<(usize, String)>;
    let output = if args.compare {
        let opt_in = if args.settings_given {
            args.settings.clone()
        } else {
            Settings::opt_in()
        };
        let (seed, opt_in) = (run(&Settings::seed()), run(&opt_in));
        // The sides may refuse different lines (the seed's plays no bans): all of them.
        let mut both = unused(&opt_in);
        both.extend(unused(&seed));
        both.sort();
        both.dedup();
        refused = both;
        bad.extend(refused.iter().cloned());
        bad.sort();
        if args.json {
            pretty(&compare_json(&seed, &opt_in, &source, &bad))
        } else {
            compare_text(&seed, &opt_in, &source)
        }
    } else {
        let replay = run(&args.settings);
        refused = unused(&replay);
        bad.extend(refused.iter().cloned());
        bad.sort();
        if args.json {
            pretty(&render_json(&replay, &source, &bad))
        } else {
            render_text(&replay, &source, explain.as_ref())
        }
    };
    report(&source, &refused, "not used");
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

/// Reports lines that could not be used on stderr, the first [`MAX_REPORTED_LINES`] one by
/// one: `what` became of them.
fn report(source: &str, lines: &[(usize, String)], what: &str) {
    for (number, reason) in lines.iter().take(MAX_REPORTED_LINES) {
        eprintln!("{source}: line {number} {what}: {reason}");
    }
    if lines.len() > MAX_REPORTED_LINES {
        eprintln!(
            "{source}: {} more bad lines {what}",
            lines.len() - MAX_REPORTED_LINES
        );
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
            opt.settings.store.tombstone_expired,
            Some(Duration::from_secs(60))
        );
        assert_eq!(opt.settings.when_full(), WhenFull::EvictSecondHand);
        assert_eq!(opt.settings.store.max_second_hand, Some(500));
        let unproven = args(&["--when-full", "evict-unproven", "--max-unproven", "700"]).unwrap();
        assert!(unproven.settings_given);
        assert_eq!(unproven.settings.when_full(), WhenFull::EvictUnproven);
        assert_eq!(unproven.settings.store.max_unproven, Some(700));
        assert!(
            unproven
                .settings
                .describe()
                .contains("evict-unproven, max-unproven 700")
        );
        for bad in ["-1", "many", "1.5"] {
            let refused = args(&["--max-unproven", bad]).unwrap_err();
            assert!(
                refused.contains("--max-unproven takes a number"),
                "{refused}"
            );
        }
        assert!(args(&["--max-unproven"]).unwrap_err().contains("None"));
        assert!(
            args(&["--when-full", "panic"])
                .unwrap_err()
                .contains("refuse or evict-second-hand or evict-unproven")
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

    /// `--help` says in words what `--compare` sets against the seed when told nothing else:
    /// this pins the words to [`Settings::opt_in`].
    #[test]
    fn the_help_tells_the_opt_in_settings() {
        let opt_in = Settings::opt_in();
        let span = opt_in.store.tombstone_expired.unwrap().as_secs();
        let policies = format!(
            "every opt-in policy: {}, --tombstone-expired {span},\n                  --readmit {}, {})",
            opt_in.policy().name(),
            opt_in.readmit().name(),
            opt_in.when_full().name(),
        );
        assert!(HELP.contains(&policies), "{HELP}");
        assert_eq!(
            (opt_in.store.max_second_hand, opt_in.store.max_unproven),
            (None, None),
            "the help names no quota"
        );
    }
}
