//! `last_seen` on the wire: whole Unix seconds, as the peer cache writes them, or an RFC 3339
//! string (`"2026-11-01T12:00:00Z"`). What is written is read back exactly: whole seconds as
//! an integer, a time with a fraction of a second as RFC 3339 with nanoseconds.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

/// Whole seconds since the Unix epoch, negative before it; `None` unless `t` is a whole second.
fn whole_seconds(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) if after.subsec_nanos() == 0 => i64::try_from(after.as_secs()).ok(),
        Err(before) if before.duration().subsec_nanos() == 0 => {
            i64::try_from(before.duration().as_secs()).ok().map(|s| -s)
        }
        _ => None,
    }
}

pub(crate) fn serialize<S: Serializer>(t: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    if let Some(secs) = whole_seconds(*t) {
        return serializer.serialize_i64(secs);
    }
    // A fraction of a second: RFC 3339 holds it exactly, for the years it can write.
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) if after.as_secs() < 253_402_300_800 => {
            serializer.collect_str(&humantime::format_rfc3339_nanos(*t))
        }
        // Before 1970 or after 9999: the whole second, rounded toward the epoch.
        Ok(after) => serializer.serialize_u64(after.as_secs()),
        Err(before) => serializer
            .serialize_i64(i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s)),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SystemTime, D::Error> {
    deserializer.deserialize_any(TimeVisitor)
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = SystemTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("last_seen as whole Unix seconds or an RFC 3339 time")
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<SystemTime, E> {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| E::custom(format!("last_seen {secs} is past what a time can hold")))
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<SystemTime, E> {
        let span = Duration::from_secs(secs.unsigned_abs());
        let t = if secs >= 0 {
            UNIX_EPOCH.checked_add(span)
        } else {
            UNIX_EPOCH.checked_sub(span)
        };
        t.ok_or_else(|| E::custom(format!("last_seen {secs} is past what a time can hold")))
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<SystemTime, E> {
        Err(E::custom(format!(
            "last_seen {secs} is not whole seconds: write a fraction of a second as RFC 3339"
        )))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SystemTime, E> {
        humantime::parse_rfc3339(text)
            .map_err(|e| E::custom(format!("last_seen {text:?} is not an RFC 3339 time: {e}")))
    }
}

/// The same for an `Option<SystemTime>`: `null` or absent is `None`.
pub(crate) mod option {
    use super::{Deserialize, Deserializer, Serializer, SystemTime};

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] SystemTime);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct At(#[serde(with = "super")] SystemTime);

    fn round_trip(t: SystemTime) -> String {
        let json = serde_json::to_string(&At(t)).unwrap();
        assert_eq!(serde_json::from_str::<At>(&json).unwrap(), At(t), "{json}");
        json
    }

    #[test]
    fn whole_seconds_are_an_integer_and_a_fraction_is_rfc_3339() {
        assert_eq!(
            round_trip(UNIX_EPOCH + Duration::from_secs(1_793_491_042)),
            "1793491042"
        );
        assert_eq!(
            round_trip(UNIX_EPOCH - Duration::from_secs(86_400)),
            "-86400"
        );
        assert_eq!(
            round_trip(UNIX_EPOCH + Duration::new(1_793_491_042, 5)),
            "\"2026-10-31T23:57:22.000000005Z\""
        );
        let parsed: At = serde_json::from_str("\"2026-10-31T23:57:22Z\"").unwrap();
        assert_eq!(parsed, At(UNIX_EPOCH + Duration::from_secs(1_793_491_042)));
    }

    #[test]
    fn what_is_not_a_time_is_refused_saying_so() {
        for bad in ["1.5", "\"yesterday\"", "true", "18446744073709551615"] {
            let err = serde_json::from_str::<At>(bad).unwrap_err().to_string();
            assert!(
                err.contains("last_seen") || err.contains("invalid type"),
                "{bad}: {err}"
            );
        }
    }
}
