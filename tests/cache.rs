//! The peer cache on disk: the reference daemon's format, round trips, and files that are
//! damaged, from the future, too old, or not there.
#![cfg(feature = "serde")]

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerstore::cache::{self, CacheError, EntryError, RestoreReport};
use peerstore::{DiscoveryMethod, NatType, PeerInfo, PeerStore, PublicKey};
use serde_json::Value;
use support::{START, Scratch, addr, at, clock, key, secs};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/wgmesh-peers.json"
);

/// A store whose clock reads `START + after`.
fn store_at(after: Duration) -> PeerStore {
    let clock = clock();
    clock.advance(after);
    PeerStore::builder().clock(clock).build().unwrap()
}

fn wall(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

#[test]
fn the_reference_daemons_file_restores_every_field() {
    let store = store_at(secs(60));
    let report = cache::restore(&store, Path::new(FIXTURE)).unwrap();
    assert_eq!(report.restored, 3, "{report:?}");
    assert_eq!(
        (
            report.skipped_too_old,
            report.skipped_invalid,
            report.rejected_full
        ),
        (0, 0, 0),
        "{report:?}"
    );

    let edge = store.get(&PublicKey::from_bytes([7; 32])).unwrap();
    assert_eq!(edge.mesh_ip, Some("10.42.0.7".parse().unwrap()));
    assert_eq!(edge.endpoint, Some(addr("198.51.100.7:51820")));
    assert_eq!(edge.endpoint_method, Some(DiscoveryMethod::Cache));
    assert_eq!(edge.discovered_via, [DiscoveryMethod::Cache]);
    assert_eq!(edge.last_seen, wall(1_763_800_000));
    assert_eq!(edge.hostname.as_deref(), Some("edge-1"));
    assert_eq!(edge.mesh_ipv6, Some("fd00::7".parse().unwrap()));
    assert!(edge.introducer);
    assert_eq!(
        edge.routable_networks[..],
        ["192.168.7.0/24".parse().unwrap()]
    );
    assert_eq!(edge.nat_type, Some(NatType::Cone));

    let minimal = store.get(&PublicKey::from_bytes([8; 32])).unwrap();
    assert_eq!(minimal.endpoint, Some(addr("[2001:db8::8]:51820")));
    assert_eq!(minimal.last_seen, wall(1_763_799_700));
    assert_eq!(minimal.hostname, None);
    assert!(!minimal.introducer);

    // `""` and `null` are the reference's "none"; the unknown `version` field is ignored.
    let sparse = store.get(&PublicKey::from_bytes([9; 32])).unwrap();
    assert_eq!(sparse.endpoint, None);
    assert_eq!(sparse.hostname, None);
    assert!(sparse.routable_networks.is_empty());
    assert_eq!(sparse.nat_type, Some(NatType::Symmetric));

    // Restored peers keep their age: the one last seen 6 minutes before the clock is dead.
    assert!(store.is_dead(&PublicKey::from_bytes([8; 32])));
    assert!(!store.is_dead(&PublicKey::from_bytes([7; 32])));
}

#[test]
fn a_saved_store_restores_as_it_was() {
    let dir = Scratch::new("round-trip");
    let path = dir.file("peers.json");
    let store = store_at(secs(0));
    let mut full = at(1, "198.51.100.1:51820");
    full.mesh_ip = Some("10.42.0.1".parse().unwrap());
    full.mesh_ipv6 = Some("fd00::1".parse().unwrap());
    full.hostname = Some("alpha".into());
    full.routable_networks = vec![
        "192.168.1.0/24".parse().unwrap(),
        "fd01::/64".parse().unwrap(),
    ]
    .into();
    full.introducer = true;
    full.nat_type = Some(NatType::Unknown);
    store.update(full, DiscoveryMethod::Lan).unwrap();
    store
        .update(at(2, "[2001:db8::2]:51820"), DiscoveryMethod::Dht)
        .unwrap();
    store
        .update(PeerInfo::new(key(3)), DiscoveryMethod::Gossip)
        .unwrap();

    assert_eq!(cache::save(&store, &path).unwrap(), 3);

    let restarted = store_at(secs(30));
    let report = cache::restore(&restarted, &path).unwrap();
    assert_eq!(report.restored, 3, "{report:?}");
    for original in store.get_all() {
        let back = restarted.get(&original.public_key).unwrap();
        assert_eq!(back.endpoint, original.endpoint);
        assert_eq!(back.mesh_ip, original.mesh_ip);
        assert_eq!(back.mesh_ipv6, original.mesh_ipv6);
        assert_eq!(back.hostname, original.hostname);
        assert_eq!(back.routable_networks, original.routable_networks);
        assert_eq!(back.introducer, original.introducer);
        assert_eq!(back.nat_type, original.nat_type);
        assert_eq!(
            back.last_seen, original.last_seen,
            "last_seen is kept, to the second"
        );
        assert_eq!(
            back.endpoint_method,
            original.endpoint.map(|_| DiscoveryMethod::Cache)
        );
    }
}

#[test]
fn what_we_write_is_the_reference_format() {
    let dir = Scratch::new("format");
    let path = dir.file("peers.json");
    let store = store_at(secs(0));
    store
        .update(PeerInfo::new(key(4)), DiscoveryMethod::Gossip)
        .unwrap();
    let mut with_endpoint = at(5, "198.51.100.5:51820");
    with_endpoint.mesh_ip = Some("10.42.0.5".parse().unwrap());
    store.update(with_endpoint, DiscoveryMethod::Dht).unwrap();
    cache::save(&store, &path).unwrap();

    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["updated_at"], START.as_secs());
    let peers = file["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    for peer in peers {
        // The fields the reference reads as required, with its types: strings, never null.
        assert!(
            peer["wg_pubkey"]
                .as_str()
                .unwrap()
                .parse::<PublicKey>()
                .is_ok()
        );
        assert!(
            peer["mesh_ip"].is_string() && peer["endpoint"].is_string(),
            "{peer}"
        );
        assert_eq!(peer["last_seen"], START.as_secs());
        assert!(peer["introducer"].is_boolean());
    }
    let five = peers
        .iter()
        .find(|p| p["wg_pubkey"] == key(5).to_string())
        .unwrap();
    assert_eq!(five["endpoint"], "198.51.100.5:51820");
    assert_eq!(five["mesh_ip"], "10.42.0.5");
    let four = peers
        .iter()
        .find(|p| p["wg_pubkey"] == key(4).to_string())
        .unwrap();
    assert_eq!(four["endpoint"], "");
}

#[cfg(unix)]
#[test]
fn the_cache_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let dir = Scratch::new("mode");
    let path = dir.file("peers.json");
    fs::write(&path, "{}").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    cache::save(&store_at(secs(0)), &path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_missing_file_restores_nothing_and_is_no_error() {
    let dir = Scratch::new("missing");
    let store = store_at(secs(0));
    let report = cache::restore(&store, &dir.file("never-written.json")).unwrap();
    assert_eq!(report, RestoreReport::default());
    assert!(store.is_empty());
}

/// Damaged files are errors that name the path and the cause, and are left exactly as they were.
#[test]
fn corrupt_and_truncated_files_are_errors_that_name_the_path() {
    let dir = Scratch::new("damaged");
    let good = fs::read_to_string(FIXTURE).unwrap();
    let cases = [
        ("garbage.json", "this is not json\n".to_string()),
        ("truncated.json", good[..good.len() / 2].to_string()),
        ("binary.json", "\u{0}\u{1}\u{2}".to_string()),
        ("wrong-shape.json", "[1, 2, 3]".to_string()),
        ("peers-not-a-list.json", r#"{"peers": "x"}"#.to_string()),
        ("empty.json", String::new()),
    ];
    for (name, content) in cases {
        let path = dir.file(name);
        fs::write(&path, &content).unwrap();
        let store = store_at(secs(0));
        let err = cache::restore(&store, &path).unwrap_err();
        assert!(matches!(err, CacheError::Parse { .. }), "{name}: {err:?}");
        let message = err.to_string();
        assert!(message.contains(name), "{message}");
        assert!(store.is_empty(), "{name}: half a file restored");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            content,
            "{name} was touched"
        );
        // The message says it all: an error chain prints the cause once.
        assert!(std::error::Error::source(&err).is_none());
    }
}

#[cfg(unix)]
#[test]
fn a_directory_in_place_of_the_file_is_a_read_error_naming_it() {
    let dir = Scratch::new("unreadable");
    let path = dir.file("peers.json");
    fs::create_dir(&path).unwrap();
    let err = cache::restore(&store_at(secs(0)), &path).unwrap_err();
    assert!(err.to_string().contains("peers.json"), "{err}");
    // And saving over a directory fails at the rename, leaving it.
    let err = cache::save(&store_at(secs(0)), &path).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Write {
                step: cache::SaveStep::Rename,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(path.is_dir());
}

#[test]
fn no_peers_is_written_by_the_reference_as_null() {
    let dir = Scratch::new("null");
    for content in [r#"{"peers": null, "updated_at": 1763800000}"#, "{}"] {
        let path = dir.file("peers.json");
        fs::write(&path, content).unwrap();
        assert_eq!(
            cache::restore(&store_at(secs(0)), &path).unwrap(),
            RestoreReport::default()
        );
    }
}

fn entry(key_byte: u8, endpoint: &str, last_seen: u64) -> String {
    format!(
        r#"{{"wg_pubkey": "{}", "mesh_ip": "10.42.0.{key_byte}", "endpoint": "{endpoint}", "last_seen": {last_seen}}}"#,
        PublicKey::from_bytes([key_byte; 32])
    )
}

fn write_entries(path: &Path, entries: &[String]) {
    fs::write(
        path,
        format!(r#"{{"peers": [{}], "updated_at": 0}}"#, entries.join(",")),
    )
    .unwrap();
}

#[test]
fn an_entry_from_the_future_counts_as_now() {
    let dir = Scratch::new("future");
    let path = dir.file("peers.json");
    write_entries(
        &path,
        &[entry(
            1,
            "198.51.100.1:51820",
            START.as_secs() + 86_400 * 365,
        )],
    );
    let store = store_at(secs(0));
    assert_eq!(cache::restore(&store, &path).unwrap().restored, 1);
    let peer = store.get(&PublicKey::from_bytes([1; 32])).unwrap();
    assert_eq!(
        peer.last_seen,
        UNIX_EPOCH + START,
        "clamped to the store's now"
    );
}

#[test]
fn entries_older_than_a_day_are_skipped() {
    let dir = Scratch::new("old");
    let path = dir.file("peers.json");
    let now = START.as_secs();
    write_entries(
        &path,
        &[
            entry(1, "198.51.100.1:51820", now - 86_400),
            entry(2, "198.51.100.2:51820", now - 86_401),
            entry(3, "198.51.100.3:51820", 0),
        ],
    );
    let store = store_at(secs(0));
    let report = cache::restore(&store, &path).unwrap();
    assert_eq!(
        (report.restored, report.skipped_too_old),
        (1, 2),
        "{report:?}"
    );
    assert!(store.get(&PublicKey::from_bytes([1; 32])).is_some());
    assert!(store.get(&PublicKey::from_bytes([2; 32])).is_none());
}

/// Bad entries are counted with their reasons; they never stop the good ones after them.
#[test]
fn invalid_entries_are_skipped_and_counted_with_their_reasons() {
    let dir = Scratch::new("invalid");
    let path = dir.file("peers.json");
    let now = START.as_secs();
    let mut entries = vec![
        r#"{"wg_pubkey": "not-a-key", "last_seen": 1763800000}"#.to_string(),
        entry(2, "300.1.1.1:51820", now),
        entry(3, "198.51.100.3:0", now), // parses, refused by the store: port 0
        "42".to_string(),
        entry(5, "198.51.100.5:51820", now),
    ];
    for n in 6..=12 {
        entries.push(entry(n, "not an address", now));
    }
    write_entries(&path, &entries);
    let store = store_at(secs(0));
    let report = cache::restore(&store, &path).unwrap();
    assert_eq!(report.restored, 1);
    assert_eq!(report.skipped_invalid, 11);
    assert_eq!(report.invalid.len(), cache::MAX_REPORTED_REASONS);
    let indexes: Vec<usize> = report.invalid.iter().map(|i| i.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 5]);
    let reasons: Vec<String> = report.invalid.iter().map(ToString::to_string).collect();
    assert!(
        reasons[0].contains("wg_pubkey") && reasons[0].contains("not-a-key"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("endpoint") && reasons[1].contains("300.1.1.1"),
        "{reasons:?}"
    );
    assert!(
        matches!(report.invalid[2].reason, EntryError::Refused(_)),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("port"), "{reasons:?}");
    assert!(store.get(&PublicKey::from_bytes([5; 32])).is_some());
}

#[test]
fn a_full_store_rejects_the_rest_and_says_how_many() {
    let dir = Scratch::new("full");
    let path = dir.file("peers.json");
    let now = START.as_secs();
    let entries: Vec<String> = (1..=5)
        .map(|n| entry(n, &format!("198.51.100.{n}:51820"), now))
        .collect();
    write_entries(&path, &entries);
    let store = PeerStore::builder()
        .clock(clock())
        .max_peers(3)
        .build()
        .unwrap();
    let report = cache::restore(&store, &path).unwrap();
    assert_eq!(
        (report.restored, report.rejected_full),
        (3, 2),
        "{report:?}"
    );
    assert_eq!(store.len(), 3);
}

/// A restore after discovery has run does not undo it: the cache is the least trusted source.
#[test]
fn a_restore_never_overrides_what_discovery_found() {
    let dir = Scratch::new("late");
    let path = dir.file("peers.json");
    write_entries(&path, &[entry(1, "203.0.113.1:51820", START.as_secs())]);
    let store = store_at(secs(0));
    let mut lan = PeerInfo::new(PublicKey::from_bytes([1; 32]));
    lan.endpoint = Some(addr("192.168.1.1:51820"));
    store.update(lan, DiscoveryMethod::Lan).unwrap();
    cache::restore(&store, &path).unwrap();
    let peer = store.get(&PublicKey::from_bytes([1; 32])).unwrap();
    assert_eq!(peer.endpoint, Some(addr("192.168.1.1:51820")));
    assert_eq!(peer.endpoint_method, Some(DiscoveryMethod::Lan));
    assert_eq!(
        peer.mesh_ip,
        Some("10.42.0.1".parse().unwrap()),
        "other fields merge as usual"
    );
}

#[test]
fn a_file_too_large_to_be_a_cache_is_refused_before_it_is_read() {
    let dir = Scratch::new("huge");
    let path = dir.file("peers.json");
    let file = fs::File::create(&path).unwrap();
    file.set_len(cache::MAX_FILE_SIZE + 1).unwrap(); // sparse: costs no disk
    let err = cache::restore(&store_at(secs(0)), &path).unwrap_err();
    assert!(matches!(err, CacheError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("peers.json"), "{err}");
}

/// Tombstones go to the file under a key of this crate's own and come back, so a
/// restart does not resurrect a removed peer from the cache or from gossip.
#[test]
fn tombstones_survive_a_restart_and_the_file_stays_the_references() {
    let dir = Scratch::new("tombstones");
    let path = dir.file("peers.json");
    let clock = clock();
    let store = PeerStore::builder()
        .clock(clock.clone())
        .tombstone_expired(secs(3600))
        .build()
        .unwrap();
    store
        .update(at(1, "198.51.100.1:1"), DiscoveryMethod::Dht)
        .unwrap();
    store
        .update(at(2, "198.51.100.2:1"), DiscoveryMethod::Dht)
        .unwrap();
    store.remove_for(&key(2), secs(1800));
    clock.advance(secs(601));
    assert_eq!(store.cleanup_stale(), [key(1)]);
    store
        .update(at(3, "198.51.100.3:1"), DiscoveryMethod::Lan)
        .unwrap();
    assert_eq!(cache::save(&store, &path).unwrap(), 1);

    // The reference reads `peers` and `updated_at`, and ignores the rest: the entries have
    // exactly the fixture's fields.
    let saved: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let fixture: Value = serde_json::from_slice(&fs::read(FIXTURE).unwrap()).unwrap();
    let known: std::collections::HashSet<&str> = fixture["peers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p.as_object().unwrap().keys().map(String::as_str))
        .collect();
    for entry in saved["peers"].as_array().unwrap() {
        for field in entry.as_object().unwrap().keys() {
            assert!(
                known.contains(field.as_str()),
                "{field} is not the reference's"
            );
        }
    }
    assert!(saved["updated_at"].is_u64());
    let stones = saved["tombstones"].as_array().unwrap();
    assert_eq!(stones.len(), 2, "{saved}");

    // A restart a minute later: both stand, until the same second.
    let restarted_clock = support::clock();
    restarted_clock.advance(secs(660));
    let restarted = PeerStore::builder().clock(restarted_clock).build().unwrap();
    let report = cache::restore(&restarted, &path).unwrap();
    assert_eq!((report.restored, report.tombstones), (1, 2), "{report:?}");
    let mut before: Vec<_> = store
        .tombstones()
        .iter()
        .map(|t| (t.public_key, t.until, t.cause))
        .collect();
    let mut after: Vec<_> = restarted
        .tombstones()
        .iter()
        .map(|t| (t.public_key, t.until, t.cause))
        .collect();
    before.sort_by_key(|t| (t.0, t.1));
    after.sort_by_key(|t| (t.0, t.1));
    assert_eq!(after, before, "whole seconds, as the file keeps them");
    let refused = restarted.update(PeerInfo::new(key(2)), DiscoveryMethod::GossipTransitive);
    assert!(refused.is_err(), "still removed after the restart");

    // A store without tombstones writes no such key: the reference's file, byte for byte.
    let plain = PeerStore::builder().clock(clock).build().unwrap();
    plain
        .update(at(4, "198.51.100.4:1"), DiscoveryMethod::Dht)
        .unwrap();
    cache::save(&plain, &path).unwrap();
    let saved: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.as_object().unwrap().len(), 2, "{saved}");
}

#[test]
fn bad_tombstones_in_a_file_are_skipped_and_the_peers_still_restore() {
    let dir = Scratch::new("bad-tombstones");
    let path = dir.file("peers.json");
    let now = START.as_secs();
    let entry = |n: u32| {
        format!(
            r#"{{"wg_pubkey": "{}", "mesh_ip": "10.42.0.{n}", "endpoint": "198.51.100.{n}:1", "last_seen": {now}}}"#,
            key(n)
        )
    };
    let stone = |n: u32, until: u64, cause: &str| {
        format!(
            r#"{{"wg_pubkey": "{}", "since": {now}, "until": {until}, "cause": "{cause}"}}"#,
            key(n)
        )
    };
    for tombstones in ["7", "null", "{\"a\": [1, 2]}", "\"x\"", "[[]]", "true"] {
        let text = format!(r#"{{"tombstones": {tombstones}, "peers": [{}]}}"#, entry(1));
        fs::write(&path, text).unwrap();
        let report = cache::restore(&store_at(secs(0)), &path).unwrap();
        assert_eq!((report.restored, report.tombstones), (1, 0), "{tombstones}");
    }
    let text = format!(
        r#"{{"peers": [{}, {}], "tombstones": [{}, {}, {}, {}, {{"wg_pubkey": 5}}]}}"#,
        entry(1),
        entry(2),
        stone(2, now + 60, "explicit"),
        stone(3, now - 1, "expired"),
        stone(4, now + 60, "forgotten"),
        stone(1, now + 60, "expired"),
    );
    fs::write(&path, text).unwrap();
    let store = store_at(secs(0));
    let report = cache::restore(&store, &path).unwrap();
    // Key 2's stands (read before the peers, wherever the file puts it) and refuses its
    // entry; key 3's has fallen, key 4's cause and the last entry are not a tombstone's.
    assert_eq!(report.tombstones, 2, "{report:?}");
    assert_eq!(
        (report.restored, report.rejected_tombstoned),
        (0, 2),
        "{report:?}"
    );
    let standing: Vec<_> = store.tombstones().iter().map(|t| t.public_key).collect();
    assert_eq!(standing.len(), 2);
    assert!(standing.contains(&key(1)) && standing.contains(&key(2)));
}

#[test]
fn bans_survive_a_restart_and_refuse_the_cache_its_entries() {
    let dir = Scratch::new("bans");
    let path = dir.file("peers.json");
    let clock = clock();
    let store = PeerStore::builder().clock(clock.clone()).build().unwrap();
    for n in 1..=3 {
        let endpoint = format!("198.51.100.{n}:1");
        store
            .update(at(n, &endpoint), DiscoveryMethod::Dht)
            .unwrap();
    }
    store.ban(&key(1), None, "key revoked").unwrap();
    store.ban(&key(4), Some(secs(600)), "flooding").unwrap();
    assert_eq!(cache::save(&store, &path).unwrap(), 2);
    let saved: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let bans = saved["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 2, "{saved}");
    assert!(
        bans[0].get("until").is_none(),
        "a ban until lifted has no end: {saved}"
    );

    // The banned key's entry comes back in a file the DHT layer wrote meanwhile: refused.
    let mut text: Value = saved.clone();
    text["peers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::from_str(&entry_of(1)).unwrap());
    fs::write(&path, text.to_string()).unwrap();

    let restarted_clock = support::clock();
    restarted_clock.advance(secs(60));
    let restarted = PeerStore::builder()
        .clock(restarted_clock.clone())
        .build()
        .unwrap();
    let report = cache::restore(&restarted, &path).unwrap();
    let counts = (report.bans, report.restored, report.rejected_banned);
    assert_eq!(counts, (2, 2, 1), "{report:?}");
    let before: Vec<_> = store
        .banned()
        .iter()
        .map(|b| (b.public_key, b.reason.clone(), b.until.is_some()))
        .collect();
    let after: Vec<_> = restarted
        .banned()
        .iter()
        .map(|b| (b.public_key, b.reason.clone(), b.until.is_some()))
        .collect();
    assert_eq!(after, before);
    assert_eq!(
        restarted.banned()[1].since,
        store.banned()[1].since,
        "whole seconds"
    );
    let refused = restarted.update(PeerInfo::new(key(1)), DiscoveryMethod::Lan);
    assert!(refused.is_err(), "still banned after the restart");
    // The span runs on from the file's end: ten minutes after the ban, it has lifted.
    restarted_clock.advance(secs(540));
    assert!(
        restarted
            .update(PeerInfo::new(key(4)), DiscoveryMethod::Lan)
            .is_ok()
    );
}

fn entry_of(n: u32) -> String {
    format!(
        r#"{{"wg_pubkey": "{}", "mesh_ip": "10.42.0.{n}", "endpoint": "198.51.100.{n}:1", "last_seen": {}}}"#,
        key(n),
        START.as_secs()
    )
}
