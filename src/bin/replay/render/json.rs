//! A replay as one JSON object: the summary, the bad lines, the final peer table with each
//! peer's endpoint figures and, for `--explain`, one peer's decisions.

use serde_json::{Value, json};

use crate::engine::Replay;
use crate::explain::Decision;
use crate::settings::Named as _;

pub fn render_json(replay: &Replay, source: &str, bad: &[(usize, String)]) -> Value {
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
                "state": row.state(),
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
                verdict,
            } => json!({
                "at": at.as_secs_f64(), "method": method.as_str(), "rank": method.rank(),
                "candidate": candidate.to_string(),
                "current": current.as_ref().map(|(ep, _)| ep.to_string()),
                "current_method": current.as_ref().map(|(_, m)| m.as_str()),
                "accepted": verdict.accepted(), "rule": verdict.why(),
            }),
            Decision::Refused { at, method, why } => json!({
                "at": at.as_secs_f64(), "method": method.as_str(), "refused": why,
            }),
            Decision::Removed { at, cause } => json!({
                "at": at.as_secs_f64(),
                "removed": cause.as_str(),
            }),
            Decision::Banned {
                at,
                span,
                reason,
                refused,
            } => json!({
                "at": at.as_secs_f64(), "banned_secs": span.map(|s| s.as_secs_f64()),
                "reason": reason, "ban_refused": refused,
            }),
            Decision::Unbanned { at, lifted } => json!({
                "at": at.as_secs_f64(), "unbanned": lifted,
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
            "refused_full": s.refused_full, "bans_refused": s.bans_refused,
            "refused_other": s.refused_other,
            "removes": s.removes, "bans": s.bans, "unbans": s.unbans, "cleanups": s.cleanups,
            "policy": s.policy.name(), "settings": s.settings, "confirms": s.confirms, "failures": s.failures,
            "resurrections": s.resurrections, "ghost_cycles": s.ghost_cycles,
            "stale_readmissions": s.stale_readmissions,
            "refused_full_first_hand": s.refused_full_first_hand,
            "newcomer_wait_max_secs": s.newcomer_wait_max.as_secs_f64(),
            "newcomer_wait_total_secs": s.newcomer_wait_total.as_secs_f64(),
            "refused_tombstoned": s.refused_tombstoned, "readmitted": s.readmitted,
            "endpoint_changes": s.endpoint_changes, "flaps": s.flaps,
            "endpoint_stale": s.stale.as_secs_f64(),
            "events": {
                "new": s.events_new, "updated": s.events_updated,
                "removed_explicit": s.removed_explicit, "removed_expired": s.removed_expired,
                "removed_evicted": s.removed_evicted, "removed_banned": s.removed_banned,
                "removed_other": s.removed_other,
                "dropped": s.events_dropped,
            },
        },
        "bad_lines": bad.iter().map(|(n, why)| json!({"line": n, "reason": why})).collect::<Vec<_>>(),
        "peers": peers,
        "decisions": replay.explain.map(|_| decisions),
    })
}
