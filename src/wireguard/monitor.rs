//! The handshake monitor: tells the store what WireGuard saw of its peers.
//!
//! [`Monitor::observe`] reads the device ([`Device::peers`]) and, for each device peer the
//! store holds (dead or alive; a peer the store does not hold is none of its business), keeps
//! what it saw between calls: the latest handshake, the bytes received, when they last grew
//! and the bytes sent then. From that it tells the store:
//!
//! - **a new handshake** (a `last_handshake` later than the one seen before, or the first one
//!   seen, if it is not older than [`MonitorSettings::handshake_timeout`]):
//!   [`PeerStore::confirm`]`(key, device endpoint, `[`Evidence::Handshake`]`)`, which proves
//!   the peer and, under the resilient policy, trusts that endpoint;
//! - **a dead peer**, once per death: [`PeerStore::note_failure`]`(key, endpoint)` (the
//!   device's endpoint, or the store's if the device has none), when
//!   - it shook hands, but its bytes received have not grown for
//!     [`rx_frozen_for`](MonitorSettings::rx_frozen_for) while its bytes sent grew (with
//!     persistent keepalive on both sides a live peer sends something every interval); or
//!   - its latest handshake is older than
//!     [`handshake_timeout`](MonitorSettings::handshake_timeout) (WireGuard renews a session
//!     every 2 minutes while traffic or keepalives flow, and drops it after 3); or
//!   - it never shook hands, and [`first_handshake_within`](MonitorSettings::first_handshake_within)
//!     passed since the monitor first saw it. Never before: a peer just added is not dead;
//! - **a peer given up on**: still dead [`remove_after`](MonitorSettings::remove_after) after
//!   its failure was noted, [`PeerStore::remove_for`]`(key, `[`tombstone`](MonitorSettings::tombstone)`)`,
//!   so that second-hand news cannot bring it straight back (the peer announcing itself
//!   first-hand can, as the store's [`Readmission`](crate::Readmission) rule says). A
//!   [`Reconciler`](super::Reconciler) then takes it off the device.
//!
//! A dead peer that shakes hands again, or whose bytes received grow, is alive again
//! ([`MonitorReport::recovered`]); its next death is noted again.
//!
//! # Time
//!
//! The windows run on the monitor's [`Clock`] (the [`SystemClock`] unless given another), the
//! monotonic reading for how long something lasted; a handshake's age is the clock's wall time
//! less the device's `last_handshake`, which is wall-clock time (one in the future is of age
//! zero). The rules see only what one call sees: call [`observe`](Monitor::observe) at least a
//! few times per window.
//!
//! A confirmation credits the endpoint the device has when it is read. A reconciler that
//! writes another endpoint between the handshake and this call (a move the store heard of)
//! has the handshake credited to the endpoint it wrote; the next handshake, or its absence,
//! sets the record straight.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::{Device, DeviceError, DevicePeer};
use crate::{Clock, Evidence, PeerStore, PublicKey, SystemClock};

/// The windows a [`Monitor`] judges by. Every one is a setting, so tests can run in seconds.
///
/// ```
/// use std::time::Duration;
/// use peerstore::wireguard::MonitorSettings;
///
/// let mut settings = MonitorSettings::default();
/// assert_eq!(settings.handshake_timeout, Duration::from_secs(195));
/// settings.rx_frozen_for = Duration::from_secs(3);
/// settings.remove_after = Duration::from_secs(5);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    /// A peer whose latest handshake is older than this is dead. Default 195 s: WireGuard's
    /// 180 s `REJECT_AFTER_TIME` and a margin of 15 s for a renewal on its way.
    pub handshake_timeout: Duration,
    /// A peer that shook hands, whose bytes received stayed the same this long while its bytes
    /// sent grew, is dead. Default 90 s: three of the [`Reconciler`](super::Reconciler)'s
    /// default 25 s keepalives, and a margin.
    pub rx_frozen_for: Duration,
    /// A peer never shaken hands with is dead once this passed since the monitor first saw
    /// it, and never before. Default 195 s, as `handshake_timeout`.
    pub first_handshake_within: Duration,
    /// A peer still dead this long after its failure was noted is removed from the store.
    /// Default 5 minutes.
    pub remove_after: Duration,
    /// The tombstone a removed peer gets ([`PeerStore::remove_for`]). Default 10 minutes.
    pub tombstone: Duration,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            handshake_timeout: Duration::from_secs(195),
            rx_frozen_for: Duration::from_secs(90),
            first_handshake_within: Duration::from_secs(195),
            remove_after: Duration::from_secs(300),
            tombstone: Duration::from_secs(600),
        }
    }
}

/// Watches a device's peers and tells the store what WireGuard saw: handshakes, deaths, peers
/// given up on. See the [module documentation](self) for the rules.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use std::sync::Mutex;
/// use peerstore::wireguard::{Device, DeviceError, DevicePeer, Monitor, MonitorSettings, PeerChange};
/// use peerstore::{Clock, DiscoveryMethod, ManualClock, PeerInfo, PeerStore, PublicKey};
///
/// // A device that answers one fixed peer, which shook hands a second ago.
/// struct OnePeer(Mutex<DevicePeer>);
/// impl Device for OnePeer {
///     fn name(&self) -> &str { "wg0" }
///     fn peers(&self) -> Result<Vec<DevicePeer>, DeviceError> { Ok(vec![self.0.lock().unwrap().clone()]) }
///     fn apply(&self, _: &[PeerChange]) -> Result<(), DeviceError> { Ok(()) }
/// }
///
/// let clock = ManualClock::new();
/// let store = PeerStore::builder().clock(clock.clone()).build()?;
/// let key = PublicKey::from_bytes([7; 32]);
/// let mut info = PeerInfo::new(key);
/// info.endpoint = Some("192.0.2.7:51820".parse()?);
/// store.update(info, DiscoveryMethod::Lan)?;
///
/// let mut peer = DevicePeer::new(key);
/// peer.endpoint = Some("192.0.2.7:51820".parse()?);
/// peer.last_handshake = Some(clock.wall_now() - Duration::from_secs(1));
/// let device = OnePeer(Mutex::new(peer));
///
/// let mut monitor = Monitor::with_clock(MonitorSettings::default(), clock.clone());
/// let report = monitor.observe(&store, &device)?;
/// assert_eq!(report.confirmed.len(), 1);
/// assert!(store.get(&key).unwrap().proven);
///
/// // Nothing new for longer than the handshake timeout: dead.
/// clock.advance(Duration::from_secs(200));
/// let report = monitor.observe(&store, &device)?;
/// assert_eq!(report.failed[0].public_key, key);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Monitor {
    settings: MonitorSettings,
    clock: Box<dyn Clock>,
    watched: HashMap<PublicKey, Watch>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("settings", &self.settings)
            .field("watched", &self.watched.len())
            .finish_non_exhaustive()
    }
}

/// What the monitor keeps of one peer between calls.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// When the monitor first saw it (or saw its counters start again).
    first_seen: Instant,
    /// The latest handshake seen.
    last_handshake: Option<SystemTime>,
    /// The bytes received, as last seen.
    rx: u64,
    /// The bytes sent, as last seen.
    tx: u64,
    /// When the bytes received last grew (or when first seen).
    rx_grew_at: Instant,
    /// The bytes sent then.
    tx_when_rx_grew: u64,
    /// When its death was noted, if it is dead now.
    failed_at: Option<Instant>,
}

/// What one [`Monitor::observe`] call told the store. Every list is sorted by key.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorReport {
    /// New handshakes, confirmed to the store.
    pub confirmed: Vec<Confirmed>,
    /// Peers found dead, their failure noted to the store.
    pub failed: Vec<Failure>,
    /// Peers dead since their failure was noted, found alive again.
    pub recovered: Vec<PublicKey>,
    /// Peers given up on, removed from the store with a tombstone.
    pub removed: Vec<PublicKey>,
}

impl MonitorReport {
    /// Whether the call told the store nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.confirmed.is_empty()
            && self.failed.is_empty()
            && self.recovered.is_empty()
            && self.removed.is_empty()
    }
}

/// A new handshake, confirmed to the store.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The peer.
    pub public_key: PublicKey,
    /// The device's endpoint for it, handed to [`PeerStore::confirm`]; `None` if the device
    /// has none (then nothing was confirmed).
    pub endpoint: Option<SocketAddr>,
    /// When the handshake completed, as the device says.
    pub at: SystemTime,
    /// What `confirm` answered: the endpoint is a candidate of the peer's (under the ranked
    /// policy: its endpoint).
    pub taken: bool,
}

/// A peer found dead.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The peer.
    pub public_key: PublicKey,
    /// The endpoint handed to [`PeerStore::note_failure`], if there was one.
    pub endpoint: Option<SocketAddr>,
    /// Which rule found it dead.
    pub reason: DeadReason,
}

/// Why the monitor found a peer dead.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadReason {
    /// Bytes received stopped growing for the window while bytes sent grew.
    RxFrozen,
    /// The latest handshake is older than the handshake timeout.
    HandshakeTooOld,
    /// No handshake within the first window since the monitor first saw it.
    NeverShookHands,
}

impl DeadReason {
    /// A short name for logs, such as `"rx frozen"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            DeadReason::RxFrozen => "rx frozen while tx grows",
            DeadReason::HandshakeTooOld => "handshake too old",
            DeadReason::NeverShookHands => "never shook hands",
        }
    }
}

impl Monitor {
    /// A monitor on the system clock that has seen nothing yet.
    #[must_use]
    pub fn new(settings: MonitorSettings) -> Self {
        Monitor::with_clock(settings, SystemClock)
    }

    /// A monitor on another clock (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn with_clock<C: Clock>(settings: MonitorSettings, clock: C) -> Self {
        Monitor {
            settings,
            clock: Box::new(clock),
            watched: HashMap::new(),
        }
    }

    /// The settings it was made with.
    #[must_use]
    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// Reads the device once and tells the store what it shows, by the rules of the
    /// [module documentation](self).
    ///
    /// # Errors
    ///
    /// The device's peers cannot be read ([`Device::peers`]'s errors); nothing is told to the
    /// store then, and what the monitor kept stays as it was.
    pub fn observe(
        &mut self,
        store: &PeerStore,
        device: &dyn Device,
    ) -> Result<MonitorReport, DeviceError> {
        let mut peers = device.peers()?;
        let (now, wall) = self.clock.now_and_wall();
        peers.sort_unstable_by_key(|peer| peer.public_key);
        let mut report = MonitorReport::default();
        let mut watched = HashMap::with_capacity(peers.len());
        for peer in &peers {
            let key = peer.public_key;
            let Some(stored) = store.get(&key) else {
                continue;
            };
            let mut watch = match self.watched.remove(&key) {
                // Counters that went back: the peer was removed and added again.
                Some(watch) if peer.rx_bytes >= watch.rx && peer.tx_bytes >= watch.tx => watch,
                _ => Watch {
                    first_seen: now,
                    last_handshake: None,
                    rx: peer.rx_bytes,
                    tx: peer.tx_bytes,
                    rx_grew_at: now,
                    tx_when_rx_grew: peer.tx_bytes,
                    failed_at: None,
                },
            };
            let rx_grew = peer.rx_bytes > watch.rx;
            if rx_grew {
                watch.rx_grew_at = now;
                watch.tx_when_rx_grew = peer.tx_bytes;
            }
            watch.rx = peer.rx_bytes;
            watch.tx = peer.tx_bytes;

            if let Some(at) = peer.last_handshake
                && watch.last_handshake.is_none_or(|seen| at > seen)
            {
                watch.last_handshake = Some(at);
                if age(wall, at) <= self.settings.handshake_timeout {
                    let taken = peer
                        .endpoint
                        .is_some_and(|endpoint| store.confirm(&key, endpoint, Evidence::Handshake));
                    report.confirmed.push(Confirmed {
                        public_key: key,
                        endpoint: peer.endpoint,
                        at,
                        taken,
                    });
                }
            }

            match self.dead(&watch, peer, now, wall) {
                // Each rule, once it holds, holds until the peer shakes hands again or its
                // bytes received grow: a dead peer found alive did one of those.
                None => {
                    if watch.failed_at.take().is_some() {
                        report.recovered.push(key);
                    }
                }
                Some(reason) => match watch.failed_at {
                    None => {
                        watch.failed_at = Some(now);
                        let endpoint = peer.endpoint.or(stored.endpoint);
                        if let Some(endpoint) = endpoint {
                            store.note_failure(&key, endpoint);
                        }
                        report.failed.push(Failure {
                            public_key: key,
                            endpoint,
                            reason,
                        });
                    }
                    Some(failed_at)
                        if now.saturating_duration_since(failed_at)
                            >= self.settings.remove_after =>
                    {
                        store.remove_for(&key, self.settings.tombstone);
                        report.removed.push(key);
                        continue;
                    }
                    Some(_) => {}
                },
            }
            watched.insert(key, watch);
        }
        // Peers gone from the device, or from the store, are forgotten.
        self.watched = watched;
        Ok(report)
    }

    /// Which rule, if any, finds the peer dead now.
    fn dead(
        &self,
        watch: &Watch,
        peer: &DevicePeer,
        now: Instant,
        wall: SystemTime,
    ) -> Option<DeadReason> {
        let settings = &self.settings;
        let Some(handshake) = watch.last_handshake else {
            let waited = now.saturating_duration_since(watch.first_seen);
            return (waited >= settings.first_handshake_within)
                .then_some(DeadReason::NeverShookHands);
        };
        if age(wall, handshake) > settings.handshake_timeout {
            return Some(DeadReason::HandshakeTooOld);
        }
        let frozen = now.saturating_duration_since(watch.rx_grew_at);
        (frozen >= settings.rx_frozen_for && peer.tx_bytes > watch.tx_when_rx_grew)
            .then_some(DeadReason::RxFrozen)
    }
}

/// How long ago `at` was, on the wall clock `wall`; zero for a time in the future.
fn age(wall: SystemTime, at: SystemTime) -> Duration {
    wall.duration_since(at).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::fake::FakeDevice;
    use crate::{DiscoveryMethod, EndpointPolicy, ManualClock, PeerInfo};

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    const S: Duration = Duration::from_secs(1);

    /// Short windows: rx frozen 3 s, handshakes 10 s, first handshake 5 s, removal 4 s later.
    fn settings() -> MonitorSettings {
        MonitorSettings {
            handshake_timeout: 10 * S,
            rx_frozen_for: 3 * S,
            first_handshake_within: 5 * S,
            remove_after: 4 * S,
            tombstone: 60 * S,
        }
    }

    /// A store holding peer 1 at 192.0.2.1:51820, a device with it, and a monitor, on one
    /// manual clock.
    fn rig(policy: EndpointPolicy) -> (ManualClock, PeerStore, FakeDevice, Monitor) {
        let clock = ManualClock::new();
        let store = PeerStore::builder()
            .clock(clock.clone())
            .endpoint_policy(policy)
            .build()
            .unwrap();
        let mut info = PeerInfo::new(key(1));
        info.endpoint = Some(addr("192.0.2.1:51820"));
        store.update(info, DiscoveryMethod::Lan).unwrap();
        let device = FakeDevice::new();
        let mut peer = DevicePeer::new(key(1));
        peer.endpoint = Some(addr("192.0.2.1:51820"));
        device.insert(peer);
        let monitor = Monitor::with_clock(settings(), clock.clone());
        (clock, store, device, monitor)
    }

    /// Both sides' keepalives: bytes each way.
    fn traffic(device: &FakeDevice, rx: u64, tx: u64) {
        device.with(key(1), |peer| {
            peer.rx_bytes += rx;
            peer.tx_bytes += tx;
        });
    }

    #[test]
    fn a_new_handshake_is_confirmed_once() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::resilient());
        assert!(monitor.observe(&store, &device).unwrap().is_empty());
        clock.advance(S);
        let at = clock.wall_now();
        device.handshake(key(1), addr("192.0.2.1:51820"), at);
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(
            report.confirmed,
            [Confirmed {
                public_key: key(1),
                endpoint: Some(addr("192.0.2.1:51820")),
                at,
                taken: true,
            }]
        );
        assert!(store.get(&key(1)).unwrap().proven);
        assert!(store.candidates(&key(1))[0].trusted);

        clock.advance(S);
        assert!(
            monitor
                .observe(&store, &device)
                .unwrap()
                .confirmed
                .is_empty()
        );

        // A later handshake, from a new address (WireGuard roamed): that address is confirmed.
        clock.advance(S);
        device.handshake(key(1), addr("192.0.2.1:40001"), clock.wall_now());
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(report.confirmed[0].endpoint, Some(addr("192.0.2.1:40001")));
        assert!(report.confirmed[0].taken);
        assert_eq!(
            store.get(&key(1)).unwrap().endpoint,
            Some(addr("192.0.2.1:40001"))
        );
    }

    #[test]
    fn a_stale_handshake_seen_first_is_not_evidence() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::ranked());
        let long_ago = clock.wall_now();
        device.handshake(key(1), addr("192.0.2.1:51820"), long_ago);
        clock.advance(11 * S);
        let report = monitor.observe(&store, &device).unwrap();
        assert!(report.confirmed.is_empty());
        assert!(!store.get(&key(1)).unwrap().proven);
        assert_eq!(report.failed[0].reason, DeadReason::HandshakeTooOld);
    }

    #[test]
    fn rx_frozen_while_tx_grows_is_a_failure_then_a_removal() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::resilient());
        device.handshake(key(1), addr("192.0.2.1:51820"), clock.wall_now());
        monitor.observe(&store, &device).unwrap();
        // Alive: keepalives both ways.
        for _ in 0..5 {
            clock.advance(S);
            traffic(&device, 32, 32);
            assert!(monitor.observe(&store, &device).unwrap().failed.is_empty());
        }
        // The peer dies: what we send goes unanswered.
        for second in 1..=3 {
            clock.advance(S);
            traffic(&device, 0, 32);
            let report = monitor.observe(&store, &device).unwrap();
            if second < 3 {
                assert!(report.failed.is_empty(), "after {second} s: {report:?}");
            } else {
                assert_eq!(
                    report.failed,
                    [Failure {
                        public_key: key(1),
                        endpoint: Some(addr("192.0.2.1:51820")),
                        reason: DeadReason::RxFrozen,
                    }]
                );
            }
        }
        let candidate = &store.candidates(&key(1))[0];
        assert!(
            !candidate.trusted && candidate.failures == 1,
            "{candidate:?}"
        );

        // Noted once; removed the longer window later, with a tombstone.
        for second in 1..=4 {
            clock.advance(S);
            traffic(&device, 0, 32);
            let report = monitor.observe(&store, &device).unwrap();
            assert!(report.failed.is_empty(), "noted once");
            assert_eq!(report.removed.is_empty(), second < 4, "after {second} s");
        }
        assert!(store.get(&key(1)).is_none());
        assert_eq!(store.tombstones()[0].public_key, key(1));
        // Forgotten: nothing more about it.
        clock.advance(10 * S);
        assert!(monitor.observe(&store, &device).unwrap().is_empty());
    }

    #[test]
    fn an_idle_peer_is_not_dead_by_frozen_bytes() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::ranked());
        device.handshake(key(1), addr("192.0.2.1:51820"), clock.wall_now());
        monitor.observe(&store, &device).unwrap();
        // Nothing sent either way (keepalive off, no traffic) for longer than the rx window.
        clock.advance(5 * S);
        assert!(monitor.observe(&store, &device).unwrap().failed.is_empty());
        // But its handshake ages past the timeout.
        clock.advance(6 * S);
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(report.failed[0].reason, DeadReason::HandshakeTooOld);
    }

    #[test]
    fn a_peer_never_shaken_hands_with_has_a_first_window() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::ranked());
        monitor.observe(&store, &device).unwrap();
        for _ in 0..4 {
            clock.advance(S);
            // Initiations go out, nothing comes back.
            traffic(&device, 0, 148);
            let report = monitor.observe(&store, &device).unwrap();
            assert!(report.failed.is_empty(), "{report:?}");
        }
        clock.advance(S);
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(report.failed[0].reason, DeadReason::NeverShookHands);
        assert_eq!(
            report.failed[0].endpoint,
            Some(addr("192.0.2.1:51820")),
            "the device's endpoint"
        );
    }

    #[test]
    fn a_failed_peer_that_answers_again_recovers_and_is_not_removed() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::ranked());
        device.handshake(key(1), addr("192.0.2.1:51820"), clock.wall_now());
        monitor.observe(&store, &device).unwrap();
        clock.advance(3 * S);
        traffic(&device, 0, 64);
        assert_eq!(monitor.observe(&store, &device).unwrap().failed.len(), 1);
        clock.advance(S);
        traffic(&device, 32, 32);
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(report.recovered, [key(1)]);
        clock.advance(5 * S);
        traffic(&device, 32, 32);
        let report = monitor.observe(&store, &device).unwrap();
        assert!(report.removed.is_empty() && report.failed.is_empty());
        assert!(store.get(&key(1)).is_some());

        // Its next death is noted again.
        clock.advance(3 * S);
        traffic(&device, 0, 64);
        assert_eq!(monitor.observe(&store, &device).unwrap().failed.len(), 1);
    }

    #[test]
    fn peers_the_store_does_not_hold_are_left_alone() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::ranked());
        device.insert(DevicePeer::new(key(9)));
        monitor.observe(&store, &device).unwrap();
        clock.advance(100 * S);
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(report.failed.len(), 1, "only the store's peer: {report:?}");
        clock.advance(100 * S);
        let report = monitor.observe(&store, &device).unwrap();
        assert_eq!(report.removed, [key(1)]);
        assert_eq!(store.tombstones().len(), 1, "no tombstone for a stranger");
    }

    #[test]
    fn a_peer_added_again_is_watched_afresh() {
        let (clock, store, device, mut monitor) = rig(EndpointPolicy::ranked());
        device.handshake(key(1), addr("192.0.2.1:51820"), clock.wall_now());
        traffic(&device, 1000, 1000);
        monitor.observe(&store, &device).unwrap();
        // Removed and added again between two calls: its counters start at zero.
        device.insert({
            let mut peer = DevicePeer::new(key(1));
            peer.endpoint = Some(addr("192.0.2.1:51820"));
            peer
        });
        clock.advance(4 * S);
        let report = monitor.observe(&store, &device).unwrap();
        assert!(report.failed.is_empty(), "a first window again: {report:?}");
        clock.advance(5 * S);
        assert_eq!(
            monitor.observe(&store, &device).unwrap().failed[0].reason,
            DeadReason::NeverShookHands
        );
    }
}
