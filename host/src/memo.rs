//! The memo: what `cached` nodes computed, kept by the host across runs (the seed's
//! `Cached CacheKey ComputeNode`).
//!
//! An entry's key is blake3 over the node's site prefix ([`crate::graph::MemoSite`]: the
//! digest of its declared key, lifetime, type and body, and the graph's footprint) and the
//! encoded values its body reads (arguments, then outer nodes; the encoding makes NaNs canonical). Its value
//! is the body's result, encoded. Both engines make the same key for the same values (`eval`
//! from its values, a compiled guest through the `memo` import), so a result stored by one is
//! a hit for the other.
//!
//! Invariants:
//! - Bounded: at most `max_entries` entries and `max_bytes` bytes (values plus 64 per entry);
//!   the least recently used go first, an entry larger than the whole budget is never kept.
//! - An entry of a node with `ttl_ms` is never served once that long has passed since it was
//!   stored (it is dropped at the lookup that finds it expired).
//! - Only successful results are stored: a body that fails stores nothing.
//! - A site the run does not know (a guest that names another node) never hits and never
//!   stores; nothing here panics on what a guest sends.
//!
//! Fuel (the same in both engines, documented in docs/graph-format.md, "Cached"): a lookup
//! costs [`FUEL_PER_LOOKUP`] plus one per byte of the reads and, on a hit, one per byte of the
//! value; a store one per byte of the value.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::graph::MemoSite;

/// Fuel of one lookup, besides its bytes: a hit skips the body for about this.
pub(crate) const FUEL_PER_LOOKUP: u64 = 1_000;

/// Bytes an entry counts besides its value (key, bookkeeping).
const ENTRY_OVERHEAD: u64 = 64;

/// The default entry bound of a host's memo.
pub const DEFAULT_MEMO_ENTRIES: usize = 4096;
/// The default byte bound of a host's memo: 64 MiB.
pub const DEFAULT_MEMO_BYTES: u64 = 64 << 20;

/// Counters of a memo since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoStats {
    /// Entries held now.
    pub entries: usize,
    /// Bytes held now (values plus 64 per entry).
    pub bytes: u64,
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found none, or an expired one.
    pub misses: u64,
    /// Entries dropped for room (not counting expired ones).
    pub evictions: u64,
    /// Entries found past their lifetime.
    pub expired: u64,
}

struct Entry {
    value: Arc<[u8]>,
    expires: Option<Instant>,
}

struct State {
    entries: LruCache<[u8; 32], Entry>,
    bytes: u64,
    stats: MemoStats,
}

/// The host's memo, shared by every run.
pub(crate) struct MemoTable {
    max_entries: usize,
    max_bytes: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoTable")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

impl MemoTable {
    /// A memo of at most `max_entries` entries and `max_bytes` bytes (0 of either: nothing is
    /// ever kept).
    pub(crate) fn new(max_entries: usize, max_bytes: u64) -> MemoTable {
        MemoTable {
            max_entries,
            max_bytes,
            state: Mutex::new(State {
                entries: LruCache::unbounded(),
                bytes: 0,
                stats: MemoStats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters at worst stale, never unsafe.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> MemoStats {
        let state = self.lock();
        MemoStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            ..state.stats
        }
    }

    fn get(&self, key: &[u8; 32], now: Instant) -> Option<Arc<[u8]>> {
        let mut state = self.lock();
        let expired = match state.entries.get(key) {
            None => {
                state.stats.misses += 1;
                return None;
            }
            Some(entry) if entry.expires.is_some_and(|at| now >= at) => true,
            Some(entry) => {
                let value = Arc::clone(&entry.value);
                state.stats.hits += 1;
                return Some(value);
            }
        };
        if expired && let Some(entry) = state.entries.pop(key) {
            state.bytes = state.bytes.saturating_sub(entry_bytes(&entry.value));
            state.stats.expired += 1;
        }
        state.stats.misses += 1;
        None
    }

    fn put(&self, key: [u8; 32], value: Vec<u8>, ttl: Option<Duration>, now: Instant) {
        let bytes = entry_bytes(&value);
        if self.max_entries == 0 || bytes > self.max_bytes {
            return;
        }
        let entry = Entry {
            value: value.into(),
            expires: ttl.and_then(|ttl| now.checked_add(ttl)),
        };
        let mut state = self.lock();
        if let Some(old) = state.entries.put(key, entry) {
            state.bytes = state.bytes.saturating_sub(entry_bytes(&old.value));
        }
        state.bytes = state.bytes.saturating_add(bytes);
        while state.entries.len() > self.max_entries || state.bytes > self.max_bytes {
            let Some((_, old)) = state.entries.pop_lru() else {
                break;
            };
            state.bytes = state.bytes.saturating_sub(entry_bytes(&old.value));
            state.stats.evictions += 1;
        }
    }
}

fn entry_bytes(value: &[u8]) -> u64 {
    (value.len() as u64).saturating_add(ENTRY_OVERHEAD)
}

/// One run's view of the memo: the table, the graph's sites, and the run's own counts.
#[derive(Clone)]
pub(crate) struct RunMemo {
    table: Arc<MemoTable>,
    sites: Arc<[MemoSite]>,
    pub(crate) hits: u32,
    pub(crate) misses: u32,
}

impl std::fmt::Debug for RunMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMemo")
            .field("sites", &self.sites.len())
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

impl RunMemo {
    pub(crate) fn new(table: Arc<MemoTable>, sites: Arc<[MemoSite]>) -> RunMemo {
        RunMemo {
            table,
            sites,
            hits: 0,
            misses: 0,
        }
    }

    fn site(&self, node: u32) -> Option<&MemoSite> {
        self.sites.iter().find(|s| s.node.0 == node)
    }

    fn key(site: &MemoSite, reads: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&site.prefix);
        hasher.update(reads);
        *hasher.finalize().as_bytes()
    }

    /// The value held for `node` and `reads` (encoded values), counted as this run's hit or
    /// miss.
    pub(crate) fn lookup(&mut self, node: u32, reads: &[u8]) -> Option<Arc<[u8]>> {
        let found = self
            .site(node)
            .and_then(|site| self.table.get(&Self::key(site, reads), Instant::now()));
        if found.is_some() {
            self.hits = self.hits.saturating_add(1);
        } else {
            self.misses = self.misses.saturating_add(1);
        }
        found
    }

    /// Keeps `value` (one encoded value) for `node` and `reads`.
    pub(crate) fn store(&mut self, node: u32, reads: &[u8], value: Vec<u8>) {
        let Some(site) = self.site(node) else {
            return;
        };
        let ttl = site.ttl_ms.map(Duration::from_millis);
        let key = Self::key(site, reads);
        self.table.put(key, value, ttl, Instant::now());
    }

    /// Fuel of a lookup of `reads` bytes that answered `value` bytes.
    pub(crate) fn lookup_fuel(reads: usize, value: usize) -> u64 {
        FUEL_PER_LOOKUP
            .saturating_add(reads as u64)
            .saturating_add(value as u64)
    }

    /// Fuel of storing a value of `value` bytes.
    pub(crate) fn store_fuel(value: usize) -> u64 {
        value as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::NodeId;

    fn site(node: u32, ttl_ms: Option<u64>) -> MemoSite {
        MemoSite {
            node: NodeId(node),
            prefix: [node as u8; 32],
            ttl_ms,
        }
    }

    fn run(table: &Arc<MemoTable>, sites: Vec<MemoSite>) -> RunMemo {
        RunMemo::new(Arc::clone(table), sites.into())
    }

    #[test]
    fn a_stored_value_is_a_hit_for_the_same_site_and_reads_only() {
        let table = Arc::new(MemoTable::new(16, 1 << 20));
        let mut memo = run(&table, vec![site(3, None), site(4, None)]);
        assert_eq!(memo.lookup(3, b"a"), None);
        memo.store(3, b"a", b"value".to_vec());
        assert_eq!(memo.lookup(3, b"a").as_deref(), Some(&b"value"[..]));
        assert_eq!(memo.lookup(3, b"b"), None);
        assert_eq!(memo.lookup(4, b"a"), None);
        // A site the run does not have: never stored, never found.
        memo.store(9, b"a", b"x".to_vec());
        assert_eq!(memo.lookup(9, b"a"), None);
        assert_eq!((memo.hits, memo.misses), (1, 4));
        let stats = table.stats();
        assert_eq!((stats.entries, stats.hits), (1, 1));
    }

    #[test]
    fn entries_and_bytes_are_bounded_least_recently_used_first() {
        let table = Arc::new(MemoTable::new(2, 1 << 20));
        let mut memo = run(&table, vec![site(1, None)]);
        memo.store(1, b"a", vec![1]);
        memo.store(1, b"b", vec![2]);
        assert!(memo.lookup(1, b"a").is_some());
        memo.store(1, b"c", vec![3]);
        assert!(
            memo.lookup(1, b"b").is_none(),
            "b was the least recently used"
        );
        assert!(memo.lookup(1, b"a").is_some() && memo.lookup(1, b"c").is_some());
        assert_eq!(table.stats().evictions, 1);

        let small = Arc::new(MemoTable::new(100, 3 * ENTRY_OVERHEAD + 30));
        let mut memo = run(&small, vec![site(1, None)]);
        for i in 0..10u8 {
            memo.store(1, &[i], vec![i; 10]);
        }
        let stats = small.stats();
        assert!(stats.bytes <= 3 * ENTRY_OVERHEAD + 30, "{stats:?}");
        assert_eq!(stats.entries, 3);
        // Larger than the whole budget: not kept, nothing evicted for it.
        memo.store(1, b"big", vec![0; 1000]);
        assert!(memo.lookup(1, b"big").is_none());
        assert_eq!(small.stats().entries, 3);
    }

    #[test]
    fn an_entry_past_its_lifetime_is_a_miss_and_is_dropped() {
        let table = Arc::new(MemoTable::new(16, 1 << 20));
        let mut memo = run(&table, vec![site(1, Some(30))]);
        memo.store(1, b"a", vec![7]);
        assert!(memo.lookup(1, b"a").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(memo.lookup(1, b"a").is_none());
        let stats = table.stats();
        assert_eq!((stats.entries, stats.expired), (0, 1));
    }
}
