//! CUDA detection for the kernels (`cuda` feature): whether device 0 and a cuBLAS handle can
//! be initialized, and if not, why — once per process.
//!
//! Invariants:
//! - Nothing links against CUDA: cudarc loads `libcuda` and `libcublas` at run time
//!   (`dynamic-loading`), so a host built with `cuda` builds and starts on a machine without
//!   the toolkit, the driver or a device, and serves every kernel natively there.
//! - Detection never panics the host. cudarc panics when it cannot load a library, so the
//!   libraries are looked for on disk first, where the dynamic loader would find them
//!   (`LD_LIBRARY_PATH`, `/etc/ld.so.cache`, the system directories); whatever can still go
//!   wrong past that check (a library that loads but lacks a symbol) runs under `catch_unwind`
//!   and becomes a reason, not a crash.
//! - No kernel runs on the GPU yet. cudarc offers cuBLAS sgemm only as a function marked unsafe
//!   (`cublas::Gemm::gemm`: cuBLAS cannot check the buffer sizes it is given), and so is every
//!   kernel launch; the host denies `unsafe`, so matmul, softmax and conv2d stay native until
//!   one documented `unsafe` block for sgemm is accepted. Detection, and the reason it gives,
//!   is all this module does.

#![forbid(unsafe_code)]

use std::any::Any;
use std::path::Path;
use std::sync::OnceLock;

use cudarc::cublas::CudaBlas;
use cudarc::driver::CudaContext;

/// Where the dynamic loader looks besides `LD_LIBRARY_PATH` and `/etc/ld.so.cache`: its
/// trusted directories, the usual multiarch ones, and WSL's driver directory.
const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/usr/lib",
    "/lib64",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/wsl/lib",
];

/// The dynamic loader's cache of the directories in `/etc/ld.so.conf`.
const LOADER_CACHE: &str = "/etc/ld.so.cache";

/// Device 0's name when CUDA and cuBLAS initialize on it, else why not. Probed on the first
/// call; later calls (one per host) get the same answer.
pub(super) fn detect() -> Result<String, String> {
    static DETECTED: OnceLock<Result<String, String>> = OnceLock::new();
    DETECTED.get_or_init(probe).clone()
}

fn probe() -> Result<String, String> {
    find_library("cuda").map_err(|searched| format!("no CUDA driver: {searched}"))?;
    std::panic::catch_unwind(initialize)
        .unwrap_or_else(|panic| Err(format!("CUDA failed to load: {}", panic_message(&*panic))))
}

/// Device 0 and a cuBLAS handle on its default stream, both released again: nothing runs on
/// them yet (see the module doc), so nothing is held.
fn initialize() -> Result<String, String> {
    let context = CudaContext::new(0).map_err(|e| format!("no usable CUDA device 0: {e}"))?;
    let device = context
        .name()
        .map_err(|e| format!("CUDA device 0 has no name: {e}"))?;
    find_library("cublas")
        .map_err(|searched| format!("{device} found, but no cuBLAS: {searched}"))?;
    CudaBlas::new(context.default_stream())
        .map_err(|e| format!("{device} found, but cuBLAS failed to start: {e}"))?;
    Ok(device)
}

/// `Ok` when one of cudarc's candidate names for `lib` is where the dynamic loader looks, else
/// what was searched. Only Linux is checked; elsewhere `catch_unwind` is the only guard.
fn find_library(lib: &str) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let names = cudarc::get_lib_name_candidates(lib);
    let from_env = std::env::var_os("LD_LIBRARY_PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let in_a_directory = from_env
        .iter()
        .map(|dir| dir.as_path())
        .chain(SYSTEM_LIBRARY_DIRS.iter().map(Path::new))
        .any(|dir| names.iter().any(|name| dir.join(name).is_file()));
    if in_a_directory || in_loader_cache(&names) {
        return Ok(());
    }
    Err(format!(
        "no lib{lib} (cudarc's names, e.g. lib{lib}.so.1) in LD_LIBRARY_PATH, {LOADER_CACHE} \
         or {}",
        SYSTEM_LIBRARY_DIRS.join(", ")
    ))
}

/// Whether `/etc/ld.so.cache` lists a file with one of `names` (its string table holds each
/// library's full path, NUL-terminated).
fn in_loader_cache(names: &[String]) -> bool {
    let Ok(cache) = std::fs::read(LOADER_CACHE) else {
        return false;
    };
    names.iter().any(|name| {
        let needle = format!("/{name}\0");
        cache
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    })
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}
