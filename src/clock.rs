//! Where the store gets the time: the system clocks in production, a [`ManualClock`] in tests.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A source of time. The store reads both clocks on every update: the monotonic one decides
/// expiry, the wall clock only stamps [`Peer::last_seen`](crate::Peer::last_seen) and ages the
/// times that announcements carry. A store on the [`SystemClock`] (the default) reads the
/// system's clocks without calling through this trait.
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
/// The monotonic clock is read as of the kernel's last tick (`CLOCK_MONOTONIC_COARSE` on
/// Linux: up to one tick behind, 1 to 10 ms depending on the kernel's `HZ`): a fraction of
/// what a precise reading costs, and the store reads it on every update. Expiry counts in
/// minutes, so a tick is far below what it can tell apart.
/// The `Instant`s it returns are never ahead of `Instant::now()`.
///
/// [`now_and_wall`](Clock::now_and_wall) adds to that reading the offset between the two
/// clocks, which it reads afresh once a second. The two clocks run at the same rate, so the
/// answer is the wall clock's to within a tick and never ahead of it, except for up to a
/// second after the wall clock is stepped.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        monotonic::instant(monotonic::nanos())
    }

    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn now_and_wall(&self) -> (Instant, SystemTime) {
        let nanos = monotonic::nanos();
        (monotonic::instant(nanos), wall_offset::wall_at(nanos))
    }
}

/// An instant on the store's timeline: nanoseconds since the store was built (below zero for
/// a time before it, such as a carried `last_seen`).
pub(crate) type Nanos = i64;

/// The store's view of its clock: nanoseconds since the store was built, and the wall time.
///
/// On the [`SystemClock`] it reads the coarse monotonic clock as an integer and never builds
/// an `Instant`, whose conversions to and from `Duration`s cost more than the reading. Any
/// other clock is asked through [`Clock`].
pub(crate) enum Timeline {
    /// The system's clocks; `origin` is `monotonic::nanos()` when the store was built.
    System { origin: Nanos },
    /// A clock the store was built with (a `ManualClock` in tests); `epoch` is its time when
    /// the store was built.
    Given {
        clock: Box<dyn Clock>,
        epoch: Instant,
    },
}

impl Timeline {
    /// A timeline starting now on `clock`, or on the [`SystemClock`] for `None`.
    pub(crate) fn starting_now(clock: Option<Box<dyn Clock>>) -> Self {
        match clock {
            None => Timeline::System {
                origin: monotonic::nanos(),
            },
            Some(clock) => Timeline::Given {
                epoch: clock.now(),
                clock,
            },
        }
    }

    /// Now on the timeline.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        match self {
            Timeline::System { origin } => monotonic::nanos().saturating_sub(*origin),
            Timeline::Given { clock, epoch } => since(clock.now(), *epoch),
        }
    }

    /// [`now`](Self::now) and the wall time, from one reading where the clock allows.
    // Always: the update path reads it on every first-hand announcement, and with more
    // callers across the crate the compiler stopped inlining it there (+33 instructions an
    // update, `examples/instructions.rs`).
    #[inline(always)]
    pub(crate) fn now_and_wall(&self) -> (Nanos, SystemTime) {
        match self {
            Timeline::System { origin } => {
                let nanos = monotonic::nanos();
                (nanos.saturating_sub(*origin), wall_offset::wall_at(nanos))
            }
            Timeline::Given { clock, epoch } => {
                let (now, wall) = clock.now_and_wall();
                (since(now, *epoch), wall)
            }
        }
    }

    /// The wall time, by the same rule as [`now_and_wall`](Self::now_and_wall)'s, so that a
    /// peer stamped by one and refreshed by the other never steps back.
    pub(crate) fn wall_now(&self) -> SystemTime {
        match self {
            Timeline::System { .. } => wall_offset::wall_at(monotonic::nanos()),
            Timeline::Given { clock, .. } => clock.wall_now(),
        }
    }
}

/// Nanoseconds from `epoch` to `now`, saturating (0 for a `now` before `epoch`).
fn since(now: Instant, epoch: Instant) -> Nanos {
    nanos_of(now.saturating_duration_since(epoch))
}

/// A span of time as nanoseconds on the timeline, saturating (about 292 years).
pub(crate) fn nanos_of(span: Duration) -> Nanos {
    Nanos::try_from(span.as_nanos()).unwrap_or(Nanos::MAX)
}

/// The monotonic clock as nanoseconds, as of the kernel's last tick where the system has such
/// a clock.
mod monotonic {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    #[cfg(target_os = "linux")]
    const NANOS_PER_SEC: i64 = 1_000_000_000;

    /// `CLOCK_MONOTONIC_COARSE`: the time of the kernel's last tick on the clock `Instant`
    /// reads.
    #[cfg(target_os = "linux")]
    pub(super) fn nanos() -> i64 {
        read(rustix::time::ClockId::MonotonicCoarse)
    }

    /// `CLOCK_MONOTONIC`, what `Instant::now()` reads on Linux.
    #[cfg(target_os = "linux")]
    pub(super) fn precise_nanos() -> i64 {
        read(rustix::time::ClockId::Monotonic)
    }

    #[cfg(target_os = "linux")]
    fn read(clock: rustix::time::ClockId) -> i64 {
        let t = rustix::time::clock_gettime(clock);
        t.tv_sec
            .saturating_mul(NANOS_PER_SEC)
            // `tv_nsec` is an `i32` on some 32-bit targets.
            .saturating_add(t.tv_nsec as i64)
    }

    /// Elsewhere: `Instant::now()` as nanoseconds since the first reading.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn nanos() -> i64 {
        static BASE: OnceLock<Instant> = OnceLock::new();
        let base = *BASE.get_or_init(Instant::now);
        i64::try_from(base.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn precise_nanos() -> i64 {
        nanos()
    }

    /// The `Instant` a reading of [`nanos`] stands for, placed by one pair of readings of
    /// `Instant::now()` and the precise clock taken together.
    pub(super) fn instant(nanos: i64) -> Instant {
        static ANCHOR: OnceLock<(Instant, i64)> = OnceLock::new();
        // The precise reading is taken second, so the anchor's `Instant` is not ahead of it,
        // and the coarse readings, never ahead of the precise clock, stay behind `Instant::now()`.
        let (at, precise) = *ANCHOR.get_or_init(|| (Instant::now(), precise_nanos()));
        let apart = Duration::from_nanos(nanos.abs_diff(precise));
        let instant = if nanos >= precise {
            at.checked_add(apart)
        } else {
            at.checked_sub(apart)
        };
        instant.unwrap_or(at)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn lags_the_precise_clock_by_at_most_a_tick() {
            let mut last = nanos();
            for _ in 0..1000 {
                let before = Instant::now();
                let now = nanos();
                let coarse = instant(now);
                let after = Instant::now();
                assert!(now >= last, "went back from {last} to {now}");
                assert!(coarse <= after, "{coarse:?} ahead of {after:?}");
                // A tick is at most 10 ms (HZ=100); the reading is at most one behind.
                let behind = before.saturating_duration_since(coarse);
                assert!(behind < Duration::from_millis(50), "{behind:?} behind");
                last = now;
            }
        }
    }
}

/// The wall clock as the monotonic clock plus an offset, refreshed once a second.
mod wall_offset {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::{Duration, SystemTime};

    /// How long an offset is trusted before it is read again, in nanoseconds.
    const REFRESH: i64 = 1_000_000_000;
    /// Marks "no offset yet, or one out of range".
    const NONE: i64 = i64::MIN;

    /// Wall-clock nanoseconds since the epoch minus [`super::monotonic::nanos`]: one word, so
    /// a reader never sees half of an update.
    static OFFSET: AtomicI64 = AtomicI64::new(NONE);
    /// When (on [`super::monotonic::nanos`]) `OFFSET` was read.
    static READ_AT: AtomicI64 = AtomicI64::new(NONE);

    /// The wall time at `mono`, a reading of [`super::monotonic::nanos`].
    pub(super) fn wall_at(mono: i64) -> SystemTime {
        let read_at = READ_AT.load(Ordering::Relaxed);
        let offset = OFFSET.load(Ordering::Relaxed);
        if offset == NONE || read_at == NONE || mono.saturating_sub(read_at) > REFRESH {
            return refresh(mono);
        }
        from_nanos(offset.saturating_add(mono)).unwrap_or_else(SystemTime::now)
    }

    /// Reads the wall clock and keeps the offset for the next second's readings.
    #[cold]
    fn refresh(mono: i64) -> SystemTime {
        let wall = SystemTime::now();
        // Against the precise monotonic clock, read after the wall clock: a coarse reading
        // (never ahead of the precise one) plus this offset is never ahead of the wall clock.
        let precise = super::monotonic::precise_nanos();
        let offset = to_nanos(wall)
            .and_then(|w| w.checked_sub(precise))
            .unwrap_or(NONE);
        // Racing refreshes each store an offset just read: any of them is right.
        OFFSET.store(offset, Ordering::Relaxed);
        READ_AT.store(mono, Ordering::Relaxed);
        if offset == NONE {
            return wall;
        }
        // This reading by the same rule as the next second's, so that they do not step back.
        from_nanos(offset.saturating_add(mono)).unwrap_or(wall)
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
        use super::super::monotonic;
        use super::*;

        #[test]
        fn follows_the_wall_clock() {
            for _ in 0..3 {
                let before = SystemTime::now();
                let derived = wall_at(monotonic::nanos());
                let after = SystemTime::now();
                // Never ahead of the wall clock; behind it by at most a tick of the coarse
                // clock (10 ms at HZ=100).
                assert!(derived <= after, "{derived:?} after {after:?}");
                let behind = before.duration_since(derived).unwrap_or_default();
                assert!(behind < Duration::from_millis(50), "{behind:?} behind");
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
    #[must_use]
    pub fn new() -> Self {
        ManualClock::starting_at(SystemTime::now())
    }

    /// A clock whose wall time starts at `wall`: for runs that must print the same each time.
    #[must_use]
    pub fn starting_at(wall: SystemTime) -> Self {
        ManualClock {
            times: Arc::new(Mutex::new((Instant::now(), wall))),
        }
    }

    /// Moves both clocks forward by `by`. Saturates: a clock moved past the latest time its
    /// type can hold stops there (to the nanosecond) instead of panicking, so a test can
    /// advance by `Duration::MAX` to mean "forever after".
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerstore::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::MAX);
    /// let end = clock.now();
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.now(), end, "saturated");
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut times = self.lock();
        times.0 = saturating_add(times.0, by, Instant::checked_add);
        times.1 = saturating_add(times.1, by, SystemTime::checked_add);
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

/// `start + by`, or the latest time `start` can be moved to when that is past what its type
/// holds (how far that is depends on the platform, hence the search).
fn saturating_add<T: Copy>(
    start: T,
    by: Duration,
    checked_add: impl Fn(&T, Duration) -> Option<T>,
) -> T {
    if let Some(t) = checked_add(&start, by) {
        return t;
    }
    // By bisection, the longest span that still fits, to the nanosecond.
    let (mut fits, mut too_far) = (Duration::ZERO, by);
    while too_far - fits > Duration::from_nanos(1) {
        let mid = fits + (too_far - fits) / 2;
        if checked_add(&start, mid).is_some() {
            fits = mid;
        } else {
            too_far = mid;
        }
    }
    checked_add(&start, fits).unwrap_or(start)
}

#[cfg(test)]
mod manual_tests {
    use super::*;

    /// `ManualClock::advance(Duration::MAX)` panicked.
    #[test]
    fn a_manual_clock_advanced_past_the_end_of_time_saturates() {
        let clock = ManualClock::new();
        let (t0, w0) = (clock.now(), clock.wall_now());
        clock.advance(Duration::MAX);
        let (t1, w1) = (clock.now(), clock.wall_now());
        assert!(t1 > t0 && w1 > w0);
        assert!(
            t1.checked_add(Duration::from_nanos(1)).is_none(),
            "as far as it goes"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!((clock.now(), clock.wall_now()), (t1, w1));
        // A store on such a clock still answers.
        let store = crate::PeerStore::builder()
            .clock(clock.clone())
            .build()
            .unwrap();
        assert!(store.get_active().is_empty());
    }
}
