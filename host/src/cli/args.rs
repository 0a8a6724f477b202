//! The command line: every subcommand's flags, and the host they configure.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use graphjit::{Host, HostConfig, Stage};

use super::error::CliError;

#[derive(Args)]
pub(crate) struct ExplainArgs {
    /// The graph (JSON, format v1).
    pub(crate) file: PathBuf,
    /// List the assumption inventory (drivers, toolchain, clock) with the TLA+ properties
    /// that depend on each.
    #[arg(long)]
    pub(crate) assumptions: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print Graphviz of the optimized graph instead (`| dot -Tsvg > graph.svg`).
    #[arg(long, conflicts_with_all = ["json", "assumptions"])]
    pub(crate) dot: bool,
    /// An input value, `NAME=VALUE` (repeatable): a graph that names dims is explained as its
    /// specialization for these inputs' shapes.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub(crate) inputs: Vec<(String, String)>,
    #[command(flatten)]
    pub(crate) cache: CacheArgs,
}

#[derive(Subcommand)]
pub(crate) enum CacheAction {
    /// Entries, bytes and the bound of the disk cache.
    Stats {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Delete every cached component.
    Clear {
        #[command(flatten)]
        cache: CacheArgs,
    },
}

#[derive(Args)]
pub(crate) struct CacheArgs {
    /// Directory of precompiled components (default: `$GRAPHJIT_CACHE_DIR/components`, else
    /// `~/.cache/graphjit/components`). Must be writable by this user only.
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Do not read or write the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub(crate) no_disk_cache: bool,
    /// Let HTTP effects reach loopback addresses (a local test server); refused by default.
    #[arg(long)]
    pub(crate) allow_loopback: bool,
    /// Trust this CA certificate (PEM, may hold several, or DER) for `https` effects, besides
    /// the built-in Mozilla roots (repeatable).
    #[arg(long = "tls-root", value_name = "FILE")]
    pub(crate) tls_roots: Vec<PathBuf>,
    /// Optimizer passes: all (default), none, or a list such as fold,cse,dce,fuse,batch.
    #[arg(long, value_name = "all|none|LIST", default_value = "all")]
    pub(crate) passes: String,
}

impl CacheArgs {
    /// The host these flags describe.
    pub(crate) fn host(&self) -> Result<Host, CliError> {
        let passes = graphjit::PassConfig::parse(&self.passes).map_err(|e| {
            CliError::own(
                "invalid_input",
                Stage::Setup,
                e,
                "use --passes all, none, or a comma-separated list",
            )
        })?;
        let mut config = HostConfig {
            passes,
            ..HostConfig::default()
        };
        config.http.allow_loopback = self.allow_loopback;
        for path in &self.tls_roots {
            config.http.extra_roots.extend(read_certificates(path)?);
        }
        if self.no_disk_cache {
            config.cache.disk_dir = None;
        } else if let Some(dir) = &self.cache_dir {
            config.cache.disk_dir = Some(dir.clone());
        }
        Ok(Host::with_config(&config)?)
    }
}

/// The certificates in `path`: every one of a PEM file, or the file itself as DER.
fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, CliError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unreadable = |message: String| {
        CliError::own(
            "invalid_input",
            Stage::Setup,
            message,
            "give a CA certificate file, PEM or DER",
        )
    };
    let bytes = std::fs::read(path)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(vec![bytes]);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(unreadable(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The graph (JSON, format v1).
    pub(crate) file: PathBuf,
    /// An input value, `NAME=VALUE` (repeatable). Tensors: a flat JSON array of numbers; a
    /// tensor whose type names dims: nested arrays or `{"shape": [..], "data": [..]}`.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub(crate) inputs: Vec<(String, String)>,
    /// Fuel budget (default 1e9); a graph's `limits.fuel` may only lower it.
    #[arg(long)]
    pub(crate) fuel: Option<u64>,
    /// Memory limit in bytes (default 256 MiB); a graph's `limits.memory` may only lower it.
    #[arg(long)]
    pub(crate) memory: Option<u64>,
    /// Wall-clock limit in milliseconds (default 10000).
    #[arg(long, value_name = "MS")]
    pub(crate) deadline_ms: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Serve DB effects from this PostgreSQL (`postgres://user@host:port/db`); graphs still
    /// reach only the tables their footprint declares.
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// Without --database-url, DB effects use an embedded in-memory SQLite database; this SQL
    /// script (tables and rows) runs in it first.
    #[arg(long, value_name = "FILE.sql", conflicts_with = "database_url")]
    pub(crate) db_init: Option<PathBuf>,
    /// Run the graph this many times on one host and report the last run (its memo hits show
    /// what `cached` nodes kept from the runs before).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) repeat: u32,
    #[command(flatten)]
    pub(crate) cache: CacheArgs,
}

#[derive(Args)]
pub(crate) struct CompileArgs {
    /// The graph (JSON, format v1).
    pub(crate) file: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub(crate) emit: Emit,
    /// Output file (default: stdout for Rust; required for wasm unless stdout is not a terminal).
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Emit {
    Rust,
    Wasm,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

/// The graph in `path`.
pub(crate) fn read_graph(path: &Path) -> Result<graphjit::Graph, CliError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::own(
            "invalid_input",
            Stage::Parse,
            format!("cannot read {}: {e}", path.display()),
            "check the path",
        )
    })?;
    Ok(graphjit::Graph::from_json(&bytes)?)
}
