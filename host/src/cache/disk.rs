//! L2: precompiled components on disk, one file per key, integrity-checked, LRU-pruned.
//!
//! A file is `<dir>/<key hex>.cwasm`:
//!
//! ```text
//! "GJCACHE1" | key (32 bytes) | blake3 of payload (32 bytes) | payload length (u64 LE) | payload
//! ```
//!
//! Invariants:
//! - The directory is trusted code (its payloads are deserialized into executable memory), so
//!   it must be owned by this user and writable by no one else; otherwise it is refused.
//! - A file is written to a temporary name in the same directory and renamed into place: a
//!   reader sees the whole file or none of it, even with several processes sharing the dir.
//! - A payload is returned only if the magic, the key, the length and the blake3 all match;
//!   anything else (corrupt, truncated, renamed from another key) is deleted and reported as
//!   a miss with its reason. Nothing unchecked ever reaches `Component::deserialize`.
//! - After each write the directory is pruned, least recently used first (a hit touches the
//!   file's modification time), until it holds at most `max_bytes`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::CacheKey;

const MAGIC: &[u8; 8] = b"GJCACHE1";
const HEADER_LEN: usize = 8 + 32 + 32 + 8;
const EXTENSION: &str = "cwasm";

/// Errors of the disk cache itself (not of a single entry: those are misses).
#[derive(Debug, thiserror::Error)]
pub enum DiskCacheError {
    /// The directory could be written by someone else, or belongs to someone else.
    #[error("cache directory {path} is not safe to load code from: {why}")]
    Insecure {
        /// The directory.
        path: PathBuf,
        /// Owner or mode problem.
        why: String,
    },
    /// The file system refused.
    #[error("cache directory {path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DiskCacheError + '_ {
    move |e| DiskCacheError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The checked payload.
    Hit(Vec<u8>),
    /// No file for this key.
    Absent,
    /// A file was there but failed a check; it has been deleted.
    Discarded(String),
}

/// Entry count and total size on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DiskStats {
    /// Number of cached components.
    pub entries: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The bound the directory is pruned to.
    pub max_bytes: u64,
}

/// A cache directory, checked.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl DiskCache {
    /// Opens (creating with mode 0700 if absent) and checks `dir`.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<DiskCache, DiskCacheError> {
        create_private_dir(dir)?;
        check_private(dir)?;
        Ok(DiskCache {
            dir: dir.to_owned(),
            max_bytes,
        })
    }

    /// The directory.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.{EXTENSION}", key.to_hex()))
    }

    /// Whether a file for `key` exists (not verified: [`DiskCache::get`] does that).
    pub(crate) fn contains(&self, key: &CacheKey) -> bool {
        self.path(key).is_file()
    }

    /// Reads and checks the entry for `key`.
    pub(crate) fn get(&self, key: &CacheKey) -> Lookup {
        let path = self.path(key);
        let mut bytes = Vec::new();
        match File::open(&path).and_then(|mut file| file.read_to_end(&mut bytes)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Absent,
            Err(e) => return self.discard(&path, format!("unreadable: {e}")),
        }
        match check(&bytes, key) {
            Ok(()) => {
                // Recency for pruning; failing to touch only makes pruning less precise.
                let _ignored = File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(SystemTime::now()));
                bytes.drain(..HEADER_LEN);
                Lookup::Hit(bytes)
            }
            Err(why) => self.discard(&path, why),
        }
    }

    fn discard(&self, path: &Path, why: String) -> Lookup {
        tracing::warn!(path = %path.display(), why, "discarding a bad cache file");
        // If it cannot be removed it is refused again next time; the next write replaces it.
        let _ignored = fs::remove_file(path);
        Lookup::Discarded(why)
    }

    /// Writes the entry for `key` atomically, then prunes.
    pub(crate) fn put(&self, key: &CacheKey, payload: &[u8]) -> Result<(), DiskCacheError> {
        let mut file = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(io(&self.dir))?;
        let hash = blake3::hash(payload);
        let len = payload.len() as u64;
        let path = self.path(key);
        file.write_all(MAGIC)
            .and_then(|()| file.write_all(key.as_bytes()))
            .and_then(|()| file.write_all(hash.as_bytes()))
            .and_then(|()| file.write_all(&len.to_le_bytes()))
            .and_then(|()| file.write_all(payload))
            .and_then(|()| file.as_file().sync_data())
            .map_err(io(&path))?;
        file.persist(&path).map_err(|e| DiskCacheError::Io {
            path: path.clone(),
            message: e.error.to_string(),
        })?;
        self.prune()
    }

    fn entries(&self) -> Result<Vec<(PathBuf, u64, SystemTime)>, DiskCacheError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            // An entry that vanished meanwhile (another process pruned it) is skipped.
            if let Ok(meta) = entry.metadata() {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((path, meta.len(), modified));
            }
        }
        Ok(out)
    }

    /// Deletes least recently used entries until the total fits `max_bytes`.
    fn prune(&self) -> Result<(), DiskCacheError> {
        let mut entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        // Oldest first; ties broken by path so that every process prunes alike.
        entries.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        for (path, len, _) in entries {
            if total <= self.max_bytes {
                break;
            }
            match fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }

    /// Entry count and bytes.
    pub(crate) fn stats(&self) -> Result<DiskStats, DiskCacheError> {
        let entries = self.entries()?;
        Ok(DiskStats {
            entries: entries.len() as u64,
            bytes: entries.iter().map(|(_, len, _)| len).sum(),
            max_bytes: self.max_bytes,
        })
    }

    /// Deletes every entry (and stale temporary files); returns how many entries went.
    pub(crate) fn clear(&self) -> Result<u64, DiskCacheError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ours = name.ends_with(&format!(".{EXTENSION}")) || name.starts_with(".tmp-");
            if ours && path.is_file() {
                fs::remove_file(&path).map_err(io(&path))?;
                if name.ends_with(EXTENSION) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn check(bytes: &[u8], key: &CacheKey) -> Result<(), String> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(format!(
            "truncated: {} bytes, shorter than the header",
            bytes.len()
        ));
    };
    let (magic, rest) = header.split_at(8);
    let (file_key, rest) = rest.split_at(32);
    let (hash, len) = rest.split_at(32);
    if magic != MAGIC {
        return Err("not a graphjit cache file (bad magic)".to_owned());
    }
    if file_key != key.as_bytes() {
        return Err("written for another key".to_owned());
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(len);
    let payload = &bytes[HEADER_LEN..];
    if u64::from_le_bytes(len_bytes) != payload.len() as u64 {
        return Err(format!(
            "truncated: payload is {} bytes, header says {}",
            payload.len(),
            u64::from_le_bytes(len_bytes)
        ));
    }
    if blake3::hash(payload).as_bytes() != hash {
        return Err("corrupt: blake3 of the payload does not match".to_owned());
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), DiskCacheError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir).map_err(io(dir))
    }
}

/// Refuses a directory that another user owns or that group or others may write.
fn check_private(dir: &Path) -> Result<(), DiskCacheError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(dir).map_err(io(dir))?;
        let insecure = |why: String| DiskCacheError::Insecure {
            path: dir.to_owned(),
            why,
        };
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(insecure(format!(
                "owned by uid {}, not by this user (uid {me})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(insecure(format!(
                "mode {:o} lets group or others write; fix: chmod go-w {}",
                meta.mode() & 0o777,
                dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
