//! graphjit's integration tests: one binary, one module per concern (Wasmtime's
//! `tests/all` layout). They use the public API and the `graphjit` binary only.

mod adversarial;
mod cache;
mod cached;
mod cli;
mod conformance;
mod data;
mod deploy;
mod differential;
mod effects;
mod golden;
mod limits;
mod list_fusion;
mod native_work;
mod ops;
mod serve;
mod structured_effects;
mod support;
mod tensor_axes;
mod tensor_dims;
mod tidy;
mod unsafe_policy;
