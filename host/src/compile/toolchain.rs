//! The rustc that compiles guests: where it is, which it is, and whether it can target
//! wasm32-wasip2.
//!
//! Invariants: this file runs rustc only to ask it questions (`--print sysroot`, `-vV`), never
//! to compile; it never installs anything (a missing target is a typed error naming the fix).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::RustCompileError;

/// The target every guest is compiled for.
pub(crate) const GUEST_TARGET: &str = "wasm32-wasip2";

/// Environment variable that overrides which rustc compiles guests.
pub(crate) const RUSTC_ENV: &str = "GRAPHJIT_RUSTC";

/// What the compiler knows about its rustc, probed once.
#[derive(Clone, Debug)]
pub(crate) struct Toolchain {
    /// The binary to run for compiles: `<sysroot>/bin/rustc` when present (skips the rustup
    /// proxy, ~10 ms per call), else the configured rustc.
    pub(crate) rustc: PathBuf,
    /// `rustc --print sysroot`.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "kept with the toolchain facts it was probed with (Debug)"
        )
    )]
    pub(crate) sysroot: PathBuf,
    /// `rustc -vV`, verbatim.
    pub(crate) version: String,
}

impl Toolchain {
    /// Probes `rustc` (a path or a command name on `PATH`); checks that the guest target is
    /// installed and that the version is `expected_version` (the one the template was built
    /// with), in that order.
    pub(crate) fn probe(
        rustc: &Path,
        expected_version: &str,
    ) -> Result<Toolchain, RustCompileError> {
        let sysroot = PathBuf::from(ask(rustc, &["--print", "sysroot"])?.trim());
        if !sysroot
            .join("lib/rustlib")
            .join(GUEST_TARGET)
            .join("lib")
            .is_dir()
        {
            return Err(RustCompileError::WasmTargetMissing { sysroot });
        }
        let version = ask(rustc, &["-vV"])?;
        if version != expected_version {
            let (expected, found) = describe_difference(expected_version, &version);
            return Err(RustCompileError::ToolchainMismatch { expected, found });
        }
        let direct = sysroot
            .join("bin")
            .join(if cfg!(windows) { "rustc.exe" } else { "rustc" });
        let rustc = if direct.is_file() {
            direct
        } else {
            rustc.to_path_buf()
        };
        Ok(Toolchain {
            rustc,
            sysroot,
            version,
        })
    }
}

/// The rustc to use when none is configured: `$GRAPHJIT_RUSTC`, else `rustc` on `PATH`.
pub(crate) fn default_rustc() -> PathBuf {
    std::env::var_os(RUSTC_ENV).map_or_else(|| PathBuf::from("rustc"), PathBuf::from)
}

fn ask(rustc: &Path, args: &[&str]) -> Result<String, RustCompileError> {
    let not_found = |message: String| RustCompileError::RustcNotFound {
        path: rustc.to_path_buf(),
        message,
    };
    let output = Command::new(rustc)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| not_found(e.to_string()))?;
    if !output.status.success() {
        return Err(not_found(format!(
            "`{} {}` failed ({}): {}",
            rustc.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| not_found("its output is not UTF-8".to_owned()))
}

/// The first lines of both versions, or, when those agree, the whole texts on one line each.
fn describe_difference(expected: &str, found: &str) -> (String, String) {
    let first = |s: &str| s.lines().next().unwrap_or_default().to_owned();
    if first(expected) != first(found) {
        return (first(expected), first(found));
    }
    let flat = |s: &str| s.lines().collect::<Vec<_>>().join("; ");
    (flat(expected), flat(found))
}
