//! L1: an in-memory LRU of ready artifacts, bounded by entry count and by bytes.
//!
//! Invariants:
//! - After every insert, `len() ≤ max_entries` and `bytes() ≤ max_bytes`, except that one entry
//!   larger than `max_bytes` is not kept at all (it is returned as evicted at once).
//! - Whatever leaves the map (pressure, replacement of the same key, removal) is handed back to
//!   the caller, so that it can retire it: nothing is dropped silently.

use lru::LruCache;

use super::CacheKey;

/// An LRU map from key to `V` with a byte weight per entry.
pub(crate) struct MemoryCache<V> {
    map: LruCache<CacheKey, (V, usize)>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
}

impl<V: Clone> MemoryCache<V> {
    /// An empty cache. `max_entries == 0` disables it.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> MemoryCache<V> {
        MemoryCache {
            map: LruCache::unbounded(),
            max_entries,
            max_bytes,
            bytes: 0,
        }
    }

    /// The value under `key`, marked most recently used.
    pub(crate) fn get(&mut self, key: &CacheKey) -> Option<V> {
        self.map.get(key).map(|(value, _)| value.clone())
    }

    /// Whether `key` has an entry (recency unchanged).
    pub(crate) fn contains(&self, key: &CacheKey) -> bool {
        self.map.contains(key)
    }

    /// Inserts `value` weighing `weight` bytes; returns what had to leave.
    pub(crate) fn insert(&mut self, key: CacheKey, value: V, weight: usize) -> Vec<V> {
        let mut evicted = Vec::new();
        if let Some((old, old_weight)) = self.map.pop(&key) {
            self.bytes -= old_weight;
            evicted.push(old);
        }
        if self.max_entries == 0 || weight > self.max_bytes {
            evicted.push(value);
            return evicted;
        }
        while self.map.len() + 1 > self.max_entries || self.bytes + weight > self.max_bytes {
            match self.map.pop_lru() {
                Some((_, (old, old_weight))) => {
                    self.bytes -= old_weight;
                    evicted.push(old);
                }
                None => break,
            }
        }
        self.bytes += weight;
        self.map.put(key, (value, weight));
        evicted
    }

    /// Removes `key` if `matches` says the entry is the one meant.
    pub(crate) fn remove_if(&mut self, key: &CacheKey, matches: impl Fn(&V) -> bool) -> Option<V> {
        if !self.map.peek(key).is_some_and(|(value, _)| matches(value)) {
            return None;
        }
        let (value, weight) = self.map.pop(key)?;
        self.bytes -= weight;
        Some(value)
    }

    /// Removes everything, returning it.
    pub(crate) fn clear(&mut self) -> Vec<V> {
        self.bytes = 0;
        let mut out = Vec::with_capacity(self.map.len());
        while let Some((_, (value, _))) = self.map.pop_lru() {
            out.push(value);
        }
        out
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Total weight of the entries.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<V> std::fmt::Debug for MemoryCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.map.len())
            .field("bytes", &self.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        crate::cache::key::test_key(&n.to_string())
    }

    #[test]
    fn entry_bound_evicts_least_recently_used() {
        let mut cache = MemoryCache::new(2, 1000);
        assert!(cache.insert(key(1), 1, 10).is_empty());
        assert!(cache.insert(key(2), 2, 10).is_empty());
        assert_eq!(cache.get(&key(1)), Some(1), "touch 1: now 2 is the LRU");
        assert_eq!(cache.insert(key(3), 3, 10), [2]);
        assert_eq!(cache.get(&key(2)), None);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn byte_bound_evicts_until_it_fits() {
        let mut cache = MemoryCache::new(10, 100);
        cache.insert(key(1), 1, 40);
        cache.insert(key(2), 2, 40);
        assert_eq!(cache.insert(key(3), 3, 50), [1]);
        assert_eq!(cache.bytes(), 90);
        assert_eq!(cache.insert(key(4), 4, 101), [4], "too big to keep at all");
        assert_eq!(cache.bytes(), 90);
    }

    #[test]
    fn replacing_a_key_hands_back_the_old_value() {
        let mut cache = MemoryCache::new(10, 100);
        cache.insert(key(1), 1, 40);
        assert_eq!(cache.insert(key(1), 11, 30), [1]);
        assert_eq!(cache.bytes(), 30);
        assert_eq!(
            cache.remove_if(&key(1), |v| *v == 1),
            None,
            "not that entry"
        );
        assert_eq!(cache.remove_if(&key(1), |v| *v == 11), Some(11));
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }
}
