//! The crate's own types for a peer's host name and routable networks. They speak std
//! (`&str`, `String`, `[IpNet]`, `Vec<IpNet>`); how they are stored is a private detail: short
//! names and a typical peer's networks are held inline, so an announcement is copied, kept
//! and freed without the allocator.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use compact_str::CompactString;
use ipnet::IpNet;
use smallvec::SmallVec;

/// A peer's host name, as [`PeerInfo::hostname`](crate::PeerInfo::hostname) and
/// [`Peer::hostname`](crate::Peer::hostname) hold it. Built from a `&str` or a `String`, read
/// as a `&str`, compared with either.
///
/// ```
/// use peerstore::Hostname;
///
/// let name = Hostname::from("edge-7");
/// assert_eq!(name, "edge-7");
/// assert_eq!(name.len(), 6); // a `str` method, through `Deref`
/// let owned: Hostname = format!("edge-{}", 8).into();
/// assert_eq!(owned.as_str(), "edge-8");
/// assert_eq!(String::from(owned), "edge-8");
/// ```
///
/// Which names the store accepts is [`PeerInfo::validate`](crate::PeerInfo::validate)'s
/// business: any string converts.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct Hostname(CompactString);

impl Hostname {
    /// The name as a `&str`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Hostname {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Hostname {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Hostname {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Hostname {
    fn from(name: &str) -> Self {
        Hostname(name.into())
    }
}

impl From<String> for Hostname {
    fn from(name: String) -> Self {
        Hostname(name.into())
    }
}

impl From<&String> for Hostname {
    fn from(name: &String) -> Self {
        Hostname(name.as_str().into())
    }
}

impl From<Hostname> for String {
    fn from(name: Hostname) -> Self {
        name.0.into_string()
    }
}

impl FromStr for Hostname {
    type Err = std::convert::Infallible;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Hostname::from(name))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Compares a host name with the std forms of a string, both ways round.
macro_rules! str_equality {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for Hostname {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }

        impl PartialEq<Hostname> for $other {
            fn eq(&self, other: &Hostname) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}

str_equality!(str, &str, String);

/// How many networks a peer holds without a heap allocation: a LAN's IPv4 and IPv6 prefixes,
/// the most a typical peer routes.
const INLINE_ROUTABLE_NETWORKS: usize = 2;

/// The networks a peer routes for the mesh, in the order announced, as
/// [`PeerInfo::routable_networks`](crate::PeerInfo::routable_networks) and
/// [`Peer::routable_networks`](crate::Peer::routable_networks) hold them. Built from a
/// `Vec<IpNet>`, an array or an iterator, read as a `&[IpNet]`, compared with either.
///
/// ```
/// use peerstore::{IpNet, RoutableNetworks};
///
/// let lan: IpNet = "192.168.7.0/24".parse()?;
/// let mut networks = RoutableNetworks::from(vec![lan]);
/// networks.push("fd00:7::/64".parse()?);
/// assert_eq!(networks.len(), 2); // a slice method, through `Deref`
/// assert_eq!(networks[0], lan);
/// assert_eq!(networks.into_vec(), ["192.168.7.0/24".parse()?, "fd00:7::/64".parse::<IpNet>()?]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// How many the store accepts is [`PeerInfo::validate`](crate::PeerInfo::validate)'s business.
#[derive(Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct RoutableNetworks(SmallVec<[IpNet; INLINE_ROUTABLE_NETWORKS]>);

/// A copy of the slice: `IpNet` is `Copy`, and `SmallVec`'s own `Clone` pushes one network
/// at a time (a third of what cloning a typical announcement costs).
impl Clone for RoutableNetworks {
    fn clone(&self) -> Self {
        RoutableNetworks(SmallVec::from_slice(&self.0))
    }
}

impl RoutableNetworks {
    /// No networks.
    #[must_use]
    pub fn new() -> Self {
        RoutableNetworks::default()
    }

    /// Adds a network at the end.
    pub fn push(&mut self, network: IpNet) {
        self.0.push(network);
    }

    /// Removes every network.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The networks as a slice.
    #[must_use]
    pub fn as_slice(&self) -> &[IpNet] {
        &self.0
    }

    /// The networks as a `Vec`.
    #[must_use]
    pub fn into_vec(self) -> Vec<IpNet> {
        self.0.into_vec()
    }
}

impl Deref for RoutableNetworks {
    type Target = [IpNet];

    fn deref(&self) -> &[IpNet] {
        &self.0
    }
}

impl AsRef<[IpNet]> for RoutableNetworks {
    fn as_ref(&self) -> &[IpNet] {
        &self.0
    }
}

impl From<Vec<IpNet>> for RoutableNetworks {
    fn from(networks: Vec<IpNet>) -> Self {
        RoutableNetworks(SmallVec::from_vec(networks))
    }
}

impl From<&[IpNet]> for RoutableNetworks {
    fn from(networks: &[IpNet]) -> Self {
        RoutableNetworks(SmallVec::from_slice(networks))
    }
}

impl<const N: usize> From<[IpNet; N]> for RoutableNetworks {
    fn from(networks: [IpNet; N]) -> Self {
        networks.into_iter().collect()
    }
}

impl From<RoutableNetworks> for Vec<IpNet> {
    fn from(networks: RoutableNetworks) -> Self {
        networks.into_vec()
    }
}

impl FromIterator<IpNet> for RoutableNetworks {
    fn from_iter<I: IntoIterator<Item = IpNet>>(networks: I) -> Self {
        RoutableNetworks(networks.into_iter().collect())
    }
}

impl Extend<IpNet> for RoutableNetworks {
    fn extend<I: IntoIterator<Item = IpNet>>(&mut self, networks: I) {
        self.0.extend(networks);
    }
}

impl<'a> IntoIterator for &'a RoutableNetworks {
    type Item = &'a IpNet;
    type IntoIter = std::slice::Iter<'a, IpNet>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for RoutableNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<[IpNet]> for RoutableNetworks {
    fn eq(&self, other: &[IpNet]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[IpNet]> for RoutableNetworks {
    fn eq(&self, other: &&[IpNet]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[IpNet; N]> for RoutableNetworks {
    fn eq(&self, other: &[IpNet; N]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<IpNet>> for RoutableNetworks {
    fn eq(&self, other: &Vec<IpNet>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<RoutableNetworks> for Vec<IpNet> {
    fn eq(&self, other: &RoutableNetworks) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_speaks_std() {
        let name: Hostname = "alpha".parse().unwrap();
        assert_eq!(name, "alpha");
        assert_eq!("alpha", name);
        assert_eq!(name, String::from("alpha"));
        assert_eq!(format!("{name} {name:?}"), "alpha \"alpha\"");
        let long = "gateway-frankfurt-3.backbone.example.mesh";
        let held = Hostname::from(long.to_owned());
        assert!(held.0.is_heap_allocated(), "the long case is the heap's");
        assert_eq!(held.as_str(), long);
        assert!(!Hostname::from("edge-7").0.is_heap_allocated());
        let set: std::collections::HashSet<Hostname> = [name].into_iter().collect();
        assert!(set.contains("alpha"), "found by &str through Borrow");
    }

    #[test]
    fn networks_speak_std() {
        let nets: Vec<IpNet> = ["10.0.0.0/8", "fd00::/8", "192.168.0.0/16"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let held = RoutableNetworks::from(nets.clone());
        assert!(held.0.spilled(), "the long case is the heap's");
        assert!(!RoutableNetworks::from(&nets[..2]).0.spilled());
        assert_eq!(held, nets);
        assert_eq!(nets, held);
        assert_eq!(held, nets.as_slice());
        assert_eq!(held.iter().copied().collect::<RoutableNetworks>(), held);
        assert_eq!(format!("{held:?}"), format!("{nets:?}"));
        assert_eq!(Vec::from(held), nets);
        assert!(RoutableNetworks::new().is_empty());
    }
}
