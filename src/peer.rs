//! What an announcement says about a peer ([`PeerInfo`]), what the store holds ([`Peer`]), and
//! which announcements are refused ([`InvalidPeerInfo`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::{DiscoveryMethod, Hostname, MethodSet, NatType, PublicKey, RoutableNetworks};

/// One announcement about a peer: the input of [`PeerStore::update`](crate::PeerStore::update).
///
/// Empty fields (`None`, an empty hostname, no networks) leave what the store knows untouched.
///
/// ```
/// use peerstore::{PeerInfo, PublicKey};
///
/// let mut info = PeerInfo::new(PublicKey::from_bytes([7; 32]));
/// info.endpoint = Some("198.51.100.7:51820".parse().unwrap());
/// info.hostname = Some("edge-1".into());
/// info.routable_networks = vec!["192.168.7.0/24".parse().unwrap()].into();
/// assert!(info.mesh_ip.is_none());
/// assert_eq!(info.hostname.as_deref(), Some("edge-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PeerInfo {
    /// The peer's WireGuard public key: the store's key (the one field JSON must carry).
    pub public_key: PublicKey,
    /// Where the peer can be reached, if the announcement says.
    #[cfg_attr(feature = "serde", serde(default))]
    pub endpoint: Option<SocketAddr>,
    /// The peer's IPv4 address inside the mesh.
    #[cfg_attr(feature = "serde", serde(default))]
    pub mesh_ip: Option<Ipv4Addr>,
    /// The peer's IPv6 address inside the mesh.
    #[cfg_attr(feature = "serde", serde(default))]
    pub mesh_ipv6: Option<Ipv6Addr>,
    /// The peer's host name.
    #[cfg_attr(feature = "serde", serde(default))]
    pub hostname: Option<Hostname>,
    /// Networks the peer routes for the mesh.
    #[cfg_attr(feature = "serde", serde(default))]
    pub routable_networks: RoutableNetworks,
    /// Whether the peer introduces others (always taken from the latest announcement).
    #[cfg_attr(feature = "serde", serde(default))]
    pub introducer: bool,
    /// The NAT the peer says it sits behind.
    #[cfg_attr(feature = "serde", serde(default))]
    pub nat_type: Option<NatType>,
    /// When the peer was last seen, as a wall-clock time, for announcements that carry one (a
    /// cache file, a second-hand report). `None` means now. Times in the future count as now.
    #[cfg_attr(feature = "serde", serde(default))]
    pub last_seen: Option<SystemTime>,
}

impl PeerInfo {
    /// An announcement of `public_key` that says nothing else.
    #[must_use]
    pub fn new(public_key: PublicKey) -> Self {
        PeerInfo {
            public_key,
            endpoint: None,
            mesh_ip: None,
            mesh_ipv6: None,
            hostname: None,
            routable_networks: RoutableNetworks::new(),
            introducer: false,
            nat_type: None,
            last_seen: None,
        }
    }

    /// Checks what the store refuses to hold.
    ///
    /// # Errors
    ///
    /// The first refused field, as an [`InvalidPeerInfo`] that names it and its value (the
    /// rules are its variants').
    pub fn validate(&self) -> Result<(), InvalidPeerInfo> {
        if let Some(endpoint) = self.endpoint {
            check_endpoint(endpoint)?;
        }
        if let Some(hostname) = &self.hostname {
            check_hostname(hostname)?;
        }
        if self.routable_networks.len() > MAX_ROUTABLE_NETWORKS {
            return Err(InvalidPeerInfo::TooManyRoutableNetworks {
                count: self.routable_networks.len(),
            });
        }
        Ok(())
    }
}

/// A snapshot of one peer as the store holds it.
///
/// Snapshots are shared (`Arc<Peer>`) and immutable: the store builds a new one when the peer
/// changes, so holding one never blocks the store and never sees a half-applied update.
/// Fields may be added: outside the crate a `Peer` is built with [`Peer::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Peer {
    /// The peer's WireGuard public key.
    pub public_key: PublicKey,
    /// The endpoint chosen by [`should_update_endpoint`](crate::should_update_endpoint).
    pub endpoint: Option<SocketAddr>,
    /// The method that set [`endpoint`](Self::endpoint).
    pub endpoint_method: Option<DiscoveryMethod>,
    /// The peer's IPv4 address inside the mesh.
    pub mesh_ip: Option<Ipv4Addr>,
    /// The peer's IPv6 address inside the mesh.
    pub mesh_ipv6: Option<Ipv6Addr>,
    /// The peer's host name.
    pub hostname: Option<Hostname>,
    /// Networks the peer routes for the mesh.
    pub routable_networks: RoutableNetworks,
    /// Whether the peer introduces others.
    pub introducer: bool,
    /// The NAT the peer sits behind.
    pub nat_type: Option<NatType>,
    /// Every method the peer was heard by, in first-heard order, without duplicates.
    pub discovered_via: MethodSet,
    /// When the peer was last heard from directly (or as a cache or second-hand report said).
    pub last_seen: SystemTime,
    /// The round-trip time the health monitor measured, if any.
    pub latency: Option<Duration>,
}

impl Peer {
    /// A peer known by its key alone, last seen at `last_seen`: for a caller's own records
    /// and tests (the store builds its peers from announcements).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use peerstore::{Peer, PublicKey};
    ///
    /// let mut peer = Peer::new(PublicKey::from_bytes([7; 32]), SystemTime::UNIX_EPOCH);
    /// peer.hostname = Some("edge-7".into());
    /// assert!(peer.endpoint.is_none() && peer.discovered_via.is_empty());
    /// ```
    #[must_use]
    pub fn new(public_key: PublicKey, last_seen: SystemTime) -> Self {
        Peer {
            public_key,
            endpoint: None,
            endpoint_method: None,
            mesh_ip: None,
            mesh_ipv6: None,
            hostname: None,
            routable_networks: RoutableNetworks::new(),
            introducer: false,
            nat_type: None,
            discovered_via: MethodSet::new(),
            last_seen,
            latency: None,
        }
    }

    /// The endpoint and the method that set it, as
    /// [`decide_endpoint`](crate::decide_endpoint) takes them.
    #[must_use]
    pub fn current_endpoint(&self) -> Option<(SocketAddr, &DiscoveryMethod)> {
        self.endpoint.zip(self.endpoint_method.as_ref())
    }
}

/// The most routable networks one peer may announce: a bound on what one record can cost.
pub const MAX_ROUTABLE_NETWORKS: usize = 256;
/// The longest host name, in bytes (the DNS limit).
pub const MAX_HOSTNAME_LEN: usize = 253;

/// Why the store refused an announcement. Each names the field and the value; the stored
/// record is left exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidPeerInfo {
    /// The endpoint cannot be sent to: unspecified (`0.0.0.0`, `::`), multicast, broadcast, or port 0.
    Endpoint {
        /// The refused endpoint.
        endpoint: SocketAddr,
        /// What is wrong with it.
        reason: EndpointProblem,
    },
    /// The host name is longer than [`MAX_HOSTNAME_LEN`] bytes.
    HostnameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The host name holds whitespace or a control character.
    HostnameCharacter {
        /// The refused host name.
        hostname: String,
        /// The first offending character.
        found: char,
    },
    /// More than [`MAX_ROUTABLE_NETWORKS`] routable networks.
    TooManyRoutableNetworks {
        /// How many were announced.
        count: usize,
    },
}

/// What makes an endpoint unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointProblem {
    /// `0.0.0.0` or `::`.
    Unspecified,
    /// A multicast group address.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Port 0.
    PortZero,
}

impl InvalidPeerInfo {
    /// The name of the refused field, as in [`PeerInfo`].
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            InvalidPeerInfo::Endpoint { .. } => "endpoint",
            InvalidPeerInfo::HostnameTooLong { .. } | InvalidPeerInfo::HostnameCharacter { .. } => {
                "hostname"
            }
            InvalidPeerInfo::TooManyRoutableNetworks { .. } => "routable_networks",
        }
    }
}

impl fmt::Display for InvalidPeerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidPeerInfo::Endpoint { endpoint, reason } => {
                let why = match reason {
                    EndpointProblem::Unspecified => "an unspecified address",
                    EndpointProblem::Multicast => "a multicast address",
                    EndpointProblem::Broadcast => "the broadcast address",
                    EndpointProblem::PortZero => "port 0",
                };
                write!(f, "endpoint {endpoint} is {why}, which cannot reach a peer")
            }
            InvalidPeerInfo::HostnameTooLong { len } => write!(
                f,
                "hostname is {len} bytes long, over the limit of {MAX_HOSTNAME_LEN}"
            ),
            InvalidPeerInfo::HostnameCharacter { hostname, found } => write!(
                f,
                "hostname {hostname:?} holds {found:?}; whitespace and control characters are not allowed"
            ),
            InvalidPeerInfo::TooManyRoutableNetworks { count } => write!(
                f,
                "routable_networks has {count} entries, over the limit of {MAX_ROUTABLE_NETWORKS}"
            ),
        }
    }
}

impl std::error::Error for InvalidPeerInfo {}

fn check_endpoint(endpoint: SocketAddr) -> Result<(), InvalidPeerInfo> {
    // An IPv4-mapped IPv6 address is the IPv4 address it maps.
    let ip = endpoint.ip().to_canonical();
    let reason = if ip.is_unspecified() {
        Some(EndpointProblem::Unspecified)
    } else if ip.is_multicast() {
        Some(EndpointProblem::Multicast)
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some(EndpointProblem::Broadcast)
    } else if endpoint.port() == 0 {
        Some(EndpointProblem::PortZero)
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InvalidPeerInfo::Endpoint { endpoint, reason }),
        None => Ok(()),
    }
}

fn check_hostname(hostname: &str) -> Result<(), InvalidPeerInfo> {
    if hostname.len() > MAX_HOSTNAME_LEN {
        return Err(InvalidPeerInfo::HostnameTooLong {
            len: hostname.len(),
        });
    }
    // Most names are plain ASCII: printable bytes only, no need to decode characters.
    if hostname.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    match hostname
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        Some(found) => Err(InvalidPeerInfo::HostnameCharacter {
            hostname: hostname.to_owned(),
            found,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_endpoint(s: &str) -> PeerInfo {
        PeerInfo {
            endpoint: Some(s.parse().unwrap()),
            ..PeerInfo::new(PublicKey::from_bytes([1; 32]))
        }
    }

    #[test]
    fn refuses_unusable_endpoints_and_names_them() {
        for (addr, problem) in [
            ("0.0.0.0:51820", EndpointProblem::Unspecified),
            ("[::]:51820", EndpointProblem::Unspecified),
            ("[::ffff:0.0.0.0]:51820", EndpointProblem::Unspecified),
            ("224.0.0.1:51820", EndpointProblem::Multicast),
            ("[ff02::1]:51820", EndpointProblem::Multicast),
            ("255.255.255.255:51820", EndpointProblem::Broadcast),
            ("198.51.100.1:0", EndpointProblem::PortZero),
        ] {
            let err = with_endpoint(addr).validate().unwrap_err();
            assert_eq!(err.field(), "endpoint");
            assert!(matches!(err, InvalidPeerInfo::Endpoint { reason, .. } if reason == problem));
            let shown: SocketAddr = addr.parse().unwrap();
            assert!(err.to_string().contains(&shown.to_string()), "{err}");
        }
        assert_eq!(with_endpoint("198.51.100.1:51820").validate(), Ok(()));
        assert_eq!(with_endpoint("[2001:db8::1]:51820").validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_hostnames() {
        let mut info = PeerInfo::new(PublicKey::from_bytes([1; 32]));
        info.hostname = Some("a".repeat(MAX_HOSTNAME_LEN).into());
        assert_eq!(info.validate(), Ok(()));
        info.hostname = Some("a".repeat(MAX_HOSTNAME_LEN + 1).into());
        let err = info.validate().unwrap_err();
        assert_eq!(err.field(), "hostname");
        assert!(err.to_string().contains("254"), "{err}");
        for bad in ["two words", "tab\there", "nul\0", "bell\u{7}", "nbsp\u{a0}"] {
            info.hostname = Some(bad.into());
            let err = info.validate().unwrap_err();
            assert_eq!(err.field(), "hostname", "{bad:?}");
        }
        info.hostname = Some(Hostname::default());
        assert_eq!(info.validate(), Ok(()));
    }

    #[test]
    fn caps_routable_networks() {
        let mut info = PeerInfo::new(PublicKey::from_bytes([1; 32]));
        info.routable_networks = vec!["10.0.0.0/8".parse().unwrap(); MAX_ROUTABLE_NETWORKS].into();
        assert_eq!(info.validate(), Ok(()));
        info.routable_networks.push("10.0.0.0/8".parse().unwrap());
        let err = info.validate().unwrap_err();
        assert_eq!(err.field(), "routable_networks");
        assert!(err.to_string().contains("257"), "{err}");
    }
}
