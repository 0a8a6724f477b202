//! The cache key: blake3 over everything that decides a compiled component's bytes and
//! behaviour, and nothing else.
//!
//! Invariants:
//! - Every ingredient goes in with a label and a length prefix, so no two different sets of
//!   ingredients encode to the same bytes (`"ab" + "c"` ≠ `"a" + "bc"`).
//! - Nothing process-specific (paths, times, addresses, hash-map order) is an ingredient: two
//!   processes with the same toolchain compute the same key for the same graph.

use std::fmt;

use serde::Serialize;

/// Version of this key's layout; bump it when an ingredient is added or changes meaning.
const KEY_LAYOUT: &str = "graphjit-cache-key-v1";

/// What a compiled component depends on. Change any field and the key changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyIngredients {
    /// The graph's canonical hash (key order, whitespace and node order do not matter).
    pub graph: String,
    /// The pass pipeline's configuration.
    pub passes: String,
    /// The guest target triple.
    pub target: String,
    /// Target features and codegen flags given to rustc.
    pub target_features: String,
    /// rustc's optimization level for guests.
    pub opt_level: String,
    /// `rustc -vV`, whole (version, commit, LLVM version, host).
    pub rustc: String,
    /// wasmtime's version and the engine configuration that decides compiled code (the
    /// engine's precompile-compatibility hash).
    pub engine: String,
    /// blake3 of the guest template's rlibs.
    pub template: String,
    /// blake3 of the code generator's source (a generator change must miss).
    pub codegen: String,
    /// The cache partition ([`crate::Host::tenant_host`]): empty for the shared cache, which
    /// then hashes exactly as before partitions existed; a tenant's name for its own slice.
    pub partition: String,
}

impl KeyIngredients {
    /// The key these ingredients give.
    pub fn key(&self) -> CacheKey {
        self.key_for(&self.graph)
    }

    /// The key of these ingredients with `graph` as the graph's hash: what a host computes on
    /// every compile request, memory hits included, without copying its fixed ingredients.
    pub(crate) fn key_for(&self, graph: &str) -> CacheKey {
        let mut hasher = blake3::Hasher::new();
        let mut put = |label: &str, value: &str| {
            for part in [label, value] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
        };
        put("layout", KEY_LAYOUT);
        put("graph", graph);
        put("passes", &self.passes);
        put("target", &self.target);
        put("target_features", &self.target_features);
        put("opt_level", &self.opt_level);
        put("rustc", &self.rustc);
        put("engine", &self.engine);
        put("template", &self.template);
        put("codegen", &self.codegen);
        if !self.partition.is_empty() {
            put("partition", &self.partition);
        }
        CacheKey(*hasher.finalize().as_bytes())
    }
}

/// A component's cache key: 32 bytes of blake3, shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key as 64 lowercase hex digits (also its file name in the disk cache).
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The 32 bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.to_hex())
    }
}

/// A key for tests: ingredients that differ only in the graph field, set to `name`.
#[cfg(test)]
pub(crate) fn test_key(name: &str) -> CacheKey {
    KeyIngredients {
        graph: name.into(),
        passes: String::new(),
        target: String::new(),
        target_features: String::new(),
        opt_level: String::new(),
        rustc: String::new(),
        engine: String::new(),
        template: String::new(),
        codegen: String::new(),
        partition: String::new(),
    }
    .key()
}

/// Feeds a value's `std::hash::Hash` output into blake3: wasmtime exposes its engine
/// compatibility as `impl Hash`, and its byte stream is stable for one wasmtime build.
#[derive(Default)]
pub(crate) struct Blake3Hasher(blake3::Hasher);

impl Blake3Hasher {
    /// The hex digest of everything written.
    pub(crate) fn hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

impl std::hash::Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyIngredients {
        KeyIngredients {
            graph: "g".into(),
            passes: "none".into(),
            target: "wasm32-wasip2".into(),
            target_features: "+simd128".into(),
            opt_level: "1".into(),
            rustc: "rustc 1.95.0".into(),
            engine: "e".into(),
            template: "t".into(),
            codegen: "c".into(),
            partition: String::new(),
        }
    }

    #[test]
    fn each_ingredient_changes_the_key() {
        let base = sample().key();
        type Field = fn(&mut KeyIngredients) -> &mut String;
        let fields: [(&str, Field); 10] = [
            ("graph", |k| &mut k.graph),
            ("passes", |k| &mut k.passes),
            ("target", |k| &mut k.target),
            ("target_features", |k| &mut k.target_features),
            ("opt_level", |k| &mut k.opt_level),
            ("rustc", |k| &mut k.rustc),
            ("engine", |k| &mut k.engine),
            ("template", |k| &mut k.template),
            ("codegen", |k| &mut k.codegen),
            ("partition", |k| &mut k.partition),
        ];
        for (name, field) in fields {
            let mut changed = sample();
            field(&mut changed).push('x');
            assert_ne!(changed.key(), base, "changing {name} must change the key");
        }
        assert_eq!(sample().key(), base, "same ingredients, same key");
        let mut other = sample();
        other.graph = "another".into();
        assert_eq!(
            sample().key_for("another"),
            other.key(),
            "key_for is key with that graph"
        );
    }

    #[test]
    fn ingredients_do_not_run_into_each_other() {
        let mut a = sample();
        a.graph = "ab".into();
        a.passes = "c".into();
        let mut b = sample();
        b.graph = "a".into();
        b.passes = "bc".into();
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn hex_is_64_lowercase_digits() {
        let hex = sample().key().to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
