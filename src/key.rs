//! The WireGuard public key that identifies a peer.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A peer's WireGuard public key: 32 bytes, written as 44 characters of standard, padded base64.
///
/// It is the store's key, so it is `Copy`, `Ord` and `Hash`.
///
/// ```
/// use peerstore::PublicKey;
///
/// let key: PublicKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".parse()?;
/// assert_eq!(key.as_bytes()[31], 31);
/// assert_eq!(key.to_string(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
/// assert_eq!(format!("{key:?}"), "PublicKey(AAECAwQF…)");
/// # Ok::<(), peerstore::ParseKeyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// Two 128-bit words, every byte of the key: the store's hasher (foldhash) folds each in one
/// multiply, where the bytes as a slice would take its general path after a length prefix.
/// Equal keys hash alike, as `Eq` needs; the map's seed, not this, keeps a flood of chosen
/// keys from aiming at one bucket.
impl std::hash::Hash for PublicKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (words, _) = self.0.as_chunks::<16>();
        for word in words {
            state.write_u128(u128::from_le_bytes(*word));
        }
    }
}

/// The length of a key in standard base64: 32 bytes take 43 characters and one `=`.
const ENCODED_LEN: usize = 44;

impl PublicKey {
    /// Wraps 32 raw key bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    /// The raw key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first eight characters of the base64 form: enough to tell peers apart in a table or a log.
    #[must_use]
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ENCODED_LEN];
        let n = STANDARD
            .encode_slice(self.0, &mut buf)
            .expect("44 bytes always hold 32 bytes of base64");
        // base64 output is ASCII by construction.
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}…)", self.short())
    }
}

/// Why a string is not a WireGuard public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseKeyError {
    /// The string is not 44 characters long.
    Length {
        /// The length found, in bytes.
        found: usize,
    },
    /// A character that standard base64 does not use, or padding in the wrong place.
    Character {
        /// The byte offset of the offending character.
        index: usize,
        /// The offending character.
        found: char,
    },
    /// The last character sets bits that 32 bytes do not have, so the text is not the one
    /// canonical spelling of any key (two spellings of one key would make two peers).
    NonCanonical,
}

impl fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseKeyError::Length { found } => write!(
                f,
                "public key must be {ENCODED_LEN} characters of base64, found {found}"
            ),
            ParseKeyError::Character { index, found } => write!(
                f,
                "public key has {found:?} at position {index}, which is not standard base64"
            ),
            ParseKeyError::NonCanonical => f.write_str(
                "public key is not canonical base64: its last character carries bits beyond the 32 key bytes",
            ),
        }
    }
}

impl std::error::Error for ParseKeyError {}

impl FromStr for PublicKey {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != ENCODED_LEN {
            return Err(ParseKeyError::Length { found: s.len() });
        }
        // 44 base64 characters encode 33 bytes at most; decode into room for that and check.
        let mut out = [0u8; 33];
        // The character that holds byte `index` (never slice a multi-byte character in half).
        let character = |index: usize| {
            let (index, found) = s
                .char_indices()
                .take_while(|&(i, _)| i <= index)
                .last()
                .unwrap_or((0, '\u{FFFD}'));
            ParseKeyError::Character { index, found }
        };
        match STANDARD.decode_slice(s, &mut out) {
            Ok(32) => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&out[..32]);
                Ok(PublicKey(bytes))
            }
            // Only a string without padding decodes to 33 bytes; the padding must be the last char.
            Ok(_) => Err(character(ENCODED_LEN - 1)),
            Err(base64::DecodeSliceError::DecodeError(e)) => Err(match e {
                base64::DecodeError::InvalidByte(index, _) => character(index),
                base64::DecodeError::InvalidLastSymbol(_, _) => ParseKeyError::NonCanonical,
                base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                    character(s.find('=').unwrap_or(ENCODED_LEN - 1))
                }
            }),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => Err(character(ENCODED_LEN - 1)),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = PublicKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a WireGuard public key in base64")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PublicKey, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte_pattern_position() {
        for i in 0..=255u8 {
            let key = PublicKey::from_bytes([i; 32]);
            assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        }
    }

    #[test]
    fn refuses_wrong_length() {
        assert_eq!(
            "abc".parse::<PublicKey>(),
            Err(ParseKeyError::Length { found: 3 })
        );
    }

    #[test]
    fn refuses_non_canonical_last_character() {
        // 'B' as the 43rd character sets a bit that no key byte holds ('A','E','I',... do not).
        let mut s = PublicKey::from_bytes([0; 32]).to_string();
        s.replace_range(42..43, "B");
        assert_eq!(s.parse::<PublicKey>(), Err(ParseKeyError::NonCanonical));
    }

    #[test]
    fn refuses_bad_character_and_names_it() {
        let mut s = PublicKey::from_bytes([0; 32]).to_string();
        s.replace_range(5..6, "-");
        let err = s.parse::<PublicKey>().unwrap_err();
        assert_eq!(
            err,
            ParseKeyError::Character {
                index: 5,
                found: '-'
            }
        );
        assert!(err.to_string().contains("'-'"), "{err}");
    }

    #[test]
    fn refuses_missing_padding() {
        let s = format!("{}A", &PublicKey::from_bytes([0; 32]).to_string()[..43]);
        assert!(s.parse::<PublicKey>().is_err());
    }

    #[test]
    fn refuses_multibyte_text_without_panicking() {
        let s = "é".repeat(22);
        assert_eq!(s.len(), 44);
        assert!(matches!(
            s.parse::<PublicKey>(),
            Err(ParseKeyError::Character { index: 0, .. })
        ));
    }
}
