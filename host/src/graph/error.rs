//! Errors of parsing and validation, and the limits that bound what a graph may ask for.

use std::fmt;

/// Bounds on what a submitted graph may contain; exceeding one is `ResourceExceeded`.
///
/// Each bound guards the compiler and host, not the run (fuel and memory guard the run).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest JSON document accepted. Guards parser memory against a huge upload.
    pub(crate) max_json_bytes: usize,
    /// Most nodes over all regions. Guards rustc time and memory: rustc's cost grows faster
    /// than the code (one function per graph), measured on a chain of checked i64 ops here
    /// (`graphjit compile --emit wasm`): 2,000 nodes 5.0 s / 0.33 GB, 5,000 nodes 22.8 s /
    /// 0.91 GB, 6,000 nodes 27.1 s / 1.15 GB, 10,000 nodes past the 60 s timeout at ~3 GB.
    /// So 6,000, within the compile timeout with room for a slower machine.
    pub(crate) max_nodes: usize,
    /// Deepest nesting of `if`/`loop` regions. Guards recursion in every stage.
    pub(crate) max_depth: usize,
    /// Most elements in one tensor (2^26 f32 = 256 MiB, the default guest memory). Guards
    /// against graphs whose every run would fail for memory, and against size arithmetic
    /// overflowing.
    pub(crate) max_tensor_elements: u64,
    /// Most bytes in one string constant or input default. Guards generated source size.
    pub(crate) max_string_bytes: usize,
    /// Most elements written out in tensor constants, over the whole graph. Guards generated
    /// source size (use `iota`/`fill` or an input for big tensors).
    pub(crate) max_constant_elements: usize,
    /// Most type nodes lowering materializes, over the whole graph: each node's type and the
    /// types of its arguments, a tuple counting one plus its items. Guards lowering's (and
    /// every later stage's) time and memory: without it a chain of `fork`s of `fork`s doubles
    /// its type at every step, and 40 nodes would need 2^40 of them.
    pub(crate) max_type_nodes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 64 << 20,
            max_nodes: 6_000,
            max_depth: 32,
            max_tensor_elements: 1 << 26,
            max_string_bytes: 1 << 20,
            max_constant_elements: 1 << 20,
            max_type_nodes: 1 << 20,
        }
    }
}

/// Which rule a graph broke.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum GraphErrorKind {
    /// The bytes are not JSON, or not JSON of the graph format (user error).
    Syntax,
    /// `"version"` is missing or not one this build reads (user error).
    Version,
    /// Two nodes share an id (user error).
    DuplicateId,
    /// An argument names no node in scope (user error).
    UnknownNode,
    /// An op name this build does not know (user error).
    UnknownOp,
    /// A field is missing, or present on an op that does not take it (user error).
    Field,
    /// Arguments form a cycle (user error).
    Cycle,
    /// A node's arguments have the wrong types or count (user error).
    Type,
    /// A constant or default that does not fit its type (user error).
    Value,
    /// A graph, tensor, string or nesting beyond [`Limits`] (a limit).
    ResourceExceeded,
}

/// A graph that cannot be compiled, with the node at fault and what to do about it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct GraphError {
    pub(crate) kind: GraphErrorKind,
    /// The id of the node at fault, when there is one.
    pub(crate) node: Option<String>,
    pub(crate) message: String,
    pub(crate) remediation: String,
}

impl GraphError {
    pub(crate) fn new(
        kind: GraphErrorKind,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        GraphError {
            kind,
            node: None,
            message: message.into(),
            remediation: remediation.into(),
        }
    }

    pub(crate) fn at(mut self, node: &str) -> Self {
        self.node = Some(node.to_string());
        self
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node {node:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for GraphError {}
