//! The store settings a replay runs under: the seed's defaults, or opt-in policies. They
//! mirror the store builder's options until the library offers a settings value of its own;
//! [`Settings::apply`] is the one place that turns them into a builder's.

use std::time::Duration;

use peerstore::{EndpointPolicy, FullPolicy, PeerStoreBuilder};

/// A choice among a few values, each with the name the command line gives it.
pub trait Named: Copy + PartialEq + 'static {
    /// Every value, in the order the usage lists them.
    const ALL: &'static [Self];

    fn name(self) -> &'static str;

    /// The value `flag` was given by name, or what it takes.
    fn parse(flag: &str, value: Option<&str>) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|choice| Some(choice.name()) == value)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                format!("{flag} takes {}, not {value:?}", names.join(" or "))
            })
    }
}

/// The endpoint policy (`--policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// The seed's: one endpoint per peer, replaced by a higher rank, never aged.
    #[default]
    Seed,
    /// Candidates that age, and trust that evidence earns.
    Resilient,
}

impl Named for Policy {
    const ALL: &'static [Self] = &[Policy::Seed, Policy::Resilient];

    fn name(self) -> &'static str {
        match self {
            Policy::Seed => "seed",
            Policy::Resilient => "resilient",
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a full store does with a new peer (`--when-full`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse it, the seed's.
    #[default]
    Refuse,
    /// One heard first-hand takes a second-hand peer's place.
    EvictSecondHand,
}

impl Named for WhenFull {
    const ALL: &'static [Self] = &[WhenFull::Refuse, WhenFull::EvictSecondHand];

    fn name(self) -> &'static str {
        match self {
            WhenFull::Refuse => "refuse",
            WhenFull::EvictSecondHand => "evict-second-hand",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub policy: Policy,
    /// `tombstone_expired`, if on.
    pub tombstone_expired: Option<Duration>,
    pub when_full: WhenFull,
    pub max_second_hand: Option<usize>,
    /// Whether a `remove` line's `tombstone_secs` is kept (`remove_for`). Off only for the
    /// seed's side of `--compare`: the seed's store has no tombstones, so a daemon on it
    /// could only remove.
    pub tombstones: bool,
}

impl Settings {
    /// The seed's store: no opt-in policy, and no tombstones.
    pub fn seed() -> Self {
        Settings::default()
    }

    /// The defaults of a replay: the seed's policies, with tombstones where the trace asks.
    pub fn defaults() -> Self {
        Settings {
            tombstones: true,
            ..Settings::seed()
        }
    }

    /// Every opt-in policy: what `--compare` sets against the seed when told nothing else.
    pub fn opt_in() -> Self {
        Settings {
            policy: Policy::Resilient,
            tombstone_expired: Some(Duration::from_secs(3600)),
            when_full: WhenFull::EvictSecondHand,
            max_second_hand: None,
            tombstones: true,
        }
    }

    /// The settings in words, as the options spell them; `seed` for the defaults.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.policy != Policy::default() {
            parts.push(self.policy.name().to_string());
        }
        if let Some(span) = self.tombstone_expired {
            parts.push(format!("tombstone-expired {}", span.as_secs()));
        }
        if self.when_full != WhenFull::default() {
            parts.push(self.when_full.name().to_string());
        }
        if let Some(n) = self.max_second_hand {
            parts.push(format!("max-second-hand {n}"));
        }
        if self.tombstones {
            parts.push("tombstones on remove".to_string());
        }
        if parts.is_empty() {
            "seed".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// The builder with these settings: the one place they become the store's.
    pub fn apply(&self, builder: PeerStoreBuilder) -> PeerStoreBuilder {
        let policy = match self.policy {
            Policy::Seed => EndpointPolicy::ranked(),
            Policy::Resilient => EndpointPolicy::resilient(),
        };
        let full = match self.when_full {
            WhenFull::Refuse => FullPolicy::Refuse,
            WhenFull::EvictSecondHand => FullPolicy::EvictSecondHand,
        };
        let mut builder = builder
            .endpoint_policy(policy)
            .when_full(full)
            .tombstone_expired(self.tombstone_expired.unwrap_or_default());
        if let Some(n) = self.max_second_hand {
            builder = builder.max_second_hand(n);
        }
        builder
    }
}
