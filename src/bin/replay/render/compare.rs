//! `--compare`: two replays of one trace, the seed's defaults against opt-in settings, side
//! by side in total and per peer, as text or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use peerstore::PublicKey;
use serde_json::{Value, json};

use super::json::render_json;
use super::{age, clock_time};
use crate::engine::{Replay, Summary, Track, listing_order};

/// How many peers `--compare` lists one by one; `--json` lists them all.
const MAX_COMPARED_PEERS: usize = 30;

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
    peers.sort_by(|a, b| listing_order(a.name(), &a.key).cmp(&listing_order(b.name(), &b.key)));
    peers
}

pub fn compare_text(seed: &Replay, opt_in: &Replay, source: &str) -> String {
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
    let _ = writeln!(
        out,
        "SEED: the seed's defaults (no tombstones, no bans: ban lines are not played); OPT-IN: {}\n",
        b.settings
    );
    let figure_line = |out: &mut String, what: &str, x: &str, y: &str| {
        let _ = writeln!(out, "{what:<36}  {x:>10}  {y:>10}");
    };
    figure_line(&mut out, "", "SEED", "OPT-IN");
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
            "stale readmissions (on old news)",
            both(|s| s.stale_readmissions.to_string()),
        ),
        (
            "announcements refused as banned",
            both(|s| s.bans_refused.to_string()),
        ),
        (
            "first-hand peers refused as full",
            both(|s| s.refused_full_first_hand.to_string()),
        ),
        ("newcomer wait, longest", both(|s| age(s.newcomer_wait_max))),
        (
            "newcomer wait, in all",
            both(|s| age(s.newcomer_wait_total)),
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
        figure_line(&mut out, what, &x, &y);
    }
    let _ = writeln!(
        out,
        "\nstale: no report within the resilient policy's window for its method, no confirmation\n\
         within its trust window, or a failure since; counted while the peer is active.\n\
         resurrections and ghost cycles: a second-hand insert of a peer removed, or expired, before.\n\
         stale readmissions: a first-hand insert of a peer removed before, on a record that carries\n\
         no time or one not after the removal (a LAN announcement is news).\n\
         newcomer wait: for newcomers a handshake proves real, from an announcement refused as full\n\
         to their admission (or to the trace's end)."
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
    let peer_line = |out: &mut String, [key, name, changes, flaps, stale]: [&str; 5]| {
        let _ = writeln!(
            out,
            "{key:<8}  {name:<12}  {changes:>9}  {flaps:>7}  {stale:>17}"
        );
    };
    if !differ.is_empty() {
        peer_line(&mut out, ["KEY", "HOSTNAME", "CHANGES", "FLAPS", "STALE"]);
    }
    for peer in differ.iter().take(MAX_COMPARED_PEERS) {
        let (c0, f0, s0) = Compared::figures(peer.seed);
        let (c1, f1, s1) = Compared::figures(peer.opt_in);
        peer_line(
            &mut out,
            [
                &peer.key.short(),
                peer.name().unwrap_or("-"),
                &format!("{c0} / {c1}"),
                &format!("{f0} / {f1}"),
                &format!("{} / {}", age(s0), age(s1)),
            ],
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

pub fn compare_json(
    seed: &Replay,
    opt_in: &Replay,
    source: &str,
    bad: &[(usize, String)],
) -> Value {
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

#[cfg(test)]
mod tests {
    use peerstore::EndpointRule;

    use super::*;
    use crate::engine::testing::*;
    use crate::explain::Decision;
    use crate::settings::Settings;

    /// The endpoint scenes of the built-in story, (A) `laptop-ben` leaving the LAN and (B)
    /// `node-141`'s two DHT records, as `--compare` shows them.
    #[test]
    fn the_default_trace_shows_what_the_resilient_policy_answers() {
        let seed = run_under(&Settings::seed(), DEFAULT_TRACE, None);
        let resilient = run_under(&resilient(), DEFAULT_TRACE, Some("laptop-ben"));
        for replay in [&seed, &resilient] {
            let s = &replay.summary;
            // The failures: laptop-ben's LAN endpoint, and the dead node-143's.
            assert!(s.confirms > 1000 && s.failures == 2, "{s:?}");
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
        let moves: Vec<&Decision> = (resilient.decisions.iter())
            .filter(|d| matches!(d, Decision::Moved { .. }))
            .collect();
        match moves.as_slice() {
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

    /// The admission scenes of the built-in story: the resurrection of node-105, the ghost
    /// far-41, the first-hand newcomers locked out by the flood, the revoked laptop-cai, the
    /// dead node-143 and the LAN newcomers of the first-hand flood.
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
            (a.stale_readmissions, a.bans_refused),
            (2, 0),
            "laptop-cai at 10:30 and node-143 at 5:20 back on old records, nothing banned: {a:?}"
        );
        // node-142 waits from 11:30 to 19:30; the LAN newcomers from their first
        // announcement to the end, but for lan-15, which a cleanup makes room for at 25:00.
        assert_eq!(a.newcomer_wait_max, Duration::from_secs(8 * 60), "{a:?}");
        let waits = [8 * 60, 305, 240, 150];
        let total = Duration::from_secs(waits.iter().sum());
        assert_eq!(a.newcomer_wait_total, total, "{a:?}");
        assert_eq!(
            (b.resurrections, b.ghost_cycles, b.stale_readmissions),
            (0, 0, 0),
            "{b:?}"
        );
        assert_eq!(
            b.bans_refused, 7,
            "laptop-cai every 3 minutes from 10:30: {b:?}"
        );
        assert_eq!(
            (b.newcomer_wait_max, b.newcomer_wait_total),
            (Duration::ZERO, Duration::ZERO),
            "every real newcomer in at its first announcement: {b:?}"
        );
        // Those refused as full first-hand are the first-hand flood's fakes, past the cap.
        assert!((1..=1100).contains(&b.refused_full_first_hand), "{b:?}");
        assert!(
            b.removed_evicted >= 2,
            "each newcomer took a fake's place: {b:?}"
        );
        assert!(
            b.refused_tombstoned > 0 && b.readmitted >= 1,
            "laptop-ana: {b:?}"
        );
        let has = |replay: &Replay, name: &str| {
            (replay.table().iter()).any(|r| r.peer.hostname.as_deref() == Some(name))
        };
        for name in [
            "node-142",
            "lan-13",
            "lan-14",
            "lan-15",
            "lan-16",
            "lan-17",
            "laptop-ana",
        ] {
            assert!(has(&opt_in, name), "{name}");
        }
        for name in ["lan-14", "lan-16", "lan-17"] {
            assert!(!has(&seed, name), "{name} is refused to the end");
        }
        assert!(has(&seed, "laptop-cai"), "the seed has no bans");
        assert!(!has(&opt_in, "laptop-cai"), "banned");
        // node-143's old record is refused under --readmit newer; its new one is taken.
        assert!(has(&opt_in, "node-143") && has(&seed, "node-143"));
        let dead = run_under(&Settings::opt_in(), DEFAULT_TRACE, Some("node-143"));
        let refused = (dead.decisions.iter())
            .filter(|d| matches!(d, Decision::Refused { at, .. } if at.as_secs() < 570))
            .count();
        assert_eq!(refused, 3, "5:20, 6:20 and 7:20: {:?}", dead.decisions);
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
}
