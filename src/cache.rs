//! The peer cache on disk: save the store's peers, restore them at start-up.
//!
//! A daemon saves its peers every few minutes and at shutdown, and restores them at start-up so
//! that it can reach its mesh before discovery has run. The file is the JSON the reference
//! daemon (wgmesh) writes, so a node that switches implementations keeps its cache:
//!
//! ```json
//! {"peers": [{"wg_pubkey": "<base64>", "mesh_ip": "10.42.0.7", "endpoint": "198.51.100.7:51820",
//!             "last_seen": 1763800000, "hostname": "edge-1", "mesh_ipv6": "fd00::7",
//!             "introducer": true, "routable_networks": ["192.168.7.0/24"], "nat_type": "cone"}],
//!  "updated_at": 1763800000}
//! ```
//!
//! Times are Unix seconds. `hostname`, `mesh_ipv6`, `introducer`, `routable_networks` and
//! `nat_type` may be absent; an empty string or `null` counts as absent everywhere (the
//! reference writes `""` for a peer with no endpoint and `null` for no peers); unknown fields
//! are ignored.
//!
//! [`save`] replaces the file atomically: a crash at any point leaves the old file or the new
//! one, never a torn one. [`restore`] skips what it cannot use, entry by entry, and says so in
//! its [`RestoreReport`]; a file it cannot read at all is a [`CacheError`] and is left as it was.
//!
//! ```
//! use peerstore::{cache, DiscoveryMethod, PeerInfo, PeerStore, PublicKey};
//!
//! let dir = std::env::temp_dir().join(format!("peerstore-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("peers.json");
//!
//! let store = PeerStore::new();
//! let mut info = PeerInfo::new(PublicKey::from_bytes([7; 32]));
//! info.endpoint = Some("198.51.100.7:51820".parse()?);
//! store.update(info, DiscoveryMethod::Dht)?;
//! assert_eq!(cache::save(&store, &path)?, 1);
//!
//! // The next start-up:
//! let restarted = PeerStore::new();
//! let report = cache::restore(&restarted, &path)?;
//! assert_eq!(report.restored, 1);
//! let peer = restarted.get(&PublicKey::from_bytes([7; 32])).expect("restored");
//! assert_eq!(peer.endpoint_method, Some(DiscoveryMethod::Cache));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    DiscoveryMethod, Hostname, InvalidPeerInfo, NatType, Peer, PeerInfo, PeerStore, PublicKey,
    RoutableNetworks, UpdateError,
};

/// Entries last seen longer ago than this are not restored.
pub const MAX_ENTRY_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest cache file read, in bytes: far above what a full store writes (a peer with 256
/// routable networks takes about 7 KB, a thousand such peers 7 MB), so a file past it is not
/// a cache, and reading it would only cost memory.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// How many of the invalid entries' reasons a [`RestoreReport`] keeps.
pub const MAX_REPORTED_REASONS: usize = 5;

/// What [`restore`] did with the entries of a cache file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Entries fed to the store and taken (inserted, or merged into a peer it already held).
    pub restored: usize,
    /// Entries last seen more than [`MAX_ENTRY_AGE`] ago, left out.
    pub skipped_too_old: usize,
    /// Entries that do not parse, or that the store refused as invalid.
    pub skipped_invalid: usize,
    /// Why, for the first [`MAX_REPORTED_REASONS`] invalid entries.
    pub invalid: Vec<InvalidEntry>,
    /// Entries for new peers refused because the store was full.
    pub rejected_full: usize,
}

impl RestoreReport {
    fn skip_invalid(&mut self, index: usize, reason: EntryError) {
        self.skipped_invalid += 1;
        if self.invalid.len() < MAX_REPORTED_REASONS {
            self.invalid.push(InvalidEntry { index, reason });
        }
    }
}

/// One cache entry that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidEntry {
    /// Its position in the file's `peers` array, from 0.
    pub index: usize,
    /// What is wrong with it.
    pub reason: EntryError,
}

impl fmt::Display for InvalidEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peers[{}]: {}", self.index, self.reason)
    }
}

/// Why a cache entry was skipped. Each names the field (by its name in the file) and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry is not a JSON object.
    NotAnObject {
        /// The entry, as JSON (cut short if long).
        found: String,
    },
    /// A field the format requires is absent, `null` or empty.
    Missing {
        /// The field's name in the file.
        field: &'static str,
    },
    /// A field holds a value of the wrong JSON type, or one that does not parse.
    BadValue {
        /// The field's name in the file.
        field: &'static str,
        /// The value, as JSON (cut short if long).
        value: String,
        /// What was expected, or why it does not parse.
        reason: String,
    },
    /// The entry parsed but the store refused it (an endpoint it cannot send to, say).
    Refused(InvalidPeerInfo),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::NotAnObject { found } => write!(f, "entry {found} is not an object"),
            EntryError::Missing { field } => write!(f, "required field {field} is missing"),
            EntryError::BadValue {
                field,
                value,
                reason,
            } => write!(f, "field {field} = {value}: {reason}"),
            EntryError::Refused(invalid) => write!(f, "refused by the store: {invalid}"),
        }
    }
}

impl std::error::Error for EntryError {}

/// A cache file that could not be read or written. The message names the path and the cause
/// (so [`source`](std::error::Error::source) is `None`: the cause is a field).
#[derive(Debug)]
#[non_exhaustive]
pub enum CacheError {
    /// Reading the file failed (other than its not existing, which [`restore`] treats as empty).
    Read {
        /// The cache file.
        path: PathBuf,
        /// The operating system's error.
        error: io::Error,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    TooLarge {
        /// The cache file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The file is not JSON, is cut short, or is not a `{"peers": [...]}` object.
    Parse {
        /// The cache file.
        path: PathBuf,
        /// What the JSON parser said, with the line and column.
        reason: String,
    },
    /// Writing the new file failed at `step`; the old file, if any, is as it was unless the
    /// step is [`SaveStep::SyncDir`] (the new file is in place but may not survive a power cut).
    Write {
        /// The cache file.
        path: PathBuf,
        /// The step that failed.
        step: SaveStep,
        /// The operating system's error.
        error: io::Error,
    },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Read { path, error } => {
                write!(f, "cannot read peer cache {}: {error}", path.display())
            }
            CacheError::TooLarge { path, size } => write!(
                f,
                "peer cache {} is {size} bytes, over the {MAX_FILE_SIZE}-byte limit: not a peer cache",
                path.display()
            ),
            CacheError::Parse { path, reason } => write!(
                f,
                "peer cache {} is not a peer cache file: {reason}",
                path.display()
            ),
            CacheError::Write { path, step, error } => write!(
                f,
                "cannot save peer cache {} ({step}): {error}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CacheError {}

/// The steps of [`save`], in order; a [`CacheError::Write`] says which one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaveStep {
    /// Creating the temporary file beside the cache file.
    CreateTemp,
    /// Writing the peers into it.
    Write,
    /// Flushing it to the disk (`fsync`).
    SyncTemp,
    /// Renaming it over the cache file.
    Rename,
    /// Flushing the directory, so the rename survives a power cut.
    SyncDir,
}

impl SaveStep {
    /// Every step, in the order `save` takes them.
    #[cfg(test)]
    const ALL: [SaveStep; 5] = [
        SaveStep::CreateTemp,
        SaveStep::Write,
        SaveStep::SyncTemp,
        SaveStep::Rename,
        SaveStep::SyncDir,
    ];
}

impl fmt::Display for SaveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaveStep::CreateTemp => "creating the temporary file",
            SaveStep::Write => "writing the temporary file",
            SaveStep::SyncTemp => "syncing the temporary file",
            SaveStep::Rename => "renaming the temporary file over the cache",
            SaveStep::SyncDir => "syncing the directory",
        })
    }
}

/// Writes every peer the store holds (dead ones too: [`restore`] decides by age) to `path`,
/// replacing the file atomically, readable by its owner only (mode 0600 on Unix). Returns how
/// many peers were written.
///
/// The peers go to a temporary file in the same directory, which is synced, renamed over
/// `path`, and the directory synced: a crash at any point leaves the old file or the new one.
/// Saves from several threads of one process to one path take turns.
///
/// # Errors
///
/// [`CacheError::Write`] naming the step that failed; the temporary file is removed.
pub fn save(store: &PeerStore, path: &Path) -> Result<usize, CacheError> {
    save_with(store, path, &mut |_| Ok(()))
}

/// Feeds the entries of a cache file to the store with [`DiscoveryMethod::Cache`], keeping
/// their `last_seen` (a time in the future counts as now, as for any announcement).
///
/// An entry last seen more than [`MAX_ENTRY_AGE`] ago is skipped; one that does not parse or
/// that the store refuses is skipped and counted; a new peer the full store cannot take is
/// counted as rejected. None of these stops the rest. Restored peers keep their age: one last
/// seen more than [`PEER_REMOVE_TIMEOUT`](crate::PEER_REMOVE_TIMEOUT) ago goes at the next
/// cleanup unless discovery hears of it first.
///
/// # Errors
///
/// A missing file is `Ok` with nothing restored. A file that cannot be read, or is not a cache
/// file (not JSON, cut short, not an object with a `peers` array), is a [`CacheError`] naming
/// the path; nothing is restored and the file is left as it was.
pub fn restore(store: &PeerStore, path: &Path) -> Result<RestoreReport, CacheError> {
    let entries = match read_entries(path) {
        Err(CacheError::Read { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(RestoreReport::default());
        }
        other => other?,
    };
    let now = store.wall_now();
    let mut report = RestoreReport::default();
    for (index, entry) in entries.into_iter().enumerate() {
        let info = match entry {
            Ok(info) => info,
            Err(reason) => {
                report.skip_invalid(index, reason);
                continue;
            }
        };
        let seen = info.last_seen.unwrap_or(UNIX_EPOCH);
        if now
            .duration_since(seen)
            .is_ok_and(|age| age > MAX_ENTRY_AGE)
        {
            report.skipped_too_old += 1;
            continue;
        }
        match store.update(info, DiscoveryMethod::Cache) {
            Ok(_) => report.restored += 1,
            Err(UpdateError::StoreFull { .. }) => report.rejected_full += 1,
            Err(UpdateError::Invalid(why)) => report.skip_invalid(index, EntryError::Refused(why)),
        }
    }
    Ok(report)
}

/// `save` with a hook called before each step: an `Err` from it fails that step, a panic
/// stands for a crash there. The fault-injection tests drive it.
fn save_with(
    store: &PeerStore,
    path: &Path,
    before: &mut dyn FnMut(SaveStep) -> io::Result<()>,
) -> Result<usize, CacheError> {
    let mut peers = store.get_all();
    // A stable order: files that differ only by the map's order would differ on every save.
    peers.sort_unstable_by_key(|peer| peer.public_key);
    let file = CacheFile {
        peers: peers.iter().map(|peer| CacheEntry::of(peer)).collect(),
        updated_at: unix_seconds(store.wall_now()),
    };
    let temp = temp_path(path);
    let fail = |step, error| CacheError::Write {
        path: path.to_owned(),
        step,
        error,
    };

    // One save at a time per process: they share the temporary file's name.
    static SAVING: Mutex<()> = Mutex::new(());
    let _turn = SAVING.lock().unwrap_or_else(PoisonError::into_inner);

    let written = (|| {
        before(SaveStep::CreateTemp).map_err(|e| (SaveStep::CreateTemp, e))?;
        let mut out = create_private(&temp).map_err(|e| (SaveStep::CreateTemp, e))?;
        before(SaveStep::Write).map_err(|e| (SaveStep::Write, e))?;
        let mut json =
            serde_json::to_vec_pretty(&file).map_err(|e| (SaveStep::Write, io::Error::other(e)))?;
        json.push(b'\n');
        out.write_all(&json).map_err(|e| (SaveStep::Write, e))?;
        before(SaveStep::SyncTemp).map_err(|e| (SaveStep::SyncTemp, e))?;
        out.sync_all().map_err(|e| (SaveStep::SyncTemp, e))?;
        drop(out);
        before(SaveStep::Rename).map_err(|e| (SaveStep::Rename, e))?;
        fs::rename(&temp, path).map_err(|e| (SaveStep::Rename, e))
    })();
    if let Err((step, source)) = written {
        // Best effort: a leftover is overwritten by the next save anyway.
        let _ = fs::remove_file(&temp);
        return Err(fail(step, source));
    }
    before(SaveStep::SyncDir).map_err(|e| fail(SaveStep::SyncDir, e))?;
    sync_dir(path).map_err(|e| fail(SaveStep::SyncDir, e))?;
    Ok(file.peers.len())
}

/// `.<name>.tmp` beside `path`: same directory, so the rename never crosses file systems.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_else(|| "peers".as_ref()));
    name.push(".tmp");
    path.with_file_name(name)
}

/// Creates (or truncates a leftover) file that only its owner can read.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // `mode` applies only when the file is created; a leftover keeps its own.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is as durable as it gets.
    Ok(())
}

/// The file as written.
#[derive(Serialize)]
struct CacheFile<'a> {
    peers: Vec<CacheEntry<'a>>,
    updated_at: u64,
}

/// One peer as written: the reference's field names; optional fields left out when empty.
#[derive(Serialize)]
struct CacheEntry<'a> {
    wg_pubkey: PublicKey,
    /// `""` when unknown, as the reference writes it.
    mesh_ip: String,
    /// `""` when unknown, as the reference writes it.
    endpoint: String,
    last_seen: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mesh_ipv6: Option<Ipv6Addr>,
    introducer: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    routable_networks: &'a [IpNet],
    #[serde(skip_serializing_if = "Option::is_none")]
    nat_type: Option<NatType>,
}

impl<'a> CacheEntry<'a> {
    fn of(peer: &'a Peer) -> Self {
        CacheEntry {
            wg_pubkey: peer.public_key,
            mesh_ip: peer.mesh_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            endpoint: peer.endpoint.map(|ep| ep.to_string()).unwrap_or_default(),
            last_seen: unix_seconds(peer.last_seen),
            hostname: peer.hostname.as_deref(),
            mesh_ipv6: peer.mesh_ipv6,
            introducer: peer.introducer,
            routable_networks: &peer.routable_networks,
            nat_type: peer.nat_type,
        }
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The file as read: only the shape is checked here, each entry on its own afterwards, so
/// one bad entry costs only itself.
#[derive(serde::Deserialize)]
struct RawFile {
    /// `null` is what the reference writes for no peers.
    #[serde(default)]
    peers: Option<Vec<Value>>,
}

fn read_entries(path: &Path) -> Result<Vec<Result<PeerInfo, EntryError>>, CacheError> {
    let read_error = |error| CacheError::Read {
        path: path.to_owned(),
        error,
    };
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > MAX_FILE_SIZE {
        return Err(CacheError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    // At most MAX_FILE_SIZE, which fits any target's `usize`.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // `take`: the file may grow between the size check and the read.
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(CacheError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
        });
    }
    let raw: RawFile = serde_json::from_slice(&bytes).map_err(|error| CacheError::Parse {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    Ok(raw
        .peers
        .unwrap_or_default()
        .iter()
        .map(parse_entry)
        .collect())
}

/// One entry of the file into an announcement, or the first thing wrong with it.
fn parse_entry(entry: &Value) -> Result<PeerInfo, EntryError> {
    let Value::Object(fields) = entry else {
        return Err(EntryError::NotAnObject {
            found: excerpt(entry),
        });
    };
    let key = text(fields, "wg_pubkey")?.ok_or(EntryError::Missing { field: "wg_pubkey" })?;
    let mut info = PeerInfo::new(parse("wg_pubkey", key)?);
    info.mesh_ip = optional::<Ipv4Addr>(fields, "mesh_ip")?;
    info.endpoint = optional::<SocketAddr>(fields, "endpoint")?;
    info.mesh_ipv6 = optional::<Ipv6Addr>(fields, "mesh_ipv6")?;
    info.hostname = text(fields, "hostname")?.map(Hostname::from);
    info.nat_type = optional::<NatType>(fields, "nat_type")?;
    info.introducer = match present(fields, "introducer") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(bad("introducer", other, "expected true or false")),
    };
    info.routable_networks = match present(fields, "routable_networks") {
        None => RoutableNetworks::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => parse("routable_networks", s),
                other => Err(bad("routable_networks", other, "expected a CIDR string")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad("routable_networks", other, "expected an array")),
    };
    info.last_seen = Some(match present(fields, "last_seen") {
        None => return Err(EntryError::Missing { field: "last_seen" }),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(secs), _) => UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(|| bad("last_seen", &Value::Number(n.clone()), "out of range"))?,
            // Before 1970: older than any cache worth restoring.
            (None, Some(_)) => UNIX_EPOCH,
            (None, None) => {
                return Err(bad(
                    "last_seen",
                    &Value::Number(n.clone()),
                    "expected whole Unix seconds",
                ));
            }
        },
        Some(other) => return Err(bad("last_seen", other, "expected Unix seconds")),
    });
    Ok(info)
}

/// The field's value unless it is absent or `null`.
fn present<'v>(fields: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
    fields.get(field).filter(|v| !v.is_null())
}

/// A string field; absent, `null` and `""` are all `None`.
fn text<'v>(
    fields: &'v Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'v str>, EntryError> {
    match present(fields, field) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(field, other, "expected a string")),
    }
}

fn optional<T>(fields: &Map<String, Value>, field: &'static str) -> Result<Option<T>, EntryError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    text(fields, field)?.map(|s| parse(field, s)).transpose()
}

fn parse<T>(field: &'static str, s: &str) -> Result<T, EntryError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| bad(field, &Value::String(s.to_owned()), &e.to_string()))
}

fn bad(field: &'static str, value: &Value, reason: &str) -> EntryError {
    EntryError::BadValue {
        field,
        value: excerpt(value),
        reason: reason.to_owned(),
    }
}

/// A value as JSON, at most 80 characters of it: reasons stay readable and small.
fn excerpt(value: &Value) -> String {
    const MAX: usize = 80;
    let mut s = value.to_string();
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    /// The entries of a cache file that parse.
    fn load(path: &Path) -> Result<Vec<PeerInfo>, CacheError> {
        Ok(read_entries(path)?.into_iter().flatten().collect())
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "peerstore-cache-unit-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn store_with(n: u8) -> PeerStore {
        let store = PeerStore::builder()
            .clock(ManualClock::starting_at(
                UNIX_EPOCH + Duration::from_secs(1_763_800_000),
            ))
            .build()
            .unwrap();
        for i in 0..n {
            let mut info = PeerInfo::new(PublicKey::from_bytes([i + 1; 32]));
            info.endpoint = Some(SocketAddr::from(([198, 51, 100, i + 1], 51820)));
            store.update(info, DiscoveryMethod::Dht).unwrap();
        }
        store
    }

    /// Fails, then crashes, at each step in turn: the cache file is always the old one whole or
    /// the new one whole, and a failed save leaves no temporary file behind.
    #[test]
    fn a_failure_or_crash_at_any_step_leaves_the_old_file_or_the_new_one() {
        let dir = scratch("faults");
        let path = dir.join("peers.json");
        save(&store_with(1), &path).unwrap();
        let old = fs::read(&path).unwrap();
        let new_store = store_with(3);
        for step in SaveStep::ALL {
            let err = save_with(&new_store, &path, &mut |at| {
                if at == step {
                    Err(io::Error::other("injected"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            assert!(
                matches!(err, CacheError::Write { step: s, .. } if s == step),
                "{err}"
            );
            assert!(err.to_string().contains("peers.json"), "{err}");
            let now = fs::read(&path).unwrap();
            if step == SaveStep::SyncDir {
                assert_eq!(load(&path).unwrap().len(), 3, "renamed before the dir sync");
                save(&store_with(1), &path).unwrap();
            } else {
                assert_eq!(now, old, "a failure at {step} changed the cache");
                assert!(
                    !temp_path(&path).exists(),
                    "temporary file left after {step}"
                );
            }

            let crash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                save_with(&new_store, &path, &mut |at| {
                    assert!(at != step, "crash");
                    Ok(())
                })
            }));
            assert!(crash.is_err());
            let peers = load(&path).expect("the cache is whole after a crash");
            assert!(
                peers.len() == 1 || (peers.len() == 3 && step == SaveStep::SyncDir),
                "a crash at {step} left {} peers",
                peers.len()
            );
            save(&store_with(1), &path).unwrap();
            assert_eq!(
                fs::read(&path).unwrap(),
                old,
                "a leftover temp file broke the next save"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_entry_parses_and_bad_ones_name_field_and_value() {
        let entry: Value = serde_json::from_str(
            r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "mesh_ip": "10.42.0.7",
                "endpoint": "198.51.100.7:51820", "last_seen": 1763800000, "hostname": "edge-1",
                "mesh_ipv6": "fd00::7", "introducer": true, "routable_networks": ["192.168.7.0/24"],
                "nat_type": "cone", "something_new": [1, 2]}"#,
        )
        .unwrap();
        let info = parse_entry(&entry).unwrap();
        assert_eq!(info.public_key, PublicKey::from_bytes([7; 32]));
        assert_eq!(info.nat_type, Some(NatType::Cone));
        assert!(info.introducer);

        for (json, field, value) in [
            (r#"{"last_seen": 1}"#, "wg_pubkey", None),
            (
                r#"{"wg_pubkey": "nope", "last_seen": 1}"#,
                "wg_pubkey",
                Some("\"nope\""),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "endpoint": "1.2.3.4", "last_seen": 1}"#,
                "endpoint",
                Some("\"1.2.3.4\""),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}"#,
                "last_seen",
                None,
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "last_seen": 1.5}"#,
                "last_seen",
                Some("1.5"),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "last_seen": 1, "routable_networks": ["10.0.0.0/33"]}"#,
                "routable_networks",
                Some("\"10.0.0.0/33\""),
            ),
            (
                r#"{"wg_pubkey": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", "last_seen": 1, "nat_type": "full-cone"}"#,
                "nat_type",
                Some("\"full-cone\""),
            ),
        ] {
            let err = parse_entry(&serde_json::from_str(json).unwrap()).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(field), "{message}");
            if let Some(value) = value {
                assert!(message.contains(value), "{message}");
            }
        }
        assert!(matches!(
            parse_entry(&Value::from(3)),
            Err(EntryError::NotAnObject { .. })
        ));
    }

    #[test]
    fn long_values_are_cut_short_in_reasons() {
        let long = Value::String("é".repeat(500));
        let cut = excerpt(&long);
        assert!(cut.len() <= 84 && cut.ends_with('…'), "{cut}");
    }
}
