//! A peer's endpoint changes, kept in a bounded ring when the store is built with
//! [`endpoint_history`](crate::PeerStoreBuilder::endpoint_history): the one way to see, inside
//! the process, why a peer's endpoint moved and whether it flaps.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::clock::Nanos;
use crate::method::MethodName;
use crate::method_set::{built_in_code, built_in_method};
use crate::{DiscoveryMethod, EndpointRule};

/// The most entries a peer's history may keep.
pub const MAX_ENDPOINT_HISTORY: usize = 256;

/// One change of a peer's endpoint ([`PeerStore::endpoint_history`](crate::PeerStore::endpoint_history)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EndpointChange {
    /// The [`PeerEvent::seq`](crate::PeerEvent::seq) of the `Updated` event that announced it.
    pub seq: u64,
    /// When, on the store's monotonic clock: the time since the store was built.
    pub at: Duration,
    /// When, on the wall clock.
    pub wall: SystemTime,
    /// The endpoint before, if the peer had one.
    pub from: Option<SocketAddr>,
    /// The endpoint after.
    pub to: SocketAddr,
    /// The method it counts as set by.
    pub method: DiscoveryMethod,
    /// The rule that decided.
    pub rule: EndpointRule,
    /// Whether it went back to the endpoint the previous change left, within the store's
    /// `dead_after` of it (A → B → A): a flap, as [`Stats::endpoint_flaps`](crate::Stats::endpoint_flaps)
    /// counts them.
    pub flap: bool,
}

/// A peer's last changes, oldest first, at most `cap` of them; nothing allocated until the
/// first is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History(Option<Box<Ring>>);

/// The kept changes, each in 88 bytes where an [`EndpointChange`] takes 136: its time on the
/// timeline as nanoseconds, its method as a built-in code or an `Other` name, and its `from`
/// left out when it is the `to` of the change before, as it is for every change but the
/// oldest kept (and any that followed a move the history did not see).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ring {
    entries: VecDeque<Entry>,
    /// The oldest entry's `from`.
    oldest_from: Option<SocketAddr>,
    /// The `from` of each entry but the oldest that is `detached`, in the ring's order.
    detached: VecDeque<Option<SocketAddr>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    seq: u64,
    /// Nanoseconds on the store's timeline (an [`EndpointChange::at`] is built from them).
    at: u64,
    wall: SystemTime,
    to: SocketAddr,
    /// The method's name if it is an `Other`; else `built_in` says which.
    other: Option<MethodName>,
    /// A built-in method's [`built_in_code`]; unused for an `Other` name.
    built_in: u8,
    rule: EndpointRule,
    flap: bool,
    /// Whether `from` is in [`Ring::detached`] rather than the `to` of the entry before.
    detached: bool,
}

impl Entry {
    fn method(&self) -> DiscoveryMethod {
        match &self.other {
            Some(name) => DiscoveryMethod::Other(name.clone()),
            None => built_in_method(self.built_in).clone(),
        }
    }
}

impl Ring {
    /// The newest entry's `from`.
    fn newest_from(&self) -> Option<SocketAddr> {
        match self.entries.len() {
            0 | 1 => self.oldest_from,
            n if self.entries[n - 1].detached => self.detached.back().copied().flatten(),
            n => Some(self.entries[n - 2].to),
        }
    }

    /// Drops the oldest entry; the next one's `from` becomes the oldest's.
    fn pop_oldest(&mut self) {
        let Some(oldest) = self.entries.pop_front() else {
            return;
        };
        if let Some(next) = self.entries.front_mut() {
            self.oldest_from = if next.detached {
                next.detached = false;
                self.detached.pop_front().flatten()
            } else {
                Some(oldest.to)
            };
        }
    }

    fn push(&mut self, change: EndpointChange) {
        let from = change.from;
        let detached = match self.entries.back() {
            None => {
                self.oldest_from = from;
                false
            }
            Some(last) if from == Some(last.to) => false,
            Some(_) => {
                self.detached.push_back(from);
                true
            }
        };
        let (other, built_in) = match change.method {
            DiscoveryMethod::Other(name) => (Some(name), 0),
            method => (None, built_in_code(&method).unwrap_or(0)),
        };
        self.entries.push_back(Entry {
            seq: change.seq,
            at: u64::try_from(change.at.as_nanos()).unwrap_or(u64::MAX),
            wall: change.wall,
            to: change.to,
            other,
            built_in,
            rule: change.rule,
            flap: change.flap,
            detached,
        });
    }

    fn to_vec(&self) -> Vec<EndpointChange> {
        let mut detached = self.detached.iter().copied();
        let mut before: Option<&Entry> = None;
        let mut out = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let from = match before {
                None => self.oldest_from,
                Some(_) if entry.detached => detached.next().flatten(),
                Some(before) => Some(before.to),
            };
            out.push(EndpointChange {
                seq: entry.seq,
                at: Duration::from_nanos(entry.at),
                wall: entry.wall,
                from,
                to: entry.to,
                method: entry.method(),
                rule: entry.rule,
                flap: entry.flap,
            });
            before = Some(entry);
        }
        out
    }
}

impl History {
    /// Records `change`, dropping the oldest past `cap`; whether it is a flap (and so marked):
    /// back to the endpoint the previous change left, within `window` of it (A → B → A).
    pub(crate) fn record(
        &mut self,
        mut change: EndpointChange,
        cap: usize,
        window: Duration,
    ) -> bool {
        let flap = self.0.as_deref().is_some_and(|ring| {
            ring.entries.back().is_some_and(|last| {
                ring.newest_from() == Some(change.to)
                    && change.from == Some(last.to)
                    && change.at.saturating_sub(Duration::from_nanos(last.at)) <= window
            })
        });
        change.flap = flap;
        if cap > 0 {
            let ring = self.0.get_or_insert_with(Box::default);
            while ring.entries.len() >= cap {
                ring.pop_oldest();
            }
            ring.push(change);
        }
        flap
    }

    pub(crate) fn to_vec(&self) -> Vec<EndpointChange> {
        self.0.as_deref().map(Ring::to_vec).unwrap_or_default()
    }
}

/// `Nanos` on the store's timeline as a `Duration` (0 before the store was built).
pub(crate) fn since_start(now: Nanos) -> Duration {
    Duration::from_nanos(u64::try_from(now).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at: u64, from: Option<&str>, to: &str) -> EndpointChange {
        EndpointChange {
            seq: at,
            at: Duration::from_secs(at),
            wall: SystemTime::UNIX_EPOCH,
            from: from.map(|f| f.parse().unwrap()),
            to: to.parse().unwrap(),
            method: DiscoveryMethod::Dht,
            rule: EndpointRule::Newer,
            flap: false,
        }
    }

    /// The ring as a plain list of whole changes: what [`History`] must keep and say.
    #[derive(Default)]
    struct Plain(VecDeque<EndpointChange>);

    impl Plain {
        fn record(&mut self, mut change: EndpointChange, cap: usize, window: Duration) -> bool {
            let flap = self.0.back().is_some_and(|last| {
                last.from == Some(change.to)
                    && change.from == Some(last.to)
                    && change.at.saturating_sub(last.at) <= window
            });
            change.flap = flap;
            if cap > 0 {
                while self.0.len() >= cap {
                    self.0.pop_front();
                }
                self.0.push_back(change);
            }
            flap
        }
    }

    proptest::proptest! {
        // Miri runs a few cases: what it checks is the memory the ring's code touches.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]
        /// Whatever the changes (a `from` that is not the last `to`, no `from`, any method,
        /// times out of order) and the cap, the compact ring says what a list of whole changes
        /// says, flaps included.
        #[test]
        fn the_compact_ring_keeps_every_change_as_it_was_recorded(
            cap in 0usize..5,
            window in 0u64..30,
            steps in proptest::collection::vec((0u8..8, 0u8..4, 0u8..9, 0u64..20), 0..40),
        ) {
            let addr = |i: u8| -> SocketAddr { format!("192.0.2.{i}:1").parse().unwrap() };
            let window = Duration::from_secs(window);
            let (mut compact, mut plain) = (History::default(), Plain::default());
            let (mut last_to, mut at) = (None, 0u64);
            for (seq, (from, to, method, dt)) in steps.into_iter().enumerate() {
                at = if dt == 0 { at.saturating_sub(5) } else { at + dt };
                // Mostly the endpoint the change before left, as the store records them.
                let from = match from {
                    0 => None,
                    1 => Some(addr(9)),
                    2 => Some(addr(to)),
                    _ => last_to,
                };
                let method = match method {
                    0 => DiscoveryMethod::other("mdns").unwrap(),
                    1 => DiscoveryMethod::other("static").unwrap(),
                    m => DiscoveryMethod::BUILT_IN[usize::from(m - 2)].clone(),
                };
                let change = EndpointChange {
                    seq: seq as u64,
                    at: Duration::from_nanos(at * 1_000_000_007),
                    wall: SystemTime::UNIX_EPOCH + Duration::from_nanos(at * 13),
                    from,
                    to: addr(to),
                    method,
                    rule: EndpointRule::Newer,
                    flap: false,
                };
                last_to = Some(change.to);
                proptest::prop_assert_eq!(
                    compact.record(change.clone(), cap, window),
                    plain.record(change, cap, window)
                );
                proptest::prop_assert_eq!(compact.to_vec(), Vec::from(plain.0.clone()));
            }
        }
    }

    #[test]
    fn an_entry_is_a_third_smaller_than_a_change_and_an_empty_history_one_pointer() {
        assert!(
            std::mem::size_of::<Entry>() <= 88,
            "{}",
            std::mem::size_of::<Entry>()
        );
        assert!(std::mem::size_of::<EndpointChange>() >= 128);
        assert_eq!(std::mem::size_of::<History>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn a_flap_is_a_return_within_the_window_and_the_ring_is_bounded() {
        let (a, b, c) = ("192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1");
        let window = Duration::from_secs(60);
        let mut history = History::default();
        assert!(!history.record(change(0, None, a), 2, window));
        assert!(!history.record(change(10, Some(a), b), 2, window));
        assert!(
            history.record(change(20, Some(b), a), 2, window),
            "A -> B -> A"
        );
        assert!(
            !history.record(change(30, Some(a), c), 2, window),
            "A -> C is no flap"
        );
        assert!(
            !history.record(change(200, Some(c), a), 2, window),
            "back, but too late"
        );
        let kept: Vec<(u64, bool)> = history.to_vec().iter().map(|c| (c.seq, c.flap)).collect();
        assert_eq!(kept, [(30, false), (200, false)], "the oldest dropped");
        assert!(history.record(change(210, Some(a), c), 2, window));
        assert!(history.to_vec()[1].flap, "marked as it is counted");
    }
}
