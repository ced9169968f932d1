//! Nothing unusable gets in. Each test is named after a failure reproduced against
//! the store before the fix, and checks that the announcement is refused naming the field and
//! the value, or stored in its one spelling, and that nothing else changed.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};

use peerstore::{DiscoveryMethod as M, PeerInfo, UpdateError, UpdateOutcome};
use support::{at, key};

/// A good peer: mesh addresses 10.42.0.7 and fd00::7, heard on the LAN.
fn good_peer(store: &peerstore::PeerStore) {
    let mut info = at(1, "192.0.2.7:51820");
    info.mesh_ip = Some(Ipv4Addr::new(10, 42, 0, 7));
    info.mesh_ipv6 = Some("fd00::7".parse().unwrap());
    info.hostname = Some("edge-7".into());
    store.update(info, M::Lan).unwrap();
}

#[test]
fn unusable_mesh_addresses_do_not_overwrite_good_ones() {
    support::each(|store, _| {
        good_peer(&store);
        let before = store.get(&key(1)).unwrap();
        let v4: [Ipv4Addr; 4] = [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::LOCALHOST,
        ];
        for bad in v4 {
            let mut info = PeerInfo::new(key(1));
            info.mesh_ip = Some(bad);
            let err = store.update(info, M::GossipTransitive).unwrap_err();
            let UpdateError::Invalid(why) = &err else {
                panic!("{bad}: {err}")
            };
            assert_eq!(why.field(), "mesh_ip", "{bad}");
            assert!(err.to_string().contains(&bad.to_string()), "{err}");
        }
        let v6: [Ipv6Addr; 4] = [
            Ipv6Addr::UNSPECIFIED,
            "ff02::1".parse().unwrap(),
            Ipv6Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
        ];
        for bad in v6 {
            let mut info = PeerInfo::new(key(1));
            info.mesh_ipv6 = Some(bad);
            let err = store.update(info, M::GossipTransitive).unwrap_err();
            let UpdateError::Invalid(why) = &err else {
                panic!("{bad}: {err}")
            };
            assert_eq!(why.field(), "mesh_ipv6", "{bad}");
            assert!(err.to_string().contains(&bad.to_string()), "{err}");
        }
        assert_eq!(*store.get(&key(1)).unwrap(), *before, "nothing changed");
        assert_eq!(store.stats().rejected_invalid, 8);
    });
}

#[test]
fn link_local_mesh_addresses_are_accepted() {
    support::each(|store, _| {
        let mut info = PeerInfo::new(key(2));
        info.mesh_ip = Some(Ipv4Addr::new(169, 254, 0, 2));
        info.mesh_ipv6 = Some("fe80::2".parse().unwrap());
        assert_eq!(store.update(info, M::Lan), Ok(UpdateOutcome::Inserted));
    });
}

#[test]
fn one_endpoint_two_spellings_is_one_endpoint() {
    support::each(|store, _| {
        let events = store.subscribe();
        let mapped = at(1, "[::ffff:192.0.2.1]:51820");
        let plain = at(1, "192.0.2.1:51820");
        assert_eq!(
            store.update(mapped.clone(), M::Dht),
            Ok(UpdateOutcome::Inserted)
        );
        assert_eq!(
            store.get(&key(1)).unwrap().endpoint,
            plain.endpoint,
            "stored in its IPv4 spelling"
        );
        for round in 0..10 {
            let info = if round % 2 == 0 { &plain } else { &mapped };
            assert_eq!(
                store.update(info.clone(), M::Dht),
                Ok(UpdateOutcome::Unchanged),
                "round {round}"
            );
        }
        assert_eq!(events.try_iter().count(), 1, "New, and nothing after");
    });
}

#[test]
fn host_names_that_spoof_are_refused_naming_the_character_and_where_it_is() {
    support::each(|store, _| {
        good_peer(&store);
        let before = store.get(&key(1)).unwrap();
        for (name, found, position) in [
            ("evil\u{202e}gpj.exe", 0x202e, 4),
            ("zero\u{200b}width", 0x200b, 4),
            ("\u{feff}bom", 0xfeff, 0),
            ("left\u{2066}isolate", 0x2066, 4),
            ("line\u{2028}break", 0x2028, 4),
            ("para\u{2029}graph", 0x2029, 4),
            ("soft\u{ad}hyphen", 0xad, 4),
            ("joiner\u{200d}", 0x200d, 6),
            ("tab\there", 0x9, 3),
            ("nbsp\u{a0}", 0xa0, 4),
        ] {
            let mut info = PeerInfo::new(key(1));
            info.hostname = Some(name.into());
            let err = store.update(info, M::Lan).unwrap_err();
            let UpdateError::Invalid(why) = &err else {
                panic!("{name:?}: {err}")
            };
            assert_eq!(why.field(), "hostname", "{name:?}");
            let message = err.to_string();
            assert!(
                message.contains(&format!("U+{found:04X} at character {position}")),
                "{name:?}: {message}"
            );
            assert!(
                !message.contains(|c: char| c == char::from_u32(found).unwrap() && c != ' '),
                "the message shows the character escaped: {message:?}"
            );
        }
        assert_eq!(*store.get(&key(1)).unwrap(), *before, "nothing changed");
        // Names in other scripts are names.
        for name in ["café", "東京-1", "Ελλάδα"] {
            let mut info = PeerInfo::new(key(3));
            info.hostname = Some(name.into());
            store.update(info, M::Lan).unwrap();
        }
    });
}

/// `event_buffer(usize::MAX)` made `subscribe()` panic inside the channel,
/// `event_buffer(1 << 32)` aborted the process on allocation, and `dead_after` past
/// `remove_after` made the cleanup remove peers that `get_active` still listed.
#[test]
fn settings_that_cannot_work_are_refused_naming_the_setting_and_the_value() {
    use peerstore::{BuildError, MAX_EVENT_BUFFER, PeerStore};
    use std::time::Duration;

    for event_buffer in [0, MAX_EVENT_BUFFER + 1, 1 << 32, usize::MAX] {
        let err = PeerStore::builder()
            .event_buffer(event_buffer)
            .build()
            .unwrap_err();
        assert_eq!(err, BuildError::EventBuffer { event_buffer });
        let message = err.to_string();
        assert!(
            message.contains("event_buffer") && message.contains(&event_buffer.to_string()),
            "{message}"
        );
    }
    let largest = PeerStore::builder()
        .event_buffer(MAX_EVENT_BUFFER)
        .build()
        .expect("the largest buffer is allowed");
    drop(largest);

    let minutes = |m: u64| Duration::from_secs(m * 60);
    let err = PeerStore::builder()
        .dead_after(minutes(10))
        .remove_after(minutes(5))
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("dead_after 600s") && message.contains("remove_after 300s"),
        "{message}"
    );
    let err = PeerStore::builder()
        .dead_after(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroDeadAfter);
    assert!(err.to_string().contains("dead_after"), "{err}");

    // Equal timeouts work: a peer is dead and removed at once.
    PeerStore::builder()
        .dead_after(minutes(5))
        .remove_after(minutes(5))
        .build()
        .expect("equal timeouts");
}

/// `Other("lan")` after `Lan` gave `discovered_via` `["lan", "lan"]`, the second
/// ranked 30; a name with an escape sequence was stored and printed raw; eight 1 MiB names a
/// peer were kept whole. A name is now parsed once, into the method it spells or a short
/// printable `Other`, and nothing else can be built.
#[test]
fn method_names_are_checked_and_a_built_in_spelling_is_the_built_in_method() {
    support::each(|store, _| {
        store.update(at(1, "192.0.2.7:51820"), M::Lan).unwrap();
        for spelling in ["lan", "LAN", "Lan"] {
            let method: M = spelling.parse().unwrap();
            assert_eq!(method, M::Lan, "{spelling}");
            assert_eq!(
                store.update(at(1, "192.0.2.7:51820"), method),
                Ok(UpdateOutcome::Unchanged)
            );
        }
        assert_eq!(store.get(&key(1)).unwrap().discovered_via, [M::Lan]);

        for bad in ["lan\x1b[31m", "", "has space", &"m".repeat(1 << 20)] {
            let err = bad.parse::<M>().unwrap_err();
            assert!(err.to_string().starts_with("method \""), "{err}");
            assert!(!err.to_string().contains('\x1b'), "shown escaped: {err}");
            assert!(err.to_string().len() < 300, "shown cut short");
        }
    });
}

#[cfg(feature = "serde")]
#[test]
fn a_method_name_from_json_is_checked_like_any_other() {
    let refused = serde_json::from_str::<M>(r#""lan\u001b[31m""#).unwrap_err();
    assert!(refused.to_string().contains("method"), "{refused}");
    assert_eq!(serde_json::from_str::<M>(r#""LAN""#).unwrap(), M::Lan);
}
