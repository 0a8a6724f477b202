//! `graphjit cache` and `graphjit compile`: the disk cache, and the generated Rust or
//! component written out.

use super::say;
use std::io::Write as _;

use graphjit::{Host, Stage};
use serde_json::json;

use super::args::{CacheAction, CompileArgs, Emit, read_graph};
use super::error::CliError;

/// `graphjit cache stats|clear`.
pub(crate) fn cache_command(action: &CacheAction) -> Result<(), CliError> {
    let (CacheAction::Stats { cache: args, .. } | CacheAction::Clear { cache: args }) = action;
    let host = args.host()?;
    let disk_error = |e: graphjit::DiskCacheError| {
        CliError::own(
            "cache_unavailable",
            Stage::Setup,
            e.to_string(),
            "check the cache directory",
        )
    };
    match action {
        CacheAction::Stats { json, .. } => {
            let Some(stats) = host.disk_cache_stats() else {
                say!("no disk cache (--no-disk-cache)");
                return Ok(());
            };
            let stats = stats.map_err(disk_error)?;
            let dir = args
                .cache_dir
                .clone()
                .unwrap_or_else(graphjit::default_disk_dir);
            if *json {
                let object = json!({
                    "dir": dir.display().to_string(),
                    "entries": stats.entries,
                    "bytes": stats.bytes,
                    "max_bytes": stats.max_bytes,
                });
                say!("{object}");
            } else {
                say!(
                    "{}: {} components, {} bytes (bound {} bytes)",
                    dir.display(),
                    stats.entries,
                    stats.bytes,
                    stats.max_bytes
                );
            }
        }
        CacheAction::Clear { .. } => {
            let removed = host.clear_cache().map_err(disk_error)?;
            say!("removed {removed} cached components");
        }
    }
    Ok(())
}

/// `graphjit compile --emit rust|wasm`.
pub(crate) fn compile(args: &CompileArgs) -> Result<(), CliError> {
    let graph = read_graph(&args.file)?;
    let bytes = match args.emit {
        Emit::Rust => graph
            .rust_source_with(&graphjit::PassConfig::default())?
            .into_bytes(),
        Emit::Wasm => Host::new()?.compile_wasm(&graph)?,
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &bytes),
        None => std::io::stdout().lock().write_all(&bytes),
    };
    written.map_err(|e| {
        CliError::own(
            "internal",
            Stage::Compile,
            format!("cannot write the output: {e}"),
            "check the output path",
        )
    })
}
