//! The store's settings: one value the builder fills and checks, the store keeps and hands back
//! ([`PeerStore::settings`](crate::PeerStore::settings)), so that a tool or a test that builds
//! stores from it keeps no copy of its own. A setting is its field here, its check in
//! [`Settings::check`] and its builder method below; the room of the store that uses it reads
//! the field.
//!
//! Two shapes: a choice among policies is an enum whose default is the reference daemon's
//! ([`EndpointPolicy::Ranked`], [`FullPolicy::Refuse`]); an opt-in bound or span is an
//! `Option`, `None` for off.

use std::fmt;
use std::time::Duration;

use super::PeerStoreBuilder;
use crate::{
    DEFAULT_MAX_PEERS, EVENT_BUFFER_SIZE, EndpointPolicy, FullPolicy, MAX_CANDIDATES,
    MAX_ENDPOINT_HISTORY, PEER_DEAD_TIMEOUT, PEER_REMOVE_TIMEOUT, Readmission,
};

/// How a [`PeerStore`](crate::PeerStore) is built: its cap, timeouts, event buffer and opt-in
/// policies. The default is the reference daemon's store, bit for bit.
///
/// ```
/// use std::time::Duration;
/// use peerstore::{PeerStore, Settings};
///
/// let mut settings = Settings::default();
/// settings.max_peers = 50;
/// settings.tombstone_expired = Some(Duration::from_secs(3600));
/// let store = PeerStore::builder().settings(settings.clone()).build()?;
/// assert_eq!(*store.settings(), settings);
/// # Ok::<(), peerstore::BuildError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The most peers the store holds (default 1000): see [`PeerStoreBuilder::max_peers`].
    pub max_peers: usize,
    /// How long a silent peer stays active (default 5 minutes).
    pub dead_after: Duration,
    /// How long a silent peer stays in the store (default 10 minutes).
    pub remove_after: Duration,
    /// How many events each subscriber's channel holds (default 16).
    pub event_buffer: usize,
    /// How a peer's endpoint is chosen (default [`EndpointPolicy::Ranked`]).
    pub endpoint_policy: EndpointPolicy,
    /// How many endpoint changes each peer's history keeps; `None` (the default) keeps none.
    pub endpoint_history: Option<usize>,
    /// How long a tombstone each expired peer gets; `None` (the default) gives none.
    pub tombstone_expired: Option<Duration>,
    /// What lifts a tombstone before it falls (default [`Readmission::FirstHand`]).
    pub readmit: Readmission,
    /// What a full store does with a new peer (default [`FullPolicy::Refuse`]).
    pub when_full: FullPolicy,
    /// How many slots peers never heard first-hand may fill; `None` (the default) is no quota.
    pub max_second_hand: Option<usize>,
    /// How many slots peers never proven by a handshake may fill; `None` (the default) is no
    /// quota.
    pub max_unproven: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_peers: DEFAULT_MAX_PEERS,
            dead_after: PEER_DEAD_TIMEOUT,
            remove_after: PEER_REMOVE_TIMEOUT,
            event_buffer: EVENT_BUFFER_SIZE,
            endpoint_policy: EndpointPolicy::Ranked,
            endpoint_history: None,
            tombstone_expired: None,
            readmit: Readmission::FirstHand,
            when_full: FullPolicy::Refuse,
            max_second_hand: None,
            max_unproven: None,
        }
    }
}

impl Settings {
    /// Whether these settings can work.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting and the value: an `event_buffer` of 0 or over
    /// [`MAX_EVENT_BUFFER`]; a zero `dead_after`; a `dead_after` longer than `remove_after`
    /// (the cleanup would remove peers that `get_active` still lists); an `endpoint_history`
    /// of 0 or over [`MAX_ENDPOINT_HISTORY`]; a `tombstone_expired` of zero (`None` is off);
    /// a resilient policy's `max_candidates` under 2 or over [`MAX_CANDIDATES`].
    pub fn check(&self) -> Result<(), BuildError> {
        if self.event_buffer == 0 || self.event_buffer > MAX_EVENT_BUFFER {
            return Err(BuildError::EventBuffer {
                event_buffer: self.event_buffer,
            });
        }
        if self.dead_after.is_zero() {
            return Err(BuildError::ZeroDeadAfter);
        }
        if self.dead_after > self.remove_after {
            return Err(BuildError::DeadAfterRemove {
                dead_after: self.dead_after,
                remove_after: self.remove_after,
            });
        }
        if let Some(entries) = self.endpoint_history
            && !(1..=MAX_ENDPOINT_HISTORY).contains(&entries)
        {
            return Err(BuildError::EndpointHistory { entries });
        }
        if self.tombstone_expired == Some(Duration::ZERO) {
            return Err(BuildError::ZeroTombstoneExpired);
        }
        if let EndpointPolicy::Resilient(resilient) = &self.endpoint_policy
            && !(MIN_CANDIDATES..=MAX_CANDIDATES).contains(&resilient.max_candidates)
        {
            return Err(BuildError::MaxCandidates {
                max_candidates: resilient.max_candidates,
            });
        }
        Ok(())
    }
}

/// The fewest candidates the resilient policy may keep a peer: one besides the chosen one.
const MIN_CANDIDATES: usize = 2;

/// The most events a subscriber's channel may hold: [`PeerStoreBuilder::event_buffer`]'s
/// limit (2^20, about 64 MiB of channel per subscriber).
pub const MAX_EVENT_BUFFER: usize = 1 << 20;

/// A setting that cannot work, from [`PeerStoreBuilder::build`] and [`Settings::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `event_buffer` is 0 (every event would be lost) or over [`MAX_EVENT_BUFFER`].
    EventBuffer {
        /// The refused setting.
        event_buffer: usize,
    },
    /// `dead_after` is zero: every peer would be dead as soon as it was heard.
    ZeroDeadAfter,
    /// `endpoint_history` is `Some(0)` (`None` keeps none) or over [`MAX_ENDPOINT_HISTORY`].
    EndpointHistory {
        /// The refused setting.
        entries: usize,
    },
    /// The resilient policy's `max_candidates` is under 2 (a single candidate could never be
    /// replaced) or over [`MAX_CANDIDATES`].
    MaxCandidates {
        /// The refused setting.
        max_candidates: usize,
    },
    /// `dead_after` is longer than `remove_after`: the cleanup would remove peers that
    /// `get_active` still lists.
    DeadAfterRemove {
        /// The refused `dead_after`.
        dead_after: Duration,
        /// The `remove_after` it passes.
        remove_after: Duration,
    },
    /// `tombstone_expired` is `Some` zero span: `None` is how to keep none.
    ZeroTombstoneExpired,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::EventBuffer { event_buffer } => write!(
                f,
                "event_buffer {event_buffer} is outside 1..={MAX_EVENT_BUFFER}: \
                 a subscriber's channel must hold at least one event and at most {MAX_EVENT_BUFFER}"
            ),
            BuildError::EndpointHistory { entries } => write!(
                f,
                "endpoint_history {entries} is outside 1..={MAX_ENDPOINT_HISTORY} entries a peer \
                 (none keeps no history)"
            ),
            BuildError::MaxCandidates { max_candidates } => write!(
                f,
                "max_candidates {max_candidates} is outside {MIN_CANDIDATES}..={MAX_CANDIDATES}: \
                 a peer needs a candidate besides the chosen one to ever change endpoint"
            ),
            BuildError::ZeroDeadAfter => write!(
                f,
                "dead_after is zero: every peer would be dead as soon as it was heard"
            ),
            BuildError::DeadAfterRemove {
                dead_after,
                remove_after,
            } => write!(
                f,
                "dead_after {dead_after:?} is longer than remove_after {remove_after:?}: \
                 the cleanup would remove peers that are still active"
            ),
            BuildError::ZeroTombstoneExpired => write!(
                f,
                "tombstone_expired is a zero span: leave it unset (none) to keep no tombstones"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// One method a setting: each sets its field of [`Settings`].
impl PeerStoreBuilder {
    /// The most peers the store holds (default 1000). A new peer past it is refused with
    /// [`UpdateError::StoreFull`](crate::UpdateError::StoreFull), unless the
    /// [`when_full`](Self::when_full) policy lets it take another's place.
    pub fn max_peers(mut self, max_peers: usize) -> Self {
        self.settings.max_peers = max_peers;
        self
    }

    /// How long a silent peer stays active (default 5 minutes; more than zero, and at most
    /// [`remove_after`](Self::remove_after)).
    pub fn dead_after(mut self, dead_after: Duration) -> Self {
        self.settings.dead_after = dead_after;
        self
    }

    /// How long a silent peer stays in the store (default 10 minutes; at least
    /// [`dead_after`](Self::dead_after)). Spans past about 292 years count as 292 years.
    pub fn remove_after(mut self, remove_after: Duration) -> Self {
        self.settings.remove_after = remove_after;
        self
    }

    /// How many events each subscriber's channel holds before it loses events (default 16;
    /// from 1 to [`MAX_EVENT_BUFFER`]). The channel takes its room when a subscriber
    /// subscribes, about 64 bytes an event: choose what the slowest subscriber can fall
    /// behind by between two reads (a burst of updates after a restart, say) and resynchronise
    /// from [`get_all`](crate::PeerStore::get_all) when `seq` shows a gap.
    pub fn event_buffer(mut self, event_buffer: usize) -> Self {
        self.settings.event_buffer = event_buffer;
        self
    }

    /// How a peer's endpoint is chosen (default [`EndpointPolicy::Ranked`], the reference
    /// daemon's rules). [`EndpointPolicy::resilient`] keeps candidates that age and trusts
    /// confirmed ones; see [`PeerStore::confirm`](crate::PeerStore::confirm) and
    /// [`PeerStore::note_failure`](crate::PeerStore::note_failure). A
    /// [`ResilientPolicy`](crate::ResilientPolicy) tuned by its own methods is taken as it is.
    pub fn endpoint_policy(mut self, policy: impl Into<EndpointPolicy>) -> Self {
        self.settings.endpoint_policy = policy.into();
        self
    }

    /// Keeps each peer's last `entries` endpoint changes
    /// ([`PeerStore::endpoint_history`](crate::PeerStore::endpoint_history)) and counts flaps
    /// (an endpoint changed back within `dead_after`) in
    /// [`Stats::endpoint_flaps`](crate::Stats::endpoint_flaps). 0 keeps none and costs
    /// nothing, as the default does; at most [`MAX_ENDPOINT_HISTORY`].
    pub fn endpoint_history(mut self, entries: usize) -> Self {
        self.settings.endpoint_history = (entries > 0).then_some(entries);
        self
    }

    /// Keeps a tombstone for `span` for every peer the cleanup removes as expired, as
    /// [`PeerStore::remove_for`](crate::PeerStore::remove_for) does for one: a peer only ever
    /// mentioned second-hand then expires once and stays out, instead of being re-added and
    /// expiring again forever, while a first-hand method still brings it back at once. A zero
    /// span keeps none, as the default does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerstore::{DiscoveryMethod, ManualClock, PeerInfo, PeerStore, PublicKey};
    ///
    /// let clock = ManualClock::new();
    /// let store = PeerStore::builder()
    ///     .clock(clock.clone())
    ///     .tombstone_expired(Duration::from_secs(3600))
    ///     .build()?;
    /// let ghost = PublicKey::from_bytes([6; 32]);
    /// store.update(PeerInfo::new(ghost), DiscoveryMethod::GossipTransitive)?;
    /// clock.advance(Duration::from_secs(601));
    /// assert_eq!(store.cleanup_stale(), [ghost]);
    /// assert!(store.update(PeerInfo::new(ghost), DiscoveryMethod::GossipTransitive).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tombstone_expired(mut self, span: Duration) -> Self {
        self.settings.tombstone_expired = (!span.is_zero()).then_some(span);
        self
    }

    /// What lifts a tombstone ([`PeerStore::remove_for`](crate::PeerStore::remove_for),
    /// [`tombstone_expired`](Self::tombstone_expired)) before it falls (default
    /// [`Readmission::FirstHand`], any first-hand method). [`Readmission::Newer`] readmits a
    /// removed peer only on news from after its removal, so that a DHT still serving a dead
    /// peer's old record cannot bring it back.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use peerstore::{DiscoveryMethod, PeerInfo, PeerStore, PublicKey, Readmission};
    ///
    /// let store = PeerStore::builder().readmit(Readmission::Newer).build()?;
    /// let key = PublicKey::from_bytes([7; 32]);
    /// store.update(PeerInfo::new(key), DiscoveryMethod::Dht)?;
    /// store.remove_for(&key, Duration::from_secs(1800)); // handshakes stopped
    /// let removed = SystemTime::now();
    ///
    /// // The DHT serves the record the peer signed an hour ago: refused.
    /// let mut stale = PeerInfo::new(key);
    /// stale.last_seen = Some(removed - Duration::from_secs(3600));
    /// assert!(store.update(stale, DiscoveryMethod::Dht).is_err());
    /// // The peer publishes a new record: back.
    /// let mut fresh = PeerInfo::new(key);
    /// fresh.last_seen = Some(removed + Duration::from_secs(60));
    /// assert!(store.update(fresh, DiscoveryMethod::Dht).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readmit(mut self, rule: Readmission) -> Self {
        self.settings.readmit = rule;
        self
    }

    /// What a full store does with a new peer (default [`FullPolicy::Refuse`], the reference
    /// daemon's). [`FullPolicy::EvictSecondHand`] lets a peer heard first-hand take the place
    /// of the least recently heard peer never heard first-hand, so that a flood of invented
    /// second-hand peers cannot lock real ones out.
    ///
    /// ```
    /// use peerstore::{DiscoveryMethod, FullPolicy, PeerInfo, PeerStore, PublicKey, UpdateOutcome};
    ///
    /// let store = PeerStore::builder()
    ///     .max_peers(2)
    ///     .when_full(FullPolicy::EvictSecondHand)
    ///     .build()?;
    /// for n in 1..=2 {
    ///     let fake = PeerInfo::new(PublicKey::from_bytes([n; 32]));
    ///     store.update(fake, DiscoveryMethod::GossipTransitive)?;
    /// }
    /// let real = PeerInfo::new(PublicKey::from_bytes([9; 32]));
    /// assert_eq!(store.update(real, DiscoveryMethod::Lan)?, UpdateOutcome::Inserted);
    /// assert_eq!(store.len(), 2, "one fake made room");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn when_full(mut self, policy: FullPolicy) -> Self {
        self.settings.when_full = policy;
        self
    }

    /// Peers never heard first-hand (only by the cache or second-hand methods) may fill at
    /// most `n` of the store's slots; a second-hand newcomer past it is refused with
    /// [`UpdateError::StoreFull`](crate::UpdateError::StoreFull), and a peer heard first-hand
    /// leaves the quota. Unlimited by default (up to the cap).
    pub fn max_second_hand(mut self, n: usize) -> Self {
        self.settings.max_second_hand = Some(n);
        self
    }

    /// Peers never proven by a handshake ([`Peer::proven`](crate::Peer::proven)) may fill at
    /// most `n` of the store's slots, whatever method announced them: a newcomer past it is
    /// refused with [`UpdateError::StoreFull`](crate::UpdateError::StoreFull) (under
    /// [`FullPolicy::EvictUnproven`] a LAN newcomer takes an unproven peer's place instead),
    /// and a peer leaves the quota when it is proven. So a flood of fresh keys, announced by
    /// any method, holds at most `n` slots, and the rest stay for peers that completed a
    /// handshake. Unlimited by default (up to the cap).
    ///
    /// ```
    /// use peerstore::{DiscoveryMethod, Evidence, PeerInfo, PeerStore, PublicKey};
    ///
    /// let store = PeerStore::builder().max_unproven(1).build()?;
    /// let (real, fake) = (PublicKey::from_bytes([1; 32]), PublicKey::from_bytes([2; 32]));
    /// let mut info = PeerInfo::new(real);
    /// info.endpoint = Some("198.51.100.1:51820".parse()?);
    /// store.update(info, DiscoveryMethod::Dht)?;
    /// assert!(store.update(PeerInfo::new(fake), DiscoveryMethod::Dht).is_err(), "quota full");
    /// store.confirm(&real, "198.51.100.1:51820".parse()?, Evidence::Handshake);
    /// assert!(store.update(PeerInfo::new(fake), DiscoveryMethod::Dht).is_ok(), "room again");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_unproven(mut self, n: usize) -> Self {
        self.settings.max_unproven = Some(n);
        self
    }
}
