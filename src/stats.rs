//! Counters of what the store did, kept cheap for the hot path: each thread adds to a stripe
//! of its own.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::UpdateOutcome;

/// The store's counters, listed once: each becomes a [`Counter`], a field of [`Stats`] with
/// its documentation, and a line of [`Stats::new`].
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $field:ident: $counter:ident,)*) => {
        /// What the store has done since it was built, from
        /// [`PeerStore::stats`](crate::PeerStore::stats).
        ///
        /// The counters are read one after another while the store runs, so under load they
        /// describe nearly, not exactly, the same instant.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub struct Stats {
            /// Peers held now.
            pub peers: usize,
            $($(#[doc = $doc])* pub $field: u64,)*
            /// Live subscribers: neither unsubscribed nor pruned.
            pub subscribers: usize,
        }

        /// The kinds of count the store keeps.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Counter {
            $($counter,)*
        }

        impl Counter {
            const ALL: &[Counter] = &[$(Counter::$counter,)*];
        }

        impl Stats {
            pub(crate) fn new(counters: &Counters, peers: usize, subscribers: usize) -> Self {
                Stats {
                    peers,
                    $($field: counters.total(Counter::$counter),)*
                    subscribers,
                }
            }
        }
    };
}

counters! {
    /// Updates that inserted a new peer.
    inserts: Inserts,
    /// Updates that changed a peer ([`UpdateOutcome::Updated`]).
    updates: Updates,
    /// Updates that changed nothing a consumer acts on.
    unchanged: Unchanged,
    /// New peers refused because the store was full (or the second-hand quota,
    /// [`max_second_hand`](crate::PeerStoreBuilder::max_second_hand), was).
    rejected_full: RejectedFull,
    /// New records refused to a second-hand method or the cache by a tombstone
    /// ([`UpdateError::Tombstoned`](crate::UpdateError::Tombstoned)).
    rejected_tombstoned: RejectedTombstoned,
    /// Announcements and evidence refused because their key is banned
    /// ([`UpdateError::Banned`](crate::UpdateError::Banned)).
    rejected_banned: RejectedBanned,
    /// Peers inserted again by a first-hand method over their tombstone.
    readmitted: Readmitted,
    /// Peers evicted by a newcomer to a full store
    /// ([`FullPolicy::EvictSecondHand`](crate::FullPolicy::EvictSecondHand),
    /// [`FullPolicy::EvictUnproven`](crate::FullPolicy::EvictUnproven)).
    evicted: Evicted,
    /// Peers removed by a ban ([`PeerStore::ban`](crate::PeerStore::ban)).
    banned: Banned,
    /// Announcements refused as invalid.
    rejected_invalid: RejectedInvalid,
    /// Peers removed by [`PeerStore::remove`](crate::PeerStore::remove) and
    /// [`remove_for`](crate::PeerStore::remove_for).
    removed: Removed,
    /// Peers removed by [`PeerStore::cleanup_stale`](crate::PeerStore::cleanup_stale).
    expired: Expired,
    /// Events delivered, counted once per subscriber.
    events_sent: EventsSent,
    /// Events lost to full subscriber channels, counted once per subscriber.
    events_dropped: EventsDropped,
    /// Times a peer's endpoint moved to another address, under any policy (a first endpoint
    /// of a new peer is not counted).
    endpoint_changes: EndpointChanges,
    /// Endpoint changes back to the endpoint the previous change left, within `dead_after`
    /// (A → B → A); counted while the store keeps an endpoint history.
    endpoint_flaps: EndpointFlaps,
}

impl Counter {
    const COUNT: usize = Counter::ALL.len();

    /// The counter an update's outcome adds to.
    pub(crate) fn of(outcome: UpdateOutcome) -> Self {
        match outcome {
            UpdateOutcome::Inserted => Counter::Inserts,
            UpdateOutcome::Updated => Counter::Updates,
            UpdateOutcome::Unchanged => Counter::Unchanged,
        }
    }
}

/// How many stripes a striped counter has: threads past this many share stripes.
const STRIPES: usize = 8;

/// `N` counters, one copy per stripe, each stripe on cache lines of its own, so that threads
/// counting at once do not fight over one line. Striped by thread, not by peer: every thread
/// updates every peer, so stripes chosen by the key would still move a line between cores on
/// every other update.
#[derive(Debug)]
pub(crate) struct Striped<const N: usize> {
    stripes: [Padded<[AtomicU64; N]>; STRIPES],
}

#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

impl<const N: usize> Default for Striped<N> {
    fn default() -> Self {
        Striped {
            stripes: std::array::from_fn(|_| Padded(std::array::from_fn(|_| AtomicU64::new(0)))),
        }
    }
}

impl<const N: usize> Striped<N> {
    /// Adds `n` to counter `i` in this thread's stripe.
    pub(crate) fn add(&self, i: usize, n: u64) {
        if n > 0 {
            self.stripes[thread_stripe() % STRIPES].0[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counter `i`, summed over the stripes.
    pub(crate) fn total(&self, i: usize) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0[i].load(Ordering::Relaxed))
            .sum()
    }
}

/// Every counter of the store.
#[derive(Debug, Default)]
pub(crate) struct Counters(Striped<{ Counter::COUNT }>);

impl Counters {
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.0.add(counter as usize, n);
    }

    pub(crate) fn total(&self, counter: Counter) -> u64 {
        self.0.total(counter as usize)
    }
}

/// This thread's stripe: threads take numbers in turn, so the first threads to count each get
/// stripes of their own.
fn thread_stripe() -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_slot() {
        for (i, counter) in Counter::ALL.iter().enumerate() {
            assert_eq!(*counter as usize, i);
        }
        let counters = Counters::default();
        for (i, counter) in Counter::ALL.iter().enumerate() {
            counters.add(*counter, i as u64 + 1);
        }
        let stats = Stats::new(&counters, 7, 3);
        assert_eq!((stats.peers, stats.subscribers), (7, 3));
        let position = |c: Counter| Counter::ALL.iter().position(|&x| x == c).unwrap() as u64 + 1;
        assert_eq!(
            (stats.inserts, stats.events_dropped, stats.evicted),
            (
                1,
                position(Counter::EventsDropped),
                position(Counter::Evicted)
            )
        );
    }

    #[test]
    fn stripes_add_up_across_threads() {
        let striped = std::sync::Arc::new(Striped::<2>::default());
        let threads: Vec<_> = (0..STRIPES + 3)
            .map(|_| {
                let striped = std::sync::Arc::clone(&striped);
                std::thread::spawn(move || (0..100).for_each(|_| striped.add(1, 1)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("counter"));
        assert_eq!(striped.total(1), 100 * (STRIPES as u64 + 3));
        assert_eq!(striped.total(0), 0);
    }
}
