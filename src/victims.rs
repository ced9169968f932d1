//! The order a full store evicts in: the peers that may be evicted, least recently heard
//! first, so that a newcomer finds its victim without a visit of the map.
//!
//! The order is kept lazily. A peer goes in when its record is made, with the time it was
//! heard then; an update that hears it again does not touch the order (the default path pays
//! nothing, and no update waits on the order's lock). The time an entry holds is therefore
//! never later than the peer's own, and the least entry is the victim only if its time is
//! still the peer's: otherwise the peer was heard since, and goes back in with its time now.
//! Since every other entry's time is at most its peer's, an entry whose time is its peer's
//! and is the least of all is the least recently heard peer of the order: the choice is
//! exact, and each look is O(log n). Entries of peers gone or no longer to be evicted drop out
//! when they come up, and when the order outgrows its bound it is rebuilt from the peers it
//! names (O(n), once every n insertions).
//!
//! The lock is never taken with a record locked: callers push after the record's lock is
//! released and look records up after they popped, so the only order between the two is
//! this lock first (a rebuild looks records up).

use std::collections::BTreeSet;
use std::sync::PoisonError;

use crate::sync::Mutex;

use crate::PublicKey;
use crate::clock::Nanos;

/// Peers that may be evicted, least recently heard first.
#[derive(Debug, Default)]
pub(crate) struct Victims {
    order: Mutex<BTreeSet<(Nanos, PublicKey)>>,
}

impl Victims {
    fn order(&self) -> impl std::ops::DerefMut<Target = BTreeSet<(Nanos, PublicKey)>> + '_ {
        // A panic elsewhere leaves the set whole: every change to it is one call.
        self.order.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `key`, heard at `heard_at`. Past `bound` entries the order is rebuilt from
    /// `current`, which says when each key still in the order was last heard (`None`: it is
    /// gone, or no longer to be evicted).
    pub(crate) fn push(
        &self,
        heard_at: Nanos,
        key: PublicKey,
        bound: usize,
        current: impl Fn(&PublicKey) -> Option<Nanos>,
    ) {
        let mut order = self.order();
        order.insert((heard_at, key));
        if order.len() > bound {
            let mut keys: Vec<PublicKey> = order.iter().map(|(_, key)| *key).collect();
            keys.sort_unstable();
            keys.dedup();
            *order = keys
                .into_iter()
                .filter_map(|key| Some((current(&key)?, key)))
                .collect();
        }
    }

    /// Takes the least recently heard entry out.
    pub(crate) fn pop(&self) -> Option<(Nanos, PublicKey)> {
        self.order().pop_first()
    }

    /// How many entries the order holds (some may be stale).
    pub(crate) fn len(&self) -> usize {
        self.order().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    #[test]
    fn the_least_recently_heard_comes_first_and_ties_go_by_key() {
        let victims = Victims::default();
        let none = |_: &PublicKey| None;
        victims.push(30, key(1), 100, none);
        victims.push(10, key(3), 100, none);
        victims.push(10, key(2), 100, none);
        assert_eq!(victims.pop(), Some((10, key(2))));
        assert_eq!(victims.pop(), Some((10, key(3))));
        assert_eq!(victims.pop(), Some((30, key(1))));
        assert_eq!(victims.pop(), None);
    }

    #[test]
    fn past_its_bound_the_order_is_rebuilt_from_the_peers_it_names() {
        let victims = Victims::default();
        // Key 1 was heard again at 50, key 2 is gone; key 3 pushed twice.
        let current = |key: &PublicKey| match key.as_bytes()[0] {
            1 => Some(50),
            3 => Some(7),
            _ => None,
        };
        victims.push(1, key(1), 3, current);
        victims.push(2, key(2), 3, current);
        victims.push(3, key(3), 3, current);
        assert_eq!(victims.len(), 3, "within the bound: as pushed");
        victims.push(7, key(3), 3, current);
        assert_eq!(victims.len(), 2, "rebuilt: one entry a key still there");
        assert_eq!(victims.pop(), Some((7, key(3))));
        assert_eq!(victims.pop(), Some((50, key(1))));
    }
}
