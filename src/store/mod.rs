//! The store: records in a `DashMap` (a lock per shard), the peer cap, expiry and change
//! events. It locks, asks the policy, assigns and counts; every rule lives in `policy`.

use std::any::TypeId;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::capacity::{Capacity, FullPolicy};
use crate::clock::{Nanos, Timeline, nanos_of};
use crate::events::{PeerEvent, PeerEventKind, RemovalCause, SubscriberList, Subscription};
use crate::history::{EndpointChange, History, MAX_ENDPOINT_HISTORY, since_start};
use crate::peer::canonical_endpoint;
use crate::policy::resilient::{Candidates, Choice, Context, Resilient};
use crate::stats::{Counter, Counters, Stats};
use crate::tombstone::{Tombstone, Tombstones};
use crate::{
    Candidate, Clock, DEFAULT_MAX_PEERS, DiscoveryMethod, EVENT_BUFFER_SIZE, EndpointPolicy,
    Evidence, InvalidPeerInfo, MAX_CANDIDATES, PEER_DEAD_TIMEOUT, PEER_REMOVE_TIMEOUT, Peer,
    PeerInfo, PublicKey, SystemClock, policy,
};

/// What an [`update`](PeerStore::update) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateOutcome {
    /// The peer was new and is now stored.
    Inserted,
    /// Something a consumer acts on changed (a field, the endpoint's method, a new discovery
    /// method), or a dead peer became active again.
    Updated,
    /// Nothing changed but, perhaps, when the peer was last seen.
    Unchanged,
}

/// Why an [`update`](PeerStore::update) was refused. The store is left exactly as it was.
///
/// Its message includes the cause's, so [`source`](std::error::Error::source) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// The peer is new and the store already holds `capacity` peers.
    StoreFull {
        /// The store's [`max_peers`](PeerStoreBuilder::max_peers).
        capacity: usize,
    },
    /// The announcement holds a value the store will not keep.
    Invalid(InvalidPeerInfo),
    /// The peer was removed with a tombstone ([`PeerStore::remove_for`], or
    /// [`PeerStoreBuilder::tombstone_expired`]) that stands until `until`, and the method does
    /// not refresh `last_seen` (the cache, a second-hand method): it cannot bring the peer
    /// back. A first-hand method can.
    Tombstoned {
        /// When the tombstone falls, on the store's wall clock.
        until: SystemTime,
    },
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::StoreFull { capacity } => write!(
                f,
                "peer store is full: it holds its limit of {capacity} peers, so a new peer is refused"
            ),
            UpdateError::Invalid(invalid) => write!(f, "invalid announcement: {invalid}"),
            UpdateError::Tombstoned { until } => write!(
                f,
                "peer was removed and is tombstoned until Unix time {}: only a first-hand \
                 method (not the cache or a second-hand one) brings it back before then",
                until
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs())
            ),
        }
    }
}

impl std::error::Error for UpdateError {}

impl From<InvalidPeerInfo> for UpdateError {
    fn from(invalid: InvalidPeerInfo) -> Self {
        UpdateError::Invalid(invalid)
    }
}

/// The most events a subscriber's channel may hold: [`PeerStoreBuilder::event_buffer`]'s
/// limit (2^20, about 64 MiB of channel per subscriber).
pub const MAX_EVENT_BUFFER: usize = 1 << 20;

/// A setting of [`PeerStoreBuilder`] that cannot work, from [`PeerStoreBuilder::build`].
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
    /// `endpoint_history` is over [`MAX_ENDPOINT_HISTORY`].
    EndpointHistory {
        /// The refused setting.
        entries: usize,
    },
    /// The resilient policy's `max_candidates` is 0 or over [`MAX_CANDIDATES`].
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
                "endpoint_history {entries} is over the limit of {MAX_ENDPOINT_HISTORY} entries a peer"
            ),
            BuildError::MaxCandidates { max_candidates } => write!(
                f,
                "max_candidates {max_candidates} is outside 1..={MAX_CANDIDATES}"
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
        }
    }
}

impl std::error::Error for BuildError {}

/// The registry of every peer this node has discovered. A cheap handle: clones share one store.
///
/// ```
/// use peerstore::{DiscoveryMethod, PeerInfo, PeerStore, PublicKey, UpdateOutcome};
///
/// let store = PeerStore::new();
/// let mut info = PeerInfo::new(PublicKey::from_bytes([1; 32]));
/// info.endpoint = Some("198.51.100.1:51820".parse()?);
/// assert_eq!(store.update(info.clone(), DiscoveryMethod::Dht)?, UpdateOutcome::Inserted);
/// assert_eq!(store.update(info, DiscoveryMethod::Dht)?, UpdateOutcome::Unchanged);
/// assert_eq!(store.get_active().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PeerStore {
    inner: Arc<Inner>,
}

/// Keys come from the network, so the map is seeded per store (foldhash: a fraction of
/// SipHash's cost on a 32-byte key, and still no fixed seed for a flood to aim at).
type Map = DashMap<PublicKey, Record, foldhash::fast::RandomState>;

struct Inner {
    peers: Map,
    capacity: Capacity,
    /// The next event's sequence number, taken while the changed record is locked.
    seq: SeqCounter,
    subscribers: Arc<SubscriberList>,
    counters: Counters,
    timeline: Timeline,
    dead_after: Duration,
    remove_after: Duration,
    /// `dead_after` and `remove_after` as nanoseconds on the timeline.
    dead_after_nanos: Nanos,
    remove_after_nanos: Nanos,
    event_buffer: usize,
    /// The resilient endpoint policy's numbers; `None` for the seed's policy.
    resilient: Option<Resilient>,
    /// How many endpoint changes each peer's history keeps; 0 keeps none.
    history_entries: usize,
    /// The opt-in policies' state; `None` under the defaults, which then cost nothing a peer.
    extras: Option<ExtraMap>,
    /// Removed peers that second-hand word cannot bring back for a while.
    tombstones: Tombstones,
    /// How long a tombstone an expired peer gets; zero for none (the default).
    tombstone_expired: Duration,
    /// What a full store does with a new peer.
    when_full: FullPolicy,
    /// How many peers never heard first-hand the store holds, against `max_second_hand`
    /// (unlimited if not set); kept when that is set or when the full policy evicts them,
    /// so that an eviction with no victim to find costs no visit of the map.
    second_hand: Option<Capacity>,
}

/// The event counter on cache lines of its own: every thread that changes a peer writes it,
/// and the store's read-only fields beside it would miss the cache on every read after that.
#[repr(align(128))]
struct SeqCounter(AtomicU64);

/// One stored peer: the snapshot callers get, and when it was last heard from.
struct Record {
    /// Replaced copy-on-write: callers holding a snapshot keep theirs.
    peer: Arc<Peer>,
    /// When the peer was last heard from, on the store's timeline ([`Timeline`]): below zero
    /// for a carried time older than the store. One integer, not an `Instant`, keeps the
    /// map's slot small (asserted below).
    heard_at: Nanos,
}

/// The opt-in policies' state, a peer at a time, beside the records. Locked only while its
/// peer's record is locked (record first), or alone for a read, so the two maps never wait
/// on each other in a cycle.
type ExtraMap = DashMap<PublicKey, Extra, foldhash::fast::RandomState>;

/// A peer's state that only the opt-in policies need.
#[derive(Debug, Default)]
struct Extra {
    /// The resilient endpoint policy's candidates; `None` under the seed's policy.
    candidates: Option<Candidates>,
    /// The last endpoint changes, when the store keeps a history.
    history: History,
}

// A key and its record make one map slot: a key, a pointer and an integer. (A pointer more
// for the opt-in policies' state cost about 20 bytes a peer, the map keeping two to three
// slots a peer: that state has a map of its own instead, which the defaults do not build.)
const _: () = assert!(std::mem::size_of::<(PublicKey, Record)>() == 48);

impl Record {
    fn silent_longer_than(&self, now: Nanos, limit: Nanos) -> bool {
        policy::silent_longer_than(self.heard_at, now, limit)
    }
}

impl PeerStore {
    /// A store with the default limits and the system clock.
    #[must_use]
    pub fn new() -> Self {
        PeerStoreBuilder::default().assemble()
    }

    /// Configures a store: its cap, timeouts, event buffer and clock.
    pub fn builder() -> PeerStoreBuilder {
        PeerStoreBuilder::default()
    }

    /// Merges one announcement, heard by `method`, into the store.
    ///
    /// A new peer is inserted unless the store is full; a known one is merged by the rules of
    /// the [crate documentation](crate): the endpoint by
    /// [`should_update_endpoint`](crate::should_update_endpoint), the other fields by "last
    /// non-empty value wins". Subscribers hear of inserts and changes after the record's lock
    /// is released.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Invalid`] for a value the store will not keep (see
    /// [`PeerInfo::validate`]); [`UpdateError::StoreFull`] for a new peer when the store holds
    /// its cap (and, under [`FullPolicy::EvictSecondHand`], the peer is second-hand or no peer
    /// is) or the second-hand quota is full; [`UpdateError::Tombstoned`] for a new record by
    /// the cache or a second-hand method while the peer's tombstone stands (whether or not the
    /// store is full). Whatever the error, nothing in the store changed.
    pub fn update(
        &self,
        mut info: PeerInfo,
        method: DiscoveryMethod,
    ) -> Result<UpdateOutcome, UpdateError> {
        let inner = &*self.inner;
        let key = info.public_key;
        if let Err(invalid) = info.validate() {
            inner.counters.add(Counter::RejectedInvalid, 1);
            return Err(UpdateError::Invalid(invalid));
        }
        // One address, one spelling: in the store, in events and in the cache.
        info.endpoint = info.endpoint.map(canonical_endpoint);
        // Both clocks from one reading, before the lock, when the policy needs the wall clock;
        // otherwise it is read under the lock only if a new peer needs it.
        let (now, wall) = if policy::needs_wall_clock(&method, info.last_seen) {
            let (now, wall) = inner.timeline.now_and_wall();
            (now, Some(wall))
        } else {
            (inner.timeline.now(), None)
        };
        let wall = || wall.unwrap_or_else(|| inner.timeline.wall_now());
        // A slot an eviction freed for this insert, and how many evictions it tried.
        let (mut evicted, mut tries) = (false, 0);
        let mut readmitted = false;
        let (outcome, event) = loop {
            match inner.peers.entry(key) {
                Entry::Occupied(mut entry) => {
                    if evicted {
                        // Another thread inserted the peer meanwhile: the freed slot is not needed.
                        inner.capacity.release();
                    }
                    let record = entry.get_mut();
                    let second_hand = inner.in_second_hand_quota(record);
                    let merged = match &inner.extras {
                        // The defaults: the seed's rules, and nothing kept beside the record.
                        None => {
                            let merge = policy::merge(
                                &record.peer,
                                record.heard_at,
                                &info,
                                &method,
                                now,
                                inner.dead_after_nanos,
                                wall,
                            );
                            if merge.moves_endpoint() {
                                inner.counters.add(Counter::EndpointChanges, 1);
                            }
                            if merge.writes() {
                                if let Some(heard) = merge.heard {
                                    record.heard_at = heard.at;
                                }
                                policy::apply(
                                    Arc::make_mut(&mut record.peer),
                                    &mut info,
                                    method,
                                    &merge,
                                );
                            }
                            let outcome = merge.outcome();
                            let event = (outcome == UpdateOutcome::Updated)
                                .then(|| (PeerEventKind::Updated, inner.next_seq()));
                            (outcome, event)
                        }
                        Some(extras) => inner
                            .merge_with_extra(extras, key, record, &mut info, method, now, wall),
                    };
                    if second_hand && record.peer.discovered_via.any_first_hand() {
                        // Heard first-hand at last: it leaves the second-hand quota.
                        inner.release_second_hand(1);
                    }
                    break merged;
                }
                Entry::Vacant(entry) => {
                    // Before the slot is reserved: a caller's clock that panics must not keep it.
                    let heard = policy::first_heard(&method, info.last_seen, now, wall());
                    match inner.admit(&key, &method, now, evicted) {
                        Ok(tombstoned) => readmitted = tombstoned,
                        Err(Refusal::Error(refused)) => return Err(refused),
                        Err(Refusal::Full) => {
                            drop(entry);
                            tries += 1;
                            match inner.evict_second_hand() {
                                Eviction::Evicted => {
                                    evicted = true;
                                    continue;
                                }
                                // The victim went another way (removed, heard first-hand): a slot
                                // may be free now, or another victim there.
                                Eviction::Raced if tries < MAX_EVICTION_TRIES => continue,
                                Eviction::Raced | Eviction::NoVictim => {}
                            }
                            inner.counters.add(Counter::RejectedFull, 1);
                            return Err(UpdateError::StoreFull {
                                capacity: inner.capacity.max(),
                            });
                        }
                    }
                    // The seq is taken before `insert`, whose guard is gone with the statement.
                    let event = (PeerEventKind::New, inner.next_seq());
                    // The method again for the first candidate, under the resilient policy only.
                    let candidate_method = inner.resilient.as_ref().map(|_| method.clone());
                    let record = entry.insert(Record {
                        peer: Arc::new(policy::new_peer(&mut info, method, heard)),
                        heard_at: heard.at,
                    });
                    if let Some(extras) = &inner.extras {
                        let candidates = candidate_method.map(|method| {
                            let endpoint = record.peer.endpoint;
                            endpoint.map_or_else(Candidates::default, |endpoint| {
                                Candidates::first(endpoint, method, heard.at, heard.wall)
                            })
                        });
                        // Under the record's lock, so the two are never seen apart.
                        extras.insert(
                            key,
                            Extra {
                                candidates,
                                history: History::default(),
                            },
                        );
                    }
                    if readmitted {
                        // Under the record's lock, so the tombstone and the record are never seen
                        // together.
                        inner.tombstones.forget(&key);
                        inner.counters.add(Counter::Readmitted, 1);
                    }
                    drop(record);
                    break (UpdateOutcome::Inserted, Some(event));
                }
            }
        };
        // The shard's lock was released with the entry: events leave now, and what the merge
        // replaced or did not take is freed now too, outside the lock.
        drop(info);
        inner.counters.add(Counter::of(outcome), 1);
        if let Some((kind, seq)) = event {
            inner.publish_event(PeerEvent {
                public_key: key,
                kind,
                seq,
                readmitted,
            });
        }
        Ok(outcome)
    }

    /// The wall-clock time on the store's clock: what the cache stamps and ages entries by.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn wall_now(&self) -> SystemTime {
        self.inner.timeline.wall_now()
    }

    /// The peer stored under `key`, dead or alive.
    #[must_use]
    pub fn get(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        self.inner.peers.get(key).map(|r| Arc::clone(&r.peer))
    }

    /// Every stored peer, dead or alive, in no particular order.
    #[must_use]
    pub fn get_all(&self) -> Vec<Arc<Peer>> {
        self.collect(|_| true)
    }

    /// The peers heard from within the dead timeout (5 minutes by default), in no particular
    /// order: what reconciliation configures.
    #[must_use]
    pub fn get_active(&self) -> Vec<Arc<Peer>> {
        let now = self.inner.timeline.now();
        let dead_after = self.inner.dead_after_nanos;
        self.collect(|r| !r.silent_longer_than(now, dead_after))
    }

    fn collect(&self, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Peer>> {
        let mut out = Vec::with_capacity(self.inner.capacity.held());
        // `retain`, keeping everything, is dashmap's one safe visit of a whole shard under one
        // lock: its iterator hands out each item with a clone of a shared guard, an atomic
        // increment and decrement per peer that cost more than the rest of the visit. The
        // price is that the shard is write-locked while visited, so a `get` of a peer in it
        // waits for the visit of that one shard, as it would for an update. Shards are
        // visited one after another: this is not one snapshot of the whole store.
        self.inner.peers.retain(|_, record| {
            if keep(record) {
                out.push(Arc::clone(&record.peer));
            }
            true
        });
        out
    }

    /// Removes a peer (the health monitor gave up on it). Subscribers hear
    /// [`RemovalCause::Explicit`]. Its slot under the cap is free when this returns.
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the result is there for callers who want it"
    )]
    pub fn remove(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        self.remove_with(key, Duration::ZERO)
    }

    /// Removes a peer, as [`remove`](Self::remove) does, and keeps a tombstone for it for
    /// `tombstone` (a zero span keeps none): until it falls, an update by a method that does
    /// not refresh `last_seen` (the cache, a second-hand method) cannot bring the peer back
    /// and is refused with [`UpdateError::Tombstoned`]. A first-hand method can: the peer goes
    /// in again at once, the tombstone is cleared, and its `New` event says
    /// [`readmitted`](PeerEvent::readmitted). The tombstone is placed even if the peer is not
    /// in the store (it may have expired a moment ago); placed again, it replaces the one
    /// standing, shorter or longer, while a zero span leaves one standing as it is.
    /// Tombstones do not count toward the cap; at most [`MAX_TOMBSTONES`](crate::MAX_TOMBSTONES)
    /// are kept, the oldest dropped first ([`tombstones`](Self::tombstones)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerstore::{DiscoveryMethod, PeerInfo, PeerStore, PublicKey, UpdateError};
    ///
    /// let store = PeerStore::new();
    /// let key = PublicKey::from_bytes([7; 32]);
    /// store.update(PeerInfo::new(key), DiscoveryMethod::Dht)?;
    /// // The health monitor gave up on it.
    /// assert!(store.remove_for(&key, Duration::from_secs(30)).is_some());
    /// // Gossip still mentions it, second-hand: it stays removed.
    /// let again = store.update(PeerInfo::new(key), DiscoveryMethod::GossipTransitive);
    /// assert!(matches!(again, Err(UpdateError::Tombstoned { .. })));
    /// // The peer itself announces on the DHT: back at once.
    /// store.update(PeerInfo::new(key), DiscoveryMethod::Dht)?;
    /// assert!(store.tombstones().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the result is there for callers who want it"
    )]
    pub fn remove_for(&self, key: &PublicKey, tombstone: Duration) -> Option<Arc<Peer>> {
        self.remove_with(key, tombstone)
    }

    /// The tombstones standing now, oldest first, those placed at one instant by key
    /// ([`remove_for`](Self::remove_for), [`PeerStoreBuilder::tombstone_expired`]).
    #[must_use]
    pub fn tombstones(&self) -> Vec<Tombstone> {
        self.inner.tombstones.list(self.inner.timeline.now())
    }

    /// Places a tombstone read from a cache file, standing until `until` on the wall clock,
    /// unless the store holds the peer (then it was heard since) or the time has passed;
    /// whether it was placed.
    #[cfg(feature = "serde")]
    pub(crate) fn restore_tombstone(
        &self,
        key: PublicKey,
        since: SystemTime,
        until: SystemTime,
        cause: RemovalCause,
    ) -> bool {
        let inner = &*self.inner;
        let (now, wall) = inner.timeline.now_and_wall();
        let Ok(span) = until.duration_since(wall) else {
            return false;
        };
        // Placed when the file says, so that the oldest still goes first.
        let age = wall.duration_since(since).unwrap_or_default();
        match inner.peers.entry(key) {
            Entry::Vacant(entry) => {
                let placed = now.saturating_sub(nanos_of(age));
                let span = span.saturating_add(age);
                let placed = inner.tombstones.place(key, span, placed, since, cause);
                drop(entry);
                placed
            }
            Entry::Occupied(_) => false,
        }
    }

    fn remove_with(&self, key: &PublicKey, tombstone: Duration) -> Option<Arc<Peer>> {
        let inner = &*self.inner;
        let (now, wall) = if tombstone.is_zero() {
            (0, SystemTime::UNIX_EPOCH)
        } else {
            inner.timeline.now_and_wall()
        };
        let place = || {
            let cause = RemovalCause::Explicit;
            inner.tombstones.place(*key, tombstone, now, wall, cause);
        };
        // The seq is taken while the shard is locked, so it orders this removal after every
        // change to the peer.
        let (record, seq) = match inner.peers.entry(*key) {
            Entry::Occupied(entry) => {
                let seq = inner.next_seq();
                // Before the record goes, under its lock: a new record of the same key must
                // not lose its fresh extra state to this removal, nor slip in before the
                // tombstone stands.
                if let Some(extras) = &inner.extras {
                    extras.remove(key);
                }
                place();
                (entry.remove(), seq)
            }
            Entry::Vacant(entry) => {
                place();
                drop(entry);
                return None;
            }
        };
        if inner.in_second_hand_quota(&record) {
            inner.release_second_hand(1);
        }
        inner.capacity.release();
        inner.counters.add(Counter::Removed, 1);
        inner.publish(
            *key,
            PeerEventKind::Removed {
                cause: RemovalCause::Explicit,
            },
            seq,
        );
        Some(record.peer)
    }

    /// Removes every peer silent for longer than the remove timeout (10 minutes by default) and
    /// returns their keys. Subscribers hear [`RemovalCause::Expired`]. Their slots are free when
    /// this returns.
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the result is there for callers who want it"
    )]
    pub fn cleanup_stale(&self) -> Vec<PublicKey> {
        let inner = &*self.inner;
        let (now, wall) = if inner.tombstone_expired.is_zero() {
            (inner.timeline.now(), SystemTime::UNIX_EPOCH)
        } else {
            inner.timeline.now_and_wall()
        };
        inner.tombstones.expire(now);
        // The events in the order their seqs were taken: a subscriber never sees seq go back.
        let mut events = Vec::new();
        let mut expired = Vec::new();
        let mut second_hand = 0;
        let removed = PeerEventKind::Removed {
            cause: RemovalCause::Expired,
        };
        inner.peers.retain(|key, record| {
            let keep = !record.silent_longer_than(now, inner.remove_after_nanos);
            if !keep {
                events.push((*key, removed, inner.next_seq()));
                expired.push(*key);
                if let Some(extras) = &inner.extras {
                    extras.remove(key);
                }
                let (span, cause) = (inner.tombstone_expired, RemovalCause::Expired);
                inner.tombstones.place(*key, span, now, wall, cause);
                second_hand += usize::from(inner.in_second_hand_quota(record));
            } else if let Some(seq) = inner.rechoose(key, record, now) {
                // A candidate went stale and another took over: within one cleanup interval.
                events.push((*key, PeerEventKind::Updated, seq));
            }
            keep
        });
        inner.release_second_hand(second_hand);
        inner.capacity.release_many(expired.len());
        inner.counters.add(Counter::Expired, expired.len() as u64);
        for (key, kind, seq) in events {
            inner.publish(key, kind, seq);
        }
        expired
    }

    /// How many peers the store holds (counting an insert in flight).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.capacity.held()
    }

    /// Whether the store holds no peer.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a peer is dead: silent for longer than the dead timeout. An unknown peer is dead.
    #[must_use]
    pub fn is_dead(&self, key: &PublicKey) -> bool {
        let now = self.inner.timeline.now();
        self.inner
            .peers
            .get(key)
            .is_none_or(|r| r.silent_longer_than(now, self.inner.dead_after_nanos))
    }

    /// Records the latency the health monitor measured; `false` if the peer is unknown.
    /// It is a measurement, not news from the peer: no event, no refresh.
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the result is there for callers who want it"
    )]
    pub fn set_latency(&self, key: &PublicKey, latency: Duration) -> bool {
        match self.inner.peers.get_mut(key) {
            Some(mut record) => {
                if record.peer.latency != Some(latency) {
                    Arc::make_mut(&mut record.peer).latency = Some(latency);
                }
                true
            }
            None => false,
        }
    }

    /// Evidence that `endpoint` reaches the peer (a handshake seen there, a probe answered):
    /// under the resilient policy it becomes a confirmed candidate, trusted for the policy's
    /// `trust_for` against equal-rank challengers, and chosen if it was not. Under the seed
    /// policy it changes nothing. `false` for an unknown peer, or an address that is not one
    /// of its candidates (under the seed policy: not its endpoint).
    ///
    /// Trust is each candidate's own: confirming `endpoint` leaves another candidate's trust as
    /// it was. Of several trusted candidates the one chosen is the first in the seed's order
    /// among them: the rank of the best method that ever reported it, then IPv6, then the most
    /// recent confirmation; an untrusted one displaces it only by outranking it, and only if
    /// the policy lets rank override trust
    /// ([`EndpointPolicy::rank_overrides_trust`](crate::EndpointPolicy::rank_overrides_trust)).
    /// The confirmation also resets the endpoint's failures and makes the reports its last
    /// failure voided vouch again.
    ///
    /// ```
    /// use peerstore::{DiscoveryMethod, EndpointPolicy, Evidence, PeerInfo, PeerStore, PublicKey};
    ///
    /// let store = PeerStore::builder().endpoint_policy(EndpointPolicy::resilient()).build()?;
    /// let key = PublicKey::from_bytes([7; 32]);
    /// let (a, b) = ("198.51.100.7:51820".parse()?, "203.0.113.9:40001".parse()?);
    /// for endpoint in [a, b] {
    ///     let mut info = PeerInfo::new(key);
    ///     info.endpoint = Some(endpoint);
    ///     store.update(info, DiscoveryMethod::Dht)?;
    /// }
    /// assert_eq!(store.get(&key).unwrap().endpoint, Some(b), "the newest");
    /// assert!(store.confirm(&key, a, Evidence::Handshake));
    /// assert_eq!(store.get(&key).unwrap().endpoint, Some(a), "the one that answers");
    /// assert!(store.note_failure(&key, a));
    /// assert_eq!(store.get(&key).unwrap().endpoint, Some(b), "switched at once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the result is there for callers who want it"
    )]
    pub fn confirm(&self, key: &PublicKey, endpoint: SocketAddr, evidence: Evidence) -> bool {
        self.with_candidates(key, endpoint, |candidates, endpoint, now, wall, policy| {
            candidates.confirm(endpoint, evidence, now, wall, policy.trust_for)
        })
    }

    /// `endpoint` stopped answering (the health monitor's probes time out, handshakes stopped):
    /// under the resilient policy its trust ends at once and its reports so far no longer
    /// vouch for it, so the next fresh candidate takes over now, not when a window runs out.
    /// Under the seed policy it changes nothing. `false` as for [`confirm`](Self::confirm).
    ///
    /// Only this endpoint's trust ends: another trusted candidate stays trusted (and is chosen,
    /// if it is the first trusted one). "So far" is by order, not by the clock: a report made
    /// after the failure vouches, even within the same tick of the store's clock, unless it
    /// carries a time from before the failure (second-hand news older than the failure).
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the result is there for callers who want it"
    )]
    pub fn note_failure(&self, key: &PublicKey, endpoint: SocketAddr) -> bool {
        self.with_candidates(key, endpoint, |candidates, endpoint, now, _, _| {
            candidates.fail(endpoint, now)
        })
    }

    /// A peer's endpoint candidates under the resilient policy, as they stand now; empty for
    /// an unknown peer or under the seed policy.
    #[must_use]
    pub fn candidates(&self, key: &PublicKey) -> Vec<Candidate> {
        let inner = &*self.inner;
        let Some(policy) = &inner.resilient else {
            return Vec::new();
        };
        let now = inner.timeline.now();
        let extra = inner.extras.as_ref().and_then(|m| m.get(key));
        extra
            .and_then(|e| {
                let candidates = e.candidates.as_ref()?;
                Some(candidates.to_public(&inner.context(policy, now)))
            })
            .unwrap_or_default()
    }

    /// Runs `change` on a peer's candidates under the entry's lock, then chooses its endpoint
    /// again; an endpoint change is an `Updated` event like any other.
    fn with_candidates(
        &self,
        key: &PublicKey,
        endpoint: SocketAddr,
        change: impl FnOnce(&mut Candidates, SocketAddr, Nanos, SystemTime, &Resilient) -> bool,
    ) -> bool {
        let inner = &*self.inner;
        // The spelling the store keeps: an IPv4-mapped address is its IPv4 address.
        let endpoint = canonical_endpoint(endpoint);
        let Some(policy) = &inner.resilient else {
            return self
                .get(key)
                .is_some_and(|peer| peer.endpoint == Some(endpoint));
        };
        let (now, wall) = inner.timeline.now_and_wall();
        let seq = {
            let Some(mut record) = inner.peers.get_mut(key) else {
                return false;
            };
            let changed = {
                let extra = inner.extras.as_ref().and_then(|m| m.get_mut(key));
                let Some(mut extra) = extra else {
                    return false;
                };
                let Some(candidates) = extra.candidates.as_mut() else {
                    return false;
                };
                change(candidates, endpoint, now, wall, policy)
            };
            if !changed {
                return false;
            }
            inner.rechoose(key, &mut record, now)
        };
        if let Some(seq) = seq {
            inner.publish(*key, PeerEventKind::Updated, seq);
        }
        true
    }

    /// A peer's last endpoint changes, oldest first, when the store keeps a history
    /// ([`PeerStoreBuilder::endpoint_history`]); empty otherwise, or for an unknown peer.
    #[must_use]
    pub fn endpoint_history(&self, key: &PublicKey) -> Vec<EndpointChange> {
        let extra = self.inner.extras.as_ref().and_then(|m| m.get(key));
        extra.map(|e| e.history.to_vec()).unwrap_or_default()
    }

    /// Starts receiving [`PeerEvent`]s for every later change, over a bounded channel of
    /// [`event_buffer`](PeerStoreBuilder::event_buffer) events.
    ///
    /// ```
    /// use peerstore::{DiscoveryMethod, PeerEventKind, PeerInfo, PeerStore, PublicKey};
    ///
    /// let store = PeerStore::new();
    /// let events = store.subscribe();
    /// let key = PublicKey::from_bytes([1; 32]);
    /// store.update(PeerInfo::new(key), DiscoveryMethod::Lan)?;
    /// let event = events.try_recv()?;
    /// assert_eq!((event.public_key, event.kind), (key, PeerEventKind::New));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self) -> Subscription {
        self.inner.subscribers.subscribe(self.inner.event_buffer)
    }

    /// Stops a subscription; the same as dropping it.
    pub fn unsubscribe(&self, subscription: Subscription) {
        drop(subscription);
    }

    /// What the store has done so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats::new(
            &self.inner.counters,
            self.len(),
            self.inner.subscribers.len(),
        )
    }

    /// The store's cap on peers.
    #[must_use]
    pub fn max_peers(&self) -> usize {
        self.inner.capacity.max()
    }

    /// A handle that does not keep the store alive (for the cleanup thread).
    pub(crate) fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.inner))
    }
}

/// A [`PeerStore`] that may be gone.
pub(crate) struct WeakStore(std::sync::Weak<Inner>);

impl WeakStore {
    pub(crate) fn upgrade(&self) -> Option<PeerStore> {
        self.0.upgrade().map(|inner| PeerStore { inner })
    }
}

/// Why a new peer is not admitted now.
enum Refusal {
    /// Refused, for this reason.
    Error(UpdateError),
    /// The store is full, and the full policy lets this newcomer evict a second-hand peer.
    Full,
}

/// How many times a newcomer tries to evict when racing threads take each victim (or the slot
/// it freed) before it: then it is refused, as in a store with no victim.
const MAX_EVICTION_TRIES: u32 = 4;

/// What an eviction did ([`Inner::evict_second_hand`]).
enum Eviction {
    /// A peer was evicted; its slot under the cap is the caller's.
    Evicted,
    /// The chosen victim was gone or heard first-hand by the time it was locked.
    Raced,
    /// Every peer was heard first-hand.
    NoVictim,
}

impl Inner {
    /// Whether a new peer heard by `method` may go in now, called with its vacant slot locked:
    /// its tombstone, the second-hand quota and the cap. `Ok(true)`: it goes in over a
    /// tombstone, which the caller clears. `has_slot`: an eviction already freed its slot.
    fn admit(
        &self,
        key: &PublicKey,
        method: &DiscoveryMethod,
        now: Nanos,
        has_slot: bool,
    ) -> Result<bool, Refusal> {
        let first_hand = method.refreshes_last_seen();
        // Only a first-hand newcomer evicts, and neither refusal of a second-hand one below
        // applies to it: a slot an eviction handed over is never given back from here.
        debug_assert!(first_hand || !has_slot, "a second-hand newcomer evicted");
        let readmitted = match self.tombstones.standing(key, now) {
            None => false,
            Some(until) if !first_hand => {
                self.counters.add(Counter::RejectedTombstoned, 1);
                return Err(Refusal::Error(UpdateError::Tombstoned { until }));
            }
            Some(_) => true,
        };
        let full = || {
            self.counters.add(Counter::RejectedFull, 1);
            Refusal::Error(UpdateError::StoreFull {
                capacity: self.capacity.max(),
            })
        };
        let quota = self.second_hand.as_ref().filter(|_| !first_hand);
        if let Some(quota) = quota
            && !quota.try_reserve()
        {
            return Err(full());
        }
        if !has_slot && !self.capacity.try_reserve() {
            if let Some(quota) = quota {
                quota.release();
            }
            if first_hand && self.when_full == FullPolicy::EvictSecondHand {
                return Err(Refusal::Full);
            }
            return Err(full());
        }
        Ok(readmitted)
    }

    /// Evicts the least recently heard peer never heard first-hand, handing its slot under the
    /// cap to the caller (never released, so no racing insert can take it; the loom model in
    /// `capacity.rs` checks the protocol). Called with no record locked: the visit locks each
    /// shard in turn, the eviction the victim's.
    #[inline(never)]
    fn evict_second_hand(&self) -> Eviction {
        // Every peer heard first-hand: nothing to look for (a flood of first-hand newcomers
        // into such a store costs no visit each).
        if self
            .second_hand
            .as_ref()
            .is_some_and(|count| count.held() == 0)
        {
            return Eviction::NoVictim;
        }
        let mut victim: Option<(Nanos, PublicKey)> = None;
        for record in self.peers.iter() {
            let second_hand = !record.peer.discovered_via.any_first_hand();
            if second_hand && victim.is_none_or(|(heard, _)| record.heard_at < heard) {
                victim = Some((record.heard_at, *record.key()));
            }
        }
        let Some((_, key)) = victim else {
            return Eviction::NoVictim;
        };
        let mut seq = 0;
        // Still there and still second-hand: a racing update may have heard it first-hand.
        let evicted = self.peers.remove_if(&key, |key, record| {
            let second_hand = !record.peer.discovered_via.any_first_hand();
            if second_hand {
                seq = self.next_seq();
                if let Some(extras) = &self.extras {
                    extras.remove(key);
                }
            }
            second_hand
        });
        let Some((key, record)) = evicted else {
            return Eviction::Raced;
        };
        self.release_second_hand(1);
        self.counters.add(Counter::Evicted, 1);
        self.publish(
            key,
            PeerEventKind::Removed {
                cause: RemovalCause::Evicted,
            },
            seq,
        );
        drop(record);
        Eviction::Evicted
    }

    /// Gives back `n` slots of the second-hand quota, if there is one.
    fn release_second_hand(&self, n: usize) {
        if let Some(quota) = &self.second_hand {
            quota.release_many(n);
        }
    }

    /// Whether a record counts as second-hand ([`Inner::second_hand`]): they are counted, and
    /// no method that heard the peer was first-hand.
    fn in_second_hand_quota(&self, record: &Record) -> bool {
        self.second_hand.is_some() && !record.peer.discovered_via.any_first_hand()
    }

    /// An update of a known peer under an opt-in policy: the seed's merge of the fields, the
    /// resilient policy's choice of endpoint if it is on, the change told to the history.
    #[expect(clippy::too_many_arguments, reason = "update's state, passed through")]
    // Kept out of `update`, so that the default path stays as small as it was.
    #[inline(never)]
    fn merge_with_extra(
        &self,
        extras: &ExtraMap,
        key: PublicKey,
        record: &mut Record,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        now: Nanos,
        wall: impl Fn() -> SystemTime + Copy,
    ) -> (UpdateOutcome, Option<(PeerEventKind, u64)>) {
        // The record's lock is held by the caller: the extra state's may be taken now.
        let mut extra = extras.get_mut(&key);
        let mut merge = policy::merge(
            &record.peer,
            record.heard_at,
            info,
            &method,
            now,
            self.dead_after_nanos,
            wall,
        );
        // The endpoint the resilient policy chose, when it is not the current one; the rule
        // of a seed change otherwise.
        let mut chosen = None;
        if let (Some(policy), Some(candidates)) = (
            &self.resilient,
            extra.as_deref_mut().and_then(|e| e.candidates.as_mut()),
        ) {
            if let Some(endpoint) = info.endpoint {
                let reported = policy::first_heard(&method, info.last_seen, now, wall());
                let in_use = record.peer.endpoint;
                candidates.report(
                    endpoint,
                    method.clone(),
                    reported.at,
                    reported.wall,
                    &self.context(policy, now),
                    in_use,
                );
            }
            let current = Choice::current(&record.peer);
            chosen = candidates
                .choose(&self.context(policy, now), current.as_ref())
                .filter(|c| c.changes(&record.peer));
            merge.fields.endpoint = false;
            merge.fields.endpoint_moves = false;
        }
        let from = record.peer.endpoint;
        let told = match &chosen {
            Some(c) => (from != Some(c.endpoint)).then(|| (c.endpoint, c.method.clone(), c.rule)),
            None if merge.moves_endpoint() => info.endpoint.map(|to| {
                let rule =
                    policy::decide_endpoint(record.peer.current_endpoint(), to, &method).rule;
                (to, method.clone(), rule)
            }),
            None => None,
        };
        if merge.writes() || chosen.is_some() {
            if let Some(heard) = merge.heard {
                record.heard_at = heard.at;
            }
            let peer = Arc::make_mut(&mut record.peer);
            policy::apply(peer, info, method, &merge);
            if let Some(choice) = &chosen {
                choice.apply(peer);
            }
        }
        let outcome = if chosen.is_some() {
            UpdateOutcome::Updated
        } else {
            merge.outcome()
        };
        let event =
            (outcome == UpdateOutcome::Updated).then(|| (PeerEventKind::Updated, self.next_seq()));
        if let (Some((to, method, rule)), Some((_, seq))) = (told, event) {
            self.endpoint_moved(
                extra.as_deref_mut(),
                from,
                to,
                method,
                rule,
                seq,
                now,
                wall(),
            );
        }
        (outcome, event)
    }

    /// The resilient policy's view of now.
    fn context<'p>(&self, policy: &'p Resilient, now: Nanos) -> Context<'p> {
        Context {
            policy,
            now,
            dead_after: self.dead_after_nanos,
        }
    }

    /// Under the resilient policy, chooses the record's endpoint again (candidates age, trust
    /// runs out, a failure voids reports) and applies the choice; the seq of the `Updated`
    /// event the change needs, taken under the record's lock, if the endpoint changed.
    fn rechoose(&self, key: &PublicKey, record: &mut Record, now: Nanos) -> Option<u64> {
        let policy = self.resilient.as_ref()?;
        // The record's lock is held by the caller: the extra state's may be taken.
        let mut extra = self.extras.as_ref()?.get_mut(key)?;
        let current = Choice::current(&record.peer);
        let choice = extra
            .candidates
            .as_ref()?
            .choose(&self.context(policy, now), current.as_ref())
            .filter(|choice| choice.changes(&record.peer))?;
        let from = record.peer.endpoint;
        let moves = from != Some(choice.endpoint);
        choice.apply(Arc::make_mut(&mut record.peer));
        let seq = self.next_seq();
        if moves {
            let wall = self.timeline.wall_now();
            let (to, method, rule) = (choice.endpoint, choice.method, choice.rule);
            self.endpoint_moved(Some(&mut extra), from, to, method, rule, seq, now, wall);
        }
        Some(seq)
    }

    /// Counts a change of a peer's endpoint address and writes it to its history, if kept.
    #[expect(clippy::too_many_arguments, reason = "one change, told field by field")]
    fn endpoint_moved(
        &self,
        extra: Option<&mut Extra>,
        from: Option<SocketAddr>,
        to: SocketAddr,
        method: DiscoveryMethod,
        rule: crate::EndpointRule,
        seq: u64,
        now: Nanos,
        wall: SystemTime,
    ) {
        self.counters.add(Counter::EndpointChanges, 1);
        let Some(extra) = extra else {
            return;
        };
        let change = EndpointChange {
            seq,
            at: since_start(now),
            wall,
            from,
            to,
            method,
            rule,
            flap: false,
        };
        if extra
            .history
            .record(change, self.history_entries, self.dead_after)
        {
            self.counters.add(Counter::EndpointFlaps, 1);
        }
    }

    fn next_seq(&self) -> u64 {
        self.seq.0.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, key: PublicKey, kind: PeerEventKind, seq: u64) {
        self.publish_event(PeerEvent {
            public_key: key,
            kind,
            seq,
            readmitted: false,
        });
    }

    fn publish_event(&self, event: PeerEvent) {
        let delivery = self.subscribers.publish(event);
        self.counters.add(Counter::EventsSent, delivery.sent);
        self.counters.add(Counter::EventsDropped, delivery.dropped);
    }
}

impl Default for PeerStore {
    fn default() -> Self {
        PeerStore::new()
    }
}

impl fmt::Debug for PeerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStore")
            .field("peers", &self.len())
            .field("max_peers", &self.inner.capacity.max())
            .field("dead_after", &self.inner.dead_after)
            .field("remove_after", &self.inner.remove_after)
            .field("subscribers", &self.inner.subscribers.len())
            .finish()
    }
}

/// Builds a [`PeerStore`] with other limits or another clock. [`build`](Self::build) refuses
/// settings that cannot work, naming the setting and the value.
///
/// ```
/// use std::time::Duration;
/// use peerstore::{BuildError, ManualClock, PeerStore};
///
/// let clock = ManualClock::new();
/// let store = PeerStore::builder()
///     .max_peers(50)
///     .dead_after(Duration::from_secs(30))
///     .remove_after(Duration::from_secs(60))
///     .event_buffer(64)
///     .clock(clock.clone())
///     .build()?;
/// assert_eq!(store.max_peers(), 50);
///
/// let backwards = PeerStore::builder()
///     .dead_after(Duration::from_secs(600))
///     .remove_after(Duration::from_secs(300))
///     .build();
/// assert!(matches!(backwards, Err(BuildError::DeadAfterRemove { .. })));
/// # Ok::<(), BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PeerStoreBuilder {
    max_peers: usize,
    dead_after: Duration,
    remove_after: Duration,
    event_buffer: usize,
    /// `None` for the [`SystemClock`], which the store reads without going through [`Clock`].
    clock: Option<Box<dyn Clock>>,
    /// `None` for the map's default (four per thread the machine runs).
    shards: Option<usize>,
    endpoint_policy: EndpointPolicy,
    endpoint_history: usize,
    tombstone_expired: Duration,
    when_full: FullPolicy,
    max_second_hand: Option<usize>,
}

impl Default for PeerStoreBuilder {
    fn default() -> Self {
        PeerStoreBuilder {
            max_peers: DEFAULT_MAX_PEERS,
            dead_after: PEER_DEAD_TIMEOUT,
            remove_after: PEER_REMOVE_TIMEOUT,
            event_buffer: EVENT_BUFFER_SIZE,
            clock: None,
            shards: None,
            endpoint_policy: EndpointPolicy::seed(),
            endpoint_history: 0,
            tombstone_expired: Duration::ZERO,
            when_full: FullPolicy::Refuse,
            max_second_hand: None,
        }
    }
}

impl fmt::Debug for PeerStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStoreBuilder")
            .field("max_peers", &self.max_peers)
            .field("dead_after", &self.dead_after)
            .field("remove_after", &self.remove_after)
            .field("event_buffer", &self.event_buffer)
            .field("endpoint_policy", &self.endpoint_policy)
            .field("endpoint_history", &self.endpoint_history)
            .field("tombstone_expired", &self.tombstone_expired)
            .field("when_full", &self.when_full)
            .field("max_second_hand", &self.max_second_hand)
            .finish_non_exhaustive()
    }
}

impl PeerStoreBuilder {
    /// The most peers the store holds; new peers past it are refused (default 1000).
    pub fn max_peers(mut self, max_peers: usize) -> Self {
        self.max_peers = max_peers;
        self
    }

    /// How long a silent peer stays active (default 5 minutes; more than zero, and at most
    /// [`remove_after`](Self::remove_after)).
    pub fn dead_after(mut self, dead_after: Duration) -> Self {
        self.dead_after = dead_after;
        self
    }

    /// How long a silent peer stays in the store (default 10 minutes; at least
    /// [`dead_after`](Self::dead_after)). Spans past about 292 years count as 292 years.
    pub fn remove_after(mut self, remove_after: Duration) -> Self {
        self.remove_after = remove_after;
        self
    }

    /// How many events each subscriber's channel holds before it loses events (default 16;
    /// from 1 to [`MAX_EVENT_BUFFER`]). The channel takes its room when a subscriber
    /// subscribes, about 64 bytes an event: choose what the slowest subscriber can fall
    /// behind by between two reads (a burst of updates after a restart, say) and resynchronise
    /// from [`get_all`](PeerStore::get_all) when `seq` shows a gap.
    pub fn event_buffer(mut self, event_buffer: usize) -> Self {
        self.event_buffer = event_buffer;
        self
    }

    /// How a peer's endpoint is chosen (default [`EndpointPolicy::seed`], the seed's rules).
    /// [`EndpointPolicy::resilient`] keeps candidates that age and trusts confirmed ones; see
    /// [`PeerStore::confirm`] and [`PeerStore::note_failure`].
    pub fn endpoint_policy(mut self, policy: EndpointPolicy) -> Self {
        self.endpoint_policy = policy;
        self
    }

    /// Keeps each peer's last `entries` endpoint changes ([`PeerStore::endpoint_history`]) and
    /// counts flaps (an endpoint changed back within `dead_after`) in
    /// [`Stats::endpoint_flaps`](crate::Stats::endpoint_flaps). 0, the default, keeps none and
    /// costs nothing; at most [`MAX_ENDPOINT_HISTORY`].
    pub fn endpoint_history(mut self, entries: usize) -> Self {
        self.endpoint_history = entries;
        self
    }

    /// Keeps a tombstone for `span` for every peer the cleanup removes as expired, as
    /// [`PeerStore::remove_for`] does for one: a peer only ever mentioned second-hand then
    /// expires once and stays out, instead of being re-added and expiring again forever,
    /// while a first-hand method still brings it back at once. Zero, the default, keeps none.
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
        self.tombstone_expired = span;
        self
    }

    /// What a full store does with a new peer (default [`FullPolicy::Refuse`], the seed's).
    /// [`FullPolicy::EvictSecondHand`] lets a peer heard first-hand take the place of the least
    /// recently heard peer never heard first-hand, so that a flood of invented second-hand
    /// peers cannot lock real ones out.
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
        self.when_full = policy;
        self
    }

    /// Peers never heard first-hand (only by the cache or second-hand methods) may fill at
    /// most `n` of the store's slots; a second-hand newcomer past it is refused with
    /// [`UpdateError::StoreFull`], and a peer heard first-hand leaves the quota. Unlimited by
    /// default (up to the cap).
    pub fn max_second_hand(mut self, n: usize) -> Self {
        self.max_second_hand = Some(n);
        self
    }

    /// The clock for expiry and `last_seen` (default [`SystemClock`]).
    pub fn clock<C: Clock>(mut self, clock: C) -> Self {
        let system = TypeId::of::<C>() == TypeId::of::<SystemClock>();
        self.clock = (!system).then(|| Box::new(clock) as Box<dyn Clock>);
        self
    }

    /// How many shards the map has: rounded up to a power of two, at least 2 (the map's
    /// minimum). Not for production: the tests run on a few and on many shards, so that a
    /// 2-core machine and a 64-core one test the same thing.
    #[doc(hidden)]
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shard_amount(shards));
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting and the value when a setting cannot work: an
    /// `event_buffer` of 0 or over [`MAX_EVENT_BUFFER`], a zero `dead_after`, or a
    /// `dead_after` longer than `remove_after` (the cleanup would remove peers that
    /// `get_active` still lists).
    pub fn build(self) -> Result<PeerStore, BuildError> {
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
        if self.endpoint_history > MAX_ENDPOINT_HISTORY {
            return Err(BuildError::EndpointHistory {
                entries: self.endpoint_history,
            });
        }
        if let Some(resilient) = &self.endpoint_policy.resilient
            && !(1..=MAX_CANDIDATES).contains(&resilient.max_candidates)
        {
            return Err(BuildError::MaxCandidates {
                max_candidates: resilient.max_candidates,
            });
        }
        Ok(self.assemble())
    }

    /// The store these settings make, checked or known to be good.
    fn assemble(self) -> PeerStore {
        let hasher = foldhash::fast::RandomState::default();
        let peers = match self.shards {
            Some(shards) => Map::with_hasher_and_shard_amount(hasher, shards),
            None => Map::with_hasher(hasher),
        };
        let extras =
            (self.endpoint_policy.resilient.is_some() || self.endpoint_history > 0).then(|| {
                let hasher = foldhash::fast::RandomState::default();
                match self.shards {
                    Some(shards) => ExtraMap::with_hasher_and_shard_amount(hasher, shards),
                    None => ExtraMap::with_hasher(hasher),
                }
            });
        PeerStore {
            inner: Arc::new(Inner {
                peers,
                capacity: Capacity::new(self.max_peers),
                seq: SeqCounter(AtomicU64::new(1)),
                subscribers: Arc::default(),
                counters: Counters::default(),
                timeline: Timeline::starting_now(self.clock),
                dead_after: self.dead_after,
                remove_after: self.remove_after,
                dead_after_nanos: nanos_of(self.dead_after),
                remove_after_nanos: nanos_of(self.remove_after),
                event_buffer: self.event_buffer,
                resilient: self.endpoint_policy.resilient,
                history_entries: self.endpoint_history,
                extras,
                tombstones: Tombstones::new(self.shards),
                tombstone_expired: self.tombstone_expired,
                when_full: self.when_full,
                second_hand: (self.max_second_hand.is_some()
                    || self.when_full == FullPolicy::EvictSecondHand)
                    .then(|| Capacity::new(self.max_second_hand.unwrap_or(usize::MAX))),
            }),
        }
    }
}

/// A shard count the map takes: a power of two, at least 2, at most 2^16.
fn shard_amount(asked: usize) -> usize {
    asked.clamp(2, 1 << 16).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn the_system_clock_is_read_directly_however_it_is_given() {
        let system = |store: &PeerStore| matches!(store.inner.timeline, Timeline::System { .. });
        assert!(system(&PeerStore::new()));
        assert!(system(
            &PeerStore::builder().clock(SystemClock).build().unwrap()
        ));
        assert!(!system(
            &PeerStore::builder()
                .clock(ManualClock::new())
                .build()
                .unwrap()
        ));
    }

    #[test]
    fn a_refresh_at_the_same_instant_leaves_the_snapshot_alone() {
        let clock = ManualClock::new();
        let store = PeerStore::builder().clock(clock.clone()).build().unwrap();
        let key = PublicKey::from_bytes([9; 32]);
        store
            .update(PeerInfo::new(key), DiscoveryMethod::Lan)
            .unwrap();
        let held = store.get(&key).unwrap();
        store
            .update(PeerInfo::new(key), DiscoveryMethod::Lan)
            .unwrap();
        assert!(Arc::ptr_eq(&held, &store.get(&key).unwrap()), "rewritten");
        clock.advance(Duration::from_nanos(1));
        store
            .update(PeerInfo::new(key), DiscoveryMethod::Lan)
            .unwrap();
        let refreshed = store.get(&key).unwrap();
        assert!(!Arc::ptr_eq(&held, &refreshed), "not refreshed");
        assert_eq!(
            refreshed.last_seen,
            held.last_seen + Duration::from_nanos(1)
        );
    }

    #[test]
    fn the_shard_count_is_a_power_of_two_of_at_least_two() {
        for (asked, got) in [(0, 2), (1, 2), (2, 2), (3, 4), (64, 64), (65, 128)] {
            assert_eq!(shard_amount(asked), got, "asked {asked}");
            // The map asserts what it takes: building must not panic.
            let store = PeerStore::builder().shards(asked).build().unwrap();
            assert!(store.is_empty());
        }
        assert_eq!(shard_amount(usize::MAX), 1 << 16);
    }
}
