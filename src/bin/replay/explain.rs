//! What `--explain` follows: one peer's [`Decision`]s, each announcement's [`Verdict`], and
//! [`resolve`], which finds the peer `--explain` names.

use std::net::SocketAddr;
use std::time::Duration;

use peerstore::{DiscoveryMethod, EndpointChange, EndpointRule, PublicKey, RemovalCause};

use crate::trace::{Line, Step};

/// What happened to the explained peer at one moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// An announcement carried an endpoint: what the store made of it, given the endpoint in
    /// use before (`current`, with the method that set it).
    Endpoint {
        at: Duration,
        method: DiscoveryMethod,
        candidate: SocketAddr,
        current: Option<(SocketAddr, DiscoveryMethod)>,
        verdict: Verdict,
    },
    /// The store refused the announcement as a whole: no endpoint decision was made.
    Refused {
        at: Duration,
        method: DiscoveryMethod,
        why: String,
    },
    Removed {
        at: Duration,
        cause: RemovalCause,
    },
    /// A `ban` line: the operator banned it, for `span` or until lifted; `refused`: why the
    /// store did not place the ban, if it did not.
    Banned {
        at: Duration,
        span: Option<Duration>,
        reason: Option<String>,
        refused: Option<String>,
    },
    /// An `unban` line; `lifted`: whether a ban stood.
    Unbanned {
        at: Duration,
        lifted: bool,
    },
    /// Under the resilient policy: the endpoint moved, as the store's history tells it (an
    /// announcement, a confirmation, a failure or a cleanup moved it).
    Moved {
        at: Duration,
        change: EndpointChange,
    },
}

/// What the store made of an announced endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The seed policy's answer, which [`decide_endpoint`](peerstore::decide_endpoint) gives
    /// as the store does: taken or not, and the rule that decided.
    Ruled { accepted: bool, rule: EndpointRule },
    /// The resilient policy made it the endpoint in use, by the rule the store's history gives
    /// the move (or as a new record's first endpoint).
    Chosen(EndpointRule),
    /// The resilient policy keeps it in use: it was the endpoint in use already.
    InUse,
    /// The resilient policy keeps another endpoint in use. `kept`: the announced one is among
    /// the peer's candidates now; `trusted`: the one in use is trusted now.
    NotChosen { kept: bool, trusted: bool },
}

impl Verdict {
    /// Whether the announced endpoint is the one in use after the announcement.
    pub fn accepted(self) -> bool {
        match self {
            Verdict::Ruled { accepted, .. } => accepted,
            Verdict::Chosen(_) | Verdict::InUse => true,
            Verdict::NotChosen { .. } => false,
        }
    }

    /// In a word: `accepted`, `unchanged`, `refused` (the seed's) or `not chosen`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ruled {
                rule: EndpointRule::Unchanged,
                ..
            }
            | Verdict::InUse => "unchanged",
            Verdict::Ruled {
                accepted: false, ..
            } => "refused",
            Verdict::Ruled { .. } | Verdict::Chosen(_) => "accepted",
            Verdict::NotChosen { .. } => "not chosen",
        }
    }

    /// Why: the rule that decided, or what the resilient policy's candidates say.
    pub fn why(self) -> &'static str {
        match self {
            Verdict::Ruled { rule, .. } | Verdict::Chosen(rule) => rule.as_str(),
            Verdict::InUse => "the endpoint in use",
            Verdict::NotChosen { kept: false, .. } => {
                "not kept: every candidate is in use or trusted"
            }
            Verdict::NotChosen { trusted: true, .. } => {
                "kept as a candidate; the endpoint in use is trusted"
            }
            Verdict::NotChosen { .. } => "kept as a candidate",
        }
    }
}

/// An announced endpoint of the explained peer whose verdict waits for the step to end: under
/// the resilient policy the store's history and candidates tell it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub method: DiscoveryMethod,
    pub candidate: SocketAddr,
    pub current: Option<(SocketAddr, DiscoveryMethod)>,
}

/// Finds the peer `--explain` names: a whole key, a unique prefix of one, or a host name.
pub fn resolve(wanted: &str, lines: &[Line]) -> Result<PublicKey, String> {
    if let Ok(key) = wanted.parse() {
        return Ok(key);
    }
    let mut found: Vec<PublicKey> = Vec::new();
    for line in lines {
        if let Step::Announce { peer, .. } = &line.step {
            let info = &peer.info;
            let by_name = info.hostname.as_deref() == Some(wanted);
            if (by_name || info.public_key.to_string().starts_with(wanted))
                && !found.contains(&info.public_key)
            {
                found.push(info.public_key);
            }
        }
    }
    match found.as_slice() {
        [key] => Ok(*key),
        [] => Err(format!(
            "--explain {wanted:?}: no peer in the trace has that key or host name"
        )),
        many => Err(format!(
            "--explain {wanted:?} is ambiguous: {} peers match ({}, ...)",
            many.len(),
            many[0].short()
        )),
    }
}
