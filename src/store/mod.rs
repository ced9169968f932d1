//! The store: a thin public API over one room per feature. Each public method locks what it
//! needs, calls a room and counts:
//!
//! - `merge`: a known peer's announcement folded in, a new peer's record made, by the plans
//!   of [`policy`](crate::policy);
//! - `admission`: who may come in: the cap, the quotas, tombstones;
//! - `eviction`: a full store making room, in the order victims were last heard;
//! - `bans`: keys the operator ruled out, and the records they remove;
//! - `endpoints`: the opt-in endpoint state (candidates, history), re-choosing, evidence;
//! - `removal`: removal and expiry;
//! - `settings` and `builder`: the one [`Settings`] value, checked, and the store it makes.
//!
//! Records live in a `DashMap` (a lock per shard). Nothing holds one map's guard while it
//! waits for another's, except in one order: a record (or its vacant slot) first, then the
//! same peer's opt-in state or tombstone.

mod admission;
mod bans;
mod builder;
mod endpoints;
mod eviction;
mod merge;
mod removal;
mod settings;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::ban::{Ban, BanError};
use crate::clock::{Nanos, Timeline};
use crate::events::{PeerEvent, PeerEventKind, SubscriberList, Subscription};
use crate::keymap::KeyMap;
use crate::stats::{Counter, Counters, Stats};
use crate::tombstone::Tombstone;
use crate::{
    Candidate, DiscoveryMethod, EndpointChange, Evidence, Peer, PeerInfo, PublicKey, UpdateError,
    UpdateOutcome, policy,
};

pub use admission::{FullPolicy, Readmission};
pub use builder::PeerStoreBuilder;
pub use settings::{BuildError, MAX_EVENT_BUFFER, Settings};

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
    peers: KeyMap<Record>,
    /// The next event's sequence number, taken while the changed record is locked.
    seq: SeqCounter,
    subscribers: Arc<SubscriberList>,
    counters: Counters,
    timeline: Timeline,
    /// `settings.dead_after` and `settings.remove_after` as nanoseconds on the timeline.
    dead_after: Nanos,
    remove_after: Nanos,
    /// The cap, the quotas, the tombstones and the bans.
    admission: admission::Admission,
    /// The order victims are evicted in, under an evicting full policy.
    eviction: Option<eviction::Eviction>,
    /// The opt-in endpoint state.
    endpoints: endpoints::Endpoints,
    /// What the store was built with, checked.
    settings: Settings,
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
    /// A store with the default settings and the system clock.
    #[must_use]
    pub fn new() -> Self {
        PeerStoreBuilder::default().assemble()
    }

    /// Configures a store: its settings and its clock.
    pub fn builder() -> PeerStoreBuilder {
        PeerStoreBuilder::default()
    }

    /// Merges one announcement, heard by `method`, into the store.
    ///
    /// A new peer is inserted unless the store is full; a known one is merged by the rules of
    /// the [crate documentation](crate): the endpoint by the store's
    /// [`EndpointPolicy`](crate::EndpointPolicy) (under the default,
    /// [`should_update_endpoint`](crate::should_update_endpoint)), the other fields by "last
    /// non-empty value wins". Subscribers hear of inserts and changes after the record's lock
    /// is released.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Invalid`] for a value the store will not keep (see
    /// [`PeerInfo::validate`]); [`UpdateError::StoreFull`] for a new peer when the store holds
    /// its cap (and its [`FullPolicy`] finds it no victim) or a quota it counts against is
    /// full; [`UpdateError::Tombstoned`] for a new record its tombstone refuses (whether or not
    /// the store is full); [`UpdateError::Banned`] for a banned key. Whatever the error,
    /// nothing in the store changed.
    pub fn update(
        &self,
        mut info: PeerInfo,
        method: DiscoveryMethod,
    ) -> Result<UpdateOutcome, UpdateError> {
        let inner = &*self.inner;
        // Both clocks from one reading, before the lock, when the policy needs the wall clock;
        // otherwise it is read under the lock only if a new peer needs it.
        let (now, wall) = if policy::needs_wall_clock(&method, info.last_seen) {
            let (now, wall) = inner.timeline.now_and_wall();
            (now, Some(wall))
        } else {
            (inner.timeline.now(), None)
        };
        let wall = || wall.unwrap_or_else(|| inner.timeline.wall_now());
        let key = info.public_key;
        let (outcome, event) = inner.upsert(&mut info, method, now, wall)?;
        // The shard's lock was released with the entry: events leave now, and what the merge
        // replaced or did not take is freed now too, outside the lock.
        drop(info);
        inner.counters.add(Counter::of(outcome), 1);
        if let Some((kind, seq)) = event {
            inner.publish(key, kind, seq);
        }
        Ok(outcome)
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
        let dead_after = self.inner.dead_after;
        self.collect(|r| !r.silent_longer_than(now, dead_after))
    }

    fn collect(&self, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Peer>> {
        let mut out = Vec::with_capacity(self.len());
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

    /// The tombstones standing now, oldest first, those placed at one instant by key
    /// ([`remove_for`](Self::remove_for), [`PeerStoreBuilder::tombstone_expired`]).
    #[must_use]
    pub fn tombstones(&self) -> Vec<Tombstone> {
        self.inner.tombstones(self.inner.timeline.now())
    }

    /// The bans standing now, oldest first, those placed at one instant by key
    /// ([`ban`](Self::ban)).
    #[must_use]
    pub fn banned(&self) -> Vec<Ban> {
        self.inner.banned()
    }

    /// How many peers the store holds (counting an insert in flight).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.held()
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
            .is_none_or(|r| r.silent_longer_than(now, self.inner.dead_after))
    }

    /// A peer's endpoint candidates under the resilient policy, as they stand now; empty for
    /// an unknown peer or under the ranked policy.
    #[must_use]
    pub fn candidates(&self, key: &PublicKey) -> Vec<Candidate> {
        self.inner.candidates(key, self.inner.timeline.now())
    }

    /// A peer's last endpoint changes, oldest first, when the store keeps a history
    /// ([`PeerStoreBuilder::endpoint_history`]); empty otherwise, or for an unknown peer.
    #[must_use]
    pub fn endpoint_history(&self, key: &PublicKey) -> Vec<EndpointChange> {
        self.inner.endpoint_history(key)
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
    /// assert_eq!(event.public_key, key);
    /// assert_eq!(event.kind, PeerEventKind::New { readmitted: false });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self) -> Subscription {
        self.inner
            .subscribers
            .subscribe(self.inner.settings.event_buffer)
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

    /// The settings the store was built with ([`PeerStoreBuilder::settings`] builds another
    /// one like it).
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The store's cap on peers: [`Settings::max_peers`]. A new peer past it is refused,
    /// unless the [`FullPolicy`] lets it take another's place.
    #[must_use]
    pub fn max_peers(&self) -> usize {
        self.inner.settings.max_peers
    }

    /// The wall-clock time on the store's clock: what the cache stamps and ages entries by.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn wall_now(&self) -> SystemTime {
        self.inner.timeline.wall_now()
    }

    /// A handle that does not keep the store alive (for the cleanup thread).
    pub(crate) fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.inner))
    }
}

/// The methods called for their effect: each returns what a caller may want to know, and
/// may ignore.
#[expect(
    clippy::must_use_candidate,
    reason = "called for their effect; the result is there for callers who want it"
)]
impl PeerStore {
    /// Removes a peer (the health monitor gave up on it). Subscribers hear
    /// [`RemovalCause::Explicit`](crate::RemovalCause::Explicit). Its slot under the cap is
    /// free when this returns.
    pub fn remove(&self, key: &PublicKey) -> Option<Arc<Peer>> {
        self.inner.remove(key, Duration::ZERO)
    }

    /// Removes a peer, as [`remove`](Self::remove) does, and keeps a tombstone for it for
    /// `tombstone` (a zero span keeps none): until it falls, an update by a method that does
    /// not refresh `last_seen` (the cache, a second-hand method) cannot bring the peer back
    /// and is refused with [`UpdateError::Tombstoned`]. A first-hand method can, as the
    /// store's [`Readmission`] rule says (by default, any): the peer goes in again at once, the
    /// tombstone is cleared, and its event is
    /// [`New { readmitted: true }`](PeerEventKind::New). The tombstone is placed even if the peer is not
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
    pub fn remove_for(&self, key: &PublicKey, tombstone: Duration) -> Option<Arc<Peer>> {
        self.inner.remove(key, tombstone)
    }

    /// Bans a key: every method, the cache and evidence are refused it
    /// ([`UpdateError::Banned`]) for `span`, or until [`unban`](Self::unban) if `None`;
    /// whatever record it had is removed (subscribers hear
    /// [`RemovalCause::Banned`](crate::RemovalCause::Banned)) and returned. The key's
    /// tombstone, if it has one, stands as it was. Banned again, a key's ban is replaced.
    /// Bans are written to the cache file ([`cache::save`](crate::cache::save)) and stand
    /// again after a restart; nothing drops one to make room.
    ///
    /// ```
    /// use peerstore::{DiscoveryMethod, PeerInfo, PeerStore, PublicKey, UpdateError};
    ///
    /// let store = PeerStore::new();
    /// let key = PublicKey::from_bytes([7; 32]);
    /// store.update(PeerInfo::new(key), DiscoveryMethod::Dht)?;
    /// assert!(store.ban(&key, None, "key revoked")?.is_some(), "its record is removed");
    /// // The DHT still serves its signed record: refused, again and again.
    /// let again = store.update(PeerInfo::new(key), DiscoveryMethod::Dht);
    /// assert_eq!(again, Err(UpdateError::Banned { until: None }));
    /// assert_eq!(store.banned()[0].reason, "key revoked");
    /// assert!(store.unban(&key));
    /// store.update(PeerInfo::new(key), DiscoveryMethod::Dht)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BanError`] for a reason longer than [`MAX_BAN_REASON`](crate::MAX_BAN_REASON) bytes or
    /// holding a control character, a zero span, or a new ban past
    /// [`MAX_BANS`](crate::MAX_BANS); nothing is changed then.
    pub fn ban(
        &self,
        key: &PublicKey,
        span: Option<Duration>,
        reason: &str,
    ) -> Result<Option<Arc<Peer>>, BanError> {
        self.inner.ban(key, span, reason)
    }

    /// Lifts a key's ban; whether one stood. Announcements of the key are weighed again as
    /// any other's (a tombstone it has still stands).
    pub fn unban(&self, key: &PublicKey) -> bool {
        self.inner.unban(key)
    }

    /// Removes every peer silent for longer than the remove timeout (10 minutes by default) and
    /// returns their keys. Subscribers hear [`RemovalCause::Expired`](crate::RemovalCause::Expired).
    /// Their slots are free when this returns.
    pub fn cleanup_stale(&self) -> Vec<PublicKey> {
        self.inner.cleanup()
    }

    /// Records the latency the health monitor measured; `false` if the peer is unknown.
    /// It is a measurement, not news from the peer: no event, no refresh.
    pub fn set_latency(&self, key: &PublicKey, latency: Duration) -> bool {
        let Some(mut record) = self.inner.peers.get_mut(key) else {
            return false;
        };
        if record.peer.latency != Some(latency) {
            Arc::make_mut(&mut record.peer).latency = Some(latency);
        }
        true
    }

    /// Evidence that `endpoint` reaches the peer (a handshake seen there, a probe answered):
    /// under the resilient policy it becomes a confirmed candidate, trusted for the policy's
    /// `trust_for` against equal-rank challengers, and chosen if it was not. `false` for an
    /// unknown peer (a banned key counts in [`Stats::rejected_banned`]), or an address that
    /// is not one of its candidates (under the ranked policy: not its endpoint).
    ///
    /// A handshake ([`Evidence::Handshake`]) is more: WireGuard authenticated the key holder
    /// at `endpoint`.
    /// - Under every policy it makes the peer [`proven`](Peer::proven), for as long as its
    ///   record lives.
    /// - Under the resilient policy the store takes the endpoint even when no discovery
    ///   method reported it (WireGuard followed the peer to a new NAT mapping): it becomes a
    ///   trusted candidate that counts as set by the method the peer's endpoint came from
    ///   (or the first it was heard by) until a method reports it, and it is chosen as any
    ///   trusted candidate is ([`EndpointRule::Trusted`](crate::EndpointRule::Trusted) in the
    ///   history). Past the candidate limit it replaces the least recently reported one that
    ///   is neither in use nor trusted; if every one is, it is not kept and this is `false`.
    /// - Under the ranked policy the endpoint stays what the announcements chose (the ranked
    ///   rules weigh announcements only); a reconciler that leaves WireGuard's own roaming
    ///   alone is how such a peer keeps working. `false` unless it is the peer's endpoint.
    ///
    /// Trust is each candidate's own: confirming `endpoint` leaves another candidate's trust as
    /// it was. Of several trusted candidates the one chosen is the first in the ranked order
    /// among them: the rank of the best method that ever reported it, then IPv6, then the most
    /// recent confirmation; an untrusted one displaces it only by outranking it, and only if
    /// the policy lets rank override trust
    /// ([`ResilientPolicy::rank_overrides_trust`](crate::ResilientPolicy::rank_overrides_trust)).
    /// The confirmation also resets the endpoint's failures and makes the reports its last
    /// failure voided vouch again.
    ///
    /// An endpoint no announcement may carry ([`PeerInfo::validate`]: port 0, an unspecified,
    /// multicast or broadcast address) is no evidence: `false`, and nothing changes.
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
    pub fn confirm(&self, key: &PublicKey, endpoint: SocketAddr, evidence: Evidence) -> bool {
        self.inner.confirm(key, endpoint, evidence)
    }

    /// `endpoint` stopped answering (the health monitor's probes time out, handshakes stopped):
    /// under the resilient policy its trust ends at once and its reports so far no longer
    /// vouch for it, so the next fresh candidate takes over now, not when a window runs out.
    /// Under the ranked policy it changes nothing. `false` as for [`confirm`](Self::confirm).
    ///
    /// Only this endpoint's trust ends: another trusted candidate stays trusted (and is chosen,
    /// if it is the first trusted one). "So far" is by order, not by the clock: a report made
    /// after the failure vouches, even within the same tick of the store's clock, unless it
    /// carries a time from before the failure (second-hand news older than the failure).
    pub fn note_failure(&self, key: &PublicKey, endpoint: SocketAddr) -> bool {
        self.inner.note_failure(key, endpoint)
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
    fn next_seq(&self) -> u64 {
        self.seq.0.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, key: PublicKey, kind: PeerEventKind, seq: u64) {
        let event = PeerEvent {
            public_key: key,
            kind,
            seq,
        };
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
            .field("subscribers", &self.inner.subscribers.len())
            .field("settings", &self.inner.settings)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, SystemClock};

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
    fn any_shard_count_builds() {
        // The largest, clamped to 2^16 shards a map, takes minutes under Miri, which checks
        // each of their allocations; `keymap`'s tests check the clamp itself without building.
        let largest = if cfg!(miri) { 1 << 8 } else { usize::MAX };
        for shards in [0, 1, 3, 64, largest] {
            let store = PeerStore::builder().shards(shards).build().unwrap();
            assert!(store.is_empty());
        }
    }
}
