//! compile: generated Rust source → a wasm32-wasip2 component, by running rustc directly
//! against the prebuilt guest template (no cargo per graph).
//!
//! Invariants:
//! - `compile` never runs guest code: it produces bytes; only `runtime` executes them.
//! - `compile` knows nothing of graphs: it takes a source string and returns bytes or rustc's
//!   diagnostics (with line numbers of `graph.rs`; mapping lines to nodes is codegen's job).
//! - The same source, options, toolchain and template give byte-identical components (fresh
//!   directory, fixed file names, remapped paths; tested).
//! - rustc runs in a sandbox of OS limits ([`CompileLimits`]: wall time, CPU time, data memory,
//!   file size, no core dumps); a compile that hits one is a typed `LimitExceeded` (or
//!   `Timeout`), never a hung worker. rustc never runs at all when the
//!   toolchain is not the one that built the embedded template or cannot target wasm32-wasip2:
//!   those are typed errors, found once when the [`Compiler`] is created.

mod error;
mod rustc;
mod template;
mod toolchain;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use error::RustCompileError;
pub(crate) use rustc::CODEGEN_FLAGS;
pub(crate) use template::default_cache_root;
pub(crate) use toolchain::GUEST_TARGET;

use template::TemplateDir;
use toolchain::Toolchain;

/// Default longest time one rustc invocation may take before it is killed.
///
/// Guards against a source that sends rustc or LLVM into a very long optimization (or a hung
/// linker) holding a core and a compile slot forever. Generated graphs compile in well under a
/// second; 60 s leaves room for large graphs on a loaded machine.
pub(crate) const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// The sandbox one rustc process runs in: OS limits set on the process (Linux `prlimit`;
/// elsewhere only the timeout applies) and a wall-clock timeout. A compile that reaches one
/// ends as `resource_exceeded` at the compile stage, and the host goes on.
///
/// The limits do not change what rustc produces, so they are not part of the cache key; a
/// host's limits are the most any compile gets ([`crate::Host::compile_within`] may only lower
/// them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompileLimits {
    /// Wall time before rustc is killed.
    pub timeout: Duration,
    /// CPU time of all of rustc's threads together (`RLIMIT_CPU`), in seconds.
    pub cpu_seconds: u64,
    /// Data memory rustc may map (`RLIMIT_DATA`: heap and thread stacks), in bytes.
    pub memory_bytes: u64,
    /// The largest file rustc may write (`RLIMIT_FSIZE`), in bytes.
    pub file_bytes: u64,
}

impl Default for CompileLimits {
    /// 60 s of wall time, 120 s of CPU (rustc's LLVM threads run in parallel), 3 GiB of data
    /// memory (the largest graph the graph limits admit, 6,000 nodes, measured 1.15 GB), 256
    /// MiB per file (components are a few MiB).
    fn default() -> Self {
        CompileLimits {
            timeout: DEFAULT_COMPILE_TIMEOUT,
            cpu_seconds: 120,
            memory_bytes: 3 << 30,
            file_bytes: 256 << 20,
        }
    }
}

impl CompileLimits {
    /// Each limit the smaller of `self`'s and `other`'s.
    #[must_use]
    pub fn lowered_by(self, other: CompileLimits) -> CompileLimits {
        CompileLimits {
            timeout: self.timeout.min(other.timeout),
            cpu_seconds: self.cpu_seconds.min(other.cpu_seconds),
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            file_bytes: self.file_bytes.min(other.file_bytes),
        }
    }
}

/// LLVM optimization level for guests (`-C opt-level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[expect(
    dead_code,
    reason = "every level rustc takes; guests use the default until the pass configuration picks one"
)]
pub(crate) enum OptLevel {
    /// `0`: fastest compile, slowest code.
    O0,
    /// `1`
    O1,
    /// `2`
    O2,
    /// `3`: the default; vectorizes loops for simd128.
    #[default]
    O3,
    /// `s`: optimize for size.
    Os,
    /// `z`: optimize harder for size.
    Oz,
}

impl OptLevel {
    /// The value rustc's `-C opt-level=` takes.
    pub(crate) fn as_flag(self) -> &'static str {
        match self {
            OptLevel::O0 => "0",
            OptLevel::O1 => "1",
            OptLevel::O2 => "2",
            OptLevel::O3 => "3",
            OptLevel::Os => "s",
            OptLevel::Oz => "z",
        }
    }
}

/// How one source is compiled: the opt level (part of the component cache key) and the
/// sandbox's limits (not part of it: they decide whether rustc finishes, not what it makes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct CompileOptions {
    /// `-C opt-level`.
    pub(crate) opt_level: OptLevel,
    /// The sandbox rustc runs in.
    pub(crate) limits: CompileLimits,
}

/// Where the compiler finds rustc and keeps the template. `None` means the default.
#[derive(Clone, Debug, Default)]
pub(crate) struct CompilerConfig {
    /// rustc to run; default `$GRAPHJIT_RUSTC`, else `rustc` on `PATH`.
    pub(crate) rustc: Option<PathBuf>,
    /// Cache root; default `$GRAPHJIT_CACHE_DIR`, else `$XDG_CACHE_HOME/graphjit`, else
    /// `~/.cache/graphjit`.
    pub(crate) cache_dir: Option<PathBuf>,
}

/// A component and what it cost.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    /// The component's bytes.
    pub(crate) wasm: Vec<u8>,
    /// Wall time of the rustc process (compile + link + componentize).
    pub(crate) rustc_time: Duration,
}

/// The toolchain facts and the template on disk, probed and checked once.
#[derive(Clone, Debug)]
pub(crate) struct Compiler {
    toolchain: Toolchain,
    template: TemplateDir,
}

impl Compiler {
    /// A compiler with the default configuration (see [`CompilerConfig`]).
    pub(crate) fn new() -> Result<Compiler, RustCompileError> {
        Compiler::with_config(&CompilerConfig::default())
    }

    /// Probes rustc (target installed? same version as the template's?) and installs the
    /// embedded template in the cache directory if it is not already there intact.
    pub(crate) fn with_config(config: &CompilerConfig) -> Result<Compiler, RustCompileError> {
        let rustc = config
            .rustc
            .clone()
            .unwrap_or_else(toolchain::default_rustc);
        let toolchain = Toolchain::probe(&rustc, template::RUSTC_VERSION)?;
        let cache_root = config
            .cache_dir
            .clone()
            .unwrap_or_else(template::default_cache_root);
        let template = template::install(&cache_root)?;
        Ok(Compiler {
            toolchain,
            template,
        })
    }

    /// Compiles `source` (the whole `graph.rs`) to a component, in a fresh temporary directory.
    pub(crate) fn compile(
        &self,
        source: &str,
        options: &CompileOptions,
    ) -> Result<Compiled, RustCompileError> {
        let build_dir = tempfile::Builder::new()
            .prefix("graphjit-build-")
            .tempdir()
            .map_err(RustCompileError::io("creating a build directory"))?;
        rustc::compile_in(
            build_dir.path(),
            &self.toolchain,
            &self.template,
            source,
            options,
        )
    }

    /// `rustc -vV` of the toolchain in use (part of every component cache key).
    pub(crate) fn rustc_version(&self) -> &str {
        &self.toolchain.version
    }

    /// blake3 of the embedded guest template (part of every component cache key).
    pub(crate) fn template_hash(&self) -> &str {
        template::TEMPLATE_HASH
    }

    /// The directory holding the template's rlibs.
    #[cfg(test)]
    pub(crate) fn template_dir(&self) -> &std::path::Path {
        &self.template.dir
    }

    /// The rustc binary compiles run.
    #[cfg(test)]
    pub(crate) fn rustc_path(&self) -> &std::path::Path {
        &self.toolchain.rustc
    }
}

/// One compiler shared by all tests in the crate (probing and installing once).
#[cfg(test)]
pub(crate) fn test_compiler() -> &'static Compiler {
    static COMPILER: std::sync::OnceLock<Compiler> = std::sync::OnceLock::new();
    COMPILER.get_or_init(|| {
        let config = CompilerConfig {
            rustc: None,
            cache_dir: Some(std::env::temp_dir().join("graphjit-test-cache")),
        };
        match Compiler::with_config(&config) {
            Ok(compiler) => compiler,
            Err(e) => panic!("no compiler for the tests: {e}"),
        }
    })
}

#[cfg(test)]
mod tests;

/// What compilation assumes (the assumption inventory, `crate::assumptions`).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] =
    &[crate::assumptions::Assumption {
        component: "rustc",
        assumption: "rustc compiles safe Rust soundly to wasm32-wasip2 (no miscompilation); the \
                 toolchain is the one the guest template was built with (checked: rustc -vV)",
        failure_mode: "generated code computes something other than eval says",
        mitigation: "the differential test (wasm == eval, bit-exact) over generated graphs; the \
                 sandbox bounds what wrong code can do",
        properties: &["CompileCache!NoStaleArtifact"],
    }];
