//! The cache file's format, written and read side by side: the reference daemon's JSON.
//!
//! ```json
//! {"peers": [{"wg_pubkey": "<base64>", "mesh_ip": "10.42.0.7", "endpoint": "198.51.100.7:51820",
//!             "last_seen": 1763800000, "hostname": "edge-1", "mesh_ipv6": "fd00::7",
//!             "introducer": true, "routable_networks": ["192.168.7.0/24"], "nat_type": "cone"}],
//!  "updated_at": 1763800000}
//! ```
//!
//! A store that keeps tombstones ([`PeerStore::remove_for`](crate::PeerStore::remove_for))
//! writes them under a key of this crate's own, which the reference reader ignores:
//!
//! ```json
//!  "tombstones": [{"wg_pubkey": "<base64>", "since": 1763800000, "until": 1763800030,
//!                  "cause": "explicit"}]
//! ```
//!
//! and its bans ([`PeerStore::ban`](crate::PeerStore::ban)) the same way, `until` absent for a
//! ban that stands until lifted:
//!
//! ```json
//!  "bans": [{"wg_pubkey": "<base64>", "since": 1763800000, "reason": "key revoked"}]
//! ```
//!
//! Times are Unix seconds. `hostname`, `mesh_ipv6`, `introducer`, `routable_networks` and
//! `nat_type` may be absent; an empty string or `null` counts as absent everywhere (the
//! reference writes `""` for a peer with no endpoint and `null` for no peers); unknown fields
//! are ignored. The top level must be an object; its `peers` an array, `null` or absent (no
//! peers, as the reference writes and reads it). Anything else is not a cache file.
//!
//! Reading streams the `peers` array: each entry is borrowed from the file's text and parsed
//! on its own, then dropped, so a restore costs the file's text and one entry at a time,
//! whatever the file holds.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::EntryError;
use crate::{
    Ban, Hostname, NatType, Peer, PeerInfo, PublicKey, RemovalCause, RoutableNetworks, Tombstone,
};

/// The longest entry read, in bytes of JSON: a peer with the most routable networks takes
/// about 12 KB, so a longer entry is not a peer, and parsing it would only cost memory.
pub const MAX_ENTRY_LEN: usize = 32 * 1024;

// ---- Writing -------------------------------------------------------------------------------

/// The file as written: the peers in a stable order, so that saves of the same peers are the
/// same bytes.
pub(super) fn write(
    peers: &[std::sync::Arc<Peer>],
    tombstones: &[Tombstone],
    bans: &[Ban],
    now: SystemTime,
) -> Vec<u8> {
    let file = CacheFile {
        peers: peers.iter().map(|peer| CacheEntry::of(peer)).collect(),
        updated_at: unix_seconds(now),
        tombstones: tombstones.iter().map(TombstoneEntry::of).collect(),
        bans: bans.iter().map(BanEntry::of).collect(),
    };
    let mut json = serde_json::to_vec_pretty(&file).unwrap_or_default();
    json.push(b'\n');
    json
}

/// The file as written.
#[derive(Serialize)]
struct CacheFile<'a> {
    peers: Vec<CacheEntry<'a>>,
    updated_at: u64,
    /// Left out when there are none, so that such a file is the reference's byte for byte.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tombstones: Vec<TombstoneEntry>,
    /// Left out when there are none, as the tombstones are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bans: Vec<BanEntry<'a>>,
}

/// One ban as written.
#[derive(Serialize)]
struct BanEntry<'a> {
    wg_pubkey: PublicKey,
    since: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
    reason: &'a str,
}

impl<'a> BanEntry<'a> {
    fn of(ban: &'a Ban) -> Self {
        BanEntry {
            wg_pubkey: ban.public_key,
            since: unix_seconds(ban.since),
            until: ban.until.map(unix_seconds),
            reason: &ban.reason,
        }
    }
}

/// A ban read back: the key, since when, until when (`None`: until lifted), and why.
pub(super) type ReadBan = (PublicKey, SystemTime, Option<SystemTime>, String);

/// The ban an entry of `bans` describes, or `None` if it is not one. The reason is checked
/// when the ban is placed.
pub(super) fn read_ban(raw: &str) -> Option<ReadBan> {
    #[derive(serde::Deserialize)]
    struct Read {
        wg_pubkey: PublicKey,
        since: u64,
        #[serde(default)]
        until: Option<u64>,
        #[serde(default)]
        reason: String,
    }
    if raw.len() > MAX_ENTRY_LEN {
        return None;
    }
    let entry: Read = serde_json::from_str(raw).ok()?;
    let at = |secs: u64| UNIX_EPOCH.checked_add(Duration::from_secs(secs));
    let until = match entry.until {
        None => None,
        Some(secs) => Some(at(secs)?),
    };
    Some((entry.wg_pubkey, at(entry.since)?, until, entry.reason))
}

/// This crate's own lists beside `peers`, which the reference reader ignores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    /// `tombstones`.
    Tombstone,
    /// `bans`.
    Ban,
}

impl Extra {
    fn key(self) -> &'static str {
        match self {
            Extra::Tombstone => "tombstones",
            Extra::Ban => "bans",
        }
    }
}

/// One tombstone as written and read.
#[derive(Serialize, serde::Deserialize)]
pub(super) struct TombstoneEntry {
    pub wg_pubkey: PublicKey,
    pub since: u64,
    pub until: u64,
    pub cause: String,
}

impl TombstoneEntry {
    fn of(tombstone: &Tombstone) -> Self {
        TombstoneEntry {
            wg_pubkey: tombstone.public_key,
            since: unix_seconds(tombstone.since),
            until: unix_seconds(tombstone.until),
            cause: tombstone.cause.as_str().to_owned(),
        }
    }

    /// The tombstone this entry describes, or why it is not one.
    pub(super) fn tombstone(
        raw: &str,
    ) -> Option<(PublicKey, SystemTime, SystemTime, RemovalCause)> {
        if raw.len() > MAX_ENTRY_LEN {
            return None;
        }
        let entry: TombstoneEntry = serde_json::from_str(raw).ok()?;
        let cause = match entry.cause.as_str() {
            "explicit" => RemovalCause::Explicit,
            "expired" => RemovalCause::Expired,
            _ => return None,
        };
        let at = |secs: u64| UNIX_EPOCH.checked_add(Duration::from_secs(secs));
        Some((entry.wg_pubkey, at(entry.since)?, at(entry.until)?, cause))
    }
}

/// One peer as written: the reference's field names; optional fields left out when empty.
#[derive(Serialize)]
struct CacheEntry<'a> {
    wg_pubkey: PublicKey,
    /// `""` when unknown, as the reference writes it.
    mesh_ip: String,
    /// `""` when unknown, as the reference writes it.
    endpoint: String,
    last_seen: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mesh_ipv6: Option<Ipv6Addr>,
    introducer: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    routable_networks: &'a [IpNet],
    #[serde(skip_serializing_if = "Option::is_none")]
    nat_type: Option<NatType>,
}

impl<'a> CacheEntry<'a> {
    fn of(peer: &'a Peer) -> Self {
        CacheEntry {
            wg_pubkey: peer.public_key,
            mesh_ip: peer.mesh_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            endpoint: peer.endpoint.map(|ep| ep.to_string()).unwrap_or_default(),
            last_seen: unix_seconds(peer.last_seen),
            hostname: peer.hostname.as_deref(),
            mesh_ipv6: peer.mesh_ipv6,
            introducer: peer.introducer,
            routable_networks: &peer.routable_networks,
            nat_type: peer.nat_type,
        }
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

// ---- Reading -------------------------------------------------------------------------------

/// A cache file's bytes as text. A byte that is not UTF-8 is replaced by `?` and marked, so
/// that the file still parses where its structure is whole, and the entry holding it is
/// refused on its own.
pub(super) struct Text {
    text: String,
    /// One bit per byte of `text`, set where a byte was replaced; empty when none was.
    replaced: Vec<u64>,
}

impl Text {
    pub(super) fn new(mut bytes: Vec<u8>) -> Self {
        let mut replaced = Vec::new();
        let mut from = 0;
        while let Err(e) = std::str::from_utf8(&bytes[from..]) {
            let start = from + e.valid_up_to();
            let end = e.error_len().map_or(bytes.len(), |len| start + len);
            if replaced.is_empty() {
                replaced = vec![0; bytes.len().div_ceil(64)];
            }
            for i in start..end {
                bytes[i] = b'?';
                replaced[i / 64] |= 1 << (i % 64);
            }
            from = end;
        }
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Text { text, replaced }
    }

    /// How many bytes of `part`, a slice of this text, were replaced.
    fn replaced_within(&self, part: &str) -> usize {
        if self.replaced.is_empty() {
            return 0;
        }
        let start = (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        (start..start + part.len())
            .filter(|&i| self.replaced[i / 64] & (1 << (i % 64)) != 0)
            .count()
    }
}

/// Checks that `text` is a cache file: an object whose `peers` is an array, `null` or absent,
/// every entry whole JSON, and bytes that are not UTF-8 only inside entries (one elsewhere,
/// in a key say, breaks the file's structure). The message says what was found instead, with
/// the line and column.
pub(super) fn check(text: &Text, mut extra: impl FnMut(Extra, &str)) -> Result<(), String> {
    let inside = std::cell::Cell::new(0);
    visit_entries(
        &text.text,
        |_, raw| inside.set(inside.get() + text.replaced_within(raw.get())),
        |kind, raw| {
            // A tombstone or a ban with a byte that is not UTF-8 in it is not one.
            match text.replaced_within(raw.get()) {
                0 => extra(kind, raw.get()),
                n => inside.set(inside.get() + n),
            }
        },
    )?;
    let inside = inside.get();
    let total: u32 = text.replaced.iter().map(|word| word.count_ones()).sum();
    if usize::try_from(total).is_ok_and(|total| total > inside) {
        return Err("bytes that are not UTF-8 outside the entries".into());
    }
    Ok(())
}

/// Calls `each` with the index and the parsed entry (or what is wrong with it) of every entry
/// of a file that passed [`check`], in order.
pub(super) fn for_each_entry(
    text: &Text,
    mut each: impl FnMut(usize, Result<PeerInfo, EntryError>),
) -> Result<(), String> {
    let ignore = |_: Extra, _: &RawValue| {};
    visit_entries(
        &text.text,
        |index, raw| {
            let json = raw.get();
            let entry = if text.replaced_within(json) > 0 {
                Err(EntryError::NotUtf8)
            } else if json.len() > MAX_ENTRY_LEN {
                Err(EntryError::TooLong { len: json.len() })
            } else {
                match serde_json::from_str::<Value>(json) {
                    Ok(value) => parse_entry(&value),
                    Err(_) => Err(EntryError::NotAnObject {
                        found: excerpt(&Value::String(json.to_owned())),
                    }),
                }
            };
            each(index, entry);
        },
        ignore,
    )
}

/// Walks the top level and the `peers` array, handing each entry over as raw JSON borrowed from
/// `text`.
fn visit_entries<'de>(
    text: &'de str,
    each: impl FnMut(usize, &'de RawValue),
    extra: impl FnMut(Extra, &'de RawValue),
) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer
        .deserialize_map(FileVisitor { each, extra })
        .and_then(|()| deserializer.end())
        .map_err(|e| e.to_string())
}

struct FileVisitor<F, T> {
    each: F,
    extra: T,
}

impl<'de, F: FnMut(usize, &'de RawValue), T: FnMut(Extra, &'de RawValue)> Visitor<'de>
    for FileVisitor<F, T>
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a \"peers\" array")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let extra = [Extra::Tombstone, Extra::Ban]
                .into_iter()
                .find(|extra| key == extra.key());
            if let Some(kind) = extra {
                map.next_value_seed(ExtrasSeed {
                    kind,
                    each: &mut self.extra,
                })?;
            } else if key != "peers" {
                map.next_value::<IgnoredAny>()?;
            } else if seen {
                return Err(de::Error::duplicate_field("peers"));
            } else {
                seen = true;
                map.next_value_seed(PeersSeed {
                    each: &mut self.each,
                })?;
            }
        }
        // No `peers` at all is no peers, as the reference reads it.
        Ok(())
    }
}

/// This crate's own `tombstones` or `bans` value, streamed like `peers`: an array of entries,
/// each handed over raw; any other value says nothing and is skipped.
struct ExtrasSeed<'f, T> {
    kind: Extra,
    each: &'f mut T,
}

impl<'de, T: FnMut(Extra, &'de RawValue)> DeserializeSeed<'de> for ExtrasSeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: FnMut(Extra, &'de RawValue)> Visitor<'de> for ExtrasSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" as an array of entries", self.kind.key())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            (self.each)(self.kind, raw);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The `peers` value: `null` (no peers, as the reference writes it) or an array.
struct PeersSeed<'f, F> {
    each: &'f mut F,
}

impl<'de, F: FnMut(usize, &'de RawValue)> DeserializeSeed<'de> for PeersSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: FnMut(usize, &'de RawValue)> Visitor<'de> for PeersSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"peers\" as an array of entries, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            (self.each)(index, raw);
            index += 1;
        }
        Ok(())
    }
}

/// One entry of the file into an announcement, or the first thing wrong with it.
fn parse_entry(entry: &Value) -> Result<PeerInfo, EntryError> {
    let Value::Object(fields) = entry else {
        return Err(EntryError::NotAnObject {
            found: excerpt(entry),
        });
    };
    let key = text(fields, "wg_pubkey")?.ok_or(EntryError::Missing { field: "wg_pubkey" })?;
    let mut info = PeerInfo::new(parse("wg_pubkey", key)?);
    info.mesh_ip = optional::<Ipv4Addr>(fields, "mesh_ip")?;
    info.endpoint = optional::<SocketAddr>(fields, "endpoint")?;
    info.mesh_ipv6 = optional::<Ipv6Addr>(fields, "mesh_ipv6")?;
    info.hostname = text(fields, "hostname")?.map(Hostname::from);
    info.nat_type = optional::<NatType>(fields, "nat_type")?;
    info.introducer = match present(fields, "introducer") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(bad("introducer", other, "expected true or false")),
    };
    info.routable_networks = match present(fields, "routable_networks") {
        None => RoutableNetworks::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => parse("routable_networks", s),
                other => Err(bad("routable_networks", other, "expected a CIDR string")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad("routable_networks", other, "expected an array")),
    };
    info.last_seen = Some(match present(fields, "last_seen") {
        None => return Err(EntryError::Missing { field: "last_seen" }),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(secs), _) => UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(|| bad("last_seen", &Value::Number(n.clone()), "out of range"))?,
            // Before 1970: older than any cache worth restoring.
            (None, Some(_)) => UNIX_EPOCH,
            (None, None) => {
                return Err(bad(
                    "last_seen",
                    &Value::Number(n.clone()),
                    "expected whole Unix seconds",
                ));
            }
        },
        Some(other) => return Err(bad("last_seen", other, "expected Unix seconds")),
    });
    Ok(info)
}

/// The field's value unless it is absent or `null`.
fn present<'v>(fields: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
    fields.get(field).filter(|v| !v.is_null())
}

/// A string field; absent, `null` and `""` are all `None`.
fn text<'v>(
    fields: &'v Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'v str>, EntryError> {
    match present(fields, field) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(field, other, "expected a string")),
    }
}

fn optional<T>(fields: &Map<String, Value>, field: &'static str) -> Result<Option<T>, EntryError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    text(fields, field)?.map(|s| parse(field, s)).transpose()
}

fn parse<T>(field: &'static str, s: &str) -> Result<T, EntryError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| bad(field, &Value::String(s.to_owned()), &e.to_string()))
}

fn bad(field: &'static str, value: &Value, reason: &str) -> EntryError {
    EntryError::BadValue {
        field,
        value: excerpt(value),
        reason: reason.to_owned(),
    }
}

/// A value as JSON, at most 80 characters of it: reasons stay readable and small.
fn excerpt(value: &Value) -> String {
    const MAX: usize = 80;
    let mut s = value.to_string();
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_entry_parses_and_bad_ones_name_field_and_value() {
        let entry: Value = serde_json::from_str(
            r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "mesh_ip": "10.42.0.7",
                "endpoint": "198.51.100.7:51820", "last_seen": 1763800000, "hostname": "edge-1",
                "mesh_ipv6": "fd00::7", "introducer": true, "routable_networks": ["192.168.7.0/24"],
                "nat_type": "cone", "something_new": [1, 2]}"#,
        )
        .unwrap();
        let info = parse_entry(&entry).unwrap();
        assert_eq!(info.public_key, PublicKey::from_bytes([7; 32]));
        assert_eq!(info.nat_type, Some(NatType::Cone));
        assert!(info.introducer);

        for (json, field, value) in [
            (r#"{"last_seen": 1}"#, "wg_pubkey", None),
            (
                r#"{"wg_pubkey": "nope", "last_seen": 1}"#,
                "wg_pubkey",
                Some("\"nope\""),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "endpoint": "1.2.3.4", "last_seen": 1}"#,
                "endpoint",
                Some("\"1.2.3.4\""),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}"#,
                "last_seen",
                None,
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "last_seen": 1.5}"#,
                "last_seen",
                Some("1.5"),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "last_seen": 1, "routable_networks": ["10.0.0.0/33"]}"#,
                "routable_networks",
                Some("\"10.0.0.0/33\""),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "last_seen": 1, "nat_type": "full-cone"}"#,
                "nat_type",
                Some("\"full-cone\""),
            ),
        ] {
            let err = parse_entry(&serde_json::from_str(json).unwrap()).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(field), "{message}");
            if let Some(value) = value {
                assert!(message.contains(value), "{message}");
            }
        }
        assert!(matches!(
            parse_entry(&Value::from(3)),
            Err(EntryError::NotAnObject { .. })
        ));
    }

    #[test]
    fn long_values_are_cut_short_in_reasons() {
        let long = Value::String("é".repeat(500));
        let cut = excerpt(&long);
        assert!(cut.len() <= 84 && cut.ends_with('…'), "{cut}");
    }
}
