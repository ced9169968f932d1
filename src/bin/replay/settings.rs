//! The store settings a replay runs under: the seed's defaults, or opt-in policies, held as the
//! library's own [`peerstore::Settings`]; the command line's names for its choices are here.

use std::time::Duration;

use peerstore::{EndpointPolicy, FullPolicy, Readmission};

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
    /// A proven peer is never evicted; one heard on the LAN takes an unproven peer's place.
    EvictUnproven,
}

impl Named for WhenFull {
    const ALL: &'static [Self] = &[
        WhenFull::Refuse,
        WhenFull::EvictSecondHand,
        WhenFull::EvictUnproven,
    ];

    fn name(self) -> &'static str {
        match self {
            WhenFull::Refuse => "refuse",
            WhenFull::EvictSecondHand => "evict-second-hand",
            WhenFull::EvictUnproven => "evict-unproven",
        }
    }
}

/// What lifts a tombstone early (`--readmit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Readmit {
    /// Any first-hand method, the seed's.
    #[default]
    FirstHand,
    /// Only news from after the removal.
    Newer,
    /// Nothing: a tombstone stands its span.
    Never,
}

impl Named for Readmit {
    const ALL: &'static [Self] = &[Readmit::FirstHand, Readmit::Newer, Readmit::Never];

    fn name(self) -> &'static str {
        match self {
            Readmit::FirstHand => "first-hand",
            Readmit::Newer => "newer",
            Readmit::Never => "never",
        }
    }
}

/// The settings a replay runs under: the library's own [`peerstore::Settings`], and what the
/// replay itself does with a trace's `remove`, `ban` and `unban` lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// The store's settings.
    pub store: peerstore::Settings,
    /// Whether a `remove` line's `tombstone_secs` is kept (`remove_for`). Off only for the
    /// seed's side of `--compare`: the seed's store has no tombstones, so a daemon on it
    /// could only remove.
    pub tombstones: bool,
    /// Whether `ban` and `unban` lines are played (`ban`, `unban`). Off only for the seed's
    /// side of `--compare`: the seed's daemon has no bans, so its operator could only remove
    /// the key (a trace that bans a key removes it too, for that side). The library's bans
    /// are no opt-in policy; the seed's daemon just predates them.
    pub bans: bool,
}

impl Settings {
    /// The seed's store: no opt-in policy, no tombstones and no bans.
    pub fn seed() -> Self {
        Settings::default()
    }

    /// The defaults of a replay: the seed's policies, with tombstones and bans where the trace
    /// asks.
    pub fn defaults() -> Self {
        Settings {
            tombstones: true,
            bans: true,
            ..Settings::seed()
        }
    }

    /// Every opt-in policy: what `--compare` sets against the seed when told nothing else.
    pub fn opt_in() -> Self {
        let mut opt_in = Settings::defaults();
        opt_in.set_policy(Policy::Resilient);
        opt_in.store.tombstone_expired = Some(Duration::from_secs(3600));
        opt_in.set_readmit(Readmit::Newer);
        opt_in.set_when_full(WhenFull::EvictUnproven);
        opt_in
    }

    /// Which of a trace's operator lines are played.
    pub fn played(&self) -> crate::play::Played {
        crate::play::Played {
            tombstones: self.tombstones,
            bans: self.bans,
        }
    }

    /// The endpoint policy, by its name on the command line.
    pub fn policy(&self) -> Policy {
        match self.store.endpoint_policy {
            EndpointPolicy::Resilient(_) => Policy::Resilient,
            _ => Policy::Seed,
        }
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.store.endpoint_policy = match policy {
            Policy::Seed => EndpointPolicy::ranked(),
            Policy::Resilient => EndpointPolicy::resilient(),
        };
    }

    /// The full policy, by its name on the command line.
    pub fn when_full(&self) -> WhenFull {
        match self.store.when_full {
            FullPolicy::EvictSecondHand => WhenFull::EvictSecondHand,
            FullPolicy::EvictUnproven => WhenFull::EvictUnproven,
            _ => WhenFull::Refuse,
        }
    }

    pub fn set_when_full(&mut self, when_full: WhenFull) {
        self.store.when_full = match when_full {
            WhenFull::Refuse => FullPolicy::Refuse,
            WhenFull::EvictSecondHand => FullPolicy::EvictSecondHand,
            WhenFull::EvictUnproven => FullPolicy::EvictUnproven,
        };
    }

    /// The readmission rule, by its name on the command line.
    pub fn readmit(&self) -> Readmit {
        match self.store.readmit {
            Readmission::Newer => Readmit::Newer,
            Readmission::Never => Readmit::Never,
            _ => Readmit::FirstHand,
        }
    }

    pub fn set_readmit(&mut self, readmit: Readmit) {
        self.store.readmit = match readmit {
            Readmit::FirstHand => Readmission::FirstHand,
            Readmit::Newer => Readmission::Newer,
            Readmit::Never => Readmission::Never,
        };
    }

    /// The settings in words, as the options spell them; `seed` for the defaults.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.policy() != Policy::default() {
            parts.push(self.policy().name().to_string());
        }
        if let Some(span) = self.store.tombstone_expired {
            parts.push(format!("tombstone-expired {}", span.as_secs()));
        }
        if self.readmit() != Readmit::default() {
            parts.push(format!("readmit {}", self.readmit().name()));
        }
        if self.when_full() != WhenFull::default() {
            parts.push(self.when_full().name().to_string());
        }
        if let Some(n) = self.store.max_second_hand {
            parts.push(format!("max-second-hand {n}"));
        }
        if let Some(n) = self.store.max_unproven {
            parts.push(format!("max-unproven {n}"));
        }
        if self.tombstones {
            parts.push("tombstones on remove".to_string());
        }
        if self.bans {
            parts.push("bans".to_string());
        }
        if parts.is_empty() {
            "seed".to_string()
        } else {
            parts.join(", ")
        }
    }
}
