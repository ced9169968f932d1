//! Announcements decoded from JSON (as they come off the network) and fed to the store: any
//! bytes either fail to decode, or decode to a `PeerInfo` that round-trips through JSON and
//! that `update` either takes or refuses, matching `validate`, without a panic; a refused
//! announcement leaves the stored record exactly as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerstore::{DiscoveryMethod, ManualClock, PeerInfo, PeerStore, UpdateError};

const METHODS: &[DiscoveryMethod] = DiscoveryMethod::BUILT_IN;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let Ok(info) = serde_json::from_slice::<PeerInfo>(json) else {
        return;
    };
    let again: PeerInfo =
        serde_json::from_str(&serde_json::to_string(&info).expect("a PeerInfo serializes"))
            .expect("what we write, we read");
    assert_eq!(again, info);

    let clock = ManualClock::new();
    let store = PeerStore::builder()
        .clock(clock.clone())
        .max_peers(4)
        .build()
        .expect("valid store settings");
    // A record to merge into, so refusals of updates (not only of inserts) are checked.
    store
        .update(PeerInfo::new(info.public_key), DiscoveryMethod::Gossip)
        .expect("a bare announcement is valid");
    let method = METHODS[usize::from(selector) % METHODS.len()].clone();
    let before = store.get(&info.public_key).expect("stored");
    match store.update(info.clone(), method) {
        Ok(_) => assert!(info.validate().is_ok()),
        Err(UpdateError::Invalid(why)) => {
            assert_eq!(info.validate(), Err(why.clone()));
            assert!(!why.field().is_empty());
            assert_eq!(*store.get(&info.public_key).expect("still stored"), *before);
        }
        Err(UpdateError::StoreFull { .. }) => panic!("an update of a stored peer is never full"),
        Err(other) => panic!("refused in a way this target does not know: {other}"),
    }
    let peer = store.get(&info.public_key).expect("still stored");
    assert!(
        peer.last_seen <= clock_wall(&clock),
        "last_seen in the future"
    );
});

fn clock_wall(clock: &ManualClock) -> std::time::SystemTime {
    use peerstore::Clock;
    clock.wall_now()
}
