//! The service's configuration file (TOML): where it listens, and each tenant's key hash,
//! ceilings and footprint ceiling.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use graphjit::FootprintCeiling;
use serde::Deserialize;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceFile {
    /// `127.0.0.1:PORT`.
    pub(crate) listen: SocketAddr,
    /// The largest request body, in bytes (default 4 MiB): larger ones are answered 413.
    #[serde(default = "default_body_bytes")]
    pub(crate) max_body_bytes: usize,
    /// Precompiled components on disk (absent: memory only). Shared by every tenant: see
    /// docs/service.md, "What tenants share".
    #[serde(default)]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Let graphs' HTTP effects reach loopback addresses (tests against a local server).
    #[serde(default)]
    pub(crate) allow_loopback: bool,
    /// After SIGTERM, how long requests in flight may take to finish (default 30 s); new
    /// ones are answered 503 meanwhile.
    #[serde(default = "default_drain_ms")]
    pub(crate) drain_timeout_ms: u64,
    /// Runs instantiated at once across every tenant (default: the sum of the tenants'
    /// `max_concurrent_runs`, at most [`MAX_INSTANCES`]). Past it a run is answered 429
    /// `instance_pool_full`.
    #[serde(default)]
    pub(crate) max_instances: Option<u32>,
    /// How long a client may take to send a request's head (default 10 s); a connection
    /// that takes longer is closed (slowloris).
    #[serde(default = "default_header_ms")]
    pub(crate) header_timeout_ms: u64,
    pub(crate) tenants: BTreeMap<String, TenantFile>,
}

/// The most instance slots a service pools: each reserves address space for a memory of the
/// largest size a tenant may ask for and a fiber stack.
pub(crate) const MAX_INSTANCES: u32 = 1024;

fn default_header_ms() -> u64 {
    10_000
}

fn default_body_bytes() -> usize {
    4 << 20
}

fn default_drain_ms() -> u64 {
    30_000
}

/// One `[tenants.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantFile {
    /// What `graphjit key-hash` printed for the tenant's API key.
    pub(crate) key_hash: String,
    /// The most a tenant's graph may declare, in the footprint's own shape.
    #[serde(default)]
    pub(crate) footprint_ceiling: Option<toml::Value>,
    /// Ceilings a request may lower, never raise.
    #[serde(default)]
    pub(crate) fuel: Option<u64>,
    #[serde(default)]
    pub(crate) memory: Option<u64>,
    #[serde(default)]
    pub(crate) deadline_ms: Option<u64>,
    #[serde(default)]
    pub(crate) max_effect_calls: Option<u32>,
    /// Runs of this tenant at once; more are answered 429 (default 4).
    #[serde(default)]
    pub(crate) max_concurrent_runs: Option<u32>,
    /// The largest graph JSON, in bytes (default 1 MiB).
    #[serde(default)]
    pub(crate) max_graph_bytes: Option<usize>,
    /// Compiles of this tenant at once; more wait for one to finish (default 1).
    #[serde(default)]
    pub(crate) max_concurrent_compiles: Option<u32>,
    /// Wall time one rustc of this tenant may take (default: the host's, 60 s).
    #[serde(default)]
    pub(crate) compile_timeout_ms: Option<u64>,
    /// Data memory one rustc of this tenant may map, in bytes (default: the host's, 3 GiB).
    #[serde(default)]
    pub(crate) compile_memory: Option<u64>,
    /// Compile time this tenant may use per minute, in milliseconds (default: unbounded).
    #[serde(default)]
    pub(crate) compile_ms_per_minute: Option<u64>,
    /// The PostgreSQL this tenant's graphs read and write (its own database or role); none:
    /// its graphs' database effects fail as `driver_unavailable`.
    #[serde(default)]
    pub(crate) database_url: Option<String>,
    /// The most deployments this tenant may hold at once (default 64): each pins a compiled
    /// artifact in memory, so the count bounds what one tenant can keep there.
    #[serde(default)]
    pub(crate) max_deployments: Option<usize>,
    /// Give this tenant its own slice of the compiled-artifact cache (default false: shared
    /// by content key with the other tenants; docs/service.md, "What tenants share").
    #[serde(default)]
    pub(crate) partition_cache: bool,
}

/// A tenant ready to serve: its key's hash and its ceilings.
pub(crate) struct TenantConfig {
    pub(crate) name: String,
    pub(crate) key_hash: blake3::Hash,
    pub(crate) footprint_ceiling: FootprintCeiling,
    pub(crate) limits: graphjit::RunLimits,
    pub(crate) max_concurrent_runs: u32,
    pub(crate) max_graph_bytes: usize,
    pub(crate) max_concurrent_compiles: u32,
    pub(crate) compile_limits: graphjit::CompileLimits,
    pub(crate) compile_per_minute: Option<std::time::Duration>,
    pub(crate) database_url: Option<String>,
    pub(crate) partition_cache: bool,
    pub(crate) max_deployments: usize,
}

/// The prefix of a stored key hash.
pub(crate) const HASH_PREFIX: &str = "blake3:";

/// The string to store for `key`: blake3 of it, in hex. API keys are random and long (at
/// least 16 bytes, checked), so a fast hash is enough: nobody can search their space.
pub(crate) fn key_hash(key: &str) -> String {
    format!("{HASH_PREFIX}{}", blake3::hash(key.as_bytes()).to_hex())
}

/// Reads and checks the file; every problem is one message naming the tenant and the field.
pub(crate) fn load(path: &Path) -> Result<(ServiceFile, Vec<TenantConfig>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ServiceFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let defaults = graphjit::RunLimits::default();
    let mut tenants = Vec::new();
    for (name, t) in &file.tenants {
        let hex = t.key_hash.strip_prefix(HASH_PREFIX).ok_or_else(|| {
            format!("tenant {name:?}: key_hash must be what `graphjit key-hash` prints")
        })?;
        let key_hash =
            blake3::Hash::from_hex(hex).map_err(|e| format!("tenant {name:?}: key_hash: {e}"))?;
        if tenants
            .iter()
            .any(|other: &TenantConfig| other.key_hash == key_hash)
        {
            return Err(format!("tenant {name:?} has another tenant's key"));
        }
        let footprint_ceiling = match &t.footprint_ceiling {
            None => FootprintCeiling::default(),
            Some(value) => {
                let json = serde_json::to_string(value)
                    .map_err(|e| format!("tenant {name:?}: footprint_ceiling: {e}"))?;
                FootprintCeiling::from_json(&json)
                    .map_err(|e| format!("tenant {name:?}: {}", e.message))?
            }
        };
        let limits = graphjit::RunLimits {
            fuel: t.fuel.unwrap_or(defaults.fuel),
            memory_bytes: t.memory.unwrap_or(defaults.memory_bytes),
            deadline: t
                .deadline_ms
                .map_or(defaults.deadline, std::time::Duration::from_millis),
            max_effect_calls: t.max_effect_calls.unwrap_or(defaults.max_effect_calls),
            ..defaults
        };
        let host_compile = graphjit::CompileLimits::default();
        let compile_timeout = t
            .compile_timeout_ms
            .map_or(host_compile.timeout, std::time::Duration::from_millis);
        let compile_limits = graphjit::CompileLimits {
            timeout: compile_timeout,
            // rustc's LLVM threads run in parallel: two cores' worth of the wall time.
            cpu_seconds: (compile_timeout.as_secs() * 2).max(1),
            memory_bytes: t.compile_memory.unwrap_or(host_compile.memory_bytes),
            ..host_compile
        };
        tenants.push(TenantConfig {
            database_url: t.database_url.clone(),
            partition_cache: t.partition_cache,
            max_deployments: t.max_deployments.unwrap_or(64),
            compile_limits,
            compile_per_minute: t
                .compile_ms_per_minute
                .map(std::time::Duration::from_millis),
            name: name.clone(),
            key_hash,
            footprint_ceiling,
            limits,
            max_concurrent_runs: t.max_concurrent_runs.unwrap_or(4).max(1),
            max_graph_bytes: t.max_graph_bytes.unwrap_or(1 << 20),
            max_concurrent_compiles: t.max_concurrent_compiles.unwrap_or(1).max(1),
        });
    }
    if tenants.is_empty() {
        return Err(format!("{}: no [tenants.NAME] table", path.display()));
    }
    Ok((file, tenants))
}
