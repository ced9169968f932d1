//! An announcement meets the store: merged into a known peer's record by the policy's plan,
//! or made a new peer's record once admission lets it in.

use std::sync::Arc;
use std::time::SystemTime;

use crate::keymap::{Entry, VacantEntry};

use super::admission::Refusal;
use super::endpoints::Extra;
use super::eviction::Claim;
use super::{Inner, Record};
use crate::clock::Nanos;
use crate::events::PeerEventKind;
use crate::peer::canonicalize;
use crate::policy::{self, Ranked, Sighting};
use crate::stats::Counter;
use crate::{DiscoveryMethod, Peer, PeerInfo, PublicKey, UpdateError, UpdateOutcome};

/// What an update did, and the event it owes subscribers once the record's lock is gone: its
/// kind and seq.
pub(super) type Merged = (UpdateOutcome, Option<(PeerEventKind, u64)>);

impl Inner {
    /// Merges `info`, heard by `method` at `now`, into its peer's record, or inserts one.
    pub(super) fn upsert(
        &self,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        now: Nanos,
        wall: impl Fn() -> SystemTime + Copy,
    ) -> Result<Merged, UpdateError> {
        let key = info.public_key;
        // The slots it holds while it goes in: given back if it does not, whatever stops it.
        let mut claim = Claim::new(self);
        // Whether `info` passed the checks; nothing is claimed before it did.
        let mut checked = false;
        loop {
            match self.peers.entry(key) {
                Entry::Occupied(mut entry) => {
                    let record = entry.get_mut();
                    if !checked {
                        self.check(info, Some(&record.peer))?;
                    }
                    // Inserted meanwhile: what an eviction handed it goes back when the claim
                    // is dropped, with the record's lock gone.
                    let second_hand = self.counts_as_second_hand(record);
                    let merged = self.merge_known(key, record, info, method, now, wall);
                    self.heard_first_hand(second_hand, record);
                    return Ok(merged);
                }
                Entry::Vacant(entry) => {
                    if !checked {
                        self.check(info, None)?;
                        checked = true;
                    }
                    match self.admit(&key, &method, info.last_seen, now, &mut claim) {
                        Ok(readmitted) => {
                            // Read once it is admitted, so that a refusal never reads the wall
                            // clock; a caller's clock that panics here leaves the claim to
                            // give the slots back.
                            let heard = policy::first_heard(&method, info.last_seen, now, wall());
                            claim.take_slots();
                            let ordered = self.eviction.is_some().then(|| method.clone());
                            let merged = self.insert_new(entry, info, method, heard, readmitted);
                            // With the record's lock gone: the order is never locked under it.
                            if let Some(method) = ordered {
                                self.order_newcomer(key, heard.at, &method);
                            }
                            return Ok(merged);
                        }
                        Err(Refusal::Error(refused)) => return Err(refused),
                        Err(Refusal::Full(tiers)) => {
                            drop(entry);
                            self.make_room(key, tiers, &mut claim)?;
                        }
                    }
                }
            }
        }
    }

    /// Refuses `info` if it holds a value the store will not keep (only the values `known`,
    /// the peer's record, does not hold already are checked), and spells its endpoint as the
    /// store does: one address, one spelling, in the store, in events and in the cache.
    #[inline(always)]
    fn check(&self, info: &mut PeerInfo, known: Option<&Peer>) -> Result<(), UpdateError> {
        let checked = match known {
            Some(known) => info.validate_news(known),
            None => info.validate(),
        };
        if let Err(invalid) = checked {
            self.counters.add(Counter::RejectedInvalid, 1);
            return Err(UpdateError::Invalid(invalid));
        }
        if let Some(endpoint) = &mut info.endpoint {
            canonicalize(endpoint);
        }
        Ok(())
    }

    /// Folds an announcement into a known peer's record, as the policy plans it, under the
    /// record's lock.
    fn merge_known(
        &self,
        key: PublicKey,
        record: &mut Record,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        now: Nanos,
        wall: impl Fn() -> SystemTime + Copy,
    ) -> Merged {
        // The record's lock is held: its opt-in state's may be taken now.
        match self.endpoint_state(&key) {
            // The defaults keep none: `merge_with` made for that, with nothing of the opt-in
            // policies left in it.
            None => self.merge_with(record, info, method, now, wall, None),
            Some(mut extra) => self.merge_opt_in(record, info, method, now, wall, &mut extra),
        }
    }

    /// [`merge_with`](Self::merge_with) under an opt-in endpoint policy, out of line so that
    /// the default path stays small.
    #[inline(never)]
    fn merge_opt_in(
        &self,
        record: &mut Record,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        now: Nanos,
        wall: impl Fn() -> SystemTime + Copy,
        extra: &mut Extra,
    ) -> Merged {
        // The candidates and the merge both may need the wall clock: one reading serves both.
        let read = std::cell::OnceCell::new();
        let wall = || *read.get_or_init(wall);
        self.merge_with(record, info, method, now, wall, Some(extra))
    }

    /// The merge of a known peer, with its opt-in endpoint state if the store keeps one:
    /// the candidates told of the announcement, the policy's plan applied, a move of the
    /// endpoint counted and written to the history.
    #[inline(always)]
    fn merge_with(
        &self,
        record: &mut Record,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        now: Nanos,
        wall: impl Fn() -> SystemTime + Copy,
        mut extra: Option<&mut Extra>,
    ) -> Merged {
        let resilient = extra
            .as_deref_mut()
            .and_then(|extra| self.tell_candidates(extra, record, info, &method, now, wall));
        let (peer, heard_at, dead_after) = (&record.peer, record.heard_at, self.dead_after);
        let merge = match &resilient {
            None => policy::merge(
                peer, heard_at, info, &method, now, dead_after, wall, &Ranked,
            ),
            Some(chosen) => {
                policy::merge(peer, heard_at, info, &method, now, dead_after, wall, chosen)
            }
        };
        let outcome = merge.outcome();
        let from = record.peer.endpoint;
        let moved = merge.moves_endpoint();
        // What the history tells of a move, when it is kept.
        let told = merge
            .fields
            .endpoint
            .as_ref()
            .filter(|_| moved && extra.is_some());
        let told = told.and_then(|plan| plan.choice(info.endpoint, &method));
        if merge.writes() {
            if let Some(heard) = merge.heard {
                record.heard_at = heard.at;
            }
            policy::apply(Arc::make_mut(&mut record.peer), info, method, merge);
        }
        let event =
            (outcome == UpdateOutcome::Updated).then(|| (PeerEventKind::Updated, self.next_seq()));
        if moved {
            let seq = event.map_or(0, |(_, seq)| seq);
            match told {
                Some(told) => {
                    self.endpoint_moved(extra, from, told, seq, now, wall());
                }
                None => self.count_endpoint_move(),
            }
        }
        (outcome, event)
    }

    /// Makes a new peer's record in its vacant slot, admitted (`readmitted` over a tombstone).
    fn insert_new(
        &self,
        entry: VacantEntry<'_, Record>,
        info: &mut PeerInfo,
        method: DiscoveryMethod,
        heard: Sighting,
        readmitted: bool,
    ) -> Merged {
        let key = info.public_key;
        // The seq is taken before `insert`, whose guard is gone with the statement.
        let seq = self.next_seq();
        let candidate_method = self.first_candidate_method(&method);
        let record = entry.insert(Record {
            peer: Arc::new(policy::new_peer(info, method, heard)),
            heard_at: heard.at,
        });
        self.start_endpoints(key, &record.peer, candidate_method, heard);
        if readmitted {
            self.readmitted(&key);
        }
        drop(record);
        (
            UpdateOutcome::Inserted,
            Some((PeerEventKind::New { readmitted }, seq)),
        )
    }
}
