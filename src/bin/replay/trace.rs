//! A trace: one JSON object per line, `at` in seconds from the trace's start (second 0 is
//! [`TRACE_START_UNIX`] on the store's clock), never going back. [`Line`] is one line, the one
//! type the replay reads a trace into and `examples/make_trace.rs` writes the built-in trace
//! from (it includes this file); the shapes a line may have are [`Step`]'s variants.
//!
//! Reading goes through a JSON value and checks of its own rather than serde's derived
//! errors: a bad line is reported with what is wrong in words a trace's author can act on
//! (`"at" = -1: expected seconds from the start, ...`), and these words are pinned by tests.
//! Writing is serde's: the fields in the order they are declared, an absent optional field
//! left out, and a span as an integer when it is a whole number of its unit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerstore::{BanError, DiscoveryMethod, IpNet, MAX_BAN_REASON, NatType, PeerInfo, PublicKey};
use serde::ser::Error as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// Second 0 of every trace: 2026-11-01T00:00:00Z, a fixed date, so that a replay prints the
/// same each time.
pub const TRACE_START_UNIX: u64 = 1_793_491_200;

/// The latest `at` a trace line may have, in seconds (about 285 years), and the bound of every
/// other span given in seconds: the store's clock counts nanoseconds from its start in 64
/// bits, about 292 years, and past that it could no longer tell one instant from the next
/// (a tombstone would never stand, a silent peer never expire).
pub const MAX_AT_SECS: f64 = 9e9;

/// The most milliseconds an `rtt_ms` may say (some eleven days).
const MAX_RTT_MS: f64 = 1e9;

/// Second 0 of every trace on the wall clock.
pub fn trace_start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TRACE_START_UNIX)
}

/// `secs` as a span, if a trace may hold it: finite, from 0 to below [`MAX_AT_SECS`].
pub fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..MAX_AT_SECS).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// One line of a trace: when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct Line {
    /// From the trace's start.
    #[serde(serialize_with = "write_seconds")]
    pub at: Duration,
    #[serde(flatten)]
    pub step: Step,
}

/// What a line says, one shape each; the fields are written in the order declared here.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Step {
    /// `{"at", "method", "peer"}`: an announcement by `method`; `peer` is a `PeerInfo` as
    /// JSON, its `last_seen`, if any, whole Unix seconds (as the peer cache writes it) or an
    /// RFC 3339 string.
    Announce {
        method: DiscoveryMethod,
        peer: Announced,
    },
    /// `{"at", "remove", "tombstone_secs"?}`: a removal, with a tombstone for that long
    /// (`remove_for`) if given.
    Remove {
        #[serde(rename = "remove")]
        key: PublicKey,
        #[serde(
            rename = "tombstone_secs",
            skip_serializing_if = "Option::is_none",
            serialize_with = "write_some_seconds"
        )]
        tombstone: Option<Duration>,
    },
    /// `{"at", "cleanup": true}`: the cleanup loop runs.
    Cleanup { cleanup: True },
    /// `{"at", "confirm", "endpoint", "rtt_ms"?}`: evidence that an endpoint works, a
    /// handshake seen or, with `rtt_ms`, a probe answered (`confirm`).
    Confirm {
        #[serde(rename = "confirm")]
        key: PublicKey,
        endpoint: SocketAddr,
        #[serde(
            rename = "rtt_ms",
            skip_serializing_if = "Option::is_none",
            serialize_with = "write_some_millis"
        )]
        rtt: Option<Duration>,
    },
    /// `{"at", "endpoint", "fail"}`: an endpoint stopped answering (`note_failure`).
    Fail {
        endpoint: SocketAddr,
        #[serde(rename = "fail")]
        key: PublicKey,
    },
    /// `{"at", "ban", "secs"?, "reason"?}`: the operator bans a key (`ban`), for `secs` if
    /// given, else until an `unban` line. The reader holds the span and the reason to the
    /// library's rules for a ban (a span above zero, a reason of at most
    /// [`MAX_BAN_REASON`] bytes with no control character), in the library's words.
    Ban {
        #[serde(rename = "ban")]
        key: PublicKey,
        #[serde(
            rename = "secs",
            skip_serializing_if = "Option::is_none",
            serialize_with = "write_some_seconds"
        )]
        span: Option<Duration>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `{"at", "unban"}`: the operator lifts a key's ban (`unban`).
    Unban {
        #[serde(rename = "unban")]
        key: PublicKey,
    },
}

/// The value of `"cleanup"`: `true`, the only one a cleanup line has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct True;

impl Serialize for True {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(true)
    }
}

/// A peer as an announcement carries it: a `PeerInfo`, and which of its fields the line has.
/// The reader takes a field left out as `PeerInfo::new` has it; the writer leaves out every
/// field not set, so that a line says only what its announcement said. Each field is read
/// and written as the library's serde does it, in the order of the fields' names.
#[derive(Debug, Clone, PartialEq)]
pub struct Announced {
    pub info: PeerInfo,
    /// The JSON names of the fields of `info` the line has, besides `public_key`.
    carried: BTreeSet<String>,
}

impl Announced {
    /// Reads a `"peer"`: the library's reading of a `PeerInfo` (its errors), and which fields
    /// the line has.
    fn from_json(value: Value) -> Result<Self, serde_json::Error> {
        let carried = match &value {
            Value::Object(fields) => fields
                .keys()
                .filter(|k| *k != "public_key")
                .cloned()
                .collect(),
            _ => BTreeSet::new(),
        };
        let info = serde_json::from_value(value)?;
        Ok(Announced { info, carried })
    }
}

impl Serialize for Announced {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Value::Object(fields) = serde_json::to_value(&self.info).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("a PeerInfo is not a JSON object"));
        };
        let carried: BTreeMap<String, Value> = fields
            .into_iter()
            .filter(|(name, _)| name == "public_key" || self.carried.contains(name))
            .collect();
        carried.serialize(serializer)
    }
}

/// The writer's half: `examples/make_trace.rs` says what each announcement carries.
#[allow(
    dead_code,
    reason = "the replay only reads traces; make_trace writes them"
)]
impl Announced {
    /// An announcement of `public_key` that says nothing else.
    #[must_use]
    pub fn new(public_key: PublicKey) -> Self {
        Announced {
            info: PeerInfo::new(public_key),
            carried: BTreeSet::new(),
        }
    }

    fn carry(mut self, field: &str) -> Self {
        self.carried.insert(field.to_owned());
        self
    }

    #[must_use]
    pub fn endpoint(mut self, endpoint: SocketAddr) -> Self {
        self.info.endpoint = Some(endpoint);
        self.carry("endpoint")
    }

    #[must_use]
    pub fn mesh_ip(mut self, mesh_ip: Ipv4Addr) -> Self {
        self.info.mesh_ip = Some(mesh_ip);
        self.carry("mesh_ip")
    }

    #[must_use]
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.info.hostname = Some(hostname.into());
        self.carry("hostname")
    }

    #[must_use]
    pub fn introducer(mut self, introducer: bool) -> Self {
        self.info.introducer = introducer;
        self.carry("introducer")
    }

    #[must_use]
    pub fn nat_type(mut self, nat_type: NatType) -> Self {
        self.info.nat_type = Some(nat_type);
        self.carry("nat_type")
    }

    #[must_use]
    pub fn last_seen(mut self, last_seen: SystemTime) -> Self {
        self.info.last_seen = Some(last_seen);
        self.carry("last_seen")
    }

    #[must_use]
    pub fn routable_networks(mut self, networks: Vec<IpNet>) -> Self {
        self.info.routable_networks = networks.into();
        self.carry("routable_networks")
    }
}

/// `span` as a number of `unit`s: an integer when it is a whole number of them.
fn write_in<S: Serializer>(
    span: Duration,
    unit: Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let whole = span.as_nanos().is_multiple_of(unit.as_nanos());
    match u64::try_from(span.as_nanos() / unit.as_nanos()) {
        Ok(units) if whole => serializer.serialize_u64(units),
        _ => serializer.serialize_f64(span.as_secs_f64() / unit.as_secs_f64()),
    }
}

fn write_seconds<S: Serializer>(span: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    write_in(*span, Duration::from_secs(1), serializer)
}

fn write_some_seconds<S: Serializer>(
    span: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match span {
        Some(span) => write_seconds(span, serializer),
        None => serializer.serialize_none(),
    }
}

fn write_some_millis<S: Serializer>(
    span: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match span {
        Some(span) => write_in(*span, Duration::from_millis(1), serializer),
        None => serializer.serialize_none(),
    }
}

/// A line that cannot be used: its number (from 1), and why.
pub type BadLine = (usize, String);

/// Reads a trace; the lines that cannot be used come back apart, with their numbers (from 1)
/// and why: [`parse_numbered`] without the numbers, as the tests read.
#[cfg(test)]
pub fn parse_trace(bytes: &[u8]) -> (Vec<Line>, Vec<BadLine>) {
    let (numbered, bad) = parse_numbered(bytes);
    (numbered.into_iter().map(|(_, line)| line).collect(), bad)
}

/// Reads a trace, each line with its number (from 1), for what the store refuses of a line
/// once it runs; the lines that cannot be used come back apart, with their numbers and why. A
/// line that is not UTF-8 costs only itself; blank lines are skipped.
pub fn parse_numbered(bytes: &[u8]) -> (Vec<(usize, Line)>, Vec<BadLine>) {
    let (mut lines, mut bad) = (Vec::new(), Vec::new());
    let mut last = Duration::ZERO;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = match std::str::from_utf8(raw) {
            Ok(raw) => raw,
            Err(e) => {
                let why = format!("not UTF-8 (byte {} of the line)", e.valid_up_to() + 1);
                bad.push((number, why));
                continue;
            }
        };
        if raw.trim().is_empty() {
            continue;
        }
        let line = serde_json::from_str::<Value>(raw)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(Line::try_from);
        match line {
            Ok(line) if line.at < last => bad.push((
                number,
                format!(
                    "at {} is before the previous line's {}: a trace never goes back",
                    line.at.as_secs_f64(),
                    last.as_secs_f64()
                ),
            )),
            Ok(line) => {
                last = line.at;
                lines.push((number, line));
            }
            Err(reason) => bad.push((number, reason)),
        }
    }
    (lines, bad)
}

/// A line's JSON as a [`Line`], or why it is not one. The first field that decides the shape
/// wins, in this order: `peer`, `remove`, `cleanup` (when `true`), `confirm`, `fail`, `ban`,
/// `unban`.
impl TryFrom<Value> for Line {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err("not a JSON object".into());
        };
        let at = match fields.get("at") {
            None => return Err("no \"at\" field".into()),
            Some(at) => at.as_f64().and_then(seconds).ok_or_else(|| {
                format!(
                    "\"at\" = {at}: expected seconds from the start, from 0 to below {MAX_AT_SECS:e}"
                )
            })?,
        };
        let step = if let Some(peer) = fields.get("peer") {
            let method = match fields.get("method") {
                Some(Value::String(name)) => {
                    DiscoveryMethod::other(name).map_err(|e| format!("\"method\": {e}"))?
                }
                Some(other) => return Err(format!("\"method\" = {other}: expected a method name")),
                None => return Err("an announcement needs a \"method\"".into()),
            };
            let peer = Announced::from_json(peer.clone()).map_err(|e| format!("\"peer\": {e}"))?;
            Step::Announce { method, peer }
        } else if let Some(key) = fields.get("remove") {
            let key = key
                .as_str()
                .ok_or_else(|| format!("\"remove\" = {key}: expected a key"))?;
            let tombstone = match fields.get("tombstone_secs") {
                None => None,
                Some(secs) => Some(secs.as_f64().and_then(seconds).ok_or_else(|| {
                    format!(
                        "\"tombstone_secs\" = {secs}: expected seconds, from 0 to below {MAX_AT_SECS:e}"
                    )
                })?),
            };
            Step::Remove {
                key: key
                    .parse()
                    .map_err(|e| format!("\"remove\" = {key:?}: {e}"))?,
                tombstone,
            }
        } else if fields.get("cleanup") == Some(&Value::Bool(true)) {
            Step::Cleanup { cleanup: True }
        } else if let Some(key) = fields.get("confirm") {
            let rtt = match fields.get("rtt_ms") {
                None => None,
                Some(ms) => Some(
                    ms.as_f64()
                        .filter(|ms| ms.is_finite() && (0.0..MAX_RTT_MS).contains(ms))
                        .map(|ms| Duration::from_secs_f64(ms / 1e3))
                        .ok_or_else(|| {
                            format!(
                                "\"rtt_ms\" = {ms}: expected milliseconds, from 0 to below {MAX_RTT_MS:e}"
                            )
                        })?,
                ),
            };
            Step::Confirm {
                key: key_of("confirm", key)?,
                endpoint: endpoint_of(&fields)?,
                rtt,
            }
        } else if let Some(key) = fields.get("fail") {
            Step::Fail {
                key: key_of("fail", key)?,
                endpoint: endpoint_of(&fields)?,
            }
        } else if let Some(key) = fields.get("ban") {
            Step::Ban {
                key: key_of("ban", key)?,
                span: fields.get("secs").map(ban_span).transpose()?,
                reason: fields.get("reason").map(ban_reason).transpose()?,
            }
        } else if let Some(key) = fields.get("unban") {
            Step::Unban {
                key: key_of("unban", key)?,
            }
        } else {
            return Err(
                "expected \"peer\" and \"method\", \"remove\", \"confirm\", \"fail\", \"ban\", \"unban\", or \"cleanup\": true"
                    .into(),
            );
        };
        Ok(Line { at, step })
    }
}

/// A key field's value.
fn key_of(field: &str, value: &Value) -> Result<PublicKey, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("\"{field}\" = {value}: expected a key"))?;
    text.parse()
        .map_err(|e| format!("\"{field}\" = {text:?}: {e}"))
}

/// A ban's `secs`: seconds below [`MAX_AT_SECS`], and not zero, which the library refuses
/// ([`BanError::ZeroSpan`]; a ban with no `secs` stands until lifted).
fn ban_span(value: &Value) -> Result<Duration, String> {
    let span = value.as_f64().and_then(seconds).ok_or_else(|| {
        format!("\"secs\" = {value}: expected seconds, above 0 and below {MAX_AT_SECS:e}")
    })?;
    if span.is_zero() {
        return Err(format!(
            "\"secs\" = {value}: {} (leave \"secs\" out to ban until an unban)",
            BanError::ZeroSpan
        ));
    }
    Ok(span)
}

/// A ban's `reason`: a string the library keeps, at most [`MAX_BAN_REASON`] bytes with no
/// control character, refused in the library's words ([`BanError`]). A value that is no
/// string is shown cut short: a reason may be long.
fn ban_reason(value: &Value) -> Result<String, String> {
    let Value::String(reason) = value else {
        let mut shown = value.to_string();
        if shown.len() > 40 {
            let cut = (0..=40)
                .rev()
                .find(|&i| shown.is_char_boundary(i))
                .unwrap_or(0);
            shown.truncate(cut);
            shown.push('…');
        }
        return Err(format!("\"reason\" = {shown}: expected a string"));
    };
    let refused = if reason.len() > MAX_BAN_REASON {
        Some(BanError::ReasonTooLong {
            len: reason.len(),
            max: MAX_BAN_REASON,
        })
    } else {
        reason
            .char_indices()
            .find(|(_, c)| c.is_control())
            .map(|(at, found)| BanError::ReasonControl { found, at })
    };
    match refused {
        Some(refused) => Err(format!("\"reason\": {refused}")),
        None => Ok(reason.clone()),
    }
}

/// A confirmation's or failure's `endpoint`.
fn endpoint_of(fields: &serde_json::Map<String, Value>) -> Result<SocketAddr, String> {
    let value = fields.get("endpoint").ok_or("needs an \"endpoint\"")?;
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("\"endpoint\" = {value}: expected an address:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader and the writer are one type: the built-in trace, read and written back, is
    /// the same bytes (`examples/make_trace.rs` writes it through [`Line`]).
    #[test]
    fn the_built_in_trace_reads_and_writes_back_the_same() {
        let (lines, bad) = parse_trace(crate::DEFAULT_TRACE.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        let mut written = String::new();
        for line in &lines {
            written += &serde_json::to_string(line).unwrap();
            written.push('\n');
        }
        assert!(
            written == crate::DEFAULT_TRACE,
            "the trace changed on its way through"
        );
    }

    #[test]
    fn spans_are_written_as_integers_when_whole() {
        let key = PublicKey::from_bytes([1; 32]);
        let endpoint: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let line = |at: f64, step| Line {
            at: Duration::from_secs_f64(at),
            step,
        };
        let confirm = |rtt| Step::Confirm { key, endpoint, rtt };
        let write = |line: &Line| serde_json::to_string(line).unwrap();
        assert_eq!(
            write(&line(1.5, confirm(Some(Duration::from_micros(2500))))),
            format!(r#"{{"at":1.5,"confirm":"{key}","endpoint":"{endpoint}","rtt_ms":2.5}}"#)
        );
        let cleanup = line(60.0, Step::Cleanup { cleanup: True });
        assert_eq!(write(&cleanup), r#"{"at":60,"cleanup":true}"#);
        for line in [line(1.5, confirm(None)), cleanup] {
            // Serde's reading of a line is the reader's.
            let back: Line = serde_json::from_str(&write(&line)).unwrap();
            assert_eq!(back, line);
        }
    }

    /// Ban and unban lines: read with what they say, and written back as read (`secs` and
    /// `reason` left out when absent).
    #[test]
    fn ban_lines_read_and_write_back() {
        let key = PublicKey::from_bytes([1; 32]);
        let text = format!(
            "{{\"at\":60,\"ban\":\"{key}\"}}\n\
             {{\"at\":61,\"ban\":\"{key}\",\"secs\":90.5,\"reason\":\"key revoked: laptop stolen\"}}\n\
             {{\"at\":62,\"unban\":\"{key}\"}}\n"
        );
        let (lines, bad) = parse_trace(text.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        let steps: Vec<&Step> = lines.iter().map(|l| &l.step).collect();
        assert_eq!(
            steps,
            [
                &Step::Ban {
                    key,
                    span: None,
                    reason: None
                },
                &Step::Ban {
                    key,
                    span: Some(Duration::from_millis(90_500)),
                    reason: Some("key revoked: laptop stolen".into())
                },
                &Step::Unban { key },
            ]
        );
        let mut written = String::new();
        for line in &lines {
            written += &serde_json::to_string(line).unwrap();
            written.push('\n');
        }
        assert_eq!(written, text);
        // At the bound, a reason is kept: the reader refuses no more than the library does.
        let at_bound = "é".repeat(MAX_BAN_REASON / 2);
        let line = format!(r#"{{"at": 1, "ban": "{key}", "reason": "{at_bound}"}}"#);
        assert_eq!(parse_trace(line.as_bytes()).1, []);
    }

    /// The reader refuses a ban's span and reason where the library would, in its words: each
    /// refused line, handed to a store's `ban` as it stands, is refused with the same error;
    /// each one the reader takes, the store takes.
    #[test]
    fn the_reader_refuses_the_bans_the_library_refuses() {
        let key = PublicKey::from_bytes([1; 32]);
        let store = peerstore::PeerStore::new();
        let long = "x".repeat(MAX_BAN_REASON + 1);
        let cases: [(Option<Duration>, &str); 6] = [
            (Some(Duration::ZERO), "revoked"),
            (None, &long),
            (None, "two\nlines"),
            (Some(Duration::from_secs(60)), "tab\there"),
            (None, "key revoked"),
            (Some(Duration::from_secs(1)), ""),
        ];
        for (span, reason) in cases {
            let mut fields = serde_json::Map::new();
            fields.insert("at".into(), 1.into());
            fields.insert("ban".into(), key.to_string().into());
            if let Some(span) = span {
                fields.insert("secs".into(), span.as_secs().into());
            }
            fields.insert("reason".into(), reason.into());
            let read = Line::try_from(Value::Object(fields));
            match store.ban(&key, span, reason) {
                Ok(_) => assert!(read.is_ok(), "{reason:?}: {read:?}"),
                Err(refused) => {
                    let why = read.expect_err(reason);
                    assert!(why.contains(&refused.to_string()), "{why} / {refused}");
                }
            }
        }
    }

    /// Every refusal, in the words a trace's author reads on stderr; `{K}` stands for a key.
    #[test]
    fn a_bad_line_says_what_is_wrong_with_it() {
        let cases = [
            (
                r#"this is not json"#,
                r#"not JSON: expected ident at line 1 column 2"#,
            ),
            (r#"[1,2]"#, r#"not a JSON object"#),
            (r#""str""#, r#"not a JSON object"#),
            (r#"{}"#, r#"no "at" field"#),
            (r#"{"method": "lan", "peer": {}}"#, r#"no "at" field"#),
            (
                r#"{"at": -1, "cleanup": true}"#,
                r#""at" = -1: expected seconds from the start, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": "x", "cleanup": true}"#,
                r#""at" = "x": expected seconds from the start, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1e13, "cleanup": true}"#,
                r#""at" = 10000000000000.0: expected seconds from the start, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1e10, "cleanup": true}"#,
                r#""at" = 10000000000.0: expected seconds from the start, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": null, "cleanup": true}"#,
                r#""at" = null: expected seconds from the start, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1, "peer": {"public_key": "{K}"}}"#,
                r#"an announcement needs a "method""#,
            ),
            (
                r#"{"at": 1, "method": 5, "peer": {"public_key": "{K}"}}"#,
                r#""method" = 5: expected a method name"#,
            ),
            (
                r#"{"at": 1, "method": "", "peer": {"public_key": "{K}"}}"#,
                r#""method": method "" (0 bytes) is not a method name: 1 to 64 bytes of ASCII letters, digits and -_.:/"#,
            ),
            (
                r#"{"at": 1, "method": "x y z very long method name that is far too long to be a method name at all really", "peer": {"public_key": "{K}"}}"#,
                r#""method": method "x y z very long method name that is far too long to be a method name at all real…" (82 bytes) is not a method name: 1 to 64 bytes of ASCII letters, digits and -_.:/"#,
            ),
            (
                r#"{"at": 1, "method": "lan", "peer": {"public_key": "short"}}"#,
                r#""peer": public key must be 44 characters of base64, found 5"#,
            ),
            (
                r#"{"at": 1, "method": "lan", "peer": 5}"#,
                r#""peer": invalid type: integer `5`, expected struct PeerInfo"#,
            ),
            (
                r#"{"at": 1, "method": "lan", "peer": {"public_key": "{K}", "endpoint": "nope"}}"#,
                r#""peer": invalid socket address syntax"#,
            ),
            (
                r#"{"at": 1, "method": "lan", "peer": null}"#,
                r#""peer": invalid type: null, expected struct PeerInfo"#,
            ),
            (
                r#"{"at": 1, "remove": 5}"#,
                r#""remove" = 5: expected a key"#,
            ),
            (
                r#"{"at": 1, "remove": "short"}"#,
                r#""remove" = "short": public key must be 44 characters of base64, found 5"#,
            ),
            (
                r#"{"at": 1, "remove": "{K}", "tombstone_secs": -1}"#,
                r#""tombstone_secs" = -1: expected seconds, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1, "remove": "{K}", "tombstone_secs": "x"}"#,
                r#""tombstone_secs" = "x": expected seconds, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1, "remove": "{K}", "tombstone_secs": null}"#,
                r#""tombstone_secs" = null: expected seconds, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1, "remove": "{K}", "tombstone_secs": 1e13}"#,
                r#""tombstone_secs" = 10000000000000.0: expected seconds, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1, "remove": "{K}", "tombstone_secs": 1e10}"#,
                r#""tombstone_secs" = 10000000000.0: expected seconds, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 1, "remove": null}"#,
                r#""remove" = null: expected a key"#,
            ),
            (
                r#"{"at": 1, "cleanup": false}"#,
                r#"expected "peer" and "method", "remove", "confirm", "fail", "ban", "unban", or "cleanup": true"#,
            ),
            (
                r#"{"at": 1, "cleanup": 1}"#,
                r#"expected "peer" and "method", "remove", "confirm", "fail", "ban", "unban", or "cleanup": true"#,
            ),
            (
                r#"{"at": 1, "cleanup": null}"#,
                r#"expected "peer" and "method", "remove", "confirm", "fail", "ban", "unban", or "cleanup": true"#,
            ),
            (
                r#"{"at": 1, "confirm": 5, "endpoint": "1.2.3.4:5"}"#,
                r#""confirm" = 5: expected a key"#,
            ),
            (
                r#"{"at": 1, "confirm": "short", "endpoint": "1.2.3.4:5"}"#,
                r#""confirm" = "short": public key must be 44 characters of base64, found 5"#,
            ),
            (r#"{"at": 1, "confirm": "{K}"}"#, r#"needs an "endpoint""#),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": 5}"#,
                r#""endpoint" = 5: expected an address:port"#,
            ),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": "1.2.3.4"}"#,
                r#""endpoint" = "1.2.3.4": expected an address:port"#,
            ),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": "1.2.3.4:5", "rtt_ms": -1}"#,
                r#""rtt_ms" = -1: expected milliseconds, from 0 to below 1e9"#,
            ),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": "1.2.3.4:5", "rtt_ms": 1e9}"#,
                r#""rtt_ms" = 1000000000.0: expected milliseconds, from 0 to below 1e9"#,
            ),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": "1.2.3.4:5", "rtt_ms": 1e300}"#,
                r#""rtt_ms" = 1e+300: expected milliseconds, from 0 to below 1e9"#,
            ),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": "1.2.3.4:5", "rtt_ms": "x"}"#,
                r#""rtt_ms" = "x": expected milliseconds, from 0 to below 1e9"#,
            ),
            (
                r#"{"at": 1, "confirm": "{K}", "endpoint": "1.2.3.4:5", "rtt_ms": null}"#,
                r#""rtt_ms" = null: expected milliseconds, from 0 to below 1e9"#,
            ),
            (
                r#"{"at": 1, "confirm": null, "endpoint": "1.2.3.4:5"}"#,
                r#""confirm" = null: expected a key"#,
            ),
            (
                r#"{"at": 1, "fail": 5, "endpoint": "1.2.3.4:5"}"#,
                r#""fail" = 5: expected a key"#,
            ),
            (
                r#"{"at": 1, "fail": "short", "endpoint": "1.2.3.4:5"}"#,
                r#""fail" = "short": public key must be 44 characters of base64, found 5"#,
            ),
            (r#"{"at": 1, "fail": "{K}"}"#, r#"needs an "endpoint""#),
            (
                r#"{"at": 1, "fail": "{K}", "endpoint": "nowhere"}"#,
                r#""endpoint" = "nowhere": expected an address:port"#,
            ),
            (r#"{"at": 1, "ban": 5}"#, r#""ban" = 5: expected a key"#),
            (
                r#"{"at": 1, "ban": "short"}"#,
                r#""ban" = "short": public key must be 44 characters of base64, found 5"#,
            ),
            (
                r#"{"at": 1, "ban": null}"#,
                r#""ban" = null: expected a key"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": 0}"#,
                r#""secs" = 0: ban span is zero: it would lift before it stood (leave "secs" out to ban until an unban)"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": 1e-12}"#,
                r#""secs" = 1e-12: ban span is zero: it would lift before it stood (leave "secs" out to ban until an unban)"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": -5}"#,
                r#""secs" = -5: expected seconds, above 0 and below 9e9"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": 1e10}"#,
                r#""secs" = 10000000000.0: expected seconds, above 0 and below 9e9"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": 1e300}"#,
                r#""secs" = 1e+300: expected seconds, above 0 and below 9e9"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": "forever"}"#,
                r#""secs" = "forever": expected seconds, above 0 and below 9e9"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "secs": null}"#,
                r#""secs" = null: expected seconds, above 0 and below 9e9"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "reason": "ok\nINFO all good"}"#,
                r#""reason": ban reason holds the control character '\n' at byte 2"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "reason": "\u001b[31mred"}"#,
                r#""reason": ban reason holds the control character '\u{1b}' at byte 0"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "reason": "{LONG}"}"#,
                r#""reason": ban reason is 257 bytes long, over the limit of 256"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "reason": 7}"#,
                r#""reason" = 7: expected a string"#,
            ),
            (
                r#"{"at": 1, "ban": "{K}", "reason": ["a very long list of words that goes on"]}"#,
                r#""reason" = ["a very long list of words that goes on…: expected a string"#,
            ),
            (r#"{"at": 1, "unban": 5}"#, r#""unban" = 5: expected a key"#),
            (
                r#"{"at": 1, "unban": "short"}"#,
                r#""unban" = "short": public key must be 44 characters of base64, found 5"#,
            ),
            (
                r#"{"at": 18446744073709551616, "cleanup": true}"#,
                r#""at" = 1.8446744073709552e+19: expected seconds from the start, from 0 to below 9e9"#,
            ),
            (
                r#"{"at": 5, "cleanup": true} trailing"#,
                r#"not JSON: trailing characters at line 1 column 28"#,
            ),
        ];
        let key = PublicKey::from_bytes([1; 32]).to_string();
        let long = "x".repeat(MAX_BAN_REASON + 1);
        for (raw, reason) in cases {
            let raw = raw.replace("{K}", &key).replace("{LONG}", &long);
            let (lines, bad) = parse_trace(raw.as_bytes());
            assert_eq!(lines, [], "{raw}");
            assert_eq!(bad, [(1, reason.to_string())], "{raw}");
        }
        let (_, bad) = parse_trace(b"{\"at\": 6, \"method\": \"l\xffn\"}");
        assert_eq!(bad, [(1, "not UTF-8 (byte 23 of the line)".to_string())]);
        let (_, bad) =
            parse_trace(b"{\"at\": 2, \"cleanup\": true}\n{\"at\": 1.5, \"cleanup\": true}");
        let back = "at 1.5 is before the previous line's 2: a trace never goes back";
        assert_eq!(bad, [(2, back.to_string())]);
    }
}
