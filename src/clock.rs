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

    /// Both at once, for a caller that needs both: a clock may answer this with one reading
    /// (the store asks it on every update that stamps `last_seen`).
    fn now_and_wall(&self) -> (Instant, SystemTime) {
        (self.now(), self.wall_now())
    }
}

/// The operating system's clocks. The default.
///
/// [`now_and_wall`](Clock::now_and_wall) reads the monotonic clock only and adds the offset
/// between the two clocks, which it reads afresh once a second: reading a clock was the
/// largest single cost of an update. The two clocks run at the same rate, so the answer is the
/// wall clock's, except for up to a second after the wall clock is stepped.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn now_and_wall(&self) -> (Instant, SystemTime) {
        let now = Instant::now();
        (now, wall_offset::wall_at(now))
    }
}

/// The wall clock as the monotonic clock plus an offset, refreshed once a second.
mod wall_offset {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::{Duration, Instant, SystemTime};

    /// How long an offset is trusted before it is read again.
    const REFRESH: Duration = Duration::from_secs(1);
    /// Marks "no offset yet, or one out of range".
    const NONE: i64 = i64::MIN;

    /// The monotonic clock's origin for this process.
    static BASE: OnceLock<Instant> = OnceLock::new();
    /// Wall-clock nanoseconds since the epoch minus monotonic nanoseconds since `BASE`: one
    /// word, so a reader never sees half of an update.
    static OFFSET: AtomicI64 = AtomicI64::new(NONE);
    /// When (monotonic nanoseconds since `BASE`) `OFFSET` was read.
    static READ_AT: AtomicI64 = AtomicI64::new(NONE);

    pub(super) fn wall_at(now: Instant) -> SystemTime {
        let base = *BASE.get_or_init(|| now);
        let Ok(mono) = i64::try_from(now.saturating_duration_since(base).as_nanos()) else {
            return SystemTime::now();
        };
        let read_at = READ_AT.load(Ordering::Relaxed);
        let offset = OFFSET.load(Ordering::Relaxed);
        if offset == NONE || read_at == NONE || mono.saturating_sub(read_at) > nanos(REFRESH) {
            return refresh(mono);
        }
        from_nanos(offset.saturating_add(mono)).unwrap_or_else(SystemTime::now)
    }

    /// Reads the wall clock and keeps the offset for the next second's readings.
    #[cold]
    fn refresh(mono: i64) -> SystemTime {
        let wall = SystemTime::now();
        let offset = to_nanos(wall)
            .and_then(|w| w.checked_sub(mono))
            .unwrap_or(NONE);
        // Racing refreshes each store an offset just read: any of them is right.
        OFFSET.store(offset, Ordering::Relaxed);
        READ_AT.store(mono, Ordering::Relaxed);
        wall
    }

    fn nanos(span: Duration) -> i64 {
        i64::try_from(span.as_nanos()).unwrap_or(i64::MAX)
    }

    /// Signed nanoseconds since the epoch, if they fit (about 292 years either way).
    fn to_nanos(wall: SystemTime) -> Option<i64> {
        match wall.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos()).ok(),
            Err(before) => i64::try_from(before.duration().as_nanos()).ok().map(|n| -n),
        }
    }

    fn from_nanos(n: i64) -> Option<SystemTime> {
        let span = Duration::from_nanos(n.unsigned_abs());
        if n >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(span)
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(span)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn follows_the_wall_clock() {
            for _ in 0..3 {
                let before = SystemTime::now();
                let derived = wall_at(Instant::now());
                let after = SystemTime::now();
                // Within the clocks' rate difference over one refresh period.
                let slack = Duration::from_millis(5);
                assert!(derived + slack >= before, "{derived:?} before {before:?}");
                assert!(derived <= after + slack, "{derived:?} after {after:?}");
            }
        }

        #[test]
        fn nanos_round_trip_on_both_sides_of_the_epoch() {
            for n in [0, 1, -1, 1_763_800_000_000_000_000, -86_400_000_000_000] {
                assert_eq!(from_nanos(n).and_then(to_nanos), Some(n));
            }
        }
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
