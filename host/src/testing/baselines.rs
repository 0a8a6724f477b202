//! Baselines for the benchmarks (`benches/pipeline.rs`, `scripts/bench-check`): what the
//! machine's own tools cost for the work graphjit wraps, measured in the same process run so
//! that a ratio to them does not depend on how fast the machine is today.
//!
//! - [`rustc_floor`]: the same rustc, target, flags and linker as a graph's compile, on a
//!   trivial `no_std` crate: rustc's start-up, linking and componentizing, none of our code.
//! - [`BareInstance`]: a graph's own component instantiated and called by wasmtime alone, with
//!   the engine configuration graphjit runs (fuel, epochs, the pooling allocator), a fresh store
//!   per call and nothing else: no limiter, no effect state, no input binding, no output
//!   decoding, no lifecycle.
//!
//! Invariants: neither baseline shares state with a [`Host`]'s caches; both fail with a message
//! rather than panic, so a bench says why it could not measure.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::compile::CompileOptions;
use crate::runtime::{RuntimeConfig, engine};
use crate::{Graph, Host};

/// A crate that uses nothing: no `std`, no guest template, one exported function.
const FLOOR_SOURCE: &str = "#![no_std]\n\
    #[panic_handler]\n\
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! { loop {} }\n\
    #[unsafe(no_mangle)]\n\
    pub extern \"C\" fn floor(x: i32) -> i32 { x.wrapping_add(1) }\n";

/// Compiles the trivial `no_std` crate with `host`'s rustc exactly as a graph is compiled
/// (same target, opt level, codegen flags, linker, fresh directory); returns rustc's wall time.
pub fn rustc_floor(host: &Host) -> Result<Duration, String> {
    host.compiler()
        .compile(FLOOR_SOURCE, &CompileOptions::default())
        .map(|compiled| compiled.rustc_time)
        .map_err(|e| e.to_string())
}

/// A graph's component, compiled by Cranelift on an engine configured as graphjit's, ready to
/// be instantiated and called with the graph's default inputs.
pub struct BareInstance {
    engine: wasmtime::Engine,
    pre: crate::runtime::bindings::GraphPre<()>,
    input: Vec<u8>,
    fuel: u64,
}

impl BareInstance {
    /// Compiles `graph` with `host` (codegen and rustc as usual), then loads its component on a
    /// fresh engine with the default runtime configuration. The graph may import nothing but
    /// the types interface (a pure graph).
    pub fn new(host: &Host, graph: &Graph) -> Result<BareInstance, String> {
        let wasm = host.compile_wasm(graph).map_err(|e| e.to_string())?;
        let bound = graph
            .bind_inputs(&BTreeMap::new())
            .map_err(|e| e.to_string())?;
        let mut input = Vec::with_capacity(graphjit_value::encoded_len(&bound));
        graphjit_value::encode(&bound, &mut input);
        let engine = engine::build(&RuntimeConfig::default()).map_err(|e| e.to_string())?;
        let component =
            wasmtime::component::Component::new(&engine, &wasm).map_err(|e| format!("{e:#}"))?;
        let mut linker = wasmtime::component::Linker::<()>::new(&engine);
        linker
            .instance(crate::runtime::TYPES_INTERFACE)
            .map_err(|e| format!("{e:#}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(crate::runtime::bindings::GraphPre::new)
            .map_err(|e| format!("{e:#}"))?;
        Ok(BareInstance {
            engine,
            pre,
            input,
            fuel: crate::RunLimits::default().fuel,
        })
    }

    /// One fresh store, instantiation and call of `run`; returns the encoded outputs.
    pub async fn instantiate_call(&self) -> Result<Vec<u8>, String> {
        let mut store = wasmtime::Store::new(&self.engine, ());
        store.set_fuel(self.fuel).map_err(|e| format!("{e:#}"))?;
        // graphjit's engine interrupts on epochs; no ticker runs here, so no deadline passes.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| format!("{e:#}"))?;
        match instance.call_run(&mut store, &self.input).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(guest)) => Err(format!("the guest returned an error: {guest:?}")),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}
