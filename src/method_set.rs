//! The methods a peer was heard by: a small ordered set kept inside the peer itself.

use std::fmt;

use crate::DiscoveryMethod;

/// The most [`DiscoveryMethod::Other`] names one peer records. Past it a new name is not
/// recorded, so a peer's record stays bounded whatever names a daemon's plugins invent.
pub const MAX_OTHER_METHODS: usize = 8;

/// The built-in methods, in the order of their codes (code = index + 1), where the set's
/// iterator can lend them from.
static BUILT_IN: &[DiscoveryMethod] = DiscoveryMethod::BUILT_IN;

/// The first code of an `Other` name: `others[code - FIRST_OTHER]`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the assertion below holds every code under 16"
)]
pub(crate) const FIRST_OTHER: u8 = DiscoveryMethod::BUILT_IN.len() as u8 + 1;

const _: () = assert!(std::mem::size_of::<MethodSet>() <= 32);

// Every code is a non-zero nibble, and the set's word holds one nibble per method it can hold.
const _: () = {
    let codes = DiscoveryMethod::BUILT_IN.len() + MAX_OTHER_METHODS;
    assert!(
        codes <= 15,
        "a code must fit a nibble, and zero marks the end"
    );
    assert!(
        codes * 4 <= u64::BITS as usize,
        "every code must fit the set's word"
    );
    let mut i = 0;
    while i < DiscoveryMethod::BUILT_IN.len() {
        assert!(
            matches!(built_in_code(&DiscoveryMethod::BUILT_IN[i]), Some(code) if code as usize == i + 1)
        );
        i += 1;
    }
};

/// How many codes `codes` holds: they are contiguous from the lowest bits and none is zero.
fn count(codes: u64) -> usize {
    ((u64::BITS - codes.leading_zeros()) as usize).div_ceil(4)
}

/// A built-in method's code, its place in [`DiscoveryMethod::BUILT_IN`] plus one (checked
/// when the crate is compiled); `None` for an `Other` name.
pub(crate) const fn built_in_code(method: &DiscoveryMethod) -> Option<u8> {
    Some(match method {
        DiscoveryMethod::Lan => 1,
        DiscoveryMethod::DhtRendezvous => 2,
        DiscoveryMethod::Dht => 3,
        DiscoveryMethod::Gossip => 4,
        DiscoveryMethod::DhtTransitive => 5,
        DiscoveryMethod::GossipTransitive => 6,
        DiscoveryMethod::Cache => 7,
        DiscoveryMethod::Other(_) => return None,
    })
}

/// The built-in method of a [`built_in_code`] (1 to the number of built-in methods).
pub(crate) fn built_in_method(code: u8) -> &'static DiscoveryMethod {
    &BUILT_IN[usize::from(code.saturating_sub(1))]
}

/// Whether any of the 4-bit codes in `codes` is `code` (1 to 15), all sixteen compared at
/// once: a code equal to `code` is a zero nibble of the XOR, and the bit trick that follows is
/// non-zero exactly when some nibble is zero (a nibble's top bit survives `& !x` only if the
/// nibble was below 8, and the subtraction sets it only by borrowing, which starts at a zero).
fn has_code(codes: u64, code: u8) -> bool {
    const ONES: u64 = 0x1111_1111_1111_1111;
    const TOPS: u64 = 0x8888_8888_8888_8888;
    let x = codes ^ ONES.wrapping_mul(u64::from(code));
    x.wrapping_sub(ONES) & !x & TOPS != 0
}

/// Every method a peer was heard by, in first-heard order, without duplicates
/// ([`Peer::discovered_via`](crate::Peer::discovered_via)).
///
/// The set lives inside the peer, one word of codes and an empty list (asserted to stay within
/// 32 bytes), and allocates nothing for the built-in methods: each is a 4-bit code, in the
/// order heard. A [`DiscoveryMethod::Other`] name is kept beside
/// them, up to [`MAX_OTHER_METHODS`] names.
///
/// ```
/// use peerstore::{DiscoveryMethod as M, MethodSet};
///
/// let mut via = MethodSet::from(M::Dht);
/// assert!(via.insert(M::Lan));
/// assert!(!via.insert(M::Dht), "already there");
/// let mdns = M::other("mdns")?;
/// assert!(via.insert(mdns.clone()));
/// assert_eq!(via, [M::Dht, M::Lan, mdns]);
/// assert!(via.contains(&M::Lan) && !via.contains(&M::Cache));
/// let names: Vec<&str> = via.iter().map(M::as_str).collect();
/// assert_eq!(names, ["dht", "lan", "mdns"]);
/// # Ok::<(), peerstore::InvalidMethodName>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct MethodSet {
    /// One 4-bit code per method, the first heard in the lowest bits: [`built_in_code`] for a
    /// built-in method, [`FIRST_OTHER`] + i for `others[i]`; zero past the last.
    codes: u64,
    /// The `Other` names, in the order heard.
    others: Vec<DiscoveryMethod>,
}

impl MethodSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        MethodSet::default()
    }

    /// How many methods the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        count(self.codes)
    }

    /// Whether the set holds no method.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.codes == 0
    }

    /// Whether the set holds `method`.
    #[must_use]
    #[inline]
    pub fn contains(&self, method: &DiscoveryMethod) -> bool {
        match built_in_code(method) {
            Some(code) => has_code(self.codes, code),
            None => self.others.contains(method),
        }
    }

    /// Adds `method` after the others; `false` if it was there already, or if it is an `Other`
    /// name and the set holds [`MAX_OTHER_METHODS`] names.
    pub fn insert(&mut self, method: DiscoveryMethod) -> bool {
        if !self.would_insert(&method) {
            return false;
        }
        let code = match built_in_code(&method) {
            Some(code) => code,
            None => {
                // Names are rare and few: grow by one, not to the four a `Vec` starts with.
                self.others.reserve_exact(1);
                self.others.push(method);
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "at most MAX_OTHER_METHODS names, asserted to fit a code"
                )]
                let index = self.others.len() as u8;
                FIRST_OTHER - 1 + index
            }
        };
        self.codes |= u64::from(code) << (4 * self.len());
        true
    }

    /// Whether any method in the set heard the peer first-hand
    /// ([`DiscoveryMethod::refreshes_last_seen`]).
    pub(crate) fn any_first_hand(&self) -> bool {
        self.iter().any(DiscoveryMethod::refreshes_last_seen)
    }

    /// Whether [`insert`](Self::insert) would add `method`.
    #[inline]
    pub(crate) fn would_insert(&self, method: &DiscoveryMethod) -> bool {
        !self.contains(method)
            && (built_in_code(method).is_some() || self.others.len() < MAX_OTHER_METHODS)
    }

    /// The methods in the order they were first heard.
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            codes: self.codes,
            others: &self.others,
        }
    }
}

/// The methods of a [`MethodSet`] in the order they were first heard, from [`MethodSet::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    codes: u64,
    others: &'a [DiscoveryMethod],
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a DiscoveryMethod;

    fn next(&mut self) -> Option<Self::Item> {
        let code = (self.codes & 0xf) as u8;
        self.codes >>= 4;
        match code {
            0 => None,
            1..FIRST_OTHER => Some(built_in_method(code)),
            _ => self.others.get(usize::from(code - FIRST_OTHER)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = count(self.codes);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a MethodSet {
    type Item = &'a DiscoveryMethod;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<DiscoveryMethod> for MethodSet {
    fn from(method: DiscoveryMethod) -> Self {
        let mut set = MethodSet::new();
        set.insert(method);
        set
    }
}

/// Inserts each in turn: duplicates and names past [`MAX_OTHER_METHODS`] are left out.
impl FromIterator<DiscoveryMethod> for MethodSet {
    fn from_iter<I: IntoIterator<Item = DiscoveryMethod>>(methods: I) -> Self {
        let mut set = MethodSet::new();
        set.extend(methods);
        set
    }
}

impl Extend<DiscoveryMethod> for MethodSet {
    fn extend<I: IntoIterator<Item = DiscoveryMethod>>(&mut self, methods: I) {
        for method in methods {
            self.insert(method);
        }
    }
}

impl fmt::Debug for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<[DiscoveryMethod]> for MethodSet {
    fn eq(&self, other: &[DiscoveryMethod]) -> bool {
        self.iter().eq(other)
    }
}

impl<const N: usize> PartialEq<[DiscoveryMethod; N]> for MethodSet {
    fn eq(&self, other: &[DiscoveryMethod; N]) -> bool {
        self.iter().eq(other)
    }
}

impl PartialEq<Vec<DiscoveryMethod>> for MethodSet {
    fn eq(&self, other: &Vec<DiscoveryMethod>) -> bool {
        self.iter().eq(other)
    }
}

/// A list of method names, in order.
#[cfg(feature = "serde")]
impl serde::Serialize for MethodSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self)
    }
}

/// A list of method names; duplicates and names past [`MAX_OTHER_METHODS`] are left out.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MethodSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> serde::de::Visitor<'de> for SetVisitor {
            type Value = MethodSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of discovery method names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MethodSet, A::Error> {
                let mut set = MethodSet::new();
                // Read every element, even past the cap: the set stays bounded, the input
                // is consumed whole.
                while let Some(method) = seq.next_element::<DiscoveryMethod>()? {
                    set.insert(method);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(SetVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiscoveryMethod as M;

    #[test]
    fn finds_a_code_as_a_scan_would() {
        let scan =
            |codes: u64, code: u8| (0..16).any(|i| (codes >> (4 * i)) & 0xf == u64::from(code));
        let mut word: u64 = 0x9e37_79b9_7f4a_7c15;
        // Miri runs this a thousand times slower: a hundred sets still cover every code.
        let sets = if cfg!(miri) { 100 } else { 10_000 };
        for _ in 0..sets {
            word ^= word << 13;
            word ^= word >> 7;
            word ^= word << 17;
            // Sets as the store builds them: codes from the bottom nibble up, no zero between.
            let len = (word % 17) as u32;
            let codes = (0..len).fold(0u64, |acc, i| {
                let code = (word >> (4 * i)) & 0xf;
                acc | (code.max(1) << (4 * i))
            });
            for code in 1..=15 {
                assert_eq!(
                    has_code(codes, code),
                    scan(codes, code),
                    "{codes:#x} {code}"
                );
            }
        }
    }

    fn other(i: usize) -> DiscoveryMethod {
        M::other(&format!("plugin-{i}")).expect("a method name")
    }

    #[test]
    fn every_built_in_method_has_its_own_code() {
        for (i, method) in BUILT_IN.iter().enumerate() {
            assert_eq!(built_in_code(method).map(usize::from), Some(i + 1));
        }
        assert_eq!(built_in_code(&other(0)), None);
    }

    #[test]
    fn keeps_first_heard_order_without_duplicates() {
        let mut set = MethodSet::new();
        assert!(set.is_empty());
        let heard = [
            M::Cache,
            other(1),
            M::Lan,
            M::Gossip,
            other(0),
            M::Cache,
            other(1),
        ];
        let added: Vec<bool> = heard.iter().map(|m| set.insert(m.clone())).collect();
        assert_eq!(added, [true, true, true, true, true, false, false]);
        assert_eq!(set, [M::Cache, other(1), M::Lan, M::Gossip, other(0)]);
        assert_eq!(set.len(), 5);
        assert_eq!(set.iter().len(), 5);
        assert!(set.contains(&other(0)) && !set.contains(&other(2)) && !set.contains(&M::Dht));
    }

    #[test]
    fn holds_every_built_in_method_and_the_most_other_names() {
        let mut set: MethodSet = BUILT_IN.iter().cloned().collect();
        for i in 0..MAX_OTHER_METHODS {
            assert!(set.would_insert(&other(i)));
            assert!(set.insert(other(i)), "name {i} fits");
        }
        assert_eq!(set.len(), BUILT_IN.len() + MAX_OTHER_METHODS);
        assert!(!set.would_insert(&other(99)));
        assert!(
            !set.insert(other(99)),
            "past the cap a name is not recorded"
        );
        let expected: Vec<M> = BUILT_IN
            .iter()
            .cloned()
            .chain((0..MAX_OTHER_METHODS).map(other))
            .collect();
        assert_eq!(set, expected);
        assert_eq!(format!("{set:?}"), format!("{expected:?}"));
    }

    #[test]
    fn equal_lists_make_equal_sets() {
        let a: MethodSet = [M::Dht, other(3), M::Lan].into_iter().collect();
        let b: MethodSet = [M::Dht, other(3), M::Dht, M::Lan].into_iter().collect();
        let c: MethodSet = [M::Lan, other(3), M::Dht].into_iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, c, "the order is part of the value");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serializes_as_a_list_of_names() {
        let set: MethodSet = [M::Dht, M::other("mdns").unwrap(), M::Lan]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["dht","mdns","lan"]"#);
        assert_eq!(serde_json::from_str::<MethodSet>(&json).unwrap(), set);
        let repeated: MethodSet = serde_json::from_str(r#"["lan","lan","dht"]"#).unwrap();
        assert_eq!(repeated, [M::Lan, M::Dht]);
        assert!(serde_json::from_str::<MethodSet>(r#""lan""#).is_err());
    }
}
