//! Arbitrary bytes as a peer cache file: `cache::restore` never panics, accounts for every
//! entry of a file that is the format, refuses one that is not, and never restores from it.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use peerstore::cache::{self, CacheError};
use peerstore::{ManualClock, PeerStore};
use serde_json::Value;

/// One file per fuzzing process, rewritten for every input.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("peerstore-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir.join("peers.json")
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).expect("the input is written");
    let clock = ManualClock::starting_at(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_793_491_200),
    );
    let store = PeerStore::builder()
        .clock(clock)
        .max_peers(8)
        .build()
        .expect("valid settings");
    let restored = cache::restore(&store, path());

    // What a plain JSON parser makes of the same bytes, where they are UTF-8.
    let Ok(parsed) = serde_json::from_slice::<Value>(data) else {
        // Not JSON as a whole (or not UTF-8 somewhere): a refusal restores nothing.
        if restored.is_err() {
            assert!(store.is_empty(), "restored from a refused file");
        }
        return;
    };
    let entries = match &parsed {
        Value::Object(fields) => match fields.get("peers") {
            None | Some(Value::Null) => Some(0),
            Some(Value::Array(entries)) => Some(entries.len()),
            Some(_) => None,
        },
        _ => None,
    };
    match (entries, restored) {
        (Some(n), Ok(report)) => {
            let counted = report.restored
                + report.skipped_too_old
                + report.skipped_invalid
                + report.rejected_full
                + report.rejected_tombstoned;
            assert_eq!(counted, n, "every entry is accounted for: {report:?}");
            assert!(report.tombstones <= peerstore::MAX_TOMBSTONES);
            assert_eq!(store.tombstones().len(), report.tombstones);
            assert!(report.invalid.len() <= cache::MAX_REPORTED_REASONS);
            assert!(store.len() <= report.restored);
        }
        (None, Err(CacheError::Parse { .. })) => assert!(store.is_empty()),
        // A plain parser takes the last of two `peers`; the cache refuses such a file.
        (Some(_), Err(CacheError::Parse { reason, .. })) if reason.contains("duplicate field") => {
            assert!(store.is_empty());
        }
        (entries, result) => panic!("{entries:?} entries, restore gave {result:?}"),
    }
});
