//! The builder: [`Settings`], a clock and (for tests) a shard count, checked and assembled
//! into a store.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::admission::Admission;
use super::endpoints::Endpoints;
use super::eviction::Eviction;
use super::{Inner, PeerStore, SeqCounter};
use crate::clock::{Timeline, nanos_of};
use crate::keymap::key_map;
use crate::stats::Counters;
use crate::{BuildError, Clock, Settings, SystemClock};

/// Builds a [`PeerStore`] with other settings or another clock. [`build`](Self::build) refuses
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
#[derive(Default)]
pub struct PeerStoreBuilder {
    pub(super) settings: Settings,
    /// `None` for the [`SystemClock`], which the store reads without going through [`Clock`].
    clock: Option<Box<dyn Clock>>,
    /// `None` for the map's default (four per thread the machine runs).
    shards: Option<usize>,
}

impl fmt::Debug for PeerStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStoreBuilder")
            .field("settings", &self.settings)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl PeerStoreBuilder {
    /// Takes every setting from `settings` (the clock and the shard count stay as they are):
    /// a store built like another one, from what [`PeerStore::settings`] handed back.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
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
        self.shards = Some(shards);
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting and the value when a setting cannot work, as
    /// [`Settings::check`] lists them.
    pub fn build(self) -> Result<PeerStore, BuildError> {
        self.settings.check()?;
        Ok(self.assemble())
    }

    /// The store these settings make, checked or known to be good.
    pub(super) fn assemble(self) -> PeerStore {
        let settings = self.settings;
        PeerStore {
            inner: Arc::new(Inner {
                peers: key_map(self.shards),
                seq: SeqCounter(AtomicU64::new(1)),
                subscribers: Arc::default(),
                counters: Counters::default(),
                timeline: Timeline::starting_now(self.clock),
                dead_after: nanos_of(settings.dead_after),
                remove_after: nanos_of(settings.remove_after),
                admission: Admission::new(&settings, self.shards),
                eviction: Eviction::new(settings.when_full, settings.max_peers, self.shards),
                endpoints: Endpoints::new(&settings, self.shards),
                settings,
            }),
        }
    }
}
