//! How a peer was discovered, how much its endpoint is trusted, and its NAT type.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// How an announcement reached us. The method decides how much its endpoint is trusted
/// ([`rank`](Self::rank)) and whether it proves the peer is alive ([`refreshes_last_seen`](Self::refreshes_last_seen)).
///
/// Every name parses: names this crate does not know become [`DiscoveryMethod::Other`], so a
/// newer node announcing a new method is still heard (at the lowest direct rank).
///
/// ```
/// use peerstore::DiscoveryMethod;
///
/// let lan: DiscoveryMethod = "lan".parse().unwrap();
/// assert_eq!(lan, DiscoveryMethod::Lan);
/// assert!(lan.rank() > DiscoveryMethod::Dht.rank());
/// assert_eq!(DiscoveryMethod::from("mdns"), DiscoveryMethod::Other("mdns".into()));
/// assert_eq!(DiscoveryMethod::DhtRendezvous.to_string(), "dht-rendezvous");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DiscoveryMethod {
    /// LAN multicast: the peer is on our link. The most trusted endpoint, and sticky.
    Lan,
    /// A DHT rendezvous after a NAT hole punch: the endpoint was just proven to work.
    DhtRendezvous,
    /// A DHT lookup.
    Dht,
    /// Gossip from a peer inside the mesh about itself.
    Gossip,
    /// A peer mentioned second-hand in DHT results.
    DhtTransitive,
    /// A peer mentioned second-hand in gossip.
    GossipTransitive,
    /// Restored from the on-disk peer cache at start-up.
    Cache,
    /// Any other method, by its wire name.
    Other(String),
}

impl DiscoveryMethod {
    /// Every method but [`Other`](Self::Other), from the most trusted to the least: the one
    /// list of them.
    pub const BUILT_IN: &'static [DiscoveryMethod] = &[
        DiscoveryMethod::Lan,
        DiscoveryMethod::DhtRendezvous,
        DiscoveryMethod::Dht,
        DiscoveryMethod::Gossip,
        DiscoveryMethod::DhtTransitive,
        DiscoveryMethod::GossipTransitive,
        DiscoveryMethod::Cache,
    ];

    /// The method's wire name: `"lan"`, `"dht-rendezvous"`, `"dht"`, `"gossip"`,
    /// `"dht-transitive"`, `"gossip-transitive"`, `"cache"`, or the name an `Other` carries.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            DiscoveryMethod::Lan => "lan",
            DiscoveryMethod::DhtRendezvous => "dht-rendezvous",
            DiscoveryMethod::Dht => "dht",
            DiscoveryMethod::Gossip => "gossip",
            DiscoveryMethod::DhtTransitive => "dht-transitive",
            DiscoveryMethod::GossipTransitive => "gossip-transitive",
            DiscoveryMethod::Cache => "cache",
            DiscoveryMethod::Other(name) => name,
        }
    }

    /// How much an endpoint learned this way is trusted; a higher rank replaces a lower one.
    ///
    /// | method | rank |
    /// |---|---|
    /// | lan | 100 |
    /// | dht-rendezvous | 90 |
    /// | dht | 70 |
    /// | gossip | 65 |
    /// | dht-transitive | 40 |
    /// | gossip-transitive | 35 |
    /// | any other name | 30 |
    /// | cache | 20 |
    #[must_use]
    pub fn rank(&self) -> u8 {
        match self {
            DiscoveryMethod::Lan => 100,
            DiscoveryMethod::DhtRendezvous => 90,
            DiscoveryMethod::Dht => 70,
            DiscoveryMethod::Gossip => 65,
            DiscoveryMethod::DhtTransitive => 40,
            DiscoveryMethod::GossipTransitive => 35,
            DiscoveryMethod::Other(_) => 30,
            DiscoveryMethod::Cache => 20,
        }
    }

    /// Whether hearing of a peer this way proves it is alive now. Second-hand reports and the
    /// cache do not: they would keep a dead peer alive forever.
    #[must_use]
    pub fn refreshes_last_seen(&self) -> bool {
        !matches!(
            self,
            DiscoveryMethod::Cache
                | DiscoveryMethod::DhtTransitive
                | DiscoveryMethod::GossipTransitive
        )
    }
}

impl From<&str> for DiscoveryMethod {
    fn from(name: &str) -> Self {
        match name {
            "lan" => DiscoveryMethod::Lan,
            "dht-rendezvous" => DiscoveryMethod::DhtRendezvous,
            "dht" => DiscoveryMethod::Dht,
            "gossip" => DiscoveryMethod::Gossip,
            "dht-transitive" => DiscoveryMethod::DhtTransitive,
            "gossip-transitive" => DiscoveryMethod::GossipTransitive,
            "cache" => DiscoveryMethod::Cache,
            other => DiscoveryMethod::Other(other.to_owned()),
        }
    }
}

impl FromStr for DiscoveryMethod {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DiscoveryMethod::from(s))
    }
}

impl fmt::Display for DiscoveryMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for DiscoveryMethod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for DiscoveryMethod {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MethodVisitor;
        impl serde::de::Visitor<'_> for MethodVisitor {
            type Value = DiscoveryMethod;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a discovery method name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DiscoveryMethod, E> {
                Ok(DiscoveryMethod::from(v))
            }
        }
        deserializer.deserialize_str(MethodVisitor)
    }
}

/// The kind of NAT a peer sits behind, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum NatType {
    /// Endpoint-independent mapping: a hole punch works.
    Cone,
    /// Endpoint-dependent mapping: a hole punch usually fails.
    Symmetric,
    /// The peer could not tell. A value like the others: it overwrites a known type.
    Unknown,
}

impl NatType {
    /// The wire name: `"cone"`, `"symmetric"` or `"unknown"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            NatType::Cone => "cone",
            NatType::Symmetric => "symmetric",
            NatType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for NatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A NAT type name that is not `cone`, `symmetric` or `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNatTypeError {
    found: String,
}

impl ParseNatTypeError {
    /// The name that did not parse.
    #[must_use]
    pub fn found(&self) -> &str {
        &self.found
    }
}

impl fmt::Display for ParseNatTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nat_type {:?} is not one of \"cone\", \"symmetric\", \"unknown\"",
            self.found
        )
    }
}

impl std::error::Error for ParseNatTypeError {}

impl FromStr for NatType {
    type Err = ParseNatTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cone" => Ok(NatType::Cone),
            "symmetric" => Ok(NatType::Symmetric),
            "unknown" => Ok(NatType::Unknown),
            other => Err(ParseNatTypeError {
                found: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[DiscoveryMethod] = DiscoveryMethod::BUILT_IN;

    #[test]
    fn wire_names_round_trip() {
        for m in KNOWN {
            assert_eq!(DiscoveryMethod::from(m.as_str()), *m);
            assert_eq!(m.to_string().parse::<DiscoveryMethod>(), Ok(m.clone()));
        }
        let other = DiscoveryMethod::from("carrier-pigeon");
        assert_eq!(other, DiscoveryMethod::Other("carrier-pigeon".into()));
        assert_eq!(other.as_str(), "carrier-pigeon");
    }

    #[test]
    fn ranks_follow_the_trust_order() {
        let ranks: Vec<u8> = KNOWN.iter().map(DiscoveryMethod::rank).collect();
        assert_eq!(ranks, [100, 90, 70, 65, 40, 35, 20]);
        assert_eq!(DiscoveryMethod::Other("x".into()).rank(), 30);
    }

    #[test]
    fn only_direct_methods_refresh() {
        let refreshing: Vec<bool> = KNOWN
            .iter()
            .map(super::DiscoveryMethod::refreshes_last_seen)
            .collect();
        assert_eq!(refreshing, [true, true, true, true, false, false, false]);
        assert!(DiscoveryMethod::Other("x".into()).refreshes_last_seen());
    }

    #[test]
    fn nat_type_names() {
        for t in [NatType::Cone, NatType::Symmetric, NatType::Unknown] {
            assert_eq!(t.as_str().parse::<NatType>(), Ok(t));
        }
        let err = "full-cone".parse::<NatType>().unwrap_err();
        assert_eq!(err.found(), "full-cone");
        assert!(err.to_string().contains("full-cone"));
    }
}
