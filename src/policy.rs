//! The merge policy: which endpoint wins and how an announcement folds into a record.
//!
//! Everything here is a pure function of its arguments: no locks, no clock, no store. The store
//! asks [`decide_endpoint`] and [`plan`] what to do and applies the answer in one step, so a
//! record is never left half-merged.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::{DiscoveryMethod, MethodSet, Peer, PeerInfo};

/// Why an endpoint was taken or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointRule {
    /// The peer had no endpoint: any endpoint is better than none.
    FirstEndpoint,
    /// The new method outranks the one that set the current endpoint.
    HigherRank,
    /// The new method ranks below the one that set the current endpoint.
    LowerRank,
    /// The current endpoint came from the LAN and only a newer LAN discovery replaces it.
    LanSticky,
    /// Equal rank: an IPv6 endpoint replaces an IPv4 one, and IPv4 never replaces IPv6.
    Ipv6Preferred,
    /// Equal rank, same address family: the newer endpoint wins.
    Newer,
}

impl EndpointRule {
    /// A short name for tables and logs, such as `"higher rank"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndpointRule::FirstEndpoint => "first endpoint",
            EndpointRule::HigherRank => "higher rank",
            EndpointRule::LowerRank => "lower rank",
            EndpointRule::LanSticky => "LAN sticky",
            EndpointRule::Ipv6Preferred => "IPv6 preferred",
            EndpointRule::Newer => "newer at equal rank",
        }
    }
}

impl fmt::Display for EndpointRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`decide_endpoint`]: whether the candidate endpoint is taken, and the rule
/// that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointDecision {
    /// Whether the candidate replaces the current endpoint.
    pub accepted: bool,
    /// The rule that decided.
    pub rule: EndpointRule,
}

/// Decides whether `new`, learned by `method`, replaces the `current` endpoint (with the method
/// that set it), and says which rule decided. See [`should_update_endpoint`] for the rules.
pub fn decide_endpoint(
    current: Option<(SocketAddr, &DiscoveryMethod)>,
    new: SocketAddr,
    method: &DiscoveryMethod,
) -> EndpointDecision {
    let decide = |accepted, rule| EndpointDecision { accepted, rule };
    let Some((current, current_method)) = current else {
        return decide(true, EndpointRule::FirstEndpoint);
    };
    let (old_rank, new_rank) = (current_method.rank(), method.rank());
    if new_rank > old_rank {
        return decide(true, EndpointRule::HigherRank);
    }
    if new_rank < old_rank {
        // Nothing outranks the LAN, so a LAN endpoint is only ever replaced by the LAN.
        let rule = if *current_method == DiscoveryMethod::Lan {
            EndpointRule::LanSticky
        } else {
            EndpointRule::LowerRank
        };
        return decide(false, rule);
    }
    match (is_ipv6(current), is_ipv6(new)) {
        (true, false) => decide(false, EndpointRule::Ipv6Preferred),
        (false, true) => decide(true, EndpointRule::Ipv6Preferred),
        _ => decide(true, EndpointRule::Newer),
    }
}

/// Whether an endpoint `new` learned by `method` replaces the `current` one.
///
/// - No current endpoint: any endpoint is taken.
/// - A higher [rank](DiscoveryMethod::rank) wins; a lower one loses. Nothing outranks the LAN,
///   so a LAN endpoint is sticky: only a newer LAN discovery replaces it.
/// - At equal rank the newer endpoint wins, except that IPv4 never replaces IPv6 (and IPv6
///   does replace IPv4). An IPv4-mapped IPv6 address counts as IPv4.
///
/// ```
/// use peerstore::{should_update_endpoint, DiscoveryMethod as M};
///
/// let v4 = "198.51.100.7:51820".parse().unwrap();
/// let v6 = "[2001:db8::7]:51820".parse().unwrap();
/// assert!(should_update_endpoint(None, v4, &M::Cache));
/// assert!(should_update_endpoint(Some((v4, &M::Dht)), v6, &M::Lan));
/// assert!(!should_update_endpoint(Some((v6, &M::Lan)), v4, &M::DhtRendezvous));
/// assert!(!should_update_endpoint(Some((v6, &M::Dht)), v4, &M::Dht));
/// assert!(should_update_endpoint(Some((v4, &M::Dht)), v6, &M::Dht));
/// ```
pub fn should_update_endpoint(
    current: Option<(SocketAddr, &DiscoveryMethod)>,
    new: SocketAddr,
    method: &DiscoveryMethod,
) -> bool {
    decide_endpoint(current, new, method).accepted
}

fn is_ipv6(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_ipv6()
}

/// Which fields of a stored peer an announcement changes. Built by [`plan`] from shared
/// references, applied by [`apply`]: deciding never mutates, applying never fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub endpoint: bool,
    pub mesh_ip: bool,
    pub mesh_ipv6: bool,
    pub hostname: bool,
    pub routable_networks: bool,
    pub introducer: bool,
    pub nat_type: bool,
    pub discovered_via: bool,
}

impl Plan {
    /// Whether anything a consumer acts on changes.
    pub fn changes(&self) -> bool {
        *self != Plan::default()
    }
}

/// Works out what `info`, heard by `method`, changes in `peer`.
pub(crate) fn plan(peer: &Peer, info: &PeerInfo, method: &DiscoveryMethod) -> Plan {
    fn differs<T: PartialEq>(new: &Option<T>, old: &Option<T>) -> bool {
        new.is_some() && new != old
    }
    let endpoint = info.endpoint.is_some_and(|new| {
        let current = peer.endpoint.zip(peer.endpoint_method.as_ref());
        decide_endpoint(current, new, method).accepted
            && (peer.endpoint != Some(new) || peer.endpoint_method.as_ref() != Some(method))
    });
    Plan {
        endpoint,
        mesh_ip: differs(&info.mesh_ip, &peer.mesh_ip),
        mesh_ipv6: differs(&info.mesh_ipv6, &peer.mesh_ipv6),
        hostname: info.hostname.as_ref().is_some_and(|h| !h.is_empty())
            && info.hostname != peer.hostname,
        routable_networks: !info.routable_networks.is_empty()
            && info.routable_networks != peer.routable_networks,
        introducer: info.introducer != peer.introducer,
        nat_type: differs(&info.nat_type, &peer.nat_type),
        discovered_via: peer.discovered_via.would_insert(method),
    }
}

/// Applies a [`Plan`] made from the same `info` and `method`, swapping the new values in:
/// `info` is left holding the values they replaced, for the caller to free after it released
/// the record's lock.
pub(crate) fn apply(peer: &mut Peer, info: &mut PeerInfo, method: DiscoveryMethod, plan: Plan) {
    if plan.endpoint {
        peer.endpoint = info.endpoint;
        peer.endpoint_method = Some(method.clone());
    }
    if plan.mesh_ip {
        peer.mesh_ip = info.mesh_ip;
    }
    if plan.mesh_ipv6 {
        peer.mesh_ipv6 = info.mesh_ipv6;
    }
    if plan.hostname {
        std::mem::swap(&mut peer.hostname, &mut info.hostname);
    }
    if plan.routable_networks {
        std::mem::swap(&mut peer.routable_networks, &mut info.routable_networks);
    }
    peer.introducer = info.introducer;
    if plan.nat_type {
        peer.nat_type = info.nat_type;
    }
    if plan.discovered_via {
        peer.discovered_via.insert(method);
    }
}

/// The record a first announcement makes, moving out of `info` what it keeps.
pub(crate) fn first(info: &mut PeerInfo, method: DiscoveryMethod, last_seen: SystemTime) -> Peer {
    let has_endpoint = info.endpoint.is_some();
    Peer {
        public_key: info.public_key,
        endpoint: info.endpoint,
        endpoint_method: has_endpoint.then(|| method.clone()),
        mesh_ip: info.mesh_ip,
        mesh_ipv6: info.mesh_ipv6,
        hostname: info.hostname.take().filter(|h| !h.is_empty()),
        routable_networks: std::mem::take(&mut info.routable_networks),
        introducer: info.introducer,
        nat_type: info.nat_type,
        discovered_via: MethodSet::from(method),
        last_seen,
        latency: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiscoveryMethod as M;
    use crate::{CompactString, PublicKey};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_the_rule_that_decided() {
        let v4 = addr("198.51.100.1:51820");
        let v4b = addr("198.51.100.2:51820");
        let v6 = addr("[2001:db8::1]:51820");
        let mapped = addr("[::ffff:198.51.100.3]:51820");
        let cases = [
            (None, v4, M::Cache, true, EndpointRule::FirstEndpoint),
            (
                Some((v4, M::Dht)),
                v4b,
                M::Lan,
                true,
                EndpointRule::HigherRank,
            ),
            (
                Some((v4, M::Dht)),
                v4b,
                M::Gossip,
                false,
                EndpointRule::LowerRank,
            ),
            (
                Some((v4, M::Lan)),
                v6,
                M::DhtRendezvous,
                false,
                EndpointRule::LanSticky,
            ),
            (Some((v4, M::Lan)), v4b, M::Lan, true, EndpointRule::Newer),
            (
                Some((v6, M::Lan)),
                v4,
                M::Lan,
                false,
                EndpointRule::Ipv6Preferred,
            ),
            (
                Some((v4, M::Dht)),
                v6,
                M::Dht,
                true,
                EndpointRule::Ipv6Preferred,
            ),
            (
                Some((v6, M::Dht)),
                mapped,
                M::Dht,
                false,
                EndpointRule::Ipv6Preferred,
            ),
            (
                Some((v4, M::Other("a".into()))),
                v4b,
                M::Other("b".into()),
                true,
                EndpointRule::Newer,
            ),
            (
                Some((v4, M::Cache)),
                v4b,
                M::Other("b".into()),
                true,
                EndpointRule::HigherRank,
            ),
        ];
        for (current, new, method, accepted, rule) in cases {
            let current = current.as_ref().map(|(a, m)| (*a, m));
            let got = decide_endpoint(current, new, &method);
            assert_eq!(
                got,
                EndpointDecision { accepted, rule },
                "{current:?} <- {new} by {method}"
            );
            assert_eq!(should_update_endpoint(current, new, &method), accepted);
        }
    }

    #[test]
    fn plan_and_apply_agree_on_what_changes() {
        let key = PublicKey::from_bytes([1; 32]);
        let mut info = PeerInfo::new(key);
        info.endpoint = Some(addr("198.51.100.1:51820"));
        info.hostname = Some("a".into());
        let mut peer = first(&mut info.clone(), M::Dht, SystemTime::UNIX_EPOCH);
        assert!(!plan(&peer, &info, &M::Dht).changes());

        // Empty values say nothing; a higher method re-announcing the same endpoint takes it over.
        let mut again = PeerInfo::new(key);
        again.endpoint = info.endpoint;
        again.hostname = Some(CompactString::default());
        let p = plan(&peer, &again, &M::Lan);
        assert_eq!(
            p,
            Plan {
                endpoint: true,
                discovered_via: true,
                ..Plan::default()
            }
        );
        apply(&mut peer, &mut again, M::Lan, p);
        assert_eq!(peer.endpoint_method, Some(M::Lan));
        assert_eq!(peer.hostname.as_deref(), Some("a"));
        assert_eq!(peer.discovered_via, [M::Dht, M::Lan]);
    }

    #[test]
    fn first_record_ignores_an_empty_hostname_and_sets_no_method_without_endpoint() {
        let mut info = PeerInfo::new(PublicKey::from_bytes([2; 32]));
        info.hostname = Some(CompactString::default());
        let peer = first(&mut info, M::Gossip, SystemTime::UNIX_EPOCH);
        assert_eq!(peer.hostname, None);
        assert_eq!(peer.endpoint_method, None);
        assert_eq!(peer.discovered_via, [M::Gossip]);
    }
}
