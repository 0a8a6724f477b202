//! The guest template's rlibs, embedded by `host/build.rs`, and their copy on disk.
//!
//! rustc links generated guests against files, so the embedded rlibs are written once to
//! `<cache>/template/<template hash>/`. Invariants: a directory is never used before its
//! contents are checked byte for byte against the embedded rlibs (a truncated or tampered cache
//! is replaced, never trusted); a directory is never half-written where rustc can see it (it is
//! written under a temporary name, then renamed into place); nothing else is ever written there.

use std::path::{Path, PathBuf};

use super::error::RustCompileError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/guest_template.rs"));
}

pub(crate) use embedded::{RUSTC_VERSION, TEMPLATE_HASH};

/// Environment variable that overrides the cache root.
pub(crate) const CACHE_DIR_ENV: &str = "GRAPHJIT_CACHE_DIR";

/// The template's rlibs on disk, checked.
#[derive(Clone, Debug)]
pub(crate) struct TemplateDir {
    /// The directory to pass as `-L dependency=`.
    pub(crate) dir: PathBuf,
    /// The template's own rlib, for `--extern graphjit_guest=`.
    pub(crate) guest_rlib: PathBuf,
}

/// `$GRAPHJIT_CACHE_DIR`, else `$XDG_CACHE_HOME/graphjit`, else `$HOME/.cache/graphjit`, else
/// `<temp>/graphjit-cache`.
pub(crate) fn default_cache_root() -> PathBuf {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from_env(CACHE_DIR_ENV) {
        return dir;
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return dir.join("graphjit");
    }
    if let Some(home) = from_env("HOME") {
        return home.join(".cache").join("graphjit");
    }
    std::env::temp_dir().join("graphjit-cache")
}

/// Makes sure `<cache_root>/template/<hash>` holds exactly the embedded rlibs and returns it.
pub(crate) fn install(cache_root: &Path) -> Result<TemplateDir, RustCompileError> {
    let parent = cache_root.join("template");
    let dir = parent.join(TEMPLATE_HASH);
    let found = TemplateDir {
        guest_rlib: dir.join(embedded::GUEST_RLIB),
        dir: dir.clone(),
    };
    if matches_embedded(&dir) {
        return Ok(found);
    }
    std::fs::create_dir_all(&parent).map_err(RustCompileError::io(format!(
        "creating {}",
        parent.display()
    )))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&parent)
        .map_err(RustCompileError::io(format!(
            "creating a directory in {}",
            parent.display()
        )))?;
    for (name, bytes) in embedded::RLIBS {
        let path = staging.path().join(name);
        std::fs::write(&path, bytes)
            .map_err(RustCompileError::io(format!("writing {}", path.display())))?;
    }
    if dir.exists() {
        // Present but not what we embed: move it aside (renames are atomic), then delete.
        let stale = parent.join(format!(".stale-{}-{}", TEMPLATE_HASH, std::process::id()));
        if std::fs::rename(&dir, &stale).is_ok() {
            let _ignored = std::fs::remove_dir_all(&stale);
        }
    }
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, &dir) {
        let _ignored = std::fs::remove_dir_all(&staged);
        // Another process may have installed the same template in the meantime.
        if !matches_embedded(&dir) {
            return Err(RustCompileError::Io {
                action: format!("installing the guest template in {}", dir.display()),
                source: e,
            });
        }
    }
    Ok(found)
}

/// True when `dir` holds exactly the embedded files with exactly their bytes.
fn matches_embedded(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let count = entries.count();
    count == embedded::RLIBS.len()
        && embedded::RLIBS.iter().all(|(name, bytes)| {
            std::fs::read(dir.join(name)).is_ok_and(|on_disk| on_disk == *bytes)
        })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn install_repairs_a_tampered_cache() {
        let root = tempfile::tempdir().unwrap();
        let first = install(root.path()).unwrap();
        assert!(first.guest_rlib.is_file());
        std::fs::write(&first.guest_rlib, b"tampered").unwrap();
        std::fs::write(first.dir.join("extra.rlib"), b"stray").unwrap();
        let second = install(root.path()).unwrap();
        assert_eq!(second.dir, first.dir);
        assert!(matches_embedded(&second.dir));
    }
}
