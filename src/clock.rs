//! Where the store gets the time: the system clocks in production, a [`ManualClock`] in tests.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A source of time. The store reads both clocks on every update: the monotonic one decides
/// expiry, the wall clock only stamps [`Peer::last_seen`](crate::Peer::last_seen) and ages the
/// times that announcements carry.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time: never goes back, never jumps with NTP.
    fn now(&self) -> Instant;
    /// Wall-clock time: may jump either way.
    fn wall_now(&self) -> SystemTime;
}

/// The operating system's clocks. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for tests and replays. Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use peerstore::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let (t0, w0) = (clock.now(), clock.wall_now());
/// clock.advance(Duration::from_secs(301));
/// assert_eq!(clock.now() - t0, Duration::from_secs(301));
/// assert_eq!(clock.wall_now().duration_since(w0).unwrap(), Duration::from_secs(301));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    times: Arc<Mutex<(Instant, SystemTime)>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl ManualClock {
    /// A clock stopped at the present moment.
    pub fn new() -> Self {
        ManualClock::starting_at(SystemTime::now())
    }

    /// A clock whose wall time starts at `wall`: for runs that must print the same each time.
    pub fn starting_at(wall: SystemTime) -> Self {
        ManualClock {
            times: Arc::new(Mutex::new((Instant::now(), wall))),
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut times = self.lock();
        times.0 += by;
        times.1 += by;
    }

    /// Sets the wall clock alone, as NTP or an operator would; the monotonic clock stays.
    pub fn set_wall(&self, wall: SystemTime) {
        self.lock().1 = wall;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Instant, SystemTime)> {
        // The critical sections cannot panic, so a poisoned lock still holds a whole value.
        self.times.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.lock().0
    }

    fn wall_now(&self) -> SystemTime {
        self.lock().1
    }
}
