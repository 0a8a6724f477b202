//! One rustc invocation: `graph.rs` in a fresh directory → `graph.wasm`, under a timeout.
//!
//! Invariants: rustc never sees the caller's environment (only `PATH`, `HOME`, `TMPDIR` and
//! rustup's variables pass), never sees an absolute path it could embed (the build directory
//! and the template directory are remapped), and never outlives its timeout (it is killed).
//! Nothing here runs the component it produces.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::{Diagnostic, RustCompileError};
use super::template::TemplateDir;
use super::toolchain::{GUEST_TARGET, Toolchain};
use super::{CompileOptions, Compiled};

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
    limit_memory(&child);
    let status = wait_with_timeout(&mut child, options.timeout)?;
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

/// The most data memory one rustc may map (`RLIMIT_DATA`, set on the child right after it
/// starts). The largest graph the limits admit (6,000 nodes) measured 1.15 GB here; past this
/// bound rustc's allocation fails and the compile ends as a typed `RustcFailed`, instead of one
/// hostile graph taking the host's memory.
pub(crate) const MAX_RUSTC_DATA_BYTES: u64 = 3 << 30;

/// Applies [`MAX_RUSTC_DATA_BYTES`] to `child` (Linux; elsewhere the timeout alone bounds it).
/// Best effort: if the kernel refuses, the compile still runs under its timeout.
fn limit_memory(child: &std::process::Child) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Pid, Resource, Rlimit, prlimit};
        let limit = Rlimit {
            current: Some(MAX_RUSTC_DATA_BYTES),
            maximum: Some(MAX_RUSTC_DATA_BYTES),
        };
        let _best_effort = prlimit(Some(Pid::from_child(child)), Resource::Data, limit);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = child;
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
