//! Counters of what the store did, kept cheap for the hot path.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What the store has done since it was built, from [`PeerStore::stats`](crate::PeerStore::stats).
///
/// The counters are read one after another while the store runs, so under load they describe
/// nearly, not exactly, the same instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Peers held now.
    pub peers: usize,
    /// Updates that inserted a new peer.
    pub inserts: u64,
    /// Updates that changed a peer ([`UpdateOutcome::Updated`](crate::UpdateOutcome::Updated)).
    pub updates: u64,
    /// Updates that changed nothing a consumer acts on.
    pub unchanged: u64,
    /// New peers refused because the store was full.
    pub rejected_full: u64,
    /// Announcements refused as invalid.
    pub rejected_invalid: u64,
    /// Peers removed by [`PeerStore::remove`](crate::PeerStore::remove).
    pub removed: u64,
    /// Peers removed by [`PeerStore::cleanup_stale`](crate::PeerStore::cleanup_stale).
    pub expired: u64,
    /// Events delivered, counted once per subscriber.
    pub events_sent: u64,
    /// Events lost to full subscriber channels, counted once per subscriber.
    pub events_dropped: u64,
    /// Live subscribers: neither unsubscribed nor pruned.
    pub subscribers: usize,
}

/// One counter of each kind, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    counts: [AtomicU64; Counter::COUNT],
}

/// The kinds of count the store keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Inserts,
    Updates,
    Unchanged,
    RejectedFull,
    RejectedInvalid,
    Removed,
    Expired,
    EventsSent,
    EventsDropped,
}

impl Counter {
    const COUNT: usize = 9;
}

/// Striped by thread, so that threads do not fight over one cache line (a single shared
/// counter cost more than the whole update on two cores; stripes chosen by the peer's key
/// still moved a line between cores on every other update, as every thread updates every peer).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    stripes: [Stripe; STRIPES],
}

const STRIPES: usize = 8;

impl Counters {
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        if n > 0 {
            let stripe = &self.stripes[thread_stripe() % STRIPES];
            stripe.counts[counter as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn total(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.counts[counter as usize].load(Ordering::Relaxed))
            .sum()
    }
}

/// This thread's stripe of a striped counter: threads take numbers in turn, so the first
/// threads to count each get stripes of their own.
pub(crate) fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<Option<usize>> = const { Cell::new(None) };
    }
    STRIPE.with(|stripe| {
        stripe.get().unwrap_or_else(|| {
            let taken = NEXT.fetch_add(1, Ordering::Relaxed);
            stripe.set(Some(taken));
            taken
        })
    })
}
