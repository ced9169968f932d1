//! A replay as text: the summary, the final peer table and, for `--explain`, one peer's
//! decisions.

use std::fmt::Write as _;

use peerstore::{Peer, PublicKey, RemovalCause};

use super::{age, clock_time};
use crate::engine::Replay;
use crate::explain::Decision;

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

/// One line of the peer table: the header's or a peer's, laid out alike.
fn table_line(out: &mut String, [key, name, endpoint, method, via, age, state]: [&str; 7]) {
    let _ = writeln!(
        out,
        "{key:<8}  {name:<12}  {endpoint:<28}  {method:<17}  {via:<42}  {age:>6}  {state}"
    );
}

/// An endpoint, or that there was none.
fn or_no_endpoint(endpoint: Option<String>) -> String {
    endpoint.unwrap_or_else(|| "no endpoint".into())
}

pub fn render_text(replay: &Replay, source: &str, explained: Option<&PublicKey>) -> String {
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
        "announcements: {} -> {} new, {} updated, {} unchanged; refused: {} invalid, {} store full, {} banned",
        s.announcements,
        s.inserted,
        s.updated,
        s.unchanged,
        s.refused_invalid,
        s.refused_full,
        s.bans_refused
    );
    let _ = writeln!(
        out,
        "removes: {}; bans: {}; unbans: {}; cleanups: {}",
        s.removes, s.bans, s.unbans, s.cleanups
    );
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
        "admission ({}): {} resurrections, {} ghost cycles, {} stale readmissions, {} first-hand peers refused as full, {} evictions, {} refused by tombstones, {} readmitted",
        s.settings,
        s.resurrections,
        s.ghost_cycles,
        s.stale_readmissions,
        s.refused_full_first_hand,
        s.removed_evicted,
        s.refused_tombstoned,
        s.readmitted
    );
    let _ = writeln!(
        out,
        "newcomers a handshake proves: waited {} at most, {} in all, refused as full",
        age(s.newcomer_wait_max),
        age(s.newcomer_wait_total)
    );
    let _ = writeln!(
        out,
        "events: {} new, {} updated, {} removed ({} explicit, {} expired, {} evicted, {} banned), {} dropped",
        s.events_new,
        s.events_updated,
        s.removed_explicit
            + s.removed_expired
            + s.removed_evicted
            + s.removed_banned
            + s.removed_other,
        s.removed_explicit,
        s.removed_expired,
        s.removed_evicted,
        s.removed_banned,
        s.events_dropped
    );
    let _ = writeln!(
        out,
        "peers at the end: {} ({} active, {} dead)\n",
        rows.len(),
        active,
        rows.len() - active
    );
    table_line(
        &mut out,
        [
            "KEY",
            "HOSTNAME",
            "ENDPOINT",
            "METHOD",
            "DISCOVERED VIA",
            "AGE",
            "STATE",
        ],
    );
    for row in &rows {
        let p = &row.peer;
        table_line(
            &mut out,
            [
                &p.public_key.short(),
                &or_dash(p.hostname.as_ref().map(ToString::to_string)),
                &or_dash(p.endpoint.map(|e| e.to_string())),
                &or_dash(p.endpoint_method.as_ref().map(ToString::to_string)),
                &via(p),
                &age(row.age),
                row.state(),
            ],
        );
    }
    if let Some(key) = explained {
        // Its name as the store holds it, or as last heard if it is out (banned, say).
        let name = (replay
            .store
            .get(key)
            .and_then(|p| p.hostname.as_ref().map(ToString::to_string)))
        .or_else(|| replay.tracks.get(key).and_then(|t| t.name.clone()));
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
            verdict,
        } => format!(
            "{:>6}  {:<18} rank {:>3}  {:<28} over {:<42} {} ({})",
            clock_time(*at),
            method.as_str(),
            method.rank(),
            candidate.to_string(),
            or_no_endpoint(
                current
                    .as_ref()
                    .map(|(ep, m)| format!("{ep} ({m}, rank {})", m.rank()))
            ),
            verdict.word(),
            verdict.why(),
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
            or_no_endpoint(change.from.map(|e| e.to_string())),
            change.method.as_str(),
            change.rule
        ),
        Decision::Removed { at, cause } => format!(
            "{:>6}  removed from the store ({})",
            clock_time(*at),
            match cause {
                RemovalCause::Explicit => "explicitly",
                RemovalCause::Expired => "expired by the cleanup",
                RemovalCause::Banned => "banned",
                _ => cause.as_str(),
            }
        ),
        Decision::Banned {
            at,
            span,
            reason,
            refused,
        } => {
            let span = span.map_or("until lifted".to_string(), |span| {
                format!("for {}", age(span))
            });
            let reason = reason
                .as_deref()
                .map(|reason| format!(": {reason:?}"))
                .unwrap_or_default();
            match refused {
                None => format!("{:>6}  banned {span}{reason}", clock_time(*at)),
                Some(why) => format!("{:>6}  not banned ({why})", clock_time(*at)),
            }
        }
        Decision::Unbanned { at, lifted } => format!(
            "{:>6}  unbanned{}",
            clock_time(*at),
            if *lifted { "" } else { " (no ban stood)" }
        ),
    }
}
