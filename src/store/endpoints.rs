//! The opt-in endpoint state, a peer at a time, beside the records: the resilient policy's
//! candidates and the history of endpoint changes. Under the defaults there is none and this
//! room costs nothing but a branch.
//!
//! The state sits in a map of its own, locked only while its peer's record is locked (record
//! first), or alone for a read, so the two maps never wait on each other in a cycle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::keymap::RefMut;

use super::{Inner, Record, Settings};
use crate::clock::Nanos;
use crate::events::PeerEventKind;
use crate::history::{EndpointChange, History, since_start};
use crate::keymap::{KeyMap, key_map};
use crate::peer::{canonical_endpoint, check_endpoint};
use crate::policy::resilient::{Candidates, Context};
use crate::policy::{EndpointChoice, Resilient, Sighting, first_heard};
use crate::stats::Counter;
use crate::{Candidate, DiscoveryMethod, Evidence, Peer, PeerInfo, PublicKey, ResilientPolicy};

/// The endpoint room's state.
pub(super) struct Endpoints {
    /// `None` under the defaults, which then keep nothing a peer.
    extras: Option<KeyMap<Extra>>,
}

impl Endpoints {
    pub(super) fn new(settings: &Settings, shards: Option<usize>) -> Self {
        let kept = settings.endpoint_policy.as_resilient().is_some()
            || settings.endpoint_history.is_some();
        Endpoints {
            extras: kept.then(|| key_map(shards)),
        }
    }
}

/// A peer's state that only the opt-in endpoint policies need.
#[derive(Debug, Default)]
pub(super) struct Extra {
    /// The resilient endpoint policy's candidates; `None` under the ranked policy.
    candidates: Option<Candidates>,
    /// The last endpoint changes, when the store keeps a history.
    history: History,
}

impl Inner {
    fn resilient(&self) -> Option<&ResilientPolicy> {
        self.settings.endpoint_policy.as_resilient()
    }

    /// The resilient policy's view of now.
    fn context<'p>(&self, policy: &'p ResilientPolicy, now: Nanos) -> Context<'p> {
        Context {
            policy,
            now,
            dead_after: self.dead_after,
        }
    }

    /// A peer's opt-in endpoint state, locked; `None` under the defaults. Called with the
    /// peer's record locked.
    pub(super) fn endpoint_state(&self, key: &PublicKey) -> Option<RefMut<'_, Extra>> {
        self.endpoints.extras.as_ref()?.get_mut(key)
    }

    /// Starts a new peer's opt-in state, under its record's lock so the two are never seen
    /// apart: its first candidate is its first endpoint, reported by `method`.
    pub(super) fn start_endpoints(
        &self,
        key: PublicKey,
        peer: &Peer,
        method: Option<DiscoveryMethod>,
        heard: Sighting,
    ) {
        let Some(extras) = &self.endpoints.extras else {
            return;
        };
        let candidates = method.map(|method| match (peer.endpoint, self.resilient()) {
            (Some(endpoint), Some(policy)) => {
                let cx = self.context(policy, heard.at);
                Candidates::first(endpoint, &method, heard.at, heard.wall, &cx)
            }
            _ => Candidates::default(),
        });
        let history = History::default();
        extras.insert(
            key,
            Extra {
                candidates,
                history,
            },
        );
    }

    /// The method a new peer's first candidate is reported by: under the resilient policy
    /// only.
    pub(super) fn first_candidate_method(
        &self,
        method: &DiscoveryMethod,
    ) -> Option<DiscoveryMethod> {
        self.resilient().map(|_| method.clone())
    }

    /// Drops a removed peer's opt-in state, under its record's lock: a new record of the same
    /// key must not lose its fresh state to this removal.
    pub(super) fn forget_endpoints(&self, key: &PublicKey) {
        if let Some(extras) = &self.endpoints.extras {
            extras.remove(key);
        }
    }

    /// Tells a known peer's candidates of an announcement: the resilient policy, which then
    /// chooses its endpoint; `None` (the ranked rules choose) when it keeps no candidates.
    // Kept out of the merge, so that the default path stays as small as it was.
    #[inline(never)]
    pub(super) fn tell_candidates<'a>(
        &'a self,
        extra: &'a mut Extra,
        record: &Record,
        info: &PeerInfo,
        method: &DiscoveryMethod,
        now: Nanos,
        wall: impl FnOnce() -> SystemTime,
    ) -> Option<Resilient<'a>> {
        let (Some(policy), Some(candidates)) = (self.resilient(), extra.candidates.as_mut()) else {
            return None;
        };
        let cx = self.context(policy, now);
        if let Some(endpoint) = info.endpoint {
            let reported = first_heard(method, info.last_seen, now, wall());
            let in_use = record.peer.endpoint;
            let (at, wall) = (reported.at, reported.wall);
            let heard_by = &record.peer.discovered_via;
            candidates.report(endpoint, method, at, wall, &cx, in_use, heard_by);
        }
        Some(Resilient(candidates, cx))
    }

    /// Under the resilient policy, chooses the record's endpoint again (candidates age, trust
    /// runs out, a failure voids reports) and applies the choice; the seq of the `Updated`
    /// event the change needs, taken under the record's lock, if the endpoint changed.
    pub(super) fn rechoose(&self, key: &PublicKey, record: &mut Record, now: Nanos) -> Option<u64> {
        let policy = self.resilient()?;
        // The record's lock is held by the caller: the extra state's may be taken.
        let mut extra = self.endpoint_state(key)?;
        let current = record.peer.current_endpoint();
        let choice = extra
            .candidates
            .as_ref()?
            .choose(&self.context(policy, now), current)?;
        let from = record.peer.endpoint;
        let moved = (from != Some(choice.endpoint)).then(|| choice.clone());
        choice.apply(Arc::make_mut(&mut record.peer));
        let seq = self.next_seq();
        if let Some(moved) = moved {
            let wall = self.timeline.wall_now();
            self.endpoint_moved(Some(&mut extra), from, moved, seq, now, wall);
        }
        Some(seq)
    }

    /// Counts a change of a peer's endpoint address and writes it to its history, if kept.
    pub(super) fn endpoint_moved(
        &self,
        extra: Option<&mut Extra>,
        from: Option<SocketAddr>,
        moved: EndpointChoice,
        seq: u64,
        now: Nanos,
        wall: SystemTime,
    ) {
        self.count_endpoint_move();
        let Some(extra) = extra else {
            return;
        };
        let change = EndpointChange {
            seq,
            at: since_start(now),
            wall,
            from,
            to: moved.endpoint,
            method: moved.method,
            rule: moved.rule,
            flap: false,
        };
        let entries = self.settings.endpoint_history.unwrap_or(0);
        if extra
            .history
            .record(change, entries, self.settings.dead_after)
        {
            self.counters.add(Counter::EndpointFlaps, 1);
        }
    }

    /// Counts a change of a peer's endpoint address.
    pub(super) fn count_endpoint_move(&self) {
        self.counters.add(Counter::EndpointChanges, 1);
    }

    /// A peer's candidates as they stand at `now`.
    pub(super) fn candidates(&self, key: &PublicKey, now: Nanos) -> Vec<Candidate> {
        let Some(policy) = self.resilient() else {
            return Vec::new();
        };
        let extra = self.endpoints.extras.as_ref().and_then(|m| m.get(key));
        extra
            .and_then(|e| Some(e.candidates.as_ref()?.to_public(&self.context(policy, now))))
            .unwrap_or_default()
    }

    /// A peer's endpoint history, oldest first.
    pub(super) fn endpoint_history(&self, key: &PublicKey) -> Vec<EndpointChange> {
        let extra = self.endpoints.extras.as_ref().and_then(|m| m.get(key));
        extra.map(|e| e.history.to_vec()).unwrap_or_default()
    }

    /// [`PeerStore::confirm`](crate::PeerStore::confirm): a handshake proves the peer under
    /// every policy; under the resilient one the evidence confirms a candidate (a handshake
    /// at an endpoint no method reported makes it one), and the endpoint is chosen again.
    pub(super) fn confirm(
        &self,
        key: &PublicKey,
        endpoint: SocketAddr,
        evidence: Evidence,
    ) -> bool {
        // An address no announcement may carry is no evidence: it could become the endpoint.
        if check_endpoint(endpoint).is_err() {
            return false;
        }
        // The spelling the store keeps: an IPv4-mapped address is its IPv4 address.
        let endpoint = canonical_endpoint(endpoint);
        let handshake = matches!(evidence, Evidence::Handshake);
        let Some(mut record) = self.peers.get_mut(key) else {
            self.refuses_banned(key);
            return false;
        };
        if handshake && !record.peer.proven {
            self.prove(&mut record);
        }
        let Some(policy) = self.resilient() else {
            return record.peer.endpoint == Some(endpoint);
        };
        let (now, wall) = self.timeline.now_and_wall();
        self.change_candidates(key, record, now, |candidates, peer| {
            // An endpoint only WireGuard saw counts as set by the method the peer's endpoint
            // came from, or the first the peer was heard by.
            let label = peer
                .endpoint_method
                .as_ref()
                .or(peer.discovered_via.iter().next());
            let cx = self.context(policy, now);
            candidates.confirm(endpoint, evidence, wall, &cx, peer.endpoint, label)
        })
    }

    /// [`PeerStore::note_failure`](crate::PeerStore::note_failure): under the resilient
    /// policy the candidate's trust ends, and the endpoint is chosen again. Under the ranked
    /// policy: whether `endpoint` is the peer's endpoint.
    pub(super) fn note_failure(&self, key: &PublicKey, endpoint: SocketAddr) -> bool {
        let endpoint = canonical_endpoint(endpoint);
        let Some(record) = self.peers.get_mut(key) else {
            return false;
        };
        if self.resilient().is_none() {
            return record.peer.endpoint == Some(endpoint);
        }
        let now = self.timeline.now();
        self.change_candidates(key, record, now, |candidates, _| {
            candidates.fail(endpoint, now)
        })
    }

    /// Runs `change` on a locked record's candidates; if it changed them, chooses the
    /// endpoint again and, once the record's lock is gone, sends the `Updated` event a move
    /// owes. Whether `change` took the evidence (`false` too when the peer keeps no
    /// candidates).
    fn change_candidates(
        &self,
        key: &PublicKey,
        mut record: RefMut<'_, Record>,
        now: Nanos,
        change: impl FnOnce(&mut Candidates, &Peer) -> bool,
    ) -> bool {
        let changed = {
            let Some(mut extra) = self.endpoint_state(key) else {
                return false;
            };
            let Some(candidates) = extra.candidates.as_mut() else {
                return false;
            };
            change(candidates, &record.peer)
        };
        if !changed {
            return false;
        }
        let seq = self.rechoose(key, &mut record, now);
        drop(record);
        if let Some(seq) = seq {
            self.publish(*key, PeerEventKind::Updated, seq);
        }
        true
    }
}
