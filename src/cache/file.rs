//! The cache file on disk: opened only if it is a regular file, read within a size limit, and
//! replaced atomically through a temporary file that no planted file can subvert.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{CacheError, MAX_FILE_SIZE, SaveStep};

/// How old a leftover temporary file must be before a save removes it: no save takes this
/// long, so an older one is a crashed save's, never a running one's.
const LEFTOVER_AGE: Duration = Duration::from_secs(10 * 60);

/// Reads the whole cache file at `path`, which must be a regular file of at most
/// [`MAX_FILE_SIZE`] bytes. Never blocks on a FIFO or a device: the file is opened without
/// waiting, and what was opened (not what the path names, which could be swapped meanwhile) is
/// checked before a byte is read.
pub(super) fn read_regular(path: &Path) -> Result<Vec<u8>, CacheError> {
    let read_error = |error| CacheError::Read {
        path: path.to_owned(),
        error,
    };
    let mut options = fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer, unless told not to. (Miri's file system
    // refuses the flag, and has no FIFOs to wait on.)
    #[cfg(all(unix, not(miri)))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(CacheError::NotAFile {
            path: path.to_owned(),
            found: kind(&metadata.file_type()),
        });
    }
    if metadata.len() > MAX_FILE_SIZE {
        return Err(CacheError::TooLarge {
            path: path.to_owned(),
            size: metadata.len(),
        });
    }
    // At most MAX_FILE_SIZE, which fits any target's `usize`.
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
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
    Ok(bytes)
}

/// What a file that is not a regular one is, for the error.
fn kind(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The temporary files of saves to `path`: `.<name>.<random>.tmp` in its directory.
struct TempNames {
    dir: PathBuf,
    prefix: OsString,
}

const SUFFIX: &str = ".tmp";
/// Random characters in a temporary file's name: unpredictable, so nothing can be planted at it.
const RANDOM_LEN: usize = 12;

impl TempNames {
    fn of(path: &Path) -> Self {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut prefix = OsString::from(".");
        prefix.push(path.file_name().unwrap_or_else(|| "peers".as_ref()));
        prefix.push(".");
        TempNames { dir, prefix }
    }

    /// Whether `name` is one of ours: the prefix, `RANDOM_LEN` characters, the suffix.
    fn is_ours(&self, name: &std::ffi::OsStr) -> bool {
        let (Some(name), Some(prefix)) = (name.to_str(), self.prefix.to_str()) else {
            return false;
        };
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
            .is_some_and(|random| {
                random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    }

    /// Removes the temporary files crashed saves left: regular files (never a link, a FIFO or
    /// anything else) named as ours and older than [`LEFTOVER_AGE`]. Best effort: a save does
    /// not fail for a leftover it could not remove.
    fn remove_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            if !self.is_ours(&entry.file_name()) {
                continue;
            }
            // `symlink_metadata`: a link is judged as a link, not as what it points to.
            let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            let old = metadata
                .modified()
                .ok()
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > LEFTOVER_AGE);
            if metadata.is_file() && old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Replaces `path` with `contents` atomically: a new file of a fresh unpredictable name in the
/// same directory, created exclusively (never an existing path, never through a link, never
/// a FIFO), readable by its owner only, written, synced, renamed over `path`, and the
/// directory synced. A reader of `path` sees the old file or the new one whole, whatever other
/// savers do at the same time. `before` runs before each step (the fault-injection tests fail
/// or crash there).
///
/// A symlink at `path` is replaced by the new file, not written through.
pub(super) fn replace(
    path: &Path,
    contents: &[u8],
    before: &mut dyn FnMut(SaveStep) -> io::Result<()>,
) -> Result<(), (SaveStep, io::Error)> {
    let names = TempNames::of(path);
    names.remove_leftovers();
    let at = |step| move |error| (step, error);

    before(SaveStep::CreateTemp).map_err(at(SaveStep::CreateTemp))?;
    let mut temp = tempfile::Builder::new()
        .prefix(&names.prefix)
        .suffix(SUFFIX)
        .rand_bytes(RANDOM_LEN)
        .tempfile_in(&names.dir)
        .map_err(at(SaveStep::CreateTemp))?;
    // Dropping `temp` before it is renamed removes it: an error, or a panic, leaves nothing.
    before(SaveStep::Write).map_err(at(SaveStep::Write))?;
    temp.write_all(contents).map_err(at(SaveStep::Write))?;
    before(SaveStep::SyncTemp).map_err(at(SaveStep::SyncTemp))?;
    temp.as_file().sync_all().map_err(at(SaveStep::SyncTemp))?;
    before(SaveStep::Rename).map_err(at(SaveStep::Rename))?;
    temp.persist(path)
        .map_err(|failed| (SaveStep::Rename, failed.error))?;
    before(SaveStep::SyncDir).map_err(at(SaveStep::SyncDir))?;
    sync_dir(&names.dir).map_err(at(SaveStep::SyncDir))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is as durable as it gets.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised_exactly() {
        let names = TempNames::of(Path::new("/var/lib/mesh/peers.json"));
        assert_eq!(names.dir, Path::new("/var/lib/mesh"));
        assert!(names.is_ours(".peers.json.a1B2c3D4e5F6.tmp".as_ref()));
        for not_ours in [
            ".peers.json.tmp",
            ".peers.json.a1B2c3D4e5F.tmp",
            ".peers.json.a1B2c3D4e5F6.tmp.bak",
            "peers.json.a1B2c3D4e5F6.tmp",
            ".peers.json.a1B2c3D4e5/6.tmp",
            ".other.json.a1B2c3D4e5F6.tmp",
            "peers.json",
        ] {
            assert!(!names.is_ours(not_ours.as_ref()), "{not_ours}");
        }
        assert_eq!(TempNames::of(Path::new("peers.json")).dir, Path::new("."));
    }
}
