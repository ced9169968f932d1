//! `PublicKey` parsing and display: any text either fails to parse with an error that renders,
//! or is the one canonical spelling of a key, which displays back as the same text. Any 32
//! bytes display as a key that parses back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerstore::PublicKey;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 32 {
        let bytes: [u8; 32] = data[..32].try_into().expect("32 bytes");
        let key = PublicKey::from_bytes(bytes);
        let text = key.to_string();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert!(text.starts_with(&key.short()));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<PublicKey>() {
        Ok(key) => assert_eq!(key.to_string(), text, "a key has one spelling"),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
