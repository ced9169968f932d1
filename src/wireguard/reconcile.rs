//! The reconciler: one call makes a device's peers what the store's active peers say.
//!
//! [`Reconciler::reconcile`] reads the store ([`PeerStore::get_active`]) and the device
//! ([`Device::peers`]), compares them peer by peer and sends one batch with only what differs:
//! peers to add, peers whose endpoint, allowed IPs or keepalive to set, peers to remove. It
//! returns a [`ReconcileReport`] of what it did.
//!
//! # What a peer is configured with
//!
//! - **endpoint**: the store's choice ([`Peer::endpoint`]), unless the device's own is newer
//!   (the roaming rule below); a peer the store knows no endpoint for keeps the device's;
//! - **allowed IPs**: the peer's mesh IPv4 address as a /32, its mesh IPv6 address as a /128,
//!   then its routable networks, host bits cleared and duplicates dropped (compared with the
//!   device's as a set: the order the device lists them in is not a difference);
//! - **persistent keepalive**: [`ReconcileSettings::persistent_keepalive`], the same for
//!   every peer.
//!
//! # Ownership: which peers it touches
//!
//! A device may hold peers the store does not manage: configured by hand, by another tool, or
//! the node's own key heard back from discovery. The reconciler
//!
//! - configures (adds or updates) exactly the store's active peers, except the keys in
//!   [`ReconcileSettings::unmanaged`], which it never touches at all;
//! - removes a device peer that is not among them only if it **owns** it: it added or
//!   configured that key itself (since this `Reconciler` was made, and not removed since), or
//!   the key is in [`ReconcileSettings::owned`] (what a restarted daemon owned before), or
//!   every one of the peer's allowed IPs lies inside one of
//!   [`ReconcileSettings::owned_networks`] (the mesh's own address ranges) and it has at
//!   least one;
//! - leaves every other peer exactly as it is, and lists it in
//!   [`ReconcileReport::foreign`].
//!
//! A hand-made peer the store also holds as active is configured like any managed peer, and
//! owned from then on: list it in `unmanaged` to keep it the operator's.
//!
//! # The roaming rule: the device's newer endpoint is left alone
//!
//! WireGuard moves a peer's endpoint by itself when an authenticated packet comes from
//! another address (a NAT rebinding, a laptop changing networks): that address is proven, the
//! announcements may not be. The reconciler never writes an older endpoint over it. For a
//! managed peer whose device endpoint `D` differs from the store's choice `S`, it leaves `D`
//! when the device has completed a handshake with the peer (`last_handshake` is `Some`) and
//! either
//!
//! 1. the store's choice is still the `S` this reconciler saw at its previous call, so `D`
//!    moved on the device since (or was left then by this rule): the device's news is the
//!    latest. The reconciler assumes it is the only writer of its peers' endpoints, so a
//!    change it did not make is WireGuard's roaming; or
//! 2. the store's choice is new to this reconciler (it changed, or this is the first call),
//!    and the device's `last_handshake` is later than the store's latest news of `S`: under
//!    the resilient policy, the latest report or confirmation of the chosen candidate
//!    ([`PeerStore::candidates`]); under the ranked policy, the peer's
//!    [`last_seen`](Peer::last_seen).
//!
//! Otherwise it writes `S`: a device that never shook hands has roamed nowhere, and a move the
//! store heard of after the last handshake (the peer announced a new address) is newer news.
//!
//! A left endpoint is handed to the store as evidence, once for each endpoint and handshake
//! time: [`PeerStore::confirm`]`(key, D, `[`Evidence::Handshake`]`)` (WireGuard moves an
//! endpoint only on a packet authenticated with the peer's handshake keys). Under the
//! resilient policy the store takes `D` as a trusted candidate and chooses it
//! ([`EndpointRule::Trusted`](crate::EndpointRule::Trusted) in its history), so the next call
//! finds nothing to change. Under the ranked policy the store keeps its endpoint (the ranked
//! rules weigh announcements only) and `confirm` answers `false`; the reconciler still leaves
//! the device's `D` alone, by the first clause, for as long as the store's choice stays `S`,
//! and writes the store's choice again only when the store changes it to an endpoint newer
//! than the last handshake. [`ReconcileReport::roams`] lists each peer left so.
//!
//! # Errors and partial batches
//!
//! A device that cannot be read is an error before anything is sent. A batch the device
//! refuses is an error too; the keys it would have added count as owned from then on (they
//! may be on the device), and the reconciler forgets what it saw of the batch's peers'
//! endpoints, so that the next call decides them by the handshake times alone.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::{Device, DeviceError, DevicePeer, MAX_ALLOWED_IPS, PeerChange, PeerConfig};
use crate::{Evidence, IpNet, Peer, PeerStore, PublicKey, canonical_endpoint};

/// How a [`Reconciler`] configures peers and which device peers it may remove.
///
/// ```
/// use std::time::Duration;
/// use peerstore::wireguard::ReconcileSettings;
///
/// let mut settings = ReconcileSettings::default();
/// assert_eq!(settings.persistent_keepalive, Some(Duration::from_secs(25)));
/// settings.persistent_keepalive = Some(Duration::from_secs(10));
/// // Any peer routed only inside the mesh's range is the mesh's, even from a previous run.
/// settings.owned_networks = vec!["10.99.0.0/16".parse()?];
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// The keepalive every managed peer gets: whole seconds, 1 to 65,535, or `None` for off.
    /// Default 25 s, which keeps NAT mappings open and lets the [`Monitor`](super::Monitor)
    /// tell a silent peer from a dead one.
    pub persistent_keepalive: Option<Duration>,
    /// Keys the reconciler may remove from the device although it did not add them (what a
    /// previous run of the daemon owned). Empty by default.
    pub owned: HashSet<PublicKey>,
    /// A device peer whose allowed IPs all lie inside these networks (and that has at least
    /// one) is the mesh's, and may be removed. Empty by default.
    pub owned_networks: Vec<IpNet>,
    /// Keys the reconciler never adds, changes or removes, whatever the store says: the
    /// node's own key, a hand-made peer the store may hear of. Empty by default.
    pub unmanaged: HashSet<PublicKey>,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            persistent_keepalive: Some(Duration::from_secs(25)),
            owned: HashSet::new(),
            owned_networks: Vec::new(),
            unmanaged: HashSet::new(),
        }
    }
}

/// Makes a device's peers match a store's active peers, changing only what differs.
///
/// It keeps, between calls, the keys it owns and what it saw of each peer's endpoint (for the
/// roaming rule): call it with one device, and one store, for its whole life. See the
/// [module documentation](self) for the rules.
///
/// ```no_run
/// use std::time::Duration;
/// use peerstore::wireguard::{ReconcileSettings, Reconciler, Uapi};
/// use peerstore::{EndpointPolicy, PeerStore};
///
/// let store = PeerStore::builder().endpoint_policy(EndpointPolicy::resilient()).build()?;
/// let device = Uapi::new("wg0")?;
/// let mut reconciler = Reconciler::new(ReconcileSettings::default());
/// loop {
///     let report = reconciler.reconcile(&store, &device)?;
///     if !report.is_unchanged() {
///         println!("{report}");
///     }
///     std::thread::sleep(Duration::from_secs(2));
/// }
/// # #[allow(unreachable_code)]
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reconciler {
    settings: ReconcileSettings,
    /// The keys it added or configured and has not removed since, with what it saw.
    owned: HashMap<PublicKey, Seen>,
}

/// What the reconciler saw of one owned peer at its last call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    /// The store's choice, when the call ended without error.
    store: Option<SocketAddr>,
    /// The evidence last handed to the store: the endpoint and the handshake time.
    handed: Option<(SocketAddr, SystemTime)>,
}

/// What one [`Reconciler::reconcile`] call did. Every list is sorted by key.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Peers added to the device.
    pub added: Vec<PublicKey>,
    /// Peers reconfigured, with what changed.
    pub updated: Vec<PeerUpdate>,
    /// Peers removed from the device.
    pub removed: Vec<PublicKey>,
    /// Managed peers the device already had as the store says (a peer whose roamed endpoint
    /// was left, and nothing else differed, counts here too).
    pub unchanged: Vec<PublicKey>,
    /// Managed peers whose device endpoint was left against the store's choice (the roaming
    /// rule).
    pub roams: Vec<Roam>,
    /// Device peers neither managed nor owned: left exactly as they are.
    pub foreign: Vec<PublicKey>,
}

impl ReconcileReport {
    /// How many peers the batch changed: added, updated and removed.
    #[must_use]
    pub fn changes(&self) -> usize {
        self.added.len() + self.updated.len() + self.removed.len()
    }

    /// Whether nothing was sent to the device.
    #[must_use]
    pub fn is_unchanged(&self) -> bool {
        self.changes() == 0
    }
}

impl std::fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} updated, {} removed, {} unchanged, {} roamed, {} foreign",
            self.added.len(),
            self.updated.len(),
            self.removed.len(),
            self.unchanged.len(),
            self.roams.len(),
            self.foreign.len()
        )
    }
}

/// One peer the reconciler reconfigured, and what it changed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUpdate {
    /// The peer.
    pub public_key: PublicKey,
    /// The endpoint written, if the endpoint changed: `(device's before, store's choice)`.
    pub endpoint: Option<(Option<SocketAddr>, SocketAddr)>,
    /// Whether the allowed IPs were replaced.
    pub allowed_ips: bool,
    /// Whether the keepalive was set.
    pub persistent_keepalive: bool,
}

/// A peer whose device endpoint the reconciler left against the store's choice, because the
/// device's is newer (see the [module documentation](self)).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roam {
    /// The peer.
    pub public_key: PublicKey,
    /// The device's endpoint, left as it is.
    pub device: SocketAddr,
    /// The store's choice, not written.
    pub store: SocketAddr,
    /// Whether this call handed the device's endpoint to the store
    /// ([`PeerStore::confirm`] with [`Evidence::Handshake`]); `false` when the same evidence
    /// was handed over before.
    pub handed_over: bool,
    /// What `confirm` answered: the store took it as a candidate (resilient policy).
    pub taken: bool,
}

impl Reconciler {
    /// A reconciler that owns no peer yet.
    #[must_use]
    pub fn new(settings: ReconcileSettings) -> Self {
        Reconciler {
            settings,
            owned: HashMap::new(),
        }
    }

    /// The settings it was made with.
    #[must_use]
    pub fn settings(&self) -> &ReconcileSettings {
        &self.settings
    }

    /// The keys it owns now: those it added or configured and has not removed since, sorted
    /// (what a daemon saves to give the next run as [`ReconcileSettings::owned`]).
    #[must_use]
    pub fn owned(&self) -> Vec<PublicKey> {
        let mut keys: Vec<_> = self.owned.keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// Makes `device`'s peers match `store`'s active peers, in one batch of only what
    /// differs, and says what it did. See the [module documentation](self) for the rules.
    ///
    /// # Errors
    ///
    /// The device's peers cannot be read (nothing is sent then), or the batch is refused
    /// ([`Device::apply`]'s errors; a keepalive outside 1 to 65,535 whole seconds is refused
    /// before anything is sent).
    pub fn reconcile(
        &mut self,
        store: &PeerStore,
        device: &dyn Device,
    ) -> Result<ReconcileReport, DeviceError> {
        let on_device: HashMap<PublicKey, DevicePeer> = device
            .peers()?
            .into_iter()
            .map(|peer| (peer.public_key, peer))
            .collect();
        let mut active: Vec<_> = store
            .get_active()
            .into_iter()
            .filter(|peer| !self.settings.unmanaged.contains(&peer.public_key))
            .collect();
        active.sort_unstable_by_key(|peer| peer.public_key);

        let mut report = ReconcileReport::default();
        let mut changes = Vec::new();
        let mut next: HashMap<PublicKey, Seen> = HashMap::with_capacity(active.len());
        for peer in &active {
            let key = peer.public_key;
            let wanted = allowed_ips(peer);
            let keepalive = self.settings.persistent_keepalive;
            let store_endpoint = peer.endpoint.map(canonical_endpoint);
            let previous = self.owned.get(&key).copied();
            let mut seen = Seen {
                store: store_endpoint,
                handed: previous.and_then(|seen| seen.handed),
            };
            let Some(current) = on_device.get(&key) else {
                let mut config = PeerConfig::new(key);
                config.endpoint = store_endpoint;
                config.allowed_ips = wanted;
                config.persistent_keepalive = keepalive;
                changes.push(PeerChange::Set(config));
                report.added.push(key);
                next.insert(key, seen);
                continue;
            };

            let device_endpoint = current.endpoint.map(canonical_endpoint);
            let mut write_endpoint = None;
            if let Some(chosen) = store_endpoint
                && device_endpoint != Some(chosen)
            {
                match roamed(store, peer, chosen, current, device_endpoint, previous) {
                    Some(roamed_to) => {
                        let evidence = current.last_handshake.map(|at| (roamed_to, at));
                        let fresh = evidence.is_some() && evidence != seen.handed;
                        let taken = fresh && store.confirm(&key, roamed_to, Evidence::Handshake);
                        if fresh {
                            seen.handed = evidence;
                        }
                        report.roams.push(Roam {
                            public_key: key,
                            device: roamed_to,
                            store: chosen,
                            handed_over: fresh,
                            taken,
                        });
                    }
                    None => write_endpoint = Some(chosen),
                }
            }
            let allowed_differ = normalized(&current.allowed_ips) != wanted_sorted(&wanted);
            let keepalive_differs = current.persistent_keepalive != keepalive;
            if write_endpoint.is_some() || allowed_differ || keepalive_differs {
                let mut config = PeerConfig::new(key);
                config.endpoint = write_endpoint;
                config.allowed_ips = wanted;
                config.persistent_keepalive = keepalive;
                changes.push(PeerChange::Set(config));
                report.updated.push(PeerUpdate {
                    public_key: key,
                    endpoint: write_endpoint.map(|to| (device_endpoint, to)),
                    allowed_ips: allowed_differ,
                    persistent_keepalive: keepalive_differs,
                });
            } else {
                report.unchanged.push(key);
            }
            next.insert(key, seen);
        }

        let managed: HashSet<PublicKey> = active.iter().map(|peer| peer.public_key).collect();
        let mut leftover: Vec<&DevicePeer> = on_device
            .values()
            .filter(|peer| !managed.contains(&peer.public_key))
            .collect();
        leftover.sort_unstable_by_key(|peer| peer.public_key);
        for peer in leftover {
            let key = peer.public_key;
            if !self.settings.unmanaged.contains(&key) && self.owns(peer) {
                changes.push(PeerChange::Remove(key));
                report.removed.push(key);
            } else {
                report.foreign.push(key);
            }
        }

        // Owned from the moment the batch is sent: a refused batch may have added some.
        for key in &report.added {
            self.owned.entry(*key).or_default();
        }
        if !changes.is_empty()
            && let Err(error) = device.apply(&changes)
        {
            for change in &changes {
                if let Some(seen) = self.owned.get_mut(&change.public_key()) {
                    seen.store = None;
                }
            }
            return Err(error);
        }
        for key in &report.removed {
            self.owned.remove(key);
        }
        self.owned.extend(next);
        Ok(report)
    }

    /// Whether a device peer the store does not manage is this reconciler's to remove.
    fn owns(&self, peer: &DevicePeer) -> bool {
        let key = peer.public_key;
        if self.owned.contains_key(&key) || self.settings.owned.contains(&key) {
            return true;
        }
        let networks = &self.settings.owned_networks;
        !peer.allowed_ips.is_empty()
            && peer
                .allowed_ips
                .iter()
                .all(|ip| networks.iter().any(|net| net.contains(ip)))
    }
}

/// The device's endpoint, if the roaming rule leaves it (see the module documentation).
fn roamed(
    store: &PeerStore,
    peer: &Peer,
    chosen: SocketAddr,
    current: &DevicePeer,
    device_endpoint: Option<SocketAddr>,
    previous: Option<Seen>,
) -> Option<SocketAddr> {
    let device_endpoint = device_endpoint?;
    let handshake = current.last_handshake?;
    if previous.is_some_and(|seen| seen.store == Some(chosen)) {
        return Some(device_endpoint);
    }
    (handshake > latest_news(store, peer, chosen)).then_some(device_endpoint)
}

/// When the store last heard anything for its choice: the chosen candidate's latest report or
/// confirmation under the resilient policy, the peer's `last_seen` under the ranked one.
fn latest_news(store: &PeerStore, peer: &Peer, chosen: SocketAddr) -> SystemTime {
    store
        .candidates(&peer.public_key)
        .into_iter()
        .find(|candidate| candidate.endpoint == chosen)
        .and_then(|candidate| {
            candidate
                .reports
                .iter()
                .map(|(_, at)| *at)
                .chain(candidate.confirmed)
                .max()
        })
        .unwrap_or(peer.last_seen)
}

/// The allowed IPs a peer gets: its mesh addresses as host routes, then its routable
/// networks, host bits cleared, each once, in that order.
#[must_use]
pub fn allowed_ips(peer: &Peer) -> Vec<IpNet> {
    let hosts = peer
        .mesh_ip
        .map(|ip| IpNet::from(std::net::IpAddr::V4(ip)))
        .into_iter()
        .chain(
            peer.mesh_ipv6
                .map(|ip| IpNet::from(std::net::IpAddr::V6(ip))),
        );
    let mut out: Vec<IpNet> = Vec::with_capacity(2 + peer.routable_networks.len());
    for net in hosts.chain(peer.routable_networks.iter().map(IpNet::trunc)) {
        if out.len() < MAX_ALLOWED_IPS && !out.contains(&net) {
            out.push(net);
        }
    }
    out
}

/// A device's allowed IPs as a set, to compare with what the store wants.
fn normalized(ips: &[IpNet]) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = ips.iter().map(IpNet::trunc).collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn wanted_sorted(wanted: &[IpNet]) -> Vec<IpNet> {
    let mut out = wanted.to_vec();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::fake::FakeDevice;
    use crate::{Clock, DiscoveryMethod, EndpointPolicy, EndpointRule, ManualClock, PeerInfo};

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    /// Peer `n` announced on the LAN at `endpoint`, mesh addresses 10.99.0.n and fd99::n.
    fn announce(store: &PeerStore, n: u8, endpoint: &str) {
        let mut info = PeerInfo::new(key(n));
        info.endpoint = Some(addr(endpoint));
        info.mesh_ip = Some(std::net::Ipv4Addr::new(10, 99, 0, n));
        info.mesh_ipv6 = Some(format!("fd99::{n}").parse().unwrap());
        store.update(info, DiscoveryMethod::Lan).unwrap();
    }

    fn stores() -> (ManualClock, PeerStore, PeerStore) {
        let clock = ManualClock::new();
        let ranked = PeerStore::builder()
            .clock(clock.clone())
            .endpoint_history(16)
            .build()
            .unwrap();
        let resilient = PeerStore::builder()
            .clock(clock.clone())
            .endpoint_policy(EndpointPolicy::resilient())
            .endpoint_history(16)
            .build()
            .unwrap();
        (clock, ranked, resilient)
    }

    fn store() -> (ManualClock, PeerStore) {
        let (clock, ranked, _) = stores();
        (clock, ranked)
    }

    #[test]
    fn missing_peers_are_added_with_what_the_store_says_and_then_left_alone() {
        let (_, store) = store();
        announce(&store, 1, "192.0.2.1:51820");
        let mut info = PeerInfo::new(key(2));
        info.mesh_ip = Some("10.99.0.2".parse().unwrap());
        info.routable_networks = vec![net("192.168.7.9/24"), net("10.99.0.2/32")].into();
        store.update(info, DiscoveryMethod::Dht).unwrap();
        let device = FakeDevice::new();
        let mut reconciler = Reconciler::new(ReconcileSettings::default());

        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.added, [key(1), key(2)]);
        assert_eq!(report.changes(), 2);
        assert_eq!(device.batches().len(), 1, "one batch");
        let one = device.peer(key(1)).unwrap();
        assert_eq!(one.endpoint, Some(addr("192.0.2.1:51820")));
        assert_eq!(one.allowed_ips, [net("10.99.0.1/32"), net("fd99::1/128")]);
        assert_eq!(one.persistent_keepalive, Some(Duration::from_secs(25)));
        let two = device.peer(key(2)).unwrap();
        assert_eq!(two.endpoint, None, "no endpoint known: none given");
        assert_eq!(
            two.allowed_ips,
            [net("10.99.0.2/32"), net("192.168.7.0/24")],
            "host bits cleared, each once"
        );

        let again = reconciler.reconcile(&store, &device).unwrap();
        assert!(again.is_unchanged(), "{again:?}");
        assert_eq!(again.unchanged, [key(1), key(2)]);
        assert_eq!(
            device.batches().len(),
            1,
            "nothing sent when nothing differs"
        );
        assert_eq!(reconciler.owned(), [key(1), key(2)]);
        assert_eq!(
            again.to_string(),
            "0 added, 0 updated, 0 removed, 2 unchanged, 0 roamed, 0 foreign"
        );
    }

    #[test]
    fn only_what_differs_is_sent() {
        let (_, store) = store();
        announce(&store, 1, "192.0.2.1:51820");
        announce(&store, 2, "192.0.2.2:51820");
        let device = FakeDevice::new();
        let mut reconciler = Reconciler::new(ReconcileSettings::default());
        reconciler.reconcile(&store, &device).unwrap();

        // The device lists allowed IPs in its own order: not a difference.
        device.with(key(2), |peer| peer.allowed_ips.reverse());
        // Peer 1 routes a LAN now.
        let mut info = PeerInfo::new(key(1));
        info.routable_networks = vec![net("192.168.1.0/24")].into();
        store.update(info, DiscoveryMethod::Lan).unwrap();

        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.unchanged, [key(2)]);
        assert_eq!(
            report.updated,
            [PeerUpdate {
                public_key: key(1),
                endpoint: None,
                allowed_ips: true,
                persistent_keepalive: false,
            }]
        );
        let batch = device.batches().pop().unwrap();
        let [PeerChange::Set(config)] = batch.as_slice() else {
            panic!("{batch:?}");
        };
        assert_eq!(config.public_key, key(1));
        assert_eq!(config.endpoint, None, "the endpoint is not rewritten");
        assert_eq!(
            config.allowed_ips,
            [
                net("10.99.0.1/32"),
                net("fd99::1/128"),
                net("192.168.1.0/24")
            ]
        );

        // A keepalive set by hand is set back.
        device.with(key(2), |peer| peer.persistent_keepalive = None);
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.updated.len(), 1);
        assert!(report.updated[0].persistent_keepalive && !report.updated[0].allowed_ips);
        assert_eq!(
            device.peer(key(2)).unwrap().persistent_keepalive,
            Some(Duration::from_secs(25))
        );

        // The store moves peer 2 (a newer LAN announcement): its endpoint is written.
        announce(&store, 2, "192.0.2.22:51820");
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(
            report.updated[0].endpoint,
            Some((Some(addr("192.0.2.2:51820")), addr("192.0.2.22:51820")))
        );
        assert_eq!(
            device.peer(key(2)).unwrap().endpoint,
            Some(addr("192.0.2.22:51820"))
        );
    }

    #[test]
    fn peers_no_longer_active_are_removed_and_hand_made_ones_left_alone() {
        let (clock, store) = store();
        announce(&store, 1, "192.0.2.1:51820");
        announce(&store, 2, "192.0.2.2:51820");
        announce(&store, 3, "192.0.2.3:51820");
        let device = FakeDevice::new();
        // By hand: a peer the store never heard of, one inside the mesh's range, one a
        // previous run owned, and the node's own key, which discovery echoes back.
        let mut by_hand = DevicePeer::new(key(9));
        by_hand.allowed_ips = vec![net("0.0.0.0/0")];
        device.insert(by_hand.clone());
        let mut in_range = DevicePeer::new(key(8));
        in_range.allowed_ips = vec![net("10.99.0.8/32")];
        device.insert(in_range);
        device.insert(DevicePeer::new(key(7)));
        let settings = ReconcileSettings {
            owned_networks: vec![net("10.99.0.0/24"), net("fd99::/64")],
            owned: [key(7)].into(),
            unmanaged: [key(3)].into(),
            ..ReconcileSettings::default()
        };
        let mut reconciler = Reconciler::new(settings);

        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(
            report.added,
            [key(1), key(2)],
            "the unmanaged key is not added"
        );
        assert_eq!(report.removed, [key(7), key(8)]);
        assert_eq!(report.foreign, [key(9)]);
        assert_eq!(device.peer(key(9)), Some(by_hand.clone()), "untouched");

        // Peer 2 is removed from the store, peer 1 goes silent: both leave the device.
        store.remove(&key(2));
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.removed, [key(2)]);
        clock.advance(crate::PEER_DEAD_TIMEOUT + Duration::from_secs(1));
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.removed, [key(1)]);
        assert_eq!(report.foreign, [key(9)]);
        let keys: Vec<_> = device
            .peers()
            .unwrap()
            .iter()
            .map(|p| p.public_key)
            .collect();
        assert_eq!(keys, [key(9)]);
        assert!(reconciler.owned().is_empty());

        // The unmanaged key, put on the device by hand while the store holds it: untouched.
        announce(&store, 3, "192.0.2.3:51820");
        device.insert(DevicePeer::new(key(3)));
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert!(report.is_unchanged());
        assert_eq!(report.foreign, [key(3), key(9)]);
        assert_eq!(device.peer(key(3)), Some(DevicePeer::new(key(3))));
    }

    #[test]
    fn a_hand_made_peer_outside_the_rules_is_never_removed() {
        let (_, store) = store();
        let device = FakeDevice::new();
        let mut partly = DevicePeer::new(key(5));
        // One network inside the mesh's range, one outside: not the mesh's.
        partly.allowed_ips = vec![net("10.99.0.5/32"), net("192.168.0.0/16")];
        device.insert(partly);
        device.insert(DevicePeer::new(key(6)));
        let settings = ReconcileSettings {
            owned_networks: vec![net("10.99.0.0/24")],
            ..ReconcileSettings::default()
        };
        let mut reconciler = Reconciler::new(settings);
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.foreign, [key(5), key(6)]);
        assert!(device.batches().is_empty());
    }

    /// A roam under the resilient policy: the device's newer endpoint is left, handed over,
    /// taken by the store as trusted, and the next call finds nothing to do.
    #[test]
    fn a_roam_is_left_and_handed_to_the_resilient_store() {
        let (clock, _, store) = stores();
        announce(&store, 1, "192.0.2.1:51820");
        let device = FakeDevice::new();
        let mut reconciler = Reconciler::new(ReconcileSettings::default());
        reconciler.reconcile(&store, &device).unwrap();
        clock.advance(Duration::from_secs(1));
        device.handshake(key(1), addr("192.0.2.1:51820"), clock.wall_now());
        reconciler.reconcile(&store, &device).unwrap();

        // A NAT rebinding: WireGuard follows the peer to a new port; the stale address is
        // still announced, after the roam.
        clock.advance(Duration::from_secs(1));
        let rebound = addr("192.0.2.1:40001");
        device.with(key(1), |peer| peer.endpoint = Some(rebound));
        clock.advance(Duration::from_secs(1));
        announce(&store, 1, "192.0.2.1:51820");
        let batches = device.batches().len();
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(
            report.roams,
            [Roam {
                public_key: key(1),
                device: rebound,
                store: addr("192.0.2.1:51820"),
                handed_over: true,
                taken: true,
            }]
        );
        assert_eq!(report.unchanged, [key(1)]);
        assert_eq!(device.batches().len(), batches, "nothing written back");
        assert_eq!(device.peer(key(1)).unwrap().endpoint, Some(rebound));

        let peer = store.get(&key(1)).unwrap();
        assert_eq!(peer.endpoint, Some(rebound), "the store follows");
        assert!(peer.proven);
        let candidate = store
            .candidates(&key(1))
            .into_iter()
            .find(|c| c.endpoint == rebound)
            .unwrap();
        assert!(candidate.trusted && candidate.confirmed.is_some());
        let last = store.endpoint_history(&key(1)).pop().unwrap();
        assert_eq!((last.to, last.rule), (rebound, EndpointRule::Trusted));

        // Announced again, the stale address does not displace the trusted one.
        announce(&store, 1, "192.0.2.1:51820");
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert!(
            report.roams.is_empty() && report.is_unchanged(),
            "{report:?}"
        );
    }

    /// Under the ranked policy the store keeps its endpoint; the reconciler still leaves the
    /// device's newer one, call after call, announcement after announcement, until the
    /// store's choice itself changes.
    #[test]
    fn a_roam_is_left_under_the_ranked_policy_until_the_store_moves() {
        let (clock, store) = store();
        announce(&store, 1, "192.0.2.1:51820");
        let device = FakeDevice::new();
        let mut reconciler = Reconciler::new(ReconcileSettings::default());
        reconciler.reconcile(&store, &device).unwrap();
        clock.advance(Duration::from_secs(1));
        let rebound = addr("192.0.2.1:40001");
        device.handshake(key(1), rebound, clock.wall_now());

        let batches = device.batches().len();
        for round in 0..3 {
            clock.advance(Duration::from_secs(5));
            announce(&store, 1, "192.0.2.1:51820");
            let report = reconciler.reconcile(&store, &device).unwrap();
            assert_eq!(report.roams.len(), 1, "round {round}: {report:?}");
            let roam = &report.roams[0];
            assert_eq!(roam.device, rebound);
            assert!(!roam.taken, "the ranked store keeps its endpoint");
            assert_eq!(roam.handed_over, round == 0, "the same evidence once");
        }
        assert_eq!(device.batches().len(), batches, "never written back");
        assert_eq!(
            store.get(&key(1)).unwrap().endpoint,
            Some(addr("192.0.2.1:51820"))
        );
        assert!(
            store.get(&key(1)).unwrap().proven,
            "the handshake proved it"
        );

        // The peer announces a new address, after the last handshake: that is pushed.
        clock.advance(Duration::from_secs(1));
        announce(&store, 1, "192.0.2.77:51820");
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert!(report.roams.is_empty());
        assert_eq!(
            report.updated[0].endpoint,
            Some((Some(rebound), addr("192.0.2.77:51820")))
        );
    }

    #[test]
    fn an_endpoint_without_a_newer_handshake_is_written_back() {
        let (clock, store) = store();
        announce(&store, 1, "192.0.2.1:51820");
        let device = FakeDevice::new();
        // Never shook hands, at a stale address someone wrote: not a roam.
        let mut stale = DevicePeer::new(key(1));
        stale.endpoint = Some(addr("192.0.2.99:51820"));
        device.insert(stale);
        let mut reconciler = Reconciler::new(ReconcileSettings::default());
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert!(report.roams.is_empty());
        assert_eq!(
            device.peer(key(1)).unwrap().endpoint,
            Some(addr("192.0.2.1:51820"))
        );

        // A fresh reconciler (no memory of the device's moves): a handshake older than the
        // store's news of its choice loses.
        let at = clock.wall_now();
        device.handshake(key(1), addr("192.0.2.99:51820"), at);
        clock.advance(Duration::from_secs(1));
        announce(&store, 1, "192.0.2.1:51820");
        let mut fresh = Reconciler::new(ReconcileSettings::default());
        let report = fresh.reconcile(&store, &device).unwrap();
        assert!(report.roams.is_empty(), "{report:?}");
        assert_eq!(
            device.peer(key(1)).unwrap().endpoint,
            Some(addr("192.0.2.1:51820"))
        );
        // ...and a handshake newer than it wins.
        clock.advance(Duration::from_secs(1));
        device.handshake(key(1), addr("192.0.2.99:51820"), clock.wall_now());
        let report = Reconciler::new(ReconcileSettings::default())
            .reconcile(&store, &device)
            .unwrap();
        assert_eq!(report.roams.len(), 1, "{report:?}");
    }

    #[test]
    fn a_refused_batch_is_an_error_and_its_peers_stay_owned() {
        let (_, store) = store();
        announce(&store, 1, "192.0.2.1:51820");
        let device = FakeDevice::new();
        *device.refuse_next.lock().unwrap() = true;
        let mut reconciler = Reconciler::new(ReconcileSettings::default());
        let err = reconciler.reconcile(&store, &device).unwrap_err();
        assert!(matches!(err, DeviceError::Errno { .. }), "{err:?}");
        assert_eq!(reconciler.owned(), [key(1)]);
        // Suppose part of it was applied after all: the peer is the reconciler's to remove.
        device.insert(DevicePeer::new(key(1)));
        store.remove(&key(1));
        let report = reconciler.reconcile(&store, &device).unwrap();
        assert_eq!(report.removed, [key(1)]);

        // A keepalive the device cannot take is refused before anything is sent.
        announce(&store, 2, "192.0.2.2:51820");
        let settings = ReconcileSettings {
            persistent_keepalive: Some(Duration::from_millis(1500)),
            ..ReconcileSettings::default()
        };
        let err = Reconciler::new(settings)
            .reconcile(&store, &device)
            .unwrap_err();
        assert!(matches!(err, DeviceError::InvalidChange { .. }), "{err:?}");
        assert!(device.peer(key(2)).is_none());
    }

    #[test]
    fn allowed_ips_are_the_mesh_addresses_then_the_networks() {
        let mut peer = Peer::new(key(1), SystemTime::UNIX_EPOCH);
        assert!(allowed_ips(&peer).is_empty());
        peer.mesh_ipv6 = Some("fd99::1".parse().unwrap());
        peer.mesh_ip = Some("10.99.0.1".parse().unwrap());
        peer.routable_networks = vec![net("10.0.0.0/8"), net("10.0.0.1/8")].into();
        assert_eq!(
            allowed_ips(&peer),
            [net("10.99.0.1/32"), net("fd99::1/128"), net("10.0.0.0/8")]
        );
    }
}
