//! The peer cache on disk: save the store's peers, restore them at start-up.
//!
//! A daemon saves its peers every few minutes and at shutdown, and restores them at start-up so
//! that it can reach its mesh before discovery has run. The file is the JSON the reference
//! daemon (wgmesh) writes, so a node that switches implementations keeps its cache (the format
//! is in `format.rs`, writer and reader side by side):
//!
//! ```json
//! {"peers": [{"wg_pubkey": "<base64>", "mesh_ip": "10.42.0.7", "endpoint": "198.51.100.7:51820",
//!             "last_seen": 1763800000, "hostname": "edge-1"}],
//!  "updated_at": 1763800000}
//! ```
//!
//! [`save`] replaces the file atomically, readable by its owner only, through a temporary file
//! of a fresh unpredictable name that is created exclusively: a crash at any point leaves the
//! old file or the new one, a file planted in the directory (a symlink, a FIFO) is never opened,
//! and savers racing on one path, threads or processes, never tear it or fail each other.
//!
//! [`restore`] opens only a regular file (a FIFO, device or directory is an error at once, never
//! a hang), streams the entries, and skips what it cannot use, entry by entry, saying so in its
//! [`RestoreReport`]; a file it cannot read at all is a [`CacheError`] and is left as it was.
//! It costs the file's size once, plus one entry of at most [`MAX_ENTRY_LEN`] bytes at a time.
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

mod file;
mod format;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

pub use format::MAX_ENTRY_LEN;

use crate::{DiscoveryMethod, InvalidPeerInfo, PeerStore, UpdateError};

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
    /// Entries for peers removed with a tombstone that still stands
    /// ([`PeerStore::remove_for`](crate::PeerStore::remove_for)): the cache cannot bring them back.
    pub rejected_tombstoned: usize,
    /// Tombstones restored (standing, for peers the store does not hold); at most
    /// [`MAX_TOMBSTONES`](crate::MAX_TOMBSTONES) are read.
    pub tombstones: usize,
    /// Entries for banned keys ([`PeerStore::ban`](crate::PeerStore::ban)), refused.
    pub rejected_banned: usize,
    /// Bans restored (standing); at most [`MAX_BANS`](crate::MAX_BANS) are read, and one
    /// whose reason the store would refuse is not one.
    pub bans: usize,
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
    /// A string of the entry holds bytes that are not UTF-8.
    NotUtf8,
    /// The entry is longer than [`MAX_ENTRY_LEN`] bytes of JSON: no peer takes that much.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
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
            EntryError::NotUtf8 => f.write_str("the entry holds bytes that are not UTF-8"),
            EntryError::TooLong { len } => write!(
                f,
                "the entry is {len} bytes long, over the limit of {MAX_ENTRY_LEN}: not a peer"
            ),
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
    /// The path is not a regular file (a FIFO, a socket, a device, a directory): refused at
    /// once, never read.
    NotAFile {
        /// The cache file's path.
        path: PathBuf,
        /// What is there instead, such as `"a FIFO"`.
        found: &'static str,
    },
    /// The file is larger than [`MAX_FILE_SIZE`].
    TooLarge {
        /// The cache file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The file is not JSON, is cut short, or is not an object with a `peers` array (or
    /// `null`); a bare array is not a cache file either.
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
            CacheError::NotAFile { path, found } => write!(
                f,
                "peer cache {} is {found}, not a regular file: not read",
                path.display()
            ),
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
/// The peers go to a temporary file of a fresh unpredictable name (`.NAME.<random>.tmp`) in the
/// same directory, created exclusively (never an existing path, never through a symlink, never
/// a FIFO), synced, renamed over `path`, and the directory synced: a crash at any point leaves
/// the old file or the new one. Savers racing on one path, threads or processes, each replace
/// the file whole; a reader sees one of the files whole. A symlink at `path` is replaced by the
/// file, not written through. Temporary files that crashed saves left (named so, regular files,
/// older than ten minutes) are removed by the next save; nothing else is touched.
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
/// An entry last seen more than [`MAX_ENTRY_AGE`] ago is skipped; one that does not parse,
/// holds bytes that are not UTF-8, is longer than [`MAX_ENTRY_LEN`], or that the store refuses
/// is skipped and counted; a new peer the full store cannot take is counted as rejected. None
/// of these stops the rest. Restored peers keep their age: one last seen more than
/// [`PEER_REMOVE_TIMEOUT`](crate::PEER_REMOVE_TIMEOUT) ago goes at the next cleanup unless
/// discovery hears of it first.
///
/// Memory: the file's size (at most [`MAX_FILE_SIZE`]) once, plus one entry at a time.
///
/// # Errors
///
/// A missing file is `Ok` with nothing restored. A path that is not a regular file, a file
/// that cannot be read, or one that is not a cache file (not JSON, cut short, not an object
/// with a `peers` array) is a [`CacheError`] naming the path; nothing is restored and the file
/// is left as it was.
pub fn restore(store: &PeerStore, path: &Path) -> Result<RestoreReport, CacheError> {
    let bytes = match file::read_regular(path) {
        Err(CacheError::Read { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(RestoreReport::default());
        }
        other => other?,
    };
    let text = format::Text::new(bytes);
    let parse_error = |reason| CacheError::Parse {
        path: path.to_owned(),
        reason,
    };
    // The whole file's shape first, so that a file broken at its end restores nothing; the
    // tombstones with it, so that they stand before the first entry is fed.
    let mut tombstones = Vec::new();
    let mut bans = Vec::new();
    format::check(&text, |kind, raw| match kind {
        format::Extra::Tombstone if tombstones.len() < crate::MAX_TOMBSTONES => {
            tombstones.extend(format::TombstoneEntry::tombstone(raw));
        }
        format::Extra::Ban if bans.len() < crate::MAX_BANS => bans.extend(format::read_ban(raw)),
        format::Extra::Tombstone | format::Extra::Ban => {}
    })
    .map_err(parse_error)?;
    let now = store.wall_now();
    let mut report = RestoreReport::default();
    for (key, since, until, reason) in bans {
        report.bans += usize::from(store.restore_ban(key, since, until, &reason));
    }
    for (key, since, until, cause) in tombstones {
        report.tombstones += usize::from(store.restore_tombstone(key, since, until, cause));
    }
    format::for_each_entry(&text, |index, entry| {
        let info = match entry {
            Ok(info) => info,
            Err(reason) => return report.skip_invalid(index, reason),
        };
        let seen = info.last_seen.unwrap_or(UNIX_EPOCH);
        if now
            .duration_since(seen)
            .is_ok_and(|age| age > MAX_ENTRY_AGE)
        {
            report.skipped_too_old += 1;
            return;
        }
        match store.update(info, DiscoveryMethod::Cache) {
            Ok(_) => report.restored += 1,
            Err(UpdateError::StoreFull { .. }) => report.rejected_full += 1,
            Err(UpdateError::Tombstoned { .. }) => report.rejected_tombstoned += 1,
            Err(UpdateError::Banned { .. }) => report.rejected_banned += 1,
            Err(UpdateError::Invalid(why)) => report.skip_invalid(index, EntryError::Refused(why)),
        }
    })
    .map_err(parse_error)?;
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
    let contents = format::write(
        &peers,
        &store.tombstones(),
        &store.banned(),
        store.wall_now(),
    );
    file::replace(path, &contents, before).map_err(|(step, error)| CacheError::Write {
        path: path.to_owned(),
        step,
        error,
    })?;
    Ok(peers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, PeerInfo, PublicKey};
    use std::fs;
    use std::net::SocketAddr;

    /// How many peers a restore of `path` into a fresh store takes.
    fn load(path: &Path) -> Result<usize, CacheError> {
        Ok(restore(&store_with(0), path)?.restored)
    }

    /// The files in `dir` besides `peers.json`.
    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "peers.json")
            .collect()
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
                assert_eq!(load(&path).unwrap(), 3, "renamed before the dir sync");
                save(&store_with(1), &path).unwrap();
            } else {
                assert_eq!(now, old, "a failure at {step} changed the cache");
                assert_eq!(leftovers(&dir), [] as [String; 0], "left after {step}");
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
                peers == 1 || (peers == 3 && step == SaveStep::SyncDir),
                "a crash at {step} left {peers} peers"
            );
            assert_eq!(
                leftovers(&dir),
                [] as [String; 0],
                "a crash at {step} left a file"
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
}
