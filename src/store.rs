//! The store: records in a sharded map (a lock per shard), the peer cap, expiry and change
//! events.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use std::collections::hash_map::Entry;

use crate::shards::Shards;

use crate::capacity::Capacity;
use crate::clock::{Timeline, ticks};
use crate::events::{PeerEvent, PeerEventKind, RemovalCause, SubscriberList, Subscription};
use crate::stats::{Counter, Counters, Stats};
use crate::{
    Clock, DEFAULT_MAX_PEERS, DiscoveryMethod, EVENT_BUFFER_SIZE, InvalidPeerInfo,
    PEER_DEAD_TIMEOUT, PEER_REMOVE_TIMEOUT, Peer, PeerInfo, PublicKey, SystemClock, policy,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// The peer is new and the store already holds `capacity` peers.
    StoreFull {
        /// The store's [`max_peers`](PeerStoreBuilder::max_peers).
        capacity: usize,
    },
    /// The announcement holds a value the store will not keep.
    Invalid(InvalidPeerInfo),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::StoreFull { capacity } => write!(
                f,
                "peer store is full: it holds its limit of {capacity} peers, so a new peer is refused"
            ),
            UpdateError::Invalid(invalid) => write!(f, "invalid announcement: {invalid}"),
        }
    }
}

impl std::error::Error for UpdateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpdateError::StoreFull { .. } => None,
            UpdateError::Invalid(invalid) => Some(invalid),
        }
    }
}

impl From<InvalidPeerInfo> for UpdateError {
    fn from(invalid: InvalidPeerInfo) -> Self {
        UpdateError::Invalid(invalid)
    }
}

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

struct Inner {
    peers: Shards<Record>,
    capacity: Capacity,
    /// The next event's sequence number, taken while the changed record is locked.
    seq: SeqCounter,
    subscribers: Arc<SubscriberList>,
    counters: Counters,
    /// The store's clock, as nanoseconds since the store was built.
    timeline: Timeline,
    dead_after: Duration,
    remove_after: Duration,
    /// `dead_after` and `remove_after` in ticks of the store's timeline.
    dead_ticks: i64,
    remove_ticks: i64,
    event_buffer: usize,
}

/// The event counter on cache lines of its own: every thread that changes a peer writes it,
/// and the store's read-only fields beside it missed the cache on every read after that.
#[repr(align(128))]
struct SeqCounter(AtomicU64);

/// One stored peer: the snapshot callers get, and when it was last refreshed.
struct Record {
    /// Replaced copy-on-write: callers holding a snapshot keep theirs.
    peer: Arc<Peer>,
    /// When the peer was last heard from: nanoseconds on the store's monotonic timeline
    /// ([`Inner::tick`]), below zero for a carried time older than the store. One integer
    /// instead of an `Instant` and an age keeps a map slot at 48 bytes instead of 72, and
    /// subtracting integers cannot fail the way `Instant - age` does on a machine up for less
    /// than `age`.
    seen_at: i64,
}

impl Record {
    /// Whether the peer was last heard from more than `ticks` before `now`. Compared as
    /// integers: building a `Duration` from nanoseconds divides, and `get_active` asks this of
    /// every peer.
    fn older_than(&self, now: i64, ticks: i64) -> bool {
        now.saturating_sub(self.seen_at) > ticks
    }
}

/// A refresh of `last_seen`: how old it is and the wall time it stands for.
#[derive(Clone, Copy)]
struct Seen {
    age: Duration,
    wall: SystemTime,
}

impl Seen {
    fn now(wall: SystemTime) -> Self {
        Seen {
            age: Duration::ZERO,
            wall,
        }
    }

    /// A carried wall-clock time, never later than now: a skewed or hostile clock cannot keep
    /// a peer alive.
    fn carried(last_seen: SystemTime, wall_now: SystemTime) -> Self {
        match wall_now.duration_since(last_seen) {
            Ok(age) => Seen {
                age,
                wall: last_seen,
            },
            Err(_) => Seen::now(wall_now),
        }
    }

    /// The store-timeline tick this refresh stands for, `now` being the current tick.
    fn at(&self, now: i64) -> i64 {
        now.saturating_sub(ticks(self.age))
    }
}

impl PeerStore {
    /// A store with the default limits and the system clock.
    pub fn new() -> Self {
        PeerStore::builder().build()
    }

    /// Configures a store: its cap, timeouts, event buffer and clock.
    pub fn builder() -> PeerStoreBuilder {
        PeerStoreBuilder::default()
    }

    /// Merges one announcement, heard by `method`, into the store.
    ///
    /// A new peer is inserted unless the store is full; a known one is merged: the endpoint by
    /// [`should_update_endpoint`](crate::should_update_endpoint), the other fields by "last
    /// non-empty value wins", `introducer` always. Direct methods refresh `last_seen`; the cache
    /// and second-hand methods only carry a time, taken when it is newer than the stored one.
    /// Subscribers hear of inserts and changes after the record's lock is released.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Invalid`] for a value the store will not keep (see
    /// [`PeerInfo::validate`]), [`UpdateError::StoreFull`] for a new peer when the store holds
    /// its cap. Either way nothing in the store changed.
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
        // The wall clock only stamps `last_seen`: skip deriving it when an update of a known
        // peer will not need it.
        let (now, wall) = if method.refreshes_last_seen() || info.last_seen.is_some() {
            let (now, wall) = inner.timeline.now_and_wall();
            (now, Some(wall))
        } else {
            (inner.tick(), None)
        };
        let mut shard = inner.peers.write(&key);
        let (outcome, seq) = match shard.entry(key) {
            Entry::Occupied(mut entry) => {
                let outcome = inner.merge(entry.get_mut(), &mut info, method, now, wall.as_ref());
                let seq = (outcome == UpdateOutcome::Updated).then(|| inner.next_seq());
                (outcome, seq)
            }
            Entry::Vacant(entry) => {
                if !inner.capacity.try_reserve() {
                    drop(shard);
                    inner.counters.add(Counter::RejectedFull, 1);
                    return Err(UpdateError::StoreFull {
                        capacity: inner.capacity.max(),
                    });
                }
                let wall = wall.unwrap_or_else(|| inner.timeline.wall_now());
                let seen = info
                    .last_seen
                    .map_or(Seen::now(wall), |t| Seen::carried(t, wall));
                entry.insert(Record {
                    peer: Arc::new(policy::first(&mut info, method, seen.wall)),
                    seen_at: seen.at(now),
                });
                (UpdateOutcome::Inserted, Some(inner.next_seq()))
            }
        };
        // Events leave after the lock is released, and what the merge replaced or did not
        // take is freed then too (frees were 6% of a churning update, all under the lock).
        drop(shard);
        drop(info);
        let (counter, kind) = match outcome {
            UpdateOutcome::Inserted => (Counter::Inserts, PeerEventKind::New),
            UpdateOutcome::Updated => (Counter::Updates, PeerEventKind::Updated),
            UpdateOutcome::Unchanged => (Counter::Unchanged, PeerEventKind::Updated),
        };
        inner.counters.add(counter, 1);
        if let Some(seq) = seq {
            inner.publish(key, kind, seq);
        }
        Ok(outcome)
    }

    /// The wall-clock time on the store's clock: what the cache stamps and ages entries by.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn wall_now(&self) -> SystemTime {
        self.inner.timeline.wall_now()
    }

    /// The peer stored under `key`, dead or alive.
    pub fn get(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        self.inner
            .peers
            .read(key)
            .get(key)
            .map(|r| Arc::clone(&r.peer))
    }

    /// Every stored peer, dead or alive, in no particular order.
    pub fn get_all(&self) -> Vec<Arc<Peer>> {
        self.collect(|_| true)
    }

    /// The peers heard from within the dead timeout (5 minutes by default), in no particular
    /// order: what reconciliation configures.
    pub fn get_active(&self) -> Vec<Arc<Peer>> {
        let now = self.inner.tick();
        let dead_after = self.inner.dead_ticks;
        self.collect(|r| !r.older_than(now, dead_after))
    }

    fn collect(&self, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Peer>> {
        /// Snapshots whose first cache lines fit a core's L1 cache, with room to spare.
        const WARM_LIMIT: usize = 256;
        let mut out = Vec::with_capacity(self.inner.capacity.held());
        // Each shard is read-locked in turn: this is not one snapshot of the whole store.
        self.inner.peers.for_each_shard(|records| {
            // Reading the snapshots' reference counts first lets their cache misses overlap;
            // the increments that follow, each of which waits for its line, then find it
            // close. Only for a shard whose lines stay cached until then: a big store's would
            // be read from memory twice.
            if records.len() <= WARM_LIMIT {
                for record in records.clone() {
                    std::hint::black_box(Arc::strong_count(&record.peer));
                }
            }
            for record in records {
                if keep(record) {
                    out.push(Arc::clone(&record.peer));
                }
            }
        });
        out
    }

    /// Removes a peer (the health monitor gave up on it). Subscribers hear
    /// [`RemovalCause::Explicit`]. Its slot under the cap is free when this returns.
    pub fn remove(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        let inner = &*self.inner;
        let (record, seq) = {
            let mut shard = inner.peers.write(key);
            let record = shard.remove(key)?;
            (record, inner.next_seq())
        };
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
    pub fn cleanup_stale(&self) -> Vec<PublicKey> {
        let inner = &*self.inner;
        let now = inner.tick();
        let mut expired = Vec::new();
        inner.peers.retain(|key, record| {
            let keep = !record.older_than(now, inner.remove_ticks);
            if !keep {
                expired.push((*key, inner.next_seq()));
            }
            keep
        });
        inner.capacity.release_many(expired.len());
        for &(key, seq) in &expired {
            inner.counters.add(Counter::Expired, 1);
            inner.publish(
                key,
                PeerEventKind::Removed {
                    cause: RemovalCause::Expired,
                },
                seq,
            );
        }
        expired.into_iter().map(|(key, _)| key).collect()
    }

    /// How many peers the store holds (counting an insert in flight).
    pub fn len(&self) -> usize {
        self.inner.capacity.held()
    }

    /// Whether the store holds no peer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a peer is dead: silent for longer than the dead timeout. An unknown peer is dead.
    pub fn is_dead(&self, key: &PublicKey) -> bool {
        let now = self.inner.tick();
        self.inner
            .peers
            .read(key)
            .get(key)
            .is_none_or(|r| r.older_than(now, self.inner.dead_ticks))
    }

    /// Records the latency the health monitor measured; `false` if the peer is unknown.
    /// It is a measurement, not news from the peer: no event, no refresh.
    pub fn set_latency(&self, key: &PublicKey, latency: Duration) -> bool {
        match self.inner.peers.write(key).get_mut(key) {
            Some(record) => {
                if record.peer.latency != Some(latency) {
                    Arc::make_mut(&mut record.peer).latency = Some(latency);
                }
                true
            }
            None => false,
        }
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
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            peers: self.len(),
            inserts: c.total(Counter::Inserts),
            updates: c.total(Counter::Updates),
            unchanged: c.total(Counter::Unchanged),
            rejected_full: c.total(Counter::RejectedFull),
            rejected_invalid: c.total(Counter::RejectedInvalid),
            removed: c.total(Counter::Removed),
            expired: c.total(Counter::Expired),
            events_sent: c.total(Counter::EventsSent),
            events_dropped: c.total(Counter::EventsDropped),
            subscribers: self.inner.subscribers.len(),
        }
    }

    /// The store's cap on peers.
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

impl Inner {
    /// Now on the store's monotonic timeline: nanoseconds since the store was built.
    fn tick(&self) -> i64 {
        self.timeline.now()
    }

    fn next_seq(&self) -> u64 {
        self.seq.0.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, key: PublicKey, kind: PeerEventKind, seq: u64) {
        let delivery = self.subscribers.publish(PeerEvent {
            public_key: key,
            kind,
            seq,
        });
        self.counters.add(Counter::EventsSent, delivery.sent);
        self.counters.add(Counter::EventsDropped, delivery.dropped);
    }

    /// Folds an announcement into a stored record: decide everything first, then assign.
    fn merge(
        &self,
        record: &mut Record,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        now: i64,
        wall: Option<&SystemTime>,
    ) -> UpdateOutcome {
        let was_dead = record.older_than(now, self.dead_ticks);
        let plan = policy::plan(&record.peer, info, &method);
        // `wall` is there whenever the method refreshes or the announcement carries a time.
        let seen = wall.and_then(|&wall| {
            if method.refreshes_last_seen() {
                // Within one tick of the coarse clock a refresh changes nothing: leaving the
                // record unwritten keeps its cache lines shared between the cores that read it.
                Some(Seen::now(wall))
                    .filter(|seen| seen.at(now) != record.seen_at || wall != record.peer.last_seen)
            } else {
                info.last_seen
                    .map(|t| Seen::carried(t, wall))
                    .filter(|seen| seen.at(now) > record.seen_at)
            }
        });
        if plan.changes() || seen.is_some() {
            let peer = Arc::make_mut(&mut record.peer);
            if let Some(seen) = seen {
                peer.last_seen = seen.wall;
                record.seen_at = seen.at(now);
            }
            policy::apply(peer, info, method, plan);
        }
        let revived = was_dead && !record.older_than(now, self.dead_ticks);
        if plan.changes() || revived {
            UpdateOutcome::Updated
        } else {
            UpdateOutcome::Unchanged
        }
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

/// Builds a [`PeerStore`] with other limits or another clock.
///
/// ```
/// use std::time::Duration;
/// use peerstore::{ManualClock, PeerStore};
///
/// let clock = ManualClock::new();
/// let store = PeerStore::builder()
///     .max_peers(50)
///     .dead_after(Duration::from_secs(30))
///     .remove_after(Duration::from_secs(60))
///     .event_buffer(64)
///     .clock(clock.clone())
///     .build();
/// assert_eq!(store.max_peers(), 50);
/// ```
pub struct PeerStoreBuilder {
    max_peers: usize,
    dead_after: Duration,
    remove_after: Duration,
    event_buffer: usize,
    /// `None` for the [`SystemClock`], which the store reads without going through [`Clock`].
    clock: Option<Box<dyn Clock>>,
}

impl Default for PeerStoreBuilder {
    fn default() -> Self {
        PeerStoreBuilder {
            max_peers: DEFAULT_MAX_PEERS,
            dead_after: PEER_DEAD_TIMEOUT,
            remove_after: PEER_REMOVE_TIMEOUT,
            event_buffer: EVENT_BUFFER_SIZE,
            clock: None,
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
            .finish_non_exhaustive()
    }
}

impl PeerStoreBuilder {
    /// The most peers the store holds; new peers past it are refused (default 1000).
    pub fn max_peers(mut self, max_peers: usize) -> Self {
        self.max_peers = max_peers;
        self
    }

    /// How long a silent peer stays active (default 5 minutes).
    pub fn dead_after(mut self, dead_after: Duration) -> Self {
        self.dead_after = dead_after;
        self
    }

    /// How long a silent peer stays in the store (default 10 minutes).
    pub fn remove_after(mut self, remove_after: Duration) -> Self {
        self.remove_after = remove_after;
        self
    }

    /// How many events each subscriber's channel holds before it loses events (default 16;
    /// at least 1).
    pub fn event_buffer(mut self, event_buffer: usize) -> Self {
        self.event_buffer = event_buffer.max(1);
        self
    }

    /// The clock for expiry and `last_seen` (default [`SystemClock`]).
    pub fn clock<C: Clock>(mut self, clock: C) -> Self {
        let system = TypeId::of::<C>() == TypeId::of::<SystemClock>();
        self.clock = (!system).then(|| Box::new(clock) as Box<dyn Clock>);
        self
    }

    /// Builds the store.
    pub fn build(self) -> PeerStore {
        PeerStore {
            inner: Arc::new(Inner {
                peers: Shards::new(),
                capacity: Capacity::new(self.max_peers),
                seq: SeqCounter(AtomicU64::new(1)),
                subscribers: Arc::default(),
                counters: Counters::default(),
                timeline: Timeline::starting_now(self.clock),
                dead_after: self.dead_after,
                remove_after: self.remove_after,
                dead_ticks: ticks(self.dead_after),
                remove_ticks: ticks(self.remove_after),
                event_buffer: self.event_buffer,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn the_system_clock_is_read_directly_however_it_is_given() {
        let system = |store: &PeerStore| matches!(store.inner.timeline, Timeline::System { .. });
        assert!(system(&PeerStore::new()));
        assert!(system(&PeerStore::builder().clock(SystemClock).build()));
        assert!(!system(
            &PeerStore::builder().clock(ManualClock::new()).build()
        ));
    }

    #[test]
    fn a_refresh_in_the_same_tick_leaves_the_snapshot_alone() {
        let clock = ManualClock::new();
        let store = PeerStore::builder().clock(clock.clone()).build();
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
}
