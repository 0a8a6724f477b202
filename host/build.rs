//! Builds the guest template (`guest-template/`, crate `graphjit-guest`) for wasm32-wasip2 once
//! per host build and embeds its rlibs in the host.
//!
//! Output, in `$OUT_DIR/guest_template.rs` (included by `host/src/compile/template.rs`):
//! - `RLIBS`: every rlib the template's crate graph holds, as `(file name, bytes)`, sorted;
//! - `GUEST_RLIB`: the file name of the template's own rlib among them;
//! - `RUSTC_VERSION`: the `rustc -vV` text the template was built with;
//! - `TEMPLATE_HASH`: blake3 over all of the above, the template's identity in cache keys.
//!
//! Invariants: nothing here reads the host's own `RUSTFLAGS`, target dir or wrapper (the nested
//! cargo runs with a scrubbed environment); nothing of the host's source goes into the template.
use std::collections::BTreeMap;
use std::error::Error;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The target every guest is compiled for.
const GUEST_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("host/ has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let rustc = env("RUSTC").unwrap_or_else(|_| OsString::from("rustc"));
    let cargo = env("CARGO").unwrap_or_else(|_| OsString::from("cargo"));

    for watched in [
        "guest-template/src",
        "guest-template/build.rs",
        "guest-template/Cargo.toml",
        "guest-template/Cargo.lock",
        "wit",
        "value/src",
        "value/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let sysroot = command_stdout(Command::new(&rustc).args(["--print", "sysroot"]))?;
    let target_lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(GUEST_TARGET);
    if !target_lib.is_dir() {
        return Err(format!(
            "the {GUEST_TARGET} target is not installed for {}; fix: rustup target add {GUEST_TARGET}",
            sysroot.trim()
        )
        .into());
    }
    let rustc_version = command_stdout(Command::new(&rustc).arg("-vV"))?;

    let rlib_paths = build_template(&cargo, &rustc, &root, &out_dir)?;
    let mut rlibs = BTreeMap::new();
    let mut guest_rlib = None;
    for path in &rlib_paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("odd rlib path {}", path.display()))?
            .to_owned();
        if name.starts_with("libgraphjit_guest") {
            guest_rlib = Some(name.clone());
        }
        rlibs.insert(name, std::fs::read(path)?);
    }
    let guest_rlib = guest_rlib.ok_or("the template build produced no libgraphjit_guest rlib")?;

    let hash = template_hash(&rustc_version, &guest_rlib, &rlibs);
    let embed_dir = out_dir.join("guest-rlibs");
    if embed_dir.exists() {
        std::fs::remove_dir_all(&embed_dir)?;
    }
    std::fs::create_dir_all(&embed_dir)?;
    let mut generated = String::new();
    writeln!(
        generated,
        "/// Every rlib of the guest template, `(file name, bytes)`, sorted by name."
    )?;
    writeln!(generated, "pub(crate) const RLIBS: &[(&str, &[u8])] = &[")?;
    for (name, bytes) in &rlibs {
        let path = embed_dir.join(name);
        std::fs::write(&path, bytes)?;
        writeln!(
            generated,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )?;
    }
    writeln!(generated, "];")?;
    writeln!(
        generated,
        "/// File name of the template's own rlib (`--extern graphjit_guest=`)."
    )?;
    writeln!(
        generated,
        "pub(crate) const GUEST_RLIB: &str = {guest_rlib:?};"
    )?;
    writeln!(
        generated,
        "/// `rustc -vV` of the toolchain that built the template."
    )?;
    writeln!(
        generated,
        "pub(crate) const RUSTC_VERSION: &str = {rustc_version:?};"
    )?;
    writeln!(
        generated,
        "/// blake3 over the rustc identity and every rlib: the template's identity."
    )?;
    writeln!(
        generated,
        "pub(crate) const TEMPLATE_HASH: &str = {hash:?};"
    )?;
    std::fs::write(out_dir.join("guest_template.rs"), generated)?;
    write_codegen_hash(&manifest_dir, &out_dir)?;
    Ok(())
}

/// `$OUT_DIR/codegen_hash.rs`: `CODEGEN_HASH`, blake3 over the code generator's source files
/// (path and contents, sorted by path), so that a generator change changes every cache key.
fn write_codegen_hash(manifest_dir: &Path, out_dir: &Path) -> Result<(), Box<dyn Error>> {
    let codegen = manifest_dir.join("src/codegen");
    println!("cargo:rerun-if-changed={}", codegen.display());
    let mut files = Vec::new();
    let mut pending = vec![codegen.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = blake3::Hasher::new();
    for file in files {
        let relative = file.strip_prefix(&codegen)?.to_string_lossy().into_owned();
        let contents = std::fs::read(&file)?;
        hasher.update(&(relative.len() as u64).to_le_bytes());
        hasher.update(relative.as_bytes());
        hasher.update(&(contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    let hash = hasher.finalize().to_hex();
    std::fs::write(
        out_dir.join("codegen_hash.rs"),
        format!(
            "/// blake3 of the code generator's source.\npub(crate) const CODEGEN_HASH: &str = {:?};\n",
            hash.as_str()
        ),
    )?;
    Ok(())
}

fn env(name: &str) -> Result<OsString, Box<dyn Error>> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var_os(name).ok_or_else(|| format!("{name} is not set").into())
}

fn command_stdout(command: &mut Command) -> Result<String, Box<dyn Error>> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{command:?} failed: {}", output.status).into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Runs the nested cargo build and returns the rlibs of the template's crate graph (for the
/// wasm target only: build scripts and host tools are not part of it).
fn build_template(
    cargo: &OsString,
    rustc: &OsString,
    root: &Path,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(root.join("guest-template/Cargo.toml"))
        .arg("--target-dir")
        .arg(out_dir.join("guest-target"))
        .current_dir(root.join("guest-template"));
    // The nested build must not inherit what configures the host's build: its target dir,
    // flags, wrappers (clippy's, sccache's), profile overrides or jobserver.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = key == "CARGO_HOME"
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_REGISTRIES_")
            || key.starts_with("CARGO_REGISTRY_");
        let scrub = (key.starts_with("CARGO_") && !keep)
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "MAKEFLAGS"
                    | "MFLAGS"
                    | "CARGO"
                    | "RUSTC_LINKER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if scrub {
            command.env_remove(key);
        }
    }
    // Paths inside the rlibs (panic locations, diagnostics) name no checkout directory, so the
    // template hash does not depend on where the repository lives.
    let flags = [
        "-Ctarget-feature=+simd128".to_owned(),
        format!("--remap-path-prefix={}=/graphjit", root.display()),
    ];
    command.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"));
    command.env("RUSTC", rustc);
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());

    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo for the guest template: {e}"))?;
    let stdout = String::from_utf8(output.stdout)?;
    if !output.status.success() {
        return Err(format!("building the guest template failed ({})", output.status).into());
    }
    let target_marker = format!("/{GUEST_TARGET}/");
    let mut rlibs = Vec::new();
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(filenames) = message["filenames"].as_array() else {
            continue;
        };
        for file in filenames.iter().filter_map(serde_json::Value::as_str) {
            if file.ends_with(".rlib") && file.contains(&target_marker) {
                rlibs.push(PathBuf::from(file));
            }
        }
    }
    if rlibs.is_empty() {
        return Err("the guest template build reported no rlib".into());
    }
    Ok(rlibs)
}

/// blake3 over the toolchain identity, the guest rlib's name and every `(name, bytes)` pair,
/// each length-prefixed so that no two different inputs hash alike.
fn template_hash(
    rustc_version: &str,
    guest_rlib: &str,
    rlibs: &BTreeMap<String, Vec<u8>>,
) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut put = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    put(b"graphjit guest template v1");
    put(rustc_version.as_bytes());
    put(guest_rlib.as_bytes());
    for (name, bytes) in rlibs {
        put(name.as_bytes());
        put(bytes);
    }
    hasher.finalize().to_hex().to_string()
}
