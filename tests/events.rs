//! What subscribers hear, and the cleanup thread.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use peerstore::{
    DiscoveryMethod as M, PeerEvent, PeerEventKind, PeerInfo, PeerStore, RemovalCause,
};
use support::{at, clock, key, secs};

/// Generous: only a deadlock or a missing wake-up comes near it.
const DEADLINE: Duration = Duration::from_secs(10);

fn kinds(events: &peerstore::Subscription) -> Vec<(u32, PeerEventKind)> {
    events
        .try_iter()
        .map(|e| {
            (
                u32::from_be_bytes(e.public_key.as_bytes()[..4].try_into().unwrap()),
                e.kind,
            )
        })
        .collect()
}

#[test]
fn each_change_is_one_event_and_nothing_else_is() {
    support::each(|store, clock| {
        let events = store.subscribe();
        store.update(at(1, "198.51.100.1:1"), M::Dht).unwrap(); // New
        store.update(at(1, "198.51.100.1:1"), M::Dht).unwrap(); // unchanged: nothing
        store.update(at(1, "198.51.100.2:1"), M::Dht).unwrap(); // Updated
        store.update(at(1, "0.0.0.0:1"), M::Dht).unwrap_err(); // refused: nothing
        store.update(at(2, "198.51.100.3:1"), M::Lan).unwrap(); // New
        store.remove(&key(2)); // Removed, explicit
        store.remove(&key(2)); // nothing left to remove
        clock.advance(secs(601));
        store.cleanup_stale(); // Removed, expired
        let explicit = PeerEventKind::Removed {
            cause: RemovalCause::Explicit,
        };
        let expired = PeerEventKind::Removed {
            cause: RemovalCause::Expired,
        };
        assert_eq!(
            kinds(&events),
            [
                (1, PeerEventKind::New { readmitted: false }),
                (1, PeerEventKind::Updated),
                (2, PeerEventKind::New { readmitted: false }),
                (2, explicit),
                (1, expired)
            ]
        );
    });
}

#[test]
fn a_full_store_refusal_is_silent() {
    let clock = clock();
    let store = PeerStore::builder()
        .max_peers(1)
        .clock(clock)
        .build()
        .unwrap();
    store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
    let events = store.subscribe();
    store.update(PeerInfo::new(key(2)), M::Lan).unwrap_err();
    assert!(events.try_recv().is_err());
}

#[test]
fn seq_is_strictly_increasing_and_gaps_show_what_a_late_subscriber_missed() {
    support::each_clock(|store| {
        let early = store.subscribe();
        for n in 0..5 {
            store.update(PeerInfo::new(key(n)), M::Lan).unwrap();
        }
        let late = store.subscribe();
        for n in 5..10 {
            store.update(PeerInfo::new(key(n)), M::Lan).unwrap();
        }
        let early: Vec<u64> = early.try_iter().map(|e| e.seq).collect();
        let late: Vec<u64> = late.try_iter().map(|e| e.seq).collect();
        assert_eq!(early.len(), 10);
        assert!(early.windows(2).all(|w| w[1] == w[0] + 1), "{early:?}");
        assert_eq!(late, early[5..]);
    });
}

#[test]
fn a_full_subscriber_loses_events_counts_them_and_never_blocks_the_store() {
    let clock = clock();
    let store = PeerStore::builder()
        .event_buffer(4)
        .clock(clock)
        .build()
        .unwrap();
    let slow = store.subscribe();
    let fast = store.subscribe();
    let mut fast_seen = Vec::new();
    for n in 0..10 {
        store.update(PeerInfo::new(key(n)), M::Lan).unwrap();
        fast_seen.extend(fast.try_iter().map(|e| e.seq));
    }
    assert_eq!(fast_seen.len(), 10);
    assert_eq!(slow.dropped(), 6);
    assert_eq!(fast.dropped(), 0);
    let kept: Vec<u64> = slow.try_iter().map(|e| e.seq).collect();
    assert_eq!(kept, fast_seen[..4], "the oldest events are the ones kept");
    let stats = store.stats();
    assert_eq!((stats.events_sent, stats.events_dropped), (14, 6));
}

#[test]
fn the_default_buffer_holds_sixteen_events() {
    support::each_clock(|store| {
        let events = store.subscribe();
        for n in 0..20 {
            store.update(PeerInfo::new(key(n)), M::Lan).unwrap();
        }
        assert_eq!(events.try_iter().count(), peerstore::EVENT_BUFFER_SIZE);
        assert_eq!(events.dropped(), 4);
    });
}

#[test]
fn dropping_a_subscription_unsubscribes_and_costs_nothing_after() {
    support::each_clock(|store| {
        let kept = store.subscribe();
        let gone = store.subscribe();
        assert_eq!(store.stats().subscribers, 2);
        drop(gone);
        assert_eq!(store.stats().subscribers, 1);
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        assert_eq!(store.stats().events_sent, 1);
        assert_eq!(kept.try_iter().count(), 1);
    });
}

#[test]
fn a_receiver_kept_past_its_subscription_hears_nothing_more() {
    support::each_clock(|store| {
        let events = store.subscribe();
        let receiver = events.receiver().clone();
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        drop(events);
        store.update(PeerInfo::new(key(2)), M::Lan).unwrap();
        assert_eq!(receiver.try_iter().count(), 1);
        assert_eq!(store.stats().subscribers, 0);
    });
}

#[test]
fn a_subscription_works_with_select() {
    support::each_clock(|store| {
        let a = store.subscribe();
        let b = store.subscribe();
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        let got: PeerEvent = crossbeam_channel::select! {
            recv(a.receiver()) -> e => e.unwrap(),
            recv(b.receiver()) -> e => e.unwrap(),
            default(DEADLINE) => panic!("no event"),
        };
        assert_eq!(got.public_key, key(1));
        // The other subscriber still holds its copy.
        assert_eq!(a.try_iter().count() + b.try_iter().count(), 1);
    });
}

#[test]
fn the_store_going_away_ends_recv() {
    support::each_clock(|store| {
        let events = store.subscribe();
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        drop(store);
        assert_eq!(
            events.recv().map(|e| e.kind),
            Ok(PeerEventKind::New { readmitted: false })
        );
        assert!(events.recv().is_err());
    });
}

#[test]
fn the_cleanup_thread_expires_peers_on_its_own() {
    support::each(|store, clock| {
        store.update(PeerInfo::new(key(1)), M::Lan).unwrap();
        let events = store.subscribe();
        let cleanup = store.spawn_cleanup(Duration::from_millis(1));
        clock.advance(secs(601));
        let event = events
            .recv_timeout(DEADLINE)
            .expect("the cleanup thread ran");
        assert_eq!(
            event.kind,
            PeerEventKind::Removed {
                cause: RemovalCause::Expired
            }
        );
        assert!(store.is_empty());
        cleanup.stop();
        assert_eq!(store.stats().expired, 1);
    });
}

/// Runs `f` on another thread and fails if it does not finish before the deadline.
fn finishes_promptly(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    finished
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} did not return promptly"));
}

#[test]
fn stopping_or_dropping_the_cleanup_handle_does_not_wait_for_the_interval() {
    support::each_clock(|store| {
        let hour = Duration::from_secs(3600);
        let handle = store.spawn_cleanup(hour);
        finishes_promptly("stop()", move || handle.stop());
        let handle = store.spawn_cleanup(hour);
        finishes_promptly("drop", move || drop(handle));
    });
}

#[test]
fn the_cleanup_thread_never_keeps_the_store_alive() {
    support::each_clock(|store| {
        let events = store.subscribe();
        let handle = store.spawn_cleanup(Duration::from_millis(1));
        drop(store);
        // Every sender lives in the store: the channel closes only once the store is gone.
        assert!(matches!(
            events.recv_timeout(DEADLINE),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        ));
        finishes_promptly("drop after the store is gone", move || drop(handle));
    });
}

/// The model found it: a cleanup that moved some endpoints (the resilient policy) and expired
/// other peers sent every `Updated` before every `Removed`, though it took their seqs in the
/// map's order, so a subscriber saw `seq` go back.
#[test]
fn one_cleanup_sends_its_events_in_seq_order() {
    support::each_shards(|shards| {
        let clock = clock();
        let store = support::builder(shards)
            .clock(clock.clone())
            .endpoint_policy(peerstore::EndpointPolicy::resilient())
            .event_buffer(256)
            .build()
            .unwrap();
        // Twenty peers that will expire, then twenty whose LAN endpoint will go stale.
        for n in 0..20 {
            store.update(at(n, "198.51.100.1:1"), M::Dht).unwrap();
        }
        clock.advance(secs(590));
        for n in 100..120 {
            store.update(at(n, "192.168.1.1:1"), M::Lan).unwrap();
            store.update(at(n, "198.51.100.2:1"), M::Dht).unwrap();
        }
        let events = store.subscribe();
        clock.advance(secs(31));
        assert_eq!(store.cleanup_stale().len(), 20);
        let got: Vec<PeerEvent> = events.try_iter().collect();
        assert_eq!(got.len(), 40, "20 removed, 20 moved");
        assert!(
            got.windows(2).all(|w| w[0].seq < w[1].seq),
            "seq order: {:?}",
            got.iter().map(|e| (e.seq, e.kind)).collect::<Vec<_>>()
        );
    });
}
