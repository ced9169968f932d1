//! The stale yardstick: how long a peer was active on an endpoint that nothing vouched for,
//! judged the same way whichever policy the store ran, so that the policies can be compared
//! (`--compare`).
//!
//! It judges by the resilient policy's own freshness rule, as the library applies it: a
//! shadow store, under [`EndpointPolicy::resilient`] and otherwise the replay's settings,
//! hears every line the replay's store hears, and an endpoint the replay's store holds is
//! fresh while the shadow keeps it as a candidate that is fresh ([`Candidate::fresh`]). The
//! seed's store keeps no candidates, nor any evidence; the shadow keeps them for it. Between
//! two lines a candidate's freshness changes only at the peer's earliest
//! [`Candidate::fresh_until`]: the yardstick looks again then.
//!
//! [`Candidate::fresh`]: peerstore::Candidate::fresh
//! [`Candidate::fresh_until`]: peerstore::Candidate::fresh_until

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use peerstore::{EndpointPolicy, ManualClock, PeerStore, PublicKey};

use crate::play::{self, Played};
use crate::settings::Settings;
use crate::trace::{self, Step};

/// The shadow store and when each peer is to be looked at again.
pub struct Yardstick {
    shadow: PeerStore,
    clock: ManualClock,
    /// The shadow's time, on the trace.
    now: Duration,
    played: Played,
    /// The peers to look at again, and when: a candidate's freshness changes then.
    due: BTreeSet<(Duration, PublicKey)>,
    /// Each peer's entry in `due`.
    next: HashMap<PublicKey, Duration>,
}

impl Yardstick {
    /// A shadow of a replay under `settings`.
    pub fn new(settings: &Settings) -> Self {
        let clock = ManualClock::starting_at(trace::trace_start());
        let mut shadow = settings.store.clone();
        shadow.endpoint_policy = EndpointPolicy::resilient();
        let shadow = PeerStore::builder()
            .settings(shadow)
            .clock(clock.clone())
            .build()
            .expect("the replay's settings, checked, with the resilient policy's defaults");
        Yardstick {
            shadow,
            clock,
            now: Duration::ZERO,
            played: settings.played(),
            due: BTreeSet::new(),
            next: HashMap::new(),
        }
    }

    /// Moves the shadow's clock to `at` on the trace (never back).
    pub fn advance_to(&mut self, at: Duration) {
        if at > self.now {
            self.clock.advance(at - self.now);
            self.now = at;
        }
    }

    /// The shadow hears `step`, at the time it was moved to.
    pub fn play(&mut self, step: &Step) {
        play::apply(&self.shadow, step, self.played);
    }

    /// The next peer due before `before`, and when, with the shadow's clock moved there: the
    /// caller counts its stale time up to then and judges it again.
    pub fn pop_due(&mut self, before: Duration) -> Option<(Duration, PublicKey)> {
        let first = *self.due.first()?;
        if first.0 >= before {
            return None;
        }
        self.due.remove(&first);
        self.next.remove(&first.1);
        self.advance_to(first.0);
        Some(first)
    }

    /// Whether `endpoint` (the one the replay's store holds for `key`, if any) is fresh now,
    /// by the rule; the peer is looked at again when that may change.
    pub fn judge(&mut self, key: PublicKey, endpoint: Option<SocketAddr>) -> bool {
        if let Some(at) = self.next.remove(&key) {
            self.due.remove(&(at, key));
        }
        let candidates = self.shadow.candidates(&key);
        let start = trace::trace_start();
        let next = candidates
            .iter()
            .filter_map(|c| c.fresh_until?.duration_since(start).ok())
            .filter(|at| *at > self.now)
            .min();
        if let Some(at) = next {
            self.due.insert((at, key));
            self.next.insert(key, at);
        }
        endpoint.is_some_and(|e| candidates.iter().any(|c| c.endpoint == e && c.fresh))
    }
}
