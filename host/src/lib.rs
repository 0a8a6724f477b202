//! graphjit: compute graphs → safe Rust → wasm32 components → wasmtime, under fuel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), graphjit::Error> {
//! use std::collections::BTreeMap;
//! let graph = graphjit::Graph::from_json(br#"{
//!     "version": 1,
//!     "nodes": [
//!         {"id": "x", "op": "input", "type": "i64", "default": 20},
//!         {"id": "two", "op": "const", "value": 2},
//!         {"id": "y", "op": "mul", "args": ["x", "two"]}
//!     ],
//!     "outputs": {"y": "y"}
//! }"#)?;
//! let host = graphjit::Host::new()?;
//! let compiled = host.compile(&graph)?;
//! let out = host.run(&compiled, &BTreeMap::new(), graphjit::RunLimits::default()).await?;
//! assert_eq!(out.outputs[0].1, graphjit::Value::I64(40));
//! # Ok(()) }
//! ```
//!
//! The pipeline, one module per stage: `graph` (parse, validate, canonical hash) → `codegen`
//! (safe Rust) → `compile` (rustc against the prebuilt guest template) → `runtime` (wasmtime
//! under fuel, memory and deadline). `eval` is the reference interpreter that defines what
//! every graph means. Only this file's re-exports are public.
// `unsafe` is denied everywhere and allowed in one place, with the seed's five lines: loading
// a precompiled component from the disk cache (runtime::Runtime::load_precompiled).
#![deny(unsafe_code)]

mod assumptions;
mod cache;
mod codegen;
mod compile;
mod deploy;
pub(crate) mod effects;
mod error;
mod eval;
pub(crate) mod footprint;
mod graph;
mod host;
mod interface;
mod lifecycle;
mod memo;
mod native;
mod passes;
mod runtime;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod values;
mod verify;

pub use assumptions::Assumption;
pub use cache::{
    CacheConfig, CacheCounters, CacheKey, CacheSource, DiskCacheError, DiskStats, KeyIngredients,
    StageTimes,
};
pub use compile::CompileLimits;
pub use deploy::{Deployed, Deployments, Invocation};
pub use error::{EffectClass, Error, ErrorKind, Setting, Stage};
pub use graphjit_value::{Tensor, Value};
pub use host::{
    CompileStats, CompiledGraph, DatabaseLimits, Explanation, FootprintCeiling, Graph, Host,
    HostConfig, HttpSettings, MAX_SPECIALIZATIONS, RunLimits, RunOutput, default_disk_dir,
};
pub use lifecycle::{DeployEvent, DeployEventKind, State, TRANSITIONS, Transition, is_legal};
pub use memo::{DEFAULT_MEMO_BYTES, DEFAULT_MEMO_ENTRIES, MemoStats};
pub use passes::{Pass, PassConfig, PassReport, Placement};
pub use values::{value_to_json, value_to_text};
pub use verify::{CheckItem, Checklist};
