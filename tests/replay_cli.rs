//! The replay tool as a person runs it: its help, standard input, bad lines, exit status and
//! `--explain`. Each of these once went wrong: `--help` printed to stderr and failed, a
//! non-UTF-8 byte aborted the whole run, `-` was a file name, a run with refused lines exited
//! 0, and `--explain` under the resilient policy left out every announcement.
#![cfg(feature = "serde")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn replay(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the replay starts");
    child
        .stdin
        .take()
        .expect("a pipe")
        .write_all(stdin)
        .expect("the trace is written");
    child.wait_with_output().expect("the replay ends")
}

const GOOD: &str = r#"{"at": 1, "method": "lan", "peer": {"public_key": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "endpoint": "192.168.1.1:51820", "last_seen": 1793491200}}"#;

#[test]
fn help_goes_to_stdout_exits_0_and_shows_the_trace_format() {
    for flag in ["--help", "-h"] {
        let out = replay(&[flag], b"");
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("usage: replay"), "{help}");
        assert!(
            help.contains(r#"{"at": 720, "remove""#),
            "an example trace: {help}"
        );
        assert!(help.contains("--explain KEY"), "{help}");
        assert!(help.contains("host name"), "what --explain takes: {help}");
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn a_trace_from_standard_input_is_replayed() {
    let out = replay(&["-", "--json"], GOOD.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["trace"], "standard input");
    assert_eq!(json["summary"]["inserted"], 1);
    let peer = &json["peers"][0];
    for field in [
        "public_key",
        "endpoint",
        "endpoint_method",
        "mesh_ip",
        "mesh_ipv6",
        "hostname",
        "routable_networks",
        "introducer",
        "nat_type",
        "discovered_via",
        "latency_ms",
        "age_secs",
        "state",
    ] {
        assert!(peer.get(field).is_some(), "--json lists {field}: {peer}");
    }
}

#[test]
fn a_non_utf8_byte_costs_only_its_line_and_bad_lines_fail_the_run_unless_told() {
    let mut trace =
        b"{\"at\": 0, \"cleanup\": true}\n{\"at\": 0, \"method\": \"l\xffn\"}\n".to_vec();
    trace.extend_from_slice(GOOD.as_bytes());
    let out = replay(&["-", "--json"], &trace);
    assert_eq!(out.status.code(), Some(1), "refused lines fail the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2 skipped: not UTF-8"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["bad_lines"], 1);
    assert_eq!(json["summary"]["inserted"], 1, "the lines after it ran");

    let kept = replay(&["-", "--keep-going"], &trace);
    assert!(kept.status.success(), "--keep-going exits 0");
}

#[test]
fn the_at_limit_in_the_message_is_the_real_one() {
    let out = replay(&["-", "--keep-going"], br#"{"at": 1e13, "cleanup": true}"#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("below 9e9"), "{stderr}");
}

#[test]
fn bad_arguments_exit_2_with_the_usage() {
    let out = replay(&["--frobnicate"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: replay"));
}

#[test]
fn the_policy_is_chosen_on_the_command_line_and_reported() {
    let out = replay(&["-", "--json", "--policy", "resilient"], GOOD.as_bytes());
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["policy"], "resilient");
    assert_eq!(json["summary"]["endpoint_changes"], 0);
    let out = replay(&["-", "--policy", "wishful"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed or resilient"));
}

#[test]
fn compare_runs_both_policies_and_its_json_carries_the_figures() {
    let out = replay(&["--compare"], b"");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("SEED") && text.contains("OPT-IN"), "{text}");
    assert!(text.contains("active on a stale endpoint"), "{text}");

    let out = replay(&["-", "--compare", "--json"], GOOD.as_bytes());
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (run, policy) in [("seed", "seed"), ("opt_in", "resilient")] {
        let summary = &json[run]["summary"];
        assert_eq!(summary["policy"], policy);
        for field in ["endpoint_changes", "flaps", "endpoint_stale"] {
            assert!(summary[field].is_number(), "{policy} {field}: {summary}");
        }
        for field in [
            "resurrections",
            "ghost_cycles",
            "refused_full_first_hand",
            "stale_readmissions",
            "bans_refused",
            "newcomer_wait_max_secs",
            "newcomer_wait_total_secs",
        ] {
            assert!(summary[field].is_number(), "{run} {field}: {summary}");
        }
        let peer = &json[run]["peers"][0];
        for field in ["endpoint_changes", "endpoint_flaps", "endpoint_stale"] {
            assert!(peer[field].is_number(), "{run} {field}: {peer}");
        }
        assert!(json["peers"][0][run]["endpoint_stale"].is_number());
    }
    let out = replay(&["--compare", "--policy", "seed"], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// `--explain` shows what became of every announcement under every policy: refused as a whole,
/// or its endpoint's verdict; under the resilient policy besides the moves of the store's
/// history. A peer of the second-hand quota's is refused as full four times, then accepted.
#[test]
fn explain_shows_every_announcement_under_every_policy() {
    let (filler, peer) = (
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
    );
    let announce = |at: u32, method: &str, key: &str, endpoint: &str| {
        format!(
            r#"{{"at": {at}, "method": "{method}", "peer": {{"public_key": "{key}", "endpoint": "{endpoint}"}}}}"#
        )
    };
    let mut lines = vec![announce(0, "gossip-transitive", filler, "192.0.2.1:1")];
    for at in 1..=4 {
        lines.push(announce(at, "gossip-transitive", peer, "192.0.2.3:3"));
    }
    lines.push(format!(r#"{{"at": 5, "remove": "{filler}"}}"#));
    lines.push(announce(6, "gossip-transitive", peer, "192.0.2.3:3"));
    lines.push(announce(7, "gossip-transitive", peer, "192.0.2.3:3"));
    lines.push(announce(8, "dht", peer, "198.51.100.3:3"));
    let trace = lines.join("\n");
    for policy in ["seed", "resilient"] {
        let args = [
            "-",
            "--max-second-hand",
            "1",
            "--policy",
            policy,
            "--explain",
            peer,
        ];
        let out = replay(&args, trace.as_bytes());
        assert!(out.status.success(), "{policy}: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        let explained = &text[text.find("endpoint decisions").expect("explained")..];
        assert_eq!(
            explained.matches("refused as a whole").count(),
            4,
            "{policy}: {explained}"
        );
        assert!(!explained.contains("(none:"), "{policy}: {explained}");
        assert!(
            explained.contains("accepted (first endpoint)"),
            "{policy}: {explained}"
        );

        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let out = replay(&args, trace.as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let decisions = json["decisions"].as_array().unwrap();
        let at = |filter: &dyn Fn(&serde_json::Value) -> bool| -> Vec<f64> {
            let chosen = decisions.iter().filter(|d| filter(d));
            chosen.map(|d| d["at"].as_f64().unwrap()).collect()
        };
        assert_eq!(
            at(&|d| d.get("refused").is_some()),
            [1.0, 2.0, 3.0, 4.0],
            "{policy}: {decisions:?}"
        );
        assert_eq!(
            at(&|d| d.get("candidate").is_some()),
            [6.0, 7.0, 8.0],
            "{policy}: every announcement with an endpoint, {decisions:?}"
        );
        let accepted = decisions.iter().filter(|d| d["accepted"] == true).count();
        assert_eq!(accepted, 3, "{policy}: {decisions:?}");
    }
}

/// Ban lines the reader refuses (a bad key, a zero or huge span, a reason too long or with a
/// control character) and one the store refuses (past its bound of bans) are reported by
/// their line numbers, in the library's words, and fail the run unless told; nothing
/// panics, and the other lines run.
#[test]
fn bad_ban_lines_are_reported_by_their_numbers() {
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let long = "x".repeat(300);
    let mut lines = vec![
        GOOD.to_string(),
        r#"{"at": 2, "ban": "short"}"#.to_string(),
        format!(r#"{{"at": 2, "ban": "{key}", "secs": 0}}"#),
        format!(r#"{{"at": 2, "ban": "{key}", "secs": 1e12}}"#),
        format!(r#"{{"at": 2, "ban": "{key}", "reason": "{long}"}}"#),
        format!(r#"{{"at": 2, "ban": "{key}", "reason": "a\u0007b"}}"#),
        r#"{"at": 2, "unban": 7}"#.to_string(),
        format!(r#"{{"at": 3, "ban": "{key}", "reason": "key revoked"}}"#),
    ];
    // With the ban above, the last of these is one past the store's bound.
    for n in 0..peerstore::MAX_BANS {
        let mut bytes = [2u8; 32];
        bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let other = peerstore::PublicKey::from_bytes(bytes);
        lines.push(format!(r#"{{"at": 3, "ban": "{other}"}}"#));
    }
    let trace = lines.join("\n");
    let out = replay(&["-", "--json"], trace.as_bytes());
    assert_eq!(out.status.code(), Some(1), "refused lines fail the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        r#"line 2 skipped: "ban" = "short": public key must be 44 characters"#,
        r#"line 3 skipped: "secs" = 0: ban span is zero: it would lift before it stood"#,
        r#"line 4 skipped: "secs" = 1000000000000.0: expected seconds, above 0 and below 9e9"#,
        r#"line 5 skipped: "reason": ban reason is 300 bytes long, over the limit of 256"#,
        r#"line 6 skipped: "reason": ban reason holds the control character '\u{7}' at byte 1"#,
        r#"line 7 skipped: "unban" = 7: expected a key"#,
        r#"line 4104 not used: "ban": ban refused: the store holds its limit of 4096 bans"#,
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &json["summary"];
    assert_eq!(summary["bad_lines"], 7, "{summary}");
    assert_eq!(summary["bans"], peerstore::MAX_BANS + 1, "{summary}");
    assert_eq!(summary["events"]["removed_banned"], 1, "line 8 ran");
    let numbers: Vec<u64> = json["bad_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bad| bad["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 3, 4, 5, 6, 7, 4104]);
    let kept = replay(&["-", "--keep-going"], trace.as_bytes());
    assert!(kept.status.success(), "--keep-going exits 0");
}

#[test]
fn the_full_policies_and_quotas_are_chosen_on_the_command_line() {
    let args = [
        "-",
        "--json",
        "--when-full",
        "evict-unproven",
        "--max-unproven",
        "10",
    ];
    let out = replay(&args, GOOD.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let settings = json["summary"]["settings"].as_str().unwrap();
    assert!(
        settings.contains("evict-unproven, max-unproven 10"),
        "{settings}"
    );
    let out = replay(&["-", "--max-unproven", "all"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-unproven takes a number"), "{stderr}");
}
