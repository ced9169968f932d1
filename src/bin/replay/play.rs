//! What one line of a trace asks of a store: the one place a [`Step`] becomes store calls, for
//! the replay's store and for the yardstick's shadow of it alike.

use peerstore::{BanError, Evidence, PeerStore, UpdateError, UpdateOutcome};

use crate::trace::Step;

/// Which of a trace's operator lines a replay plays ([`Settings`](crate::settings::Settings)'s
/// `tombstones` and `bans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    /// A `remove` line's `tombstone_secs` is kept (`remove_for`); otherwise it is a `remove`.
    pub tombstones: bool,
    /// `ban` and `unban` lines are played; otherwise they change nothing.
    pub bans: bool,
}

/// What the store made of a step, where the replay looks at it.
#[derive(Debug)]
pub enum Applied {
    /// An announcement's `update`.
    Update(Result<UpdateOutcome, UpdateError>),
    /// A `ban` line played: whether the ban was placed.
    Ban(Result<(), BanError>),
    /// An `unban` line played: whether a ban was lifted.
    Unban(bool),
    /// Anything else: a removal, a cleanup, a confirmation, a failure, or an operator line
    /// not played.
    Done,
}

/// Runs `step` on `store`.
pub fn apply(store: &PeerStore, step: &Step, played: Played) -> Applied {
    match step {
        Step::Announce { method, peer } => {
            Applied::Update(store.update(peer.info.clone(), method.clone()))
        }
        Step::Remove { key, tombstone } => {
            match tombstone.filter(|_| played.tombstones) {
                Some(span) => store.remove_for(key, span),
                None => store.remove(key),
            };
            Applied::Done
        }
        Step::Cleanup { .. } => {
            store.cleanup_stale();
            Applied::Done
        }
        Step::Confirm { key, endpoint, rtt } => {
            let evidence = rtt.map_or(Evidence::Handshake, |rtt| Evidence::Probe { rtt });
            store.confirm(key, *endpoint, evidence);
            Applied::Done
        }
        Step::Fail { key, endpoint } => {
            store.note_failure(key, *endpoint);
            Applied::Done
        }
        Step::Ban { key, span, reason } if played.bans => {
            let placed = store.ban(key, *span, reason.as_deref().unwrap_or(""));
            Applied::Ban(placed.map(|_| ()))
        }
        Step::Unban { key } if played.bans => Applied::Unban(store.unban(key)),
        Step::Ban { .. } | Step::Unban { .. } => Applied::Done,
    }
}
