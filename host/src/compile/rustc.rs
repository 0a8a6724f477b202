//! One rustc invocation: `graph.rs` in a fresh directory → `graph.wasm`, under a timeout.
//!
//! Invariants: rustc never sees the caller's environment (only `PATH`, `HOME`, `TMPDIR` and
//! rustup's variables pass), never sees an absolute path it could embed (the build directory
//! and the template directory are remapped), never outlives its timeout (it is killed), and
//! runs under the OS limits of [`CompileLimits`] (a sandbox of one process: CPU time, data
//! memory, file size, no core file).
//! Nothing here runs the component it produces.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::{Diagnostic, RustCompileError, SandboxLimit};
use super::template::TemplateDir;
use super::toolchain::{GUEST_TARGET, Toolchain};
use super::{CompileLimits, CompileOptions, Compiled};

/// Fixed file names: the same source compiles to the same bytes whatever the directory.
const SOURCE_FILE: &str = "graph.rs";
const OUTPUT_FILE: &str = "graph.wasm";
const DIAGNOSTICS_FILE: &str = "rustc-stderr.json";

/// What the build directory and the template directory are called inside the component.
const REMAPPED_BUILD_DIR: &str = "/graphjit/build";
const REMAPPED_TEMPLATE_DIR: &str = "/graphjit/template";

/// Longest stretch of rustc's raw stderr kept in [`RustCompileError::RustcFailed`].
///
/// Guards the error value (and logs) against a rustc that prints megabytes before failing.
const MAX_STDERR_IN_ERROR: usize = 4096;

/// Environment variables rustc may see.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_HOME",
];

/// Flags that decide the generated machine code (with the target and the opt level); part of
/// every component cache key.
pub(crate) const CODEGEN_FLAGS: &[&str] = &[
    "-Ctarget-feature=+simd128",
    "-Cdebuginfo=0",
    "-Cstrip=debuginfo",
    "-Cpanic=abort",
    // A 256 KiB guest stack (rustc's default is 1 MiB): stack, data and the first heap pages
    // then sit in the first 384 KiB of linear memory, which the runtime keeps resident between
    // runs (runtime/engine.rs) — 21 → 13 µs per instantiate + call. A 5,000-node graph runs
    // in it; a graph whose code needs more stack traps, as a typed error.
    "-Clink-arg=-zstack-size=262144",
];

/// Compiles `source` in `build_dir` (fresh and empty) to a component.
pub(crate) fn compile_in(
    build_dir: &Path,
    toolchain: &Toolchain,
    template: &TemplateDir,
    source: &str,
    options: &CompileOptions,
) -> Result<Compiled, RustCompileError> {
    let source_path = build_dir.join(SOURCE_FILE);
    std::fs::write(&source_path, source).map_err(RustCompileError::io(format!(
        "writing {}",
        source_path.display()
    )))?;
    let stderr_path = build_dir.join(DIAGNOSTICS_FILE);
    let stderr = File::create(&stderr_path).map_err(RustCompileError::io(format!(
        "creating {}",
        stderr_path.display()
    )))?;

    let mut command = Command::new(&toolchain.rustc);
    command
        .current_dir(build_dir)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "cdylib",
            "--crate-name",
            "graph",
        ])
        .args(["--target", GUEST_TARGET])
        .arg(format!("-Copt-level={}", options.opt_level.as_flag()))
        .args(CODEGEN_FLAGS)
        .args(["-Dwarnings", "--error-format=json"])
        .arg("--extern")
        .arg(format!("graphjit_guest={}", template.guest_rlib.display()))
        .arg(format!("-Ldependency={}", template.dir.display()))
        .arg(format!(
            "--remap-path-prefix={}={REMAPPED_BUILD_DIR}",
            build_dir.display()
        ))
        .arg(format!(
            "--remap-path-prefix={}={REMAPPED_TEMPLATE_DIR}",
            template.dir.display()
        ))
        .args([SOURCE_FILE, "-o", OUTPUT_FILE])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for name in PASSED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }

    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| RustCompileError::RustcNotFound {
            path: toolchain.rustc.clone(),
            message: e.to_string(),
        })?;
    sandbox(&child, &options.limits);
    let status = wait_with_timeout(&mut child, options.limits.timeout)?;
    let rustc_time = start.elapsed();

    let raw = std::fs::read(&stderr_path).map_err(RustCompileError::io(format!(
        "reading {}",
        stderr_path.display()
    )))?;
    let raw = String::from_utf8_lossy(&raw);
    let (diagnostics, other) = parse_diagnostics(&raw);
    let output_path = build_dir.join(OUTPUT_FILE);
    if status.success() && output_path.is_file() {
        let wasm = std::fs::read(&output_path).map_err(RustCompileError::io(format!(
            "reading {}",
            output_path.display()
        )))?;
        return Ok(Compiled { wasm, rustc_time });
    }
    // A limit first: a rustc starved of memory may still print an error diagnostic (an ICE).
    if let Some(error) = limit_reached(&status, &raw, &options.limits) {
        return Err(error);
    }
    if diagnostics.iter().any(|d| d.level.starts_with("error")) {
        return Err(RustCompileError::Rejected { diagnostics });
    }
    let mut stderr: String = other.chars().take(MAX_STDERR_IN_ERROR).collect();
    if stderr.is_empty() {
        stderr = "(no output)".to_owned();
    }
    Err(RustCompileError::RustcFailed {
        status: status.to_string(),
        stderr,
    })
}

/// The scheduling priority rustc runs at (`nice`; 0 is the host's, 19 the lowest).
const RUSTC_NICE: i32 = 10;

/// Sets the sandbox's OS limits (and a lower priority) on `child`, right after it starts (Linux `prlimit`; soft and
/// hard limits equal, so rustc cannot raise them). Elsewhere the timeout alone bounds it.
///
/// Why after spawn and not before exec: setting limits in the child before exec needs
/// `pre_exec`, which is `unsafe`, and the host has no `unsafe` outside wasmtime's loader. The
/// window is the first instants of rustc's start, before it has read its source; a limit set
/// then still bounds everything rustc allocates, spends or writes afterwards. Best effort: if
/// the kernel refuses, the compile still runs under its timeout.
///
/// Process count (`RLIMIT_NPROC`) is left alone on purpose: it counts every process and
/// thread of the user, the host's own included, so no value bounds rustc alone; rustc's
/// threads are bounded by its own jobserver (one per core) and its memory by `RLIMIT_DATA`.
fn sandbox(child: &std::process::Child, limits: &CompileLimits) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Pid, Resource, Rlimit, prlimit};
        let pid = Some(Pid::from_child(child));
        let set = |resource, value: u64| {
            let limit = Rlimit {
                current: Some(value),
                maximum: Some(value),
            };
            let _best_effort = prlimit(pid, resource, limit);
        };
        set(Resource::Data, limits.memory_bytes);
        set(Resource::Cpu, limits.cpu_seconds.max(1));
        set(Resource::Fsize, limits.file_bytes);
        set(Resource::Core, 0);
        // Compiles yield the CPU to runs: a compile storm slows other compiles, not the
        // requests of graphs already compiled. Threads rustc starts later inherit it.
        let _best_effort = rustix::process::setpriority_process(pid, RUSTC_NICE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (child, limits);
}

/// Which sandbox limit ended an unsuccessful rustc, read from how it ended: the kernel's
/// signals for CPU time (`SIGXCPU`, then `SIGKILL`: we kill only at the timeout, which is
/// reported before this) and file size (`SIGXFSZ`); for memory, rustc's own last words when an
/// allocation or a thread's stack was refused (it aborts, or panics on `EAGAIN`).
fn limit_reached(
    status: &std::process::ExitStatus,
    stderr: &str,
    limits: &CompileLimits,
) -> Option<RustCompileError> {
    if status.success() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        const SIGKILL: i32 = 9;
        const SIGXCPU: i32 = 24;
        const SIGXFSZ: i32 = 25;
        let limit = match status.signal() {
            Some(SIGXCPU | SIGKILL) => Some(SandboxLimit::Cpu {
                seconds: limits.cpu_seconds,
            }),
            Some(SIGXFSZ) => Some(SandboxLimit::FileSize {
                bytes: limits.file_bytes,
            }),
            _ => None,
        };
        if let Some(limit) = limit {
            return Some(RustCompileError::LimitExceeded {
                limit,
                detail: status.to_string(),
            });
        }
    }
    const OUT_OF_MEMORY: &[&str] = &[
        "memory allocation of",
        "Resource temporarily unavailable",
        "Cannot allocate memory",
        "out of memory",
    ];
    let words = stderr
        .lines()
        .find(|line| OUT_OF_MEMORY.iter().any(|m| line.contains(m)))?;
    Some(RustCompileError::LimitExceeded {
        limit: SandboxLimit::Memory {
            bytes: limits.memory_bytes,
        },
        detail: words.chars().take(200).collect(),
    })
}

/// Waits for `child`, killing it once `limit` has passed.
fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<std::process::ExitStatus, RustCompileError> {
    let start = Instant::now();
    // Polling keeps this free of threads and signals; the first polls are frequent because
    // small graphs compile in well under 100 ms.
    let mut pause = Duration::from_micros(500);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(RustCompileError::io("waiting for rustc"))?
        {
            return Ok(status);
        }
        if start.elapsed() >= limit {
            // rustc may have exited between the poll and the kill; both outcomes end it.
            let _ignored = child.kill();
            let _ignored = child.wait();
            return Err(RustCompileError::Timeout { limit });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Splits rustc's stderr into its JSON diagnostics and whatever else it printed.
fn parse_diagnostics(stderr: &str) -> (Vec<Diagnostic>, String) {
    let mut diagnostics = Vec::new();
    let mut other = String::new();
    for line in stderr.lines() {
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|json| diagnostic_from_json(&json));
        match parsed {
            Some(diagnostic) => diagnostics.push(diagnostic),
            None if line.trim().is_empty() => {}
            None => {
                other.push_str(line);
                other.push('\n');
            }
        }
    }
    (diagnostics, other)
}

fn diagnostic_from_json(json: &serde_json::Value) -> Option<Diagnostic> {
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    if json
        .get("$message_type")
        .and_then(serde_json::Value::as_str)
        != Some("diagnostic")
    {
        return None;
    }
    let spans = json.get("spans").and_then(serde_json::Value::as_array);
    let in_source = |span: &&serde_json::Value| {
        span.get("file_name")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|f| f.ends_with(SOURCE_FILE))
    };
    let is_primary = |span: &&serde_json::Value| {
        span.get("is_primary").and_then(serde_json::Value::as_bool) == Some(true)
    };
    let line = spans.and_then(|spans| {
        spans
            .iter()
            .filter(in_source)
            .find(is_primary)
            .or_else(|| spans.iter().find(in_source))
            .and_then(|span| span.get("line_start"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|l| u32::try_from(l).ok())
    });
    Some(Diagnostic {
        level: text(json.get("level")?)?,
        message: text(json.get("message")?)?,
        code: json.get("code").and_then(|c| c.get("code")).and_then(text),
        line,
        rendered: json.get("rendered").and_then(text).unwrap_or_default(),
        detail: child_notes(json),
    })
}

/// The notes under a diagnostic that say what went wrong, whitespace-collapsed: for a failed
/// link, the linker's own error (`failed to resolve import env::memcmp`), without the linker's
/// command line (the note that starts with a quote) or rustc's "some arguments are omitted".
fn child_notes(json: &serde_json::Value) -> String {
    let Some(children) = json.get("children").and_then(serde_json::Value::as_array) else {
        return String::new();
    };
    children
        .iter()
        .filter_map(|child| child.get("message").and_then(serde_json::Value::as_str))
        .map(|message| message.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|message| !message.starts_with('"') && !message.starts_with("some arguments"))
        .filter(|message| !message.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
