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

/// The reservation protocol under the loom model checker, which runs every interleaving of the
/// threads (and every outcome the memory orderings allow):
/// `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::Capacity;
    use crate::sync::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// Two threads race for the last free slot; `reserve` is the protocol under test.
    fn race_for_the_last_slot<C: Send + Sync + 'static>(
        cap: C,
        reserve: fn(&C) -> bool,
        held: fn(&C) -> usize,
    ) {
        let cap = Arc::new(cap);
        assert!(reserve(&cap));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let cap = Arc::clone(&cap);
                thread::spawn(move || reserve(&cap))
            })
            .collect();
        let wins = racers
            .into_iter()
            .map(|racer| racer.join().expect("racer"))
            .filter(|won| *won)
            .count();
        assert_eq!(wins, 1, "exactly one racer takes the last slot");
        assert_eq!(held(&cap), 2, "the cap of 2 holds");
    }

    #[test]
    fn racing_reservations_take_the_last_slot_exactly_once() {
        loom::model(|| {
            race_for_the_last_slot(Capacity::new(2), Capacity::try_reserve, Capacity::held)
        });
    }

    #[test]
    fn a_release_racing_a_reservation_never_passes_the_cap() {
        loom::model(|| {
            let cap = Arc::new(Capacity::new(1));
            assert!(cap.try_reserve());
            let releaser = {
                let cap = Arc::clone(&cap);
                thread::spawn(move || cap.release())
            };
            let won = cap.try_reserve();
            releaser.join().expect("releaser");
            assert!(cap.held() <= 1);
            assert_eq!(
                cap.held(),
                usize::from(won),
                "a slot is held only by a winner"
            );
        });
    }

    /// The protocol broken the obvious way: check the count, then add to it.
    struct CheckThenAdd {
        held: AtomicUsize,
        max: usize,
    }

    impl CheckThenAdd {
        fn try_reserve(&self) -> bool {
            if self.held.load(Ordering::Acquire) < self.max {
                self.held.fetch_add(1, Ordering::AcqRel);
                true
            } else {
                false
            }
        }

        fn held(&self) -> usize {
            self.held.load(Ordering::Acquire)
        }
    }

    /// The model is a real check: it finds the interleaving in which check-then-add lets both
    /// racers in.
    #[test]
    #[should_panic(expected = "exactly one racer")]
    fn check_then_add_lets_two_racers_in() {
        loom::model(|| {
            let cap = CheckThenAdd {
                held: AtomicUsize::new(0),
                max: 2,
            };
            race_for_the_last_slot(cap, CheckThenAdd::try_reserve, CheckThenAdd::held)
        });
    }
}
