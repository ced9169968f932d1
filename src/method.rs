//! How a peer was discovered, how much its endpoint is trusted, and its NAT type.

use std::fmt;
use std::str::FromStr;

/// How an announcement reached us. The method decides how much its endpoint is trusted
/// ([`rank`](Self::rank)) and whether it proves the peer is alive ([`refreshes_last_seen`](Self::refreshes_last_seen)).
///
/// A name this crate does not know becomes [`DiscoveryMethod::Other`], so a newer node
/// announcing a new method is still heard (at the lowest direct rank), if it is a
/// [`MethodName`]: at most [`MAX_METHOD_NAME_LEN`] bytes of ASCII letters, digits and
/// `-_.:/`. Names are not case-sensitive, and a built-in method's name is that method
/// however it is spelled: there is no `Other("lan")`.
///
/// ```
/// use peerstore::DiscoveryMethod;
///
/// let lan: DiscoveryMethod = "lan".parse()?;
/// assert_eq!(lan, DiscoveryMethod::Lan);
/// assert!(lan.rank() > DiscoveryMethod::Dht.rank());
/// assert_eq!(DiscoveryMethod::other("LAN")?, DiscoveryMethod::Lan);
/// let mdns = DiscoveryMethod::other("mDNS")?;
/// assert!(matches!(&mdns, DiscoveryMethod::Other(name) if name.as_str() == "mdns"));
/// assert!(DiscoveryMethod::other("lan\x1b[31m").is_err());
/// assert_eq!(DiscoveryMethod::DhtRendezvous.to_string(), "dht-rendezvous");
/// # Ok::<(), peerstore::InvalidMethodName>(())
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
    Other(MethodName),
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
            DiscoveryMethod::Other(name) => name.as_str(),
        }
    }

    /// The method a wire name stands for: a built-in method's name (in any case) is that
    /// method, any other valid [`MethodName`] is an [`Other`](Self::Other). The same as
    /// `name.parse()`.
    ///
    /// # Errors
    ///
    /// [`InvalidMethodName`] for a name that is empty, longer than [`MAX_METHOD_NAME_LEN`]
    /// bytes, or holds anything but ASCII letters, digits and `-_.:/`.
    pub fn other(name: &str) -> Result<Self, InvalidMethodName> {
        check_method_name(name)?;
        Ok(DiscoveryMethod::BUILT_IN
            .iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
            .cloned()
            .unwrap_or_else(|| {
                DiscoveryMethod::Other(MethodName(name.to_ascii_lowercase().into()))
            }))
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

impl FromStr for DiscoveryMethod {
    type Err = InvalidMethodName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DiscoveryMethod::other(name)
    }
}

/// The longest name of an [`Other`](DiscoveryMethod::Other) method, in bytes. With at most
/// [`MAX_OTHER_METHODS`](crate::MAX_OTHER_METHODS) names in a peer's `discovered_via` and one
/// more as its `endpoint_method`, a peer's method names take at most
/// 9 × 64 = 576 bytes of heap (plus an allocator's rounding of each).
pub const MAX_METHOD_NAME_LEN: usize = 64;

/// The name of a discovery method this crate does not know: 1 to [`MAX_METHOD_NAME_LEN`]
/// bytes of lowercase ASCII letters, digits and `-_.:/`, never a built-in method's name.
/// Made only by [`DiscoveryMethod::other`] (or `parse`), so an unusable name cannot reach the
/// store.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MethodName(Box<str>);

impl MethodName {
    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A method name that cannot be one: the error names the field (`method`) and shows the value
/// escaped, cut short if long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMethodName {
    /// The name, escaped and cut to a readable length.
    shown: String,
    /// Its length in bytes.
    len: usize,
}

impl InvalidMethodName {
    /// The refused name, escaped (`\u{1b}` for an escape character) and cut short past 80
    /// characters.
    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for InvalidMethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "method \"{}\" ({} bytes) is not a method name: 1 to {MAX_METHOD_NAME_LEN} bytes of \
             ASCII letters, digits and -_.:/",
            self.shown, self.len
        )
    }
}

impl std::error::Error for InvalidMethodName {}

fn check_method_name(name: &str) -> Result<(), InvalidMethodName> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b);
    if !name.is_empty() && name.len() <= MAX_METHOD_NAME_LEN && name.bytes().all(allowed) {
        return Ok(());
    }
    /// Past this many characters a refused name is shown cut short.
    const SHOWN: usize = 80;
    let mut shown: String = name
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    Err(InvalidMethodName {
        shown,
        len: name.len(),
    })
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
                DiscoveryMethod::other(v).map_err(E::custom)
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
            assert_eq!(DiscoveryMethod::other(m.as_str()).as_ref(), Ok(m));
            assert_eq!(m.to_string().parse::<DiscoveryMethod>(), Ok(m.clone()));
            let shouted = m.as_str().to_ascii_uppercase();
            assert_eq!(
                DiscoveryMethod::other(&shouted).as_ref(),
                Ok(m),
                "{shouted}"
            );
        }
        let other = DiscoveryMethod::other("carrier-pigeon").unwrap();
        assert!(matches!(&other, DiscoveryMethod::Other(_)));
        assert_eq!(other.as_str(), "carrier-pigeon");
        assert_eq!(DiscoveryMethod::other("Carrier-Pigeon"), Ok(other));
    }

    #[test]
    fn ranks_follow_the_trust_order() {
        let ranks: Vec<u8> = KNOWN.iter().map(DiscoveryMethod::rank).collect();
        assert_eq!(ranks, [100, 90, 70, 65, 40, 35, 20]);
        assert_eq!(DiscoveryMethod::other("x").unwrap().rank(), 30);
    }

    #[test]
    fn only_direct_methods_refresh() {
        let refreshing: Vec<bool> = KNOWN
            .iter()
            .map(super::DiscoveryMethod::refreshes_last_seen)
            .collect();
        assert_eq!(refreshing, [true, true, true, true, false, false, false]);
        assert!(DiscoveryMethod::other("x").unwrap().refreshes_last_seen());
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

    /// `Other("lan")` after `Lan` gave `discovered_via` `["lan", "lan"]`, an escape
    /// sequence in a name reached the replay's table raw, and names of 1 MiB were kept whole.
    #[test]
    fn method_names_are_short_printable_ascii_and_never_a_built_in_spelling() {
        for good in [
            "mdns",
            "plugin.v2",
            "k8s:svc/mesh",
            "a_b-c",
            &"x".repeat(64),
        ] {
            assert!(DiscoveryMethod::other(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "lan\x1b[31m",
            "two words",
            "tab\t",
            "caf\u{e9}",
            &"x".repeat(65),
        ] {
            let err = DiscoveryMethod::other(bad).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("method \""), "{message}");
            assert!(
                !message.contains('\x1b') && !message.contains('\t'),
                "{message:?}"
            );
        }
        let huge = "y".repeat(1 << 20);
        let err = DiscoveryMethod::other(&huge).unwrap_err();
        assert!(
            err.to_string().len() < 300,
            "a refused name is shown cut short"
        );
        assert!(err.to_string().contains("1048576 bytes"), "{err}");
        assert_eq!(
            DiscoveryMethod::other("lan\x1b[31m").unwrap_err().shown(),
            "lan\\u{1b}[31m"
        );
    }
}
