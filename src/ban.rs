//! Bans: keys that stay out whatever anyone says of them.
//!
//! A tombstone keeps a removed peer out against second-hand word, and against first-hand
//! word as the store's readmission rule says; nothing a discovery method says lifts a ban. A
//! banned key is refused by every method, the cache included, with
//! [`UpdateError::Banned`](crate::UpdateError::Banned), and [`PeerStore::ban`](crate::PeerStore::ban)
//! removes the record it had. Only [`PeerStore::unban`](crate::PeerStore::unban), or the end of
//! the span the ban was placed for, lifts one.
//!
//! Bans sit in a map of their own, at most [`MAX_BANS`] of them: a ban past that is refused
//! with [`BanError::TooMany`] rather than dropping an older one, since an operator's ban that
//! silently went away would let a revoked key back in. The map is locked only while the key's
//! record (or its vacant slot) is locked, record first, or alone.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::PublicKey;
use crate::clock::{Nanos, nanos_of};
use crate::keymap::{KeyMap, key_map, oldest_first};
use crate::sync::{AtomicUsize, Ordering};

/// The most bans a store holds; a new one past it is refused with [`BanError::TooMany`].
pub const MAX_BANS: usize = 4096;

/// The longest reason a ban keeps, in bytes of UTF-8.
pub const MAX_BAN_REASON: usize = 256;

/// A key the store refuses whatever is said of it ([`PeerStore::banned`](crate::PeerStore::banned)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Ban {
    /// The banned key.
    pub public_key: PublicKey,
    /// When it was banned, on the wall clock.
    pub since: SystemTime,
    /// Until when the ban stands, on the wall clock; `None` until it is lifted.
    pub until: Option<SystemTime>,
    /// Why, as the caller said it.
    pub reason: String,
}

/// Why a ban was not placed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BanError {
    /// The store holds [`MAX_BANS`] bans already.
    TooMany {
        /// The bound.
        max: usize,
    },
    /// The reason is longer than [`MAX_BAN_REASON`] bytes.
    ReasonTooLong {
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The reason holds a control character (a line break, an escape), which would let it
    /// forge lines in a log.
    ReasonControl {
        /// The character.
        found: char,
        /// Its byte offset in the reason.
        at: usize,
    },
    /// A ban of zero length: it would lift before it stood. `None` bans until lifted.
    ZeroSpan,
}

impl fmt::Display for BanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanError::TooMany { max } => write!(
                f,
                "ban refused: the store holds its limit of {max} bans; lift one (unban) first"
            ),
            BanError::ReasonTooLong { len, max } => {
                write!(f, "ban reason is {len} bytes long, over the limit of {max}")
            }
            BanError::ReasonControl { found, at } => write!(
                f,
                "ban reason holds the control character {found:?} at byte {at}"
            ),
            BanError::ZeroSpan => f.write_str("ban span is zero: it would lift before it stood"),
        }
    }
}

impl std::error::Error for BanError {}

/// Checks a ban's reason and span, naming what is wrong.
pub(crate) fn check(span: Option<Duration>, reason: &str) -> Result<(), BanError> {
    if span.is_some_and(|span| span.is_zero()) {
        return Err(BanError::ZeroSpan);
    }
    if reason.len() > MAX_BAN_REASON {
        return Err(BanError::ReasonTooLong {
            len: reason.len(),
            max: MAX_BAN_REASON,
        });
    }
    if let Some((at, found)) = reason.char_indices().find(|(_, c)| c.is_control()) {
        return Err(BanError::ReasonControl { found, at });
    }
    Ok(())
}

/// One ban as the store keeps it: on its timeline, and on the wall for callers.
#[derive(Debug, Clone)]
struct Entry {
    placed: Nanos,
    until: Option<Nanos>,
    since_wall: SystemTime,
    until_wall: Option<SystemTime>,
    reason: Box<str>,
}

impl Entry {
    fn stands_at(&self, now: Nanos) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// A ban that stands, as admission weighs it: until when, on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    pub until: Option<SystemTime>,
}

/// A store's bans.
pub(crate) struct Bans {
    map: KeyMap<Entry>,
    /// How many the map holds: read first on every insert of a new peer, so that a store
    /// without bans pays one load.
    count: AtomicUsize,
}

impl Bans {
    pub(crate) fn new(shards: Option<usize>) -> Self {
        Bans {
            map: key_map(shards),
            count: AtomicUsize::new(0),
        }
    }

    /// Bans `key` from `now` (`wall` on the wall clock) for `span`, or until lifted, saying it
    /// was banned `since` (`wall`, but for a ban restored from a file); a key banned already
    /// has its ban replaced. The reason and span must have passed [`check`]. Whether `key` was
    /// not banned before.
    pub(crate) fn place(
        &self,
        key: PublicKey,
        span: Option<Duration>,
        reason: &str,
        now: Nanos,
        wall: SystemTime,
        since: SystemTime,
    ) -> Result<bool, BanError> {
        let entry = Entry {
            placed: now,
            until: span.map(|span| now.saturating_add(nanos_of(span))),
            since_wall: since,
            until_wall: span.map(|span| {
                // `nanos_of` caps the span at about 292 years, which the wall clock holds.
                let span = Duration::from_nanos(nanos_of(span).unsigned_abs());
                wall.checked_add(span).unwrap_or(wall)
            }),
            reason: reason.into(),
        };
        if let Some(mut old) = self.map.get_mut(&key) {
            *old = entry;
            return Ok(false);
        }
        // The slot first, so that racing bans never hold more than the bound.
        if self.count.fetch_add(1, Ordering::AcqRel) >= MAX_BANS {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(BanError::TooMany { max: MAX_BANS });
        }
        if self.map.insert(key, entry).is_some() {
            // A racing ban of the same key went in first: one ban, counted once.
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Ok(false);
        }
        Ok(true)
    }

    /// `key`'s ban, if one stands at `now`; one that ran out is dropped.
    #[inline]
    pub(crate) fn standing(&self, key: &PublicKey, now: Nanos) -> Option<Standing> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let (stands, until) = {
            let entry = self.map.get(key)?;
            (entry.stands_at(now), entry.until_wall)
        };
        if stands {
            return Some(Standing { until });
        }
        if self
            .map
            .remove_if(key, |_, entry| !entry.stands_at(now))
            .is_some()
        {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        None
    }

    /// Lifts `key`'s ban; whether one stood.
    pub(crate) fn lift(&self, key: &PublicKey, now: Nanos) -> bool {
        match self.map.remove(key) {
            Some((_, entry)) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                entry.stands_at(now)
            }
            None => false,
        }
    }

    /// Drops every ban that ran out by `now`.
    pub(crate) fn expire(&self, now: Nanos) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut gone = 0;
        self.map.retain(|_, entry| {
            let keep = entry.stands_at(now);
            gone += usize::from(!keep);
            keep
        });
        if gone > 0 {
            self.count.fetch_sub(gone, Ordering::AcqRel);
        }
    }

    /// The bans standing at `now`, oldest first (those placed at one instant by key).
    pub(crate) fn list(&self, now: Nanos) -> Vec<Ban> {
        if self.count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let placed = |e: &Entry| e.placed;
        oldest_first(&self.map, placed, |key, e| {
            e.stands_at(now).then(|| Ban {
                public_key: *key,
                since: e.since_wall,
                until: e.until_wall,
                reason: e.reason.to_string(),
            })
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        PublicKey::from_bytes(bytes)
    }

    const WALL: SystemTime = SystemTime::UNIX_EPOCH;
    const SEC: Nanos = 1_000_000_000;

    #[test]
    fn a_ban_stands_for_its_span_or_until_lifted() {
        let bans = Bans::new(Some(2));
        let span = Duration::from_secs(30);
        assert_eq!(
            bans.place(key(1), Some(span), "flood", 0, WALL, WALL),
            Ok(true)
        );
        assert_eq!(bans.place(key(2), None, "revoked", 0, WALL, WALL), Ok(true));
        let until = Some(WALL + span);
        assert_eq!(bans.standing(&key(1), 29 * SEC), Some(Standing { until }));
        assert_eq!(bans.standing(&key(3), 0), None, "another key");
        assert_eq!(bans.standing(&key(1), 30 * SEC), None, "ran out");
        assert_eq!(bans.len(), 1, "and was dropped");
        let forever = Some(Standing { until: None });
        assert_eq!(bans.standing(&key(2), Nanos::MAX), forever, "no span");
        assert!(bans.lift(&key(2), 0));
        assert!(!bans.lift(&key(2), 0), "lifted once");
        assert_eq!(bans.standing(&key(2), 0), None);
        assert_eq!(bans.len(), 0);
    }

    #[test]
    fn banning_again_replaces_and_the_list_is_oldest_first() {
        let bans = Bans::new(Some(2));
        bans.place(key(1), None, "first", SEC, WALL, WALL).unwrap();
        bans.place(key(2), None, "second", 2 * SEC, WALL, WALL)
            .unwrap();
        let span = Some(Duration::from_secs(5));
        assert_eq!(
            bans.place(key(1), span, "again", 3 * SEC, WALL, WALL),
            Ok(false)
        );
        assert_eq!(bans.len(), 2);
        let listed = bans.list(3 * SEC);
        assert_eq!(listed[0].public_key, key(2), "key 1 was placed again later");
        assert_eq!(listed[1].reason, "again");
        bans.expire(8 * SEC);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans.list(8 * SEC)[0].public_key, key(2));
    }

    #[test]
    // Four thousand inserts into a map is minutes under Miri, and this is no unsafe code's test.
    #[cfg_attr(miri, ignore)]
    fn past_the_maximum_a_new_ban_is_refused_and_none_is_dropped() {
        let bans = Bans::new(Some(4));
        for n in 0..u32::try_from(MAX_BANS).unwrap() {
            bans.place(key(n), None, "", Nanos::from(n), WALL, WALL)
                .unwrap();
        }
        let past = u32::try_from(MAX_BANS).unwrap();
        let refused = bans.place(key(past), None, "", 0, WALL, WALL);
        assert_eq!(refused, Err(BanError::TooMany { max: MAX_BANS }));
        assert_eq!(bans.len(), MAX_BANS);
        assert!(bans.standing(&key(0), 0).is_some(), "the oldest kept");
        assert_eq!(
            bans.place(key(0), None, "again", 0, WALL, WALL),
            Ok(false),
            "a replace fits"
        );
    }

    #[test]
    fn a_reason_is_bounded_and_free_of_control_characters() {
        assert_eq!(check(None, "revoked by ops"), Ok(()));
        let long = "x".repeat(MAX_BAN_REASON + 1);
        assert_eq!(
            check(None, &long),
            Err(BanError::ReasonTooLong {
                len: MAX_BAN_REASON + 1,
                max: MAX_BAN_REASON
            })
        );
        let forged = check(None, "ok\nINFO all good");
        assert_eq!(forged, Err(BanError::ReasonControl { found: '\n', at: 2 }));
        assert_eq!(check(Some(Duration::ZERO), ""), Err(BanError::ZeroSpan));
        assert!(
            BanError::ReasonControl { found: '\n', at: 2 }
                .to_string()
                .contains("'\\n' at byte 2")
        );
    }
}
