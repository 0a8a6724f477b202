//! The library's entry point: a [`Host`] parses graphs, compiles them to components and runs
//! them (or evaluates them with the reference interpreter).
//!
//! Invariants: `host` is glue — it owns no semantics of its own; it maps every stage's typed
//! error into [`Error`] with the failing node's user-facing id, and never panics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use graphjit_value::Value;

use crate::codegen;
use crate::compile::{self, Compiler};
use crate::error::{Error, ErrorKind, Stage};
use crate::eval;
use crate::graph::{self, NodeId};
use crate::runtime::{self, Runtime};
use crate::values;

/// Limits for one run. Defaults are documented on [`RunLimits::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// Wasm fuel (≈ one unit per instruction); for `eval`, one unit per node evaluated.
    pub fuel: u64,
    /// Bytes of guest linear memory (and the per-allocation cap for `eval`).
    pub memory_bytes: u64,
    /// Wall-clock limit of the run.
    pub deadline: Duration,
}

impl Default for RunLimits {
    /// 10^9 fuel (about a second of guest work), 256 MiB memory, 10 s wall clock.
    fn default() -> Self {
        RunLimits {
            fuel: 1_000_000_000,
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(10),
        }
    }
}

/// A parsed, validated graph.
#[derive(Clone, Debug)]
pub struct Graph {
    pub(crate) inner: graph::Graph,
}

impl Graph {
    /// Parses and validates a graph from JSON (format v1, `docs/graph-format.md`).
    pub fn from_json(bytes: &[u8]) -> Result<Graph, Error> {
        let inner = graph::parse(bytes, &graph::Limits::default())?;
        Ok(Graph { inner })
    }

    /// The graph's identity: blake3 of its canonical form, hex.
    pub fn hash(&self) -> String {
        self.inner.canonical_hash().to_hex().to_string()
    }

    /// The generated Rust for this graph (deterministic: same graph, same text).
    pub fn rust_source(&self) -> String {
        codegen::generate(&self.inner).source
    }

    /// Output names, in the order results are returned.
    pub fn output_names(&self) -> &[String] {
        &self.inner.outputs
    }

    /// Input names with their types (as text), sorted by name.
    pub fn inputs(&self) -> Vec<(String, String)> {
        self.inner
            .inputs
            .iter()
            .map(|&id| {
                let node = self.inner.node(id);
                (node.name.clone(), node.ty.to_string())
            })
            .collect()
    }

    /// Run limits written in the graph, applied over `base`.
    pub fn limits_over(&self, base: RunLimits) -> RunLimits {
        RunLimits {
            fuel: self.inner.limits.fuel.unwrap_or(base.fuel),
            memory_bytes: self.inner.limits.memory_bytes.unwrap_or(base.memory_bytes),
            deadline: base.deadline,
        }
    }

    /// Parses command-line text for each named input by its declared type.
    pub fn parse_inputs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<BTreeMap<String, Value>, Error> {
        let mut out = BTreeMap::new();
        for (name, text) in pairs {
            let node = self.input_node(name)?;
            let value = values::parse_input(text, &self.inner.node(node).ty).map_err(|m| {
                input_error(m, "pass a value of the input's type").at_node(Some(name.clone()))
            })?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    fn input_node(&self, name: &str) -> Result<NodeId, Error> {
        self.inner
            .inputs
            .iter()
            .copied()
            .find(|&id| self.inner.node(id).name == name)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .inputs()
                    .into_iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect();
                input_error(
                    format!("the graph has no input {name:?}"),
                    format!("inputs are: {}", known.join(", ")),
                )
            })
    }

    /// The inputs in boundary order: given values checked against their types, defaults for
    /// the rest; a missing input without default is an error.
    pub(crate) fn bind_inputs(&self, given: &BTreeMap<String, Value>) -> Result<Vec<Value>, Error> {
        for name in given.keys() {
            self.input_node(name)?;
        }
        self.inner
            .inputs
            .iter()
            .map(|&id| {
                let node = self.inner.node(id);
                let value = match (given.get(&node.name), &node.op) {
                    (Some(v), _) => v.clone(),
                    (None, graph::Op::Input { default: Some(c) }) => const_value(c),
                    (None, _) => {
                        return Err(input_error(
                            format!(
                                "input {:?} ({}) has no value and no default",
                                node.name, node.ty
                            ),
                            format!("pass --input {}=VALUE", node.name),
                        ));
                    }
                };
                if !values::has_type(&value, &node.ty) {
                    return Err(input_error(
                        format!("input {:?} must be {}", node.name, node.ty),
                        "pass a value of the declared type",
                    ));
                }
                Ok(value)
            })
            .collect()
    }

    /// The user-facing id of a node index reported by a guest or by eval.
    pub(crate) fn node_name(&self, index: u32) -> Option<String> {
        self.inner.nodes.get(index as usize).map(|n| n.name.clone())
    }
}

pub(crate) fn const_value(c: &graph::Const) -> Value {
    match c {
        graph::Const::Bool(b) => Value::Bool(*b),
        graph::Const::I64(i) => Value::I64(*i),
        graph::Const::F64(x) => Value::F64(*x),
        graph::Const::Str(s) => Value::Str(s.clone()),
        graph::Const::Tensor(t) => Value::Tensor(t.clone()),
    }
}

fn input_error(message: impl Into<String>, remediation: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, Stage::Input, message, remediation)
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// `(output name, value)`, in the graph's output order.
    pub outputs: Vec<(String, Value)>,
    pub fuel_used: u64,
    pub run_time: Duration,
}

/// A graph compiled to a component and loaded into the engine, ready to instantiate.
pub struct CompiledGraph {
    graph: Graph,
    loaded: runtime::LoadedGraph,
    /// Size of the component in bytes.
    pub wasm_bytes: usize,
    /// Time in codegen + rustc + Cranelift.
    pub compile_time: Duration,
}

impl CompiledGraph {
    /// The graph this was compiled from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
}

/// The embedding API: one per process (it owns the wasmtime engine and the toolchain facts).
pub struct Host {
    compiler: Compiler,
    runtime: Runtime,
}

impl Host {
    /// Finds the toolchain and builds the engine.
    pub fn new() -> Result<Host, Error> {
        let compiler = Compiler::new().map_err(compile_error)?;
        let runtime = Runtime::new(&runtime::RuntimeConfig::default())
            .map_err(|e| runtime_error(e, None, Stage::Load))?;
        Ok(Host { compiler, runtime })
    }

    /// Compiles a graph to a component (wasm bytes) without loading it.
    pub fn compile_wasm(&self, graph: &Graph) -> Result<Vec<u8>, Error> {
        let generated = codegen::generate(&graph.inner);
        let compiled = self
            .compiler
            .compile(&generated.source, &compile::CompileOptions::default())
            .map_err(|e| {
                let node = compile_error_node(&e, &generated).and_then(|id| graph.node_name(id.0));
                compile_error(e).at_node(node)
            })?;
        Ok(compiled.wasm)
    }

    /// Generates, compiles and loads a graph: after this, runs only instantiate and call.
    pub fn compile(&self, graph: &Graph) -> Result<CompiledGraph, Error> {
        let start = Instant::now();
        let wasm = self.compile_wasm(graph)?;
        let loaded = self
            .runtime
            .load(&wasm)
            .map_err(|e| runtime_error(e, Some(graph), Stage::Load))?;
        Ok(CompiledGraph {
            graph: graph.clone(),
            loaded,
            wasm_bytes: wasm.len(),
            compile_time: start.elapsed(),
        })
    }

    /// Runs a compiled graph in a fresh instance under `limits`.
    pub async fn run(
        &self,
        compiled: &CompiledGraph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let graph = &compiled.graph;
        let bound = graph.bind_inputs(inputs)?;
        let mut encoded = Vec::with_capacity(graphjit_value::encoded_len(&bound));
        graphjit_value::encode(&bound, &mut encoded);
        let run_limits = runtime::RunLimits {
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            deadline: limits.deadline,
        };
        let outcome = self
            .runtime
            .run(&compiled.loaded, &encoded, &run_limits)
            .await
            .map_err(|e| runtime_error(e, Some(graph), Stage::Run))?;
        let values = outcome
            .decode()
            .map_err(|e| runtime_error(e, Some(graph), Stage::Run))?;
        Ok(RunOutput {
            outputs: name_outputs(graph, values)?,
            fuel_used: outcome.fuel_used,
            run_time: outcome.run_time,
        })
    }

    /// Evaluates a graph with the reference interpreter (no compilation).
    pub fn eval(
        graph: &Graph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let bound = graph.bind_inputs(inputs)?;
        let start = Instant::now();
        let eval_limits = eval::EvalLimits {
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
        };
        let outcome =
            eval::eval(&graph.inner, &bound, &eval_limits).map_err(|e| eval_error(e, graph))?;
        Ok(RunOutput {
            outputs: name_outputs(graph, outcome.outputs)?,
            fuel_used: outcome.fuel_used,
            run_time: start.elapsed(),
        })
    }
}

fn name_outputs(graph: &Graph, values: Vec<Value>) -> Result<Vec<(String, Value)>, Error> {
    if values.len() != graph.inner.outputs.len() {
        return Err(Error::new(
            ErrorKind::Internal,
            Stage::Run,
            format!(
                "{} outputs returned, {} expected",
                values.len(),
                graph.inner.outputs.len()
            ),
            "report this as a bug",
        ));
    }
    Ok(graph
        .inner
        .outputs
        .iter()
        .cloned()
        .zip(values.into_iter().map(Value::canonicalized))
        .collect())
}

fn compile_error_node(
    e: &compile::RustCompileError,
    generated: &codegen::GeneratedRust,
) -> Option<NodeId> {
    let line = e.first_line()?;
    generated
        .line_nodes
        .get(line.checked_sub(1)? as usize)
        .copied()
        .flatten()
}

fn compile_error(e: compile::RustCompileError) -> Error {
    let kind = if e.is_toolchain() {
        ErrorKind::Toolchain
    } else {
        ErrorKind::RustCompileError
    };
    let remediation = e.remediation();
    Error::new(kind, Stage::Compile, e.to_string(), remediation)
}

fn runtime_error(e: runtime::RuntimeError, graph: Option<&Graph>, stage: Stage) -> Error {
    use runtime::RuntimeError as R;
    let node = |n: u32| graph.and_then(|g| g.node_name(n));
    let message = e.to_string();
    let (kind, node, remediation) = match e {
        R::Fuel { budget, used } => (
            ErrorKind::FuelExhausted { budget, used },
            None,
            "raise --fuel, or bound the graph's loops more tightly".to_string(),
        ),
        R::Memory { limit, requested } => (
            ErrorKind::MemoryExceeded { limit, requested },
            None,
            "raise --memory, or use smaller tensors".to_string(),
        ),
        R::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: 0,
                requested: bytes,
            },
            node(n),
            "raise --memory, or use smaller tensors".to_string(),
        ),
        R::Deadline { limit } => (
            ErrorKind::DeadlineExceeded {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            None,
            "raise the deadline, or do less work per run".to_string(),
        ),
        R::Overflow { node: n } => (
            ErrorKind::Overflow,
            node(n),
            "check the operands' ranges; i64 arithmetic is checked".to_string(),
        ),
        R::DivisionByZero { node: n } => (
            ErrorKind::DivisionByZero,
            node(n),
            "guard the division with an `if` on the divisor".to_string(),
        ),
        R::InvalidValue { node: n, .. } => (
            ErrorKind::InvalidValue,
            node(n),
            "check the value's range before converting".to_string(),
        ),
        R::ImportDenied { ref import } => (
            ErrorKind::ImportDenied {
                import: import.clone(),
            },
            None,
            "the component may import only graphjit interfaces its footprint allows".to_string(),
        ),
        other => (
            if matches!(other, R::Trap { .. }) {
                ErrorKind::Trap
            } else {
                ErrorKind::Internal
            },
            None,
            "report this as a bug".to_string(),
        ),
    };
    Error::new(kind, stage, message, remediation).at_node(node)
}

fn eval_error(e: eval::EvalError, graph: &Graph) -> Error {
    use eval::EvalError as E;
    let message = e.to_string();
    let node = |n: NodeId| graph.node_name(n.0);
    let (kind, node, remediation) = match e {
        E::Fuel { budget, used } => (
            ErrorKind::FuelExhausted { budget, used },
            None,
            "raise --fuel",
        ),
        E::OutOfMemory { node: n, bytes } => (
            ErrorKind::MemoryExceeded {
                limit: 0,
                requested: bytes,
            },
            node(n),
            "raise --memory, or use smaller tensors",
        ),
        E::Overflow { node: n } => (
            ErrorKind::Overflow,
            node(n),
            "check the operands' ranges; i64 arithmetic is checked",
        ),
        E::DivisionByZero { node: n } => (
            ErrorKind::DivisionByZero,
            node(n),
            "guard the division with an `if` on the divisor",
        ),
        E::InvalidValue { node: n, .. } => (
            ErrorKind::InvalidValue,
            node(n),
            "check the value's range before converting",
        ),
        E::BadInput(_) => (
            ErrorKind::InvalidInput,
            None,
            "pass values of the declared input types",
        ),
        E::Internal(_) => (ErrorKind::Internal, None, "report this as a bug"),
    };
    Error::new(kind, Stage::Eval, message, remediation).at_node(node)
}
