//! graphjit: compute graphs → safe Rust → wasm32 components → wasmtime, under fuel.
#![forbid(unsafe_code)]

mod codegen;
mod compile;
mod eval;
mod graph;
mod runtime;
