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

    // The eviction protocols below are small stand-ins of the store's, each beside the broken
    // variants it rules out (which must fail: `should_panic`), so that what each step of the
    // protocol buys is shown. The store's own code runs under loom in `store::eviction`'s
    // models, on its real maps (loom's under `--cfg loom`).

    /// A record's slot in the map, under its own lock as a map entry is: a second-hand peer,
    /// one heard first-hand, or none.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Slot {
        SecondHand,
        FirstHand,
        Empty,
    }

    /// How an evicting newcomer treats its victim and the victim's place under the cap.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Eviction {
        /// The store's: the victim is taken only if it is still second-hand, under its lock,
        /// and its slot under the cap passes to the newcomer without being released.
        HandOver,
        /// Broken: the slot is released and reserved again, so a racing insert can take it.
        ReleaseAndRetake,
        /// Broken: the victim is taken without looking at it under its lock.
        Blind,
    }

    /// The newcomer heard first-hand in a full store of cap 2 (peers A and B): it reserves,
    /// or evicts A if A is still second-hand, or, if A is gone (a removal freed its slot),
    /// reserves again. Whether it went in, and what it found in A if it evicted it.
    fn newcomer(
        cap: &Capacity,
        a: &loom::sync::Mutex<Slot>,
        eviction: Eviction,
    ) -> (bool, Option<Slot>) {
        if cap.try_reserve() {
            return (true, None);
        }
        let mut victim = a.lock().unwrap();
        let was = *victim;
        let evicts = match eviction {
            Eviction::Blind => true,
            _ => was == Slot::SecondHand,
        };
        if !evicts {
            drop(victim);
            return (cap.try_reserve(), None);
        }
        *victim = Slot::Empty;
        drop(victim);
        let admitted = match eviction {
            Eviction::ReleaseAndRetake => {
                cap.release();
                cap.try_reserve()
            }
            _ => true,
        };
        assert!(admitted, "an eviction admits its newcomer");
        (true, Some(was))
    }

    /// A store of cap 2 holding two second-hand peers, A and B. Racing: a newcomer heard
    /// first-hand, which evicts A; a removal of A (if `remove`); and a second-hand newcomer
    /// (which never evicts) or, if `third_updates`, an update that hears A first-hand. At the
    /// end the count is exactly the records held and a first-hand peer was never evicted.
    fn evict_at_the_cap(eviction: Eviction, third_updates: bool, remove: bool) {
        use loom::sync::Mutex;

        let cap = Arc::new(Capacity::new(2));
        assert!(cap.try_reserve() && cap.try_reserve());
        let a = Arc::new(Mutex::new(Slot::SecondHand));
        let evictor = {
            let (cap, a) = (Arc::clone(&cap), Arc::clone(&a));
            thread::spawn(move || newcomer(&cap, &a, eviction))
        };
        let third = {
            let (cap, a) = (Arc::clone(&cap), Arc::clone(&a));
            thread::spawn(move || {
                if third_updates {
                    let mut record = a.lock().unwrap();
                    if *record == Slot::SecondHand {
                        *record = Slot::FirstHand;
                    }
                    false
                } else {
                    cap.try_reserve()
                }
            })
        };
        // The removal of A, on this thread.
        if remove {
            let mut record = a.lock().unwrap();
            if *record != Slot::Empty {
                *record = Slot::Empty;
                drop(record);
                cap.release();
            }
        }
        let (first_in, victim_was) = evictor.join().expect("evictor");
        let second_in = third.join().expect("third");
        assert_ne!(
            victim_was,
            Some(Slot::FirstHand),
            "a first-hand peer was evicted"
        );
        assert_ne!(victim_was, Some(Slot::Empty), "a removed peer was evicted");
        let held = usize::from(*a.lock().unwrap() != Slot::Empty)
            + 1 // B
            + usize::from(first_in)
            + usize::from(second_in);
        assert_eq!(cap.held(), held, "the count is exactly the records held");
        assert!(held <= 2, "the cap of 2 holds");
    }

    #[test]
    fn an_eviction_hands_its_slot_over_and_the_cap_stays_exact() {
        loom::model(|| evict_at_the_cap(Eviction::HandOver, false, true));
        loom::model(|| evict_at_the_cap(Eviction::HandOver, true, true));
    }

    /// The model catches an eviction that frees the slot and reserves it again: a racing
    /// insert takes it, and the newcomer that evicted is refused.
    #[test]
    #[should_panic(expected = "an eviction admits its newcomer")]
    fn releasing_the_victims_slot_lets_a_racer_take_it() {
        loom::model(|| evict_at_the_cap(Eviction::ReleaseAndRetake, false, true));
    }

    /// The model catches an eviction that does not look at its victim under the victim's
    /// lock: it evicts a peer a removal already freed, or one heard first-hand.
    #[test]
    #[should_panic(expected = "a removed peer was evicted")]
    fn a_blind_eviction_evicts_a_removed_peer() {
        loom::model(|| evict_at_the_cap(Eviction::Blind, false, true));
    }

    #[test]
    #[should_panic(expected = "a first-hand peer was evicted")]
    fn a_blind_eviction_evicts_a_first_hand_peer() {
        loom::model(|| evict_at_the_cap(Eviction::Blind, true, false));
    }

    /// How two newcomers of one key make room in a full store.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum SameKey {
        /// The store's: the first to evict holds the key's claim; the other waits for it,
        /// and a newcomer that takes the claim looks again whether its peer went in meanwhile.
        Claim,
        /// Broken: each evicts for itself (the store before the claim).
        EachEvicts,
        /// Broken: a claim, but no second look after taking it.
        ClaimWithoutLooking,
    }

    /// One newcomer of peer K into a store of cap 2 holding second-hand peers A and B: the
    /// store's admission loop, as `store::merge::upsert` and `store::admission` run it.
    fn newcomer_of_k(
        cap: &Capacity,
        k: &loom::sync::Mutex<bool>,
        victims: &[loom::sync::Mutex<Slot>; 2],
        claim: &loom::sync::Mutex<bool>,
        protocol: SameKey,
    ) {
        let (mut evicted, mut holds) = (false, false);
        loop {
            {
                // The key's slot, under its lock: merged into the peer if it is in, else
                // admitted on a slot an eviction freed or one reserved now.
                let mut present = k.lock().unwrap();
                if *present {
                    if evicted {
                        cap.release();
                    }
                    break;
                }
                if evicted || cap.try_reserve() {
                    *present = true;
                    break;
                }
            }
            if protocol != SameKey::EachEvicts && !holds {
                let mut taken = claim.lock().unwrap();
                if *taken {
                    drop(taken);
                    thread::yield_now();
                    continue;
                }
                *taken = true;
                holds = true;
                drop(taken);
                if protocol == SameKey::Claim && *k.lock().unwrap() {
                    continue;
                }
            }
            let victim = victims.iter().find_map(|v| {
                let mut slot = v.lock().unwrap();
                (*slot == Slot::SecondHand).then(|| *slot = Slot::Empty)
            });
            if victim.is_none() {
                break;
            }
            evicted = true;
        }
        if holds {
            *claim.lock().unwrap() = false;
        }
    }

    /// Two newcomers of one key race into a full store: the peer goes in once, one peer is
    /// evicted for it, and the store ends at its cap.
    fn one_key_twice_at_the_cap(protocol: SameKey) {
        use loom::sync::Mutex;

        let cap = Arc::new(Capacity::new(2));
        assert!(cap.try_reserve() && cap.try_reserve());
        let k = Arc::new(Mutex::new(false));
        let victims = Arc::new([Mutex::new(Slot::SecondHand), Mutex::new(Slot::SecondHand)]);
        let claim = Arc::new(Mutex::new(false));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (cap, k) = (Arc::clone(&cap), Arc::clone(&k));
                let (victims, claim) = (Arc::clone(&victims), Arc::clone(&claim));
                thread::spawn(move || newcomer_of_k(&cap, &k, &victims, &claim, protocol))
            })
            .collect();
        for racer in racers {
            racer.join().expect("newcomer");
        }
        assert!(*k.lock().unwrap(), "the newcomer went in");
        let left = victims
            .iter()
            .filter(|v| *v.lock().unwrap() == Slot::SecondHand)
            .count();
        assert_eq!(left, 1, "one peer evicted for one newcomer");
        assert_eq!(cap.held(), 2, "the store ends at its cap");
    }

    #[test]
    fn one_newcomer_announced_twice_at_once_evicts_once() {
        loom::model(|| one_key_twice_at_the_cap(SameKey::Claim));
    }

    /// The model catches the store before the claim: both newcomers evict, one then finds
    /// the peer in and gives its slot back.
    #[test]
    #[should_panic(expected = "one peer evicted for one newcomer")]
    fn each_newcomer_evicting_for_itself_evicts_twice() {
        loom::model(|| one_key_twice_at_the_cap(SameKey::EachEvicts));
    }

    /// ... and a claim taken without a second look: the first newcomer went in and gave the
    /// claim back between the second's look and its claim.
    #[test]
    #[should_panic(expected = "one peer evicted for one newcomer")]
    fn a_claim_without_a_second_look_evicts_twice() {
        loom::model(|| one_key_twice_at_the_cap(SameKey::ClaimWithoutLooking));
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
