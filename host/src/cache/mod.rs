//! cache: ready graphs by content-addressed key — L1 in memory, L2 on disk, one compilation per
//! key at a time (seed 9.2).
//!
//! Lookup order: L1 (a ready artifact, ~µs) → single flight (one builder per key; everyone
//! else waits for its result) → the builder tries L2 (a precompiled component, ~ms) and
//! otherwise compiles (codegen + rustc + Cranelift, ~100 ms) and writes L2.
//!
//! Invariants:
//! - The key covers everything that decides the component ([`KeyIngredients`]); nothing else
//!   is in it, so two processes agree on it and any ingredient change misses.
//! - At most one build per key runs at a time in this process; concurrent requesters receive
//!   the builder's result, failures included (failures are not cached beyond that).
//! - L1 never serves a retired or failed artifact; what L1 evicts is retired (its lifecycle
//!   moves to Evicted once its in-flight requests end).
//! - L2 content is verified before use (see [`disk`]); a bad file is a miss, never a load.

mod disk;
mod key;
mod memory;

use crate::compile::CompileLimits;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

pub use disk::{DiskCacheError, DiskStats};
pub use key::{CacheKey, KeyIngredients};

pub(crate) use disk::{DiskCache, Lookup};
pub(crate) use key::Blake3Hasher;

include!(concat!(env!("OUT_DIR"), "/codegen_hash.rs"));
use memory::MemoryCache;

use crate::error::Error;
use crate::lifecycle::{Lifecycle, State};
use crate::runtime::LoadedGraph;

/// Bounds and location of the caches.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// L1: most ready graphs kept in memory (0 disables L1).
    pub memory_entries: usize,
    /// L1: most bytes of compiled code kept in memory.
    pub memory_bytes: usize,
    /// L2: the directory of precompiled components; `None` disables L2.
    pub disk_dir: Option<std::path::PathBuf>,
    /// L2: the directory is pruned to this many bytes.
    pub disk_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_entries: 256,
            memory_bytes: 256 << 20,
            disk_dir: None,
            disk_bytes: 1 << 30,
        }
    }
}

/// Where a ready graph came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSource {
    /// Compiled now.
    Miss,
    /// Found ready in memory (L1).
    Memory,
    /// Loaded from a precompiled component on disk (L2).
    Disk,
}

impl CacheSource {
    /// `miss`, `memory` or `disk`, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            CacheSource::Miss => "miss",
            CacheSource::Memory => "memory",
            CacheSource::Disk => "disk",
        }
    }
}

/// Time spent per stage getting a graph ready; zero for stages that did not run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct StageTimes {
    /// Computing the key (canonical hash of the graph included).
    pub key: Duration,
    /// The pass pipeline.
    pub optimize: Duration,
    /// Generating Rust.
    pub codegen: Duration,
    /// rustc (compile, link, componentize).
    pub rustc: Duration,
    /// Cranelift (or deserializing a precompiled component) and the import check.
    pub load: Duration,
    /// Reading and verifying the L2 file.
    pub disk_read: Duration,
    /// Serializing and writing the L2 file.
    pub disk_write: Duration,
}

/// A compiled, loaded graph: what L1 holds and requests run.
pub(crate) struct Artifact {
    pub(crate) key: CacheKey,
    pub(crate) loaded: LoadedGraph,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// L1 weight: bytes of compiled code.
    pub(crate) weight: usize,
    /// Deployments serving it; a pinned artifact is not retired by L1 pressure.
    pub(crate) pins: AtomicUsize,
    /// The (optimized) IR the component was generated from: its node indices are the ones
    /// the guest reports errors with.
    pub(crate) graph: Arc<crate::graph::Graph>,
    /// What serves its effect calls: built once here (the footprint's grants are computed
    /// once), not per run; a run on a host with other drivers swaps only the drivers
    /// (`Dispatcher::with_services`). `None` for a graph without effect nodes (its component
    /// imports no effect interface).
    pub(crate) effects: Option<Arc<crate::effects::Dispatcher>>,
    /// Its `cached` nodes as the memo sees them (empty for most graphs).
    pub(crate) memo_sites: Arc<[crate::graph::MemoSite]>,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("key", &self.key)
            .field("context", &self.lifecycle.context())
            .field("weight", &self.weight)
            .field("effects", &self.effects.is_some())
            .finish_non_exhaustive()
    }
}

impl Artifact {
    /// A ready artifact (its lifecycle already in Ready).
    pub(crate) fn new(
        key: CacheKey,
        loaded: LoadedGraph,
        lifecycle: Arc<Lifecycle>,
        graph: Arc<crate::graph::Graph>,
        effects: Option<Arc<crate::effects::Dispatcher>>,
    ) -> Artifact {
        Artifact {
            key,
            weight: loaded.code_bytes,
            loaded,
            lifecycle,
            pins: AtomicUsize::new(0),
            memo_sites: graph.memo_sites().into(),
            graph,
            effects,
        }
    }

    fn serving(&self) -> bool {
        matches!(self.lifecycle.state(), State::Ready | State::Executing)
    }
}

/// The result of getting a graph ready.
#[derive(Clone, Debug)]
pub(crate) struct Built {
    pub(crate) artifact: Arc<Artifact>,
    pub(crate) source: CacheSource,
    /// Why it hit or missed, for `--json` and `explain`.
    pub(crate) reason: String,
    pub(crate) stages: StageTimes,
}

/// Counters since the host started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CacheCounters {
    /// Requests served from L1.
    pub memory_hits: u64,
    /// Builds served from L2.
    pub disk_hits: u64,
    /// Builds that compiled.
    pub compiles: u64,
    /// Requests that waited for another request's build of the same key.
    pub coalesced: u64,
    /// L2 files discarded as corrupt, truncated or foreign.
    pub discarded: u64,
    /// Artifacts L1 evicted.
    pub evicted: u64,
}

type Flight = Arc<OnceLock<Result<Built, Error>>>;

/// L1 + L2 + single flight.
#[derive(Debug)]
pub(crate) struct Cache {
    memory: Mutex<MemoryCache<Arc<Artifact>>>,
    disk: Option<DiskCache>,
    /// Builds in progress, by key and by the compile limits they run under (see
    /// [`Cache::get_or_build`]).
    flights: Mutex<HashMap<(CacheKey, CompileLimits), Flight>>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
    coalesced: AtomicU64,
    discarded: AtomicU64,
    evicted: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section below leaves the map consistent before anything can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cache {
    /// Opens the caches `config` describes (checking the disk directory).
    pub(crate) fn new(config: &CacheConfig) -> Result<Cache, DiskCacheError> {
        let disk = match &config.disk_dir {
            Some(dir) => Some(DiskCache::open(dir, config.disk_bytes)?),
            None => None,
        };
        Ok(Cache {
            memory: Mutex::new(MemoryCache::new(config.memory_entries, config.memory_bytes)),
            disk,
            flights: Mutex::new(HashMap::new()),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    /// Whether L1 holds `key` (counts nothing, changes no recency).
    pub(crate) fn in_memory(&self, key: &CacheKey) -> bool {
        lock(&self.memory).contains(key)
    }

    /// A serving artifact from L1, if there is one.
    pub(crate) fn memory_get(&self, key: &CacheKey) -> Option<Arc<Artifact>> {
        let mut memory = lock(&self.memory);
        let found = memory.get(key)?;
        if found.serving() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Some(found);
        }
        // Retired or failed: it must not serve again; drop it from L1.
        memory.remove_if(key, |a| Arc::ptr_eq(a, &found));
        None
    }

    /// The ready artifact for `key`: from L1, or from the one build of it that `build` does
    /// (which may use L2). Returns whether this caller waited for someone else's build.
    ///
    /// Only callers with the same compile `limits` share a build in flight: a build under one
    /// caller's tight limits may fail where another's would succeed, and its failure must not
    /// become theirs. A success serves every caller from L1 once admitted.
    pub(crate) fn get_or_build(
        &self,
        key: CacheKey,
        limits: CompileLimits,
        build: impl FnOnce() -> Result<Built, Error>,
    ) -> (Result<Built, Error>, bool) {
        if let Some(artifact) = self.memory_get(&key) {
            return (Ok(memory_built(artifact)), false);
        }
        let flight_key = (key, limits);
        let flight = Arc::clone(lock(&self.flights).entry(flight_key).or_default());
        let mut led = false;
        let result = flight.get_or_init(|| {
            led = true;
            // Someone may have finished this key between the L1 check and the flight.
            if let Some(artifact) = self.memory_get(&key) {
                return Ok(memory_built(artifact));
            }
            let built = build();
            if let Ok(built) = &built {
                match built.source {
                    CacheSource::Miss => self.compiles.fetch_add(1, Ordering::Relaxed),
                    CacheSource::Disk => self.disk_hits.fetch_add(1, Ordering::Relaxed),
                    CacheSource::Memory => 0,
                };
                self.admit(Arc::clone(&built.artifact));
            }
            built
        });
        let result = result.clone();
        if led {
            let mut flights = lock(&self.flights);
            if flights
                .get(&flight_key)
                .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                flights.remove(&flight_key);
            }
        } else {
            self.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        (result, !led)
    }

    /// Puts a ready artifact in L1, retiring what that pushes out.
    fn admit(&self, artifact: Arc<Artifact>) {
        let (key, weight) = (artifact.key, artifact.weight);
        let evicted = lock(&self.memory).insert(key, Arc::clone(&artifact), weight);
        for old in evicted {
            if Arc::ptr_eq(&old, &artifact) {
                // Too big for L1: it serves its requester and is retired when they are done.
                continue;
            }
            self.evicted.fetch_add(1, Ordering::Relaxed);
            if old.pins.load(Ordering::SeqCst) > 0 {
                // A deployment serves it: it leaves L1 but stays in service until unpinned.
                continue;
            }
            old.lifecycle.retire("evicted from the memory cache (LRU)");
        }
    }

    /// Removes `artifact` from L1 (if L1 holds exactly it) and retires it.
    pub(crate) fn retire(&self, artifact: &Arc<Artifact>, why: &str) {
        lock(&self.memory).remove_if(&artifact.key, |a| Arc::ptr_eq(a, artifact));
        artifact.lifecycle.retire(why);
    }

    /// Empties L1, retiring everything in it.
    pub(crate) fn clear_memory(&self) {
        let all = lock(&self.memory).clear();
        for artifact in all {
            artifact.lifecycle.retire("memory cache cleared");
        }
    }

    /// Where a request for `key` would be served from now, without serving it: `memory`,
    /// `disk` (present; verified only when loaded) or `miss`.
    pub(crate) fn peek(&self, key: &CacheKey) -> CacheSource {
        if lock(&self.memory).contains(key) {
            return CacheSource::Memory;
        }
        match &self.disk {
            Some(disk) if disk.contains(key) => CacheSource::Disk,
            _ => CacheSource::Miss,
        }
    }

    /// The disk cache, if configured.
    pub(crate) fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    /// Counts an L2 file discarded as bad.
    pub(crate) fn note_discarded(&self) {
        self.discarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters since the host started.
    pub(crate) fn counters(&self) -> CacheCounters {
        CacheCounters {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// L1 entry count and bytes.
    pub(crate) fn memory_usage(&self) -> (usize, usize) {
        let memory = lock(&self.memory);
        (memory.len(), memory.bytes())
    }
}

fn memory_built(artifact: Arc<Artifact>) -> Built {
    Built {
        artifact,
        source: CacheSource::Memory,
        reason: "ready in memory".to_owned(),
        stages: StageTimes::default(),
    }
}
