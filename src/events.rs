//! Change notifications: what subscribers receive, and the subscriber list that never slows
//! the store.
//!
//! Each subscriber owns a bounded channel. The store sends with `try_send` after it released
//! the record's lock: a subscriber that does not keep up loses events (and can see it, from
//! the gaps in [`PeerEvent::seq`] and from [`Subscription::dropped`]) instead of stalling
//! discovery. The list itself is an `ArcSwap` snapshot: sending reads it without a lock, and
//! subscribing or unsubscribing swaps in a new one.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{
    Receiver, RecvError, RecvTimeoutError, Sender, TryIter, TryRecvError, TrySendError,
};

use crate::PublicKey;
use crate::stats::Striped;
use crate::sync::ArcSwap;

/// One change to the store, as a subscriber receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PeerEvent {
    /// The peer that changed.
    pub public_key: PublicKey,
    /// What happened to it.
    pub kind: PeerEventKind,
    /// The change's place in the store-wide order of changes: strictly increasing across all
    /// peers, so a gap means this subscriber missed events (or saw none of some changes).
    pub seq: u64,
}

/// What happened to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerEventKind {
    /// The peer was inserted.
    New {
        /// The peer had a tombstone ([`PeerStore::remove_for`](crate::PeerStore::remove_for))
        /// that this announcement lifted, so it is back after a removal.
        readmitted: bool,
    },
    /// Something a consumer acts on changed, or a dead peer came back.
    Updated,
    /// The peer left the store.
    Removed {
        /// Why it left.
        cause: RemovalCause,
    },
}

/// Why a peer left the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// [`PeerStore::remove`](crate::PeerStore::remove) was called.
    Explicit,
    /// [`PeerStore::cleanup_stale`](crate::PeerStore::cleanup_stale) found it silent too long.
    Expired,
    /// A newcomer took its place in a full store: it was the least recently heard of the
    /// peers the store's [`FullPolicy`](crate::FullPolicy) lets go (never heard first-hand, or
    /// never proven).
    Evicted,
    /// [`PeerStore::ban`](crate::PeerStore::ban) ruled the key out.
    Banned,
}

impl PeerEventKind {
    /// A short name for logs and JSON: `"new"`, `"updated"`, `"removed"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            PeerEventKind::New { .. } => "new",
            PeerEventKind::Updated => "updated",
            PeerEventKind::Removed { .. } => "removed",
        }
    }
}

/// The short name, and the cause of a removal: `removed (expired)`.
impl std::fmt::Display for PeerEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerEventKind::Removed { cause } => write!(f, "removed ({cause})"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl RemovalCause {
    /// A short name for logs and JSON: `"explicit"`, `"expired"`, `"evicted"`, `"banned"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            RemovalCause::Explicit => "explicit",
            RemovalCause::Expired => "expired",
            RemovalCause::Evicted => "evicted",
            RemovalCause::Banned => "banned",
        }
    }
}

impl std::fmt::Display for RemovalCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The receiving end of a subscription, from [`PeerStore::subscribe`](crate::PeerStore::subscribe).
///
/// Dropping it unsubscribes.
#[derive(Debug)]
#[must_use = "dropping a subscription unsubscribes at once"]
pub struct Subscription {
    receiver: Receiver<PeerEvent>,
    losses: Arc<Losses>,
    list: Weak<SubscriberList>,
}

/// The events one subscriber lost, shared by its [`Subscription`] and its entry in the list;
/// its address is the subscriber's identity. Counted in one stripe per publishing thread, so
/// that threads publishing to a subscriber that does not read bump different cache lines.
#[derive(Debug, Default)]
struct Losses(Striped<1>);

impl Subscription {
    /// Takes the next event if one is waiting.
    ///
    /// # Errors
    ///
    /// `Empty` if none is, `Disconnected` once the store is gone and every event is read.
    pub fn try_recv(&self) -> Result<PeerEvent, TryRecvError> {
        self.receiver.try_recv()
    }

    /// Waits for the next event.
    ///
    /// # Errors
    ///
    /// Only once the store is gone and every event is read.
    pub fn recv(&self) -> Result<PeerEvent, RecvError> {
        self.receiver.recv()
    }

    /// Waits at most `timeout` for the next event.
    ///
    /// # Errors
    ///
    /// `Timeout` if none came in time, `Disconnected` once the store is gone and every event
    /// is read.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<PeerEvent, RecvTimeoutError> {
        self.receiver.recv_timeout(timeout)
    }

    /// Every event waiting now, without blocking.
    #[must_use]
    pub fn try_iter(&self) -> TryIter<'_, PeerEvent> {
        self.receiver.try_iter()
    }

    /// The channel itself, to wait on several with `crossbeam_channel::select!`.
    #[must_use]
    pub fn receiver(&self) -> &Receiver<PeerEvent> {
        &self.receiver
    }

    /// How many events this subscriber lost because its channel was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.losses.0.total(0)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(list) = self.list.upgrade() {
            list.remove(&self.losses);
        }
    }
}

#[derive(Debug, Clone)]
struct Subscriber {
    sender: Sender<PeerEvent>,
    losses: Arc<Losses>,
}

/// How one event fared: counted into the store's statistics.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Delivery {
    pub sent: u64,
    pub dropped: u64,
}

/// Every live subscriber.
#[derive(Debug, Default)]
pub(crate) struct SubscriberList {
    subscribers: ArcSwap<Vec<Subscriber>>,
}

impl SubscriberList {
    pub(crate) fn subscribe(self: &Arc<Self>, buffer: usize) -> Subscription {
        let (sender, receiver) = crossbeam_channel::bounded(buffer);
        let losses = Arc::new(Losses::default());
        let subscriber = Subscriber {
            sender,
            losses: Arc::clone(&losses),
        };
        // rcu may run the closure again on contention: it only builds a new list.
        self.subscribers.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(subscriber.clone());
            list
        });
        Subscription {
            receiver,
            losses,
            list: Arc::downgrade(self),
        }
    }

    fn remove(&self, losses: &Arc<Losses>) {
        self.retain(|s| !Arc::ptr_eq(&s.losses, losses));
    }

    fn retain(&self, keep: impl Fn(&Subscriber) -> bool) {
        self.subscribers
            .rcu(|list| list.iter().filter(|s| keep(s)).cloned().collect::<Vec<_>>());
    }

    pub(crate) fn len(&self) -> usize {
        self.subscribers.load().len()
    }

    /// Offers `event` to every subscriber without waiting; forgets those whose receiver is gone.
    pub(crate) fn publish(&self, event: PeerEvent) -> Delivery {
        let list = self.subscribers.load();
        let mut delivery = Delivery::default();
        if list.is_empty() {
            return delivery;
        }
        let mut gone = Vec::new();
        for subscriber in list.iter() {
            // A full channel stays full until its reader reads: two loads tell so, where a
            // send that fails costs a full memory fence. (A receiver gone while still listed
            // is a subscription being dropped right now, which unlists itself.)
            let sent = if subscriber.sender.is_full() {
                Err(TrySendError::Full(event))
            } else {
                subscriber.sender.try_send(event)
            };
            match sent {
                Ok(()) => delivery.sent += 1,
                Err(TrySendError::Full(_)) => {
                    subscriber.losses.0.add(0, 1);
                    delivery.dropped += 1;
                }
                Err(TrySendError::Disconnected(_)) => gone.push(subscriber.sender.clone()),
            }
        }
        drop(list);
        if !gone.is_empty() {
            // The receiver went without its subscription saying so (or the subscription is being
            // dropped right now): forget it, so it costs nothing from the next event on.
            self.retain(|s| !gone.iter().any(|g| g.same_channel(&s.sender)));
        }
        delivery
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn event(seq: u64) -> PeerEvent {
        PeerEvent {
            public_key: PublicKey::from_bytes([0; 32]),
            kind: PeerEventKind::New { readmitted: false },
            seq,
        }
    }

    #[test]
    fn a_full_subscriber_loses_events_and_counts_them() {
        let list = Arc::new(SubscriberList::default());
        let sub = list.subscribe(2);
        for seq in 0..5 {
            list.publish(event(seq));
        }
        assert_eq!(sub.dropped(), 3);
        assert_eq!(sub.try_recv().map(|e| e.seq), Ok(0));
        assert_eq!(sub.try_recv().map(|e| e.seq), Ok(1));
        assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let list = Arc::new(SubscriberList::default());
        let a = list.subscribe(1);
        let b = list.subscribe(1);
        assert_eq!(list.len(), 2);
        drop(a);
        assert_eq!(list.len(), 1);
        assert_eq!(list.publish(event(1)).sent, 1);
        assert_eq!(b.try_recv().map(|e| e.seq), Ok(1));
    }

    #[test]
    fn a_receiver_that_outlives_its_subscription_is_pruned_on_the_next_send() {
        let list = Arc::new(SubscriberList::default());
        let sub = list.subscribe(1);
        let losses = Arc::clone(&sub.losses);
        // Simulate a subscriber whose receiver is gone but whose entry is still listed.
        let (sender, receiver) = crossbeam_channel::bounded(1);
        drop(receiver);
        list.subscribers.rcu(|l| {
            let mut l = Vec::clone(l);
            l.push(Subscriber {
                sender: sender.clone(),
                losses: Arc::clone(&losses),
            });
            l
        });
        assert_eq!(list.len(), 2);
        assert_eq!(list.publish(event(1)).sent, 1);
        assert_eq!(list.len(), 1);
    }
}

/// The subscriber list under the loom model checker: subscribing, unsubscribing and
/// publishing at once, over every interleaving of their list updates:
/// `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::tests::event;
    use super::*;

    #[test]
    fn subscribing_unsubscribing_and_publishing_at_once_keep_the_list_exact() {
        loom::model(|| churn_the_list(SubscriberList::default()));
    }

    /// The model is a real check: with an update that overwrites a racing one, it finds the
    /// interleaving in which a subscriber is lost or a gone one stays listed.
    #[test]
    #[should_panic(expected = "exactly the live subscription")]
    fn an_update_that_overwrites_a_racing_one_loses_a_subscriber() {
        loom::model(|| {
            churn_the_list(SubscriberList {
                subscribers: ArcSwap::default().last_writer_wins(),
            })
        });
    }

    /// One thread subscribes and publishes, one drops an early subscription, and this one
    /// publishes, all at once; then exactly the live subscription is listed and hears events.
    fn churn_the_list(list: SubscriberList) {
        let list = Arc::new(list);
        let early = list.subscribe(4);
        let joiner = {
            let list = Arc::clone(&list);
            loom::thread::spawn(move || {
                let late = list.subscribe(4);
                list.publish(event(1));
                late
            })
        };
        let leaver = loom::thread::spawn(move || drop(early));
        let during = list.publish(event(2));
        let late = joiner.join().expect("joiner");
        leaver.join().expect("leaver");

        assert!(during.sent <= 2 && during.dropped == 0);
        assert_eq!(list.len(), 1, "exactly the live subscription is listed");
        let heard: Vec<u64> = late.try_iter().map(|e| e.seq).collect();
        assert!(
            heard.contains(&1),
            "an event published after subscribing is heard"
        );
        assert_eq!(list.publish(event(3)).sent, 1);
        assert_eq!(late.try_recv().map(|e| e.seq), Ok(3));
    }

    #[test]
    fn a_full_subscriber_counts_what_racing_publishers_drop() {
        loom::model(|| {
            let list = Arc::new(SubscriberList::default());
            let sub = list.subscribe(1);
            let other = {
                let list = Arc::clone(&list);
                loom::thread::spawn(move || list.publish(event(1)))
            };
            let here = list.publish(event(2));
            let there = other.join().expect("publisher");
            assert_eq!(here.sent + there.sent, 1, "one fits in the buffer");
            assert_eq!(sub.dropped(), 1, "the other is counted as dropped");
            assert_eq!(here.dropped + there.dropped, 1);
        });
    }
}
