//! The background thread that drops peers silent for too long.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::PeerStore;

/// The cleanup thread started by [`PeerStore::spawn_cleanup`]. Stopping or dropping it stops
/// the thread at once (not at its next run) and waits for it.
#[derive(Debug)]
#[must_use = "dropping the handle stops the cleanup thread at once"]
pub struct CleanupHandle {
    /// Never sent on: dropping it wakes the thread and tells it to stop.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The shortest interval the cleanup thread accepts: a zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl PeerStore {
    /// Runs [`cleanup_stale`](PeerStore::cleanup_stale) on a thread of its own every `every`
    /// ([`CLEANUP_INTERVAL`](crate::CLEANUP_INTERVAL) in production; at least 1 ms). The
    /// thread holds no strong handle between runs, so it never keeps the store alive; it ends
    /// when the handle is stopped or dropped, or when the store is gone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerstore::{PeerStore, CLEANUP_INTERVAL};
    ///
    /// let store = PeerStore::new();
    /// let cleanup = store.spawn_cleanup(CLEANUP_INTERVAL);
    /// cleanup.stop(); // returns at once, not after a minute
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn spawn_cleanup(&self, every: Duration) -> CleanupHandle {
        let every = every.max(MIN_INTERVAL);
        let store = self.downgrade();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("peerstore-cleanup".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let Some(store) = store.upgrade() else { return };
                    let _expired = store.cleanup_stale();
                }
            })
            .expect("the operating system refused to start the peerstore cleanup thread");
        CleanupHandle {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl CleanupHandle {
    /// Stops the thread and waits for it to finish its current run, if any.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // Joining itself would deadlock; the thread ends on its own once woken.
            if thread.thread().id() != thread::current().id() {
                // A panic in the thread was already reported by the default hook.
                let _ = thread.join();
            }
        }
    }
}

impl Drop for CleanupHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}
