//! Why compiling generated Rust to a component failed.
//!
//! Invariants: no variant carries a value that only a string could describe where a kind would
//! do; diagnostics keep rustc's structure (level, message, line) so that the caller can map a
//! line of `graph.rs` back to the graph node that produced it.

use std::path::PathBuf;
use std::time::Duration;

/// The one command that installs the guest target.
pub(crate) const FIX_MISSING_TARGET: &str = "rustup target add wasm32-wasip2";

/// Why [`super::Compiler`] could not be created or could not compile a source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RustCompileError {
    /// A limit/environment error: no rustc could be started at the configured path.
    #[error("rustc not found at {path}: {message}")]
    RustcNotFound {
        /// The path or command name that was tried.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// A user (environment) error: the toolchain has no wasm32-wasip2 standard library.
    #[error("the wasm32-wasip2 target is not installed in {sysroot}; fix: {FIX_MISSING_TARGET}")]
    WasmTargetMissing {
        /// The sysroot that was searched.
        sysroot: PathBuf,
    },
    /// A user (environment) error: the rustc found at run time is not the one that built the
    /// embedded guest template, whose rlibs it could not load.
    #[error(
        "toolchain mismatch: the guest template was built with `{expected}` but rustc is `{found}`; \
         rebuild graphjit with the current toolchain or point it at the original rustc"
    )]
    ToolchainMismatch {
        /// First line of `rustc -vV` at build time.
        expected: String,
        /// First line of `rustc -vV` now.
        found: String,
    },
    /// A bug in codegen (or a source written by hand): rustc rejected the source.
    #[error("rustc rejected the generated source: {}", summary(.diagnostics))]
    Rejected {
        /// rustc's diagnostics, in the order it emitted them.
        diagnostics: Vec<Diagnostic>,
    },
    /// A limit: rustc ran longer than the configured timeout and was killed.
    #[error("rustc did not finish within {limit:?}")]
    Timeout {
        /// The timeout that was exceeded.
        limit: Duration,
    },
    /// A limit: rustc reached one of the compile sandbox's OS limits and was stopped (the
    /// kernel refused its memory, or killed it for CPU time or file size).
    #[error("rustc passed the compile sandbox's {limit} ({detail})")]
    LimitExceeded {
        /// Which limit.
        limit: SandboxLimit,
        /// What showed it: the signal, or rustc's own last words.
        detail: String,
    },
    /// A bug or environment error: rustc exited unsuccessfully without a diagnostic, or
    /// printed something that is not its JSON.
    #[error("rustc failed ({status}) without a diagnostic: {stderr}")]
    RustcFailed {
        /// The exit status, as text.
        status: String,
        /// The first part of what rustc wrote to stderr.
        stderr: String,
    },
    /// An environment error: reading or writing the template cache or the build directory.
    #[error("I/O error while {action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl RustCompileError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> RustCompileError {
        let action = action.into();
        move |source| RustCompileError::Io { action, source }
    }

    /// The line in `graph.rs` of the first error diagnostic that has one.
    pub(crate) fn first_line(&self) -> Option<u32> {
        match self {
            RustCompileError::Rejected { diagnostics } => diagnostics
                .iter()
                .filter(|d| d.level == "error")
                .chain(diagnostics.iter())
                .find_map(|d| d.line),
            _ => None,
        }
    }

    /// True when the compile reached a limit of its sandbox (time, CPU, memory, file size).
    pub(crate) fn is_limit(&self) -> bool {
        matches!(
            self,
            RustCompileError::Timeout { .. } | RustCompileError::LimitExceeded { .. }
        )
    }

    /// True when the error is about the toolchain or the environment rather than the source.
    pub(crate) fn is_toolchain(&self) -> bool {
        matches!(
            self,
            RustCompileError::RustcNotFound { .. }
                | RustCompileError::WasmTargetMissing { .. }
                | RustCompileError::ToolchainMismatch { .. }
        )
    }

    /// What the user can do about it, in one line.
    pub(crate) fn remediation(&self) -> String {
        match self {
            RustCompileError::RustcNotFound { .. } => {
                "install Rust (rustup), or set GRAPHJIT_RUSTC to a rustc binary".to_owned()
            }
            RustCompileError::WasmTargetMissing { .. } => FIX_MISSING_TARGET.to_owned(),
            RustCompileError::ToolchainMismatch { .. } => {
                "rebuild graphjit with the toolchain it runs with (cargo build)".to_owned()
            }
            RustCompileError::Timeout { .. } => {
                "raise the compile timeout, or send a smaller graph".to_owned()
            }
            RustCompileError::LimitExceeded { limit, .. } => {
                format!("raise the compile {}, or send a smaller graph", limit.setting())
            }
            RustCompileError::Io { .. } => {
                "check that the cache directory (GRAPHJIT_CACHE_DIR) and the temp directory are writable"
                    .to_owned()
            }
            RustCompileError::Rejected { .. } | RustCompileError::RustcFailed { .. } => {
                "report this as a bug, with the graph".to_owned()
            }
        }
    }
}

/// One of the compile sandbox's OS limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SandboxLimit {
    /// `RLIMIT_DATA`.
    Memory { bytes: u64 },
    /// `RLIMIT_CPU`.
    Cpu { seconds: u64 },
    /// `RLIMIT_FSIZE`.
    FileSize { bytes: u64 },
}

impl SandboxLimit {
    /// The [`super::CompileLimits`] field that sets it, in words.
    fn setting(self) -> &'static str {
        match self {
            SandboxLimit::Memory { .. } => "memory limit",
            SandboxLimit::Cpu { .. } => "CPU-time limit",
            SandboxLimit::FileSize { .. } => "file-size limit",
        }
    }
}

impl std::fmt::Display for SandboxLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxLimit::Memory { bytes } => write!(f, "memory limit of {bytes} bytes"),
            SandboxLimit::Cpu { seconds } => write!(f, "CPU-time limit of {seconds} s"),
            SandboxLimit::FileSize { bytes } => write!(f, "file-size limit of {bytes} bytes"),
        }
    }
}

/// One rustc diagnostic, from `--error-format=json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    /// `error`, `warning`, `note`, `help`, `failure-note` or `error: internal compiler error`.
    pub(crate) level: String,
    /// The one-line message.
    pub(crate) message: String,
    /// The error code (`E0308`), if any.
    pub(crate) code: Option<String>,
    /// 1-based line in `graph.rs` of the primary span, if the diagnostic points into it.
    pub(crate) line: Option<u32>,
    /// rustc's human-readable rendering (no colors).
    pub(crate) rendered: String,
    /// The notes under the message, collapsed to one line (a linker's own error, say).
    pub(crate) detail: String,
}

/// How much of a diagnostic's notes the one-line summary keeps.
const MAX_DETAIL: usize = 600;

fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.level.starts_with("error"))
        .map(|d| match d.line {
            Some(line) => format!("line {line}: {}", d.message),
            None if d.detail.is_empty() => d.message.clone(),
            None => {
                let detail: String = d.detail.chars().take(MAX_DETAIL).collect();
                format!("{} ({detail})", d.message)
            }
        })
        .collect();
    if errors.is_empty() {
        format!("{} diagnostics", diagnostics.len())
    } else {
        errors.join("; ")
    }
}
