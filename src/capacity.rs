//! The peer cap: a counter of reserved slots that never passes the limit.
//!
//! A slot is reserved before a new record goes in and released only after a record came out,
//! so the count is never below what the map holds, and never above the cap. Checking the map's
//! length and then inserting lets racing inserts overshoot; adding first and rolling back on
//! overshoot makes a racing insert see a full store that is not full. Both were seen in stress
//! runs; the compare-and-swap loop has neither fault.

use crate::sync::{AtomicUsize, Ordering};

#[derive(Debug)]
pub(crate) struct Capacity {
    held: AtomicUsize,
    max: usize,
}

impl Capacity {
    pub(crate) fn new(max: usize) -> Self {
        Capacity {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot if one is free.
    pub(crate) fn try_reserve(&self) -> bool {
        let mut held = self.held.load(Ordering::Relaxed);
        loop {
            if held >= self.max {
                return false;
            }
            match self.held.compare_exchange_weak(
                held,
                held + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => held = actual,
            }
        }
    }

    /// Gives back a slot whose record has been removed (or was never inserted).
    pub(crate) fn release(&self) {
        self.release_many(1);
    }

    pub(crate) fn release_many(&self, n: usize) {
        if n > 0 {
            self.held.fetch_sub(n, Ordering::AcqRel);
        }
    }

    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}
