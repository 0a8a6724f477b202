//! The one error type of the public API: a kind to match on, the stage that failed, the node
//! at fault, a message and a remediation (seed 8.1–8.2).
//!
//! Invariant: every failure anywhere in the pipeline arrives here typed; nothing is flattened
//! to a bare string before this point, and the kind keeps the numbers (budget, used, limit).

use std::fmt;
use std::sync::Arc;

/// What went wrong. Match on this; `Error::kind_name` gives the snake_case name the CLI prints.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The graph is malformed: syntax, unknown ids, cycles, type errors (user error).
    InvalidGraph,
    /// The graph is too large to compile, asks for more than the limits allow, or its compile
    /// reached a limit of the compile sandbox (time, CPU, memory, file size), or a run found
    /// every instance slot of the host's pool in use (a limit).
    ResourceExceeded,
    /// An input is missing, unknown, or not of its declared type (user error).
    InvalidInput,
    /// A pass broke an invariant (a bug in graphjit).
    OptimizationFailed,
    /// Code generation could not produce valid Rust (a bug in graphjit).
    CodegenFailed,
    /// rustc rejected the generated code or failed without a limit to blame (a bug).
    RustCompileError,
    /// The toolchain is missing or unusable: no rustc, no wasm32-wasip2 target, a rustc other
    /// than the one the guest template was built with (environment).
    Toolchain,
    /// The run used its whole fuel budget (a limit).
    FuelExhausted {
        /// The run's fuel budget.
        budget: u64,
        /// Fuel consumed when it stopped.
        used: u64,
    },
    /// The run needed more memory than its limit (a limit).
    MemoryExceeded {
        /// The limit in bytes.
        limit: u64,
        /// The size asked for, in bytes.
        requested: u64,
    },
    /// The run went past its wall-clock deadline (a limit).
    DeadlineExceeded {
        /// The deadline in milliseconds.
        limit_ms: u64,
    },
    /// Checked i64 arithmetic overflowed (the graph's logic).
    Overflow,
    /// Integer division or remainder by zero (the graph's logic).
    DivisionByZero,
    /// A value outside an operation's domain, e.g. NaN to i64 (the graph's logic).
    InvalidValue,
    /// A list read outside its elements (the graph's logic, or its data).
    IndexOutOfRange,
    /// `unwrap` of an empty option (the graph's logic, or its data).
    MissingValue,
    /// The component imports something the graph may not use; nothing ran (sandbox policy).
    ImportDenied {
        /// The refused import's full name.
        import: String,
    },
    /// The guest trapped for a reason not listed above (a bug in graphjit).
    Trap,
    /// An effect call was outside the graph's footprint; no driver saw it (sandbox policy).
    FootprintDenied,
    /// An effect call failed in its driver, or its answer did not fit the node's type.
    EffectFailed {
        /// What kind of failure, for a caller deciding whether to retry or fix the graph.
        class: EffectClass,
    },
    /// A driver the host was told to use is unavailable (environment).
    DriverUnavailable,
    /// `invoke` named a deployment that does not exist (user error).
    UnknownDeployment,
    /// The compile cache cannot be used: its directory is unsafe (writable by others, owned
    /// by another user) or unwritable (environment).
    CacheUnavailable,
    /// An internal invariant failed (a bug in graphjit); never a panic.
    Internal,
}

/// The class of a failed effect call ([`ErrorKind::EffectFailed`]): the same classes as the
/// WIT `effect-error`, whichever driver served the call.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum EffectClass {
    /// The server could not be reached, or the connection broke mid-call.
    Connection,
    /// The call ran past its share of the run's deadline.
    Timeout,
    /// The database refused the data (a unique, foreign-key or check constraint).
    Constraint,
    /// The database could not parse the statement, or it names what does not exist.
    Syntax,
    /// The server refused the privilege (a read-only role writing, a denied table).
    Permission,
    /// The HTTP server answered with a non-2xx status.
    HttpStatus,
    /// The answer was larger than the run's caps allow.
    BodyTooLarge,
    /// The run's effect caps (calls, bytes) were used up.
    Limit,
    /// The answer did not fit the node's declared type.
    BadAnswer,
    /// Anything else the driver reported; the message says what.
    Other,
}

impl EffectClass {
    /// The snake_case name (`connection`, `http_status`, …), as the WIT `effect-error` spells it.
    pub fn name(self) -> &'static str {
        match self {
            EffectClass::Connection => "connection",
            EffectClass::Timeout => "timeout",
            EffectClass::Constraint => "constraint",
            EffectClass::Syntax => "syntax",
            EffectClass::Permission => "permission",
            EffectClass::HttpStatus => "http_status",
            EffectClass::BodyTooLarge => "body_too_large",
            EffectClass::Limit => "limit",
            EffectClass::BadAnswer => "bad_answer",
            EffectClass::Other => "other",
        }
    }
}

impl fmt::Display for EffectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The pipeline stage that failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    /// Building the host: toolchain probe, engine, cache directory.
    Setup,
    /// Reading and validating the graph.
    Parse,
    /// Binding the inputs.
    Input,
    /// The pass pipeline.
    Optimize,
    /// Generating Rust.
    Codegen,
    /// rustc.
    Compile,
    /// Cranelift, the import check, the disk cache.
    Load,
    /// Instantiating and running the component.
    Run,
    /// The reference interpreter.
    Eval,
}

impl Stage {
    /// Lowercase name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::Parse => "parse",
            Stage::Input => "input",
            Stage::Optimize => "optimize",
            Stage::Codegen => "codegen",
            Stage::Compile => "compile",
            Stage::Load => "load",
            Stage::Run => "run",
            Stage::Eval => "eval",
        }
    }
}

/// A host setting that a remediation refers to ([`Error::setting`]): each front end names it
/// its own way (the CLI as a flag, an embedder as a field of [`crate::RunLimits`] or
/// [`crate::HostConfig`], a service as a request field).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Setting {
    /// The run's fuel budget ([`crate::RunLimits::fuel`]).
    Fuel,
    /// The run's memory limit ([`crate::RunLimits::memory_bytes`]).
    Memory,
    /// The run's wall-clock deadline ([`crate::RunLimits::deadline`]).
    Deadline,
    /// The database effects are served by ([`crate::Host::connect_database`]).
    Database,
    /// The embedded database's setup script ([`crate::Host::use_embedded_database`]).
    DatabaseInit,
    /// The disk cache directory ([`crate::CacheConfig::disk_dir`]).
    CacheDir,
    /// The optimizer passes ([`crate::HostConfig::passes`]).
    Passes,
    /// The graph's input values.
    Inputs,
    /// Extra TLS roots for HTTP effects ([`crate::HttpSettings::extra_roots`]).
    TlsRoots,
}

/// A typed failure of any stage. Built only by graphjit: a caller matches on `kind`, reads
/// the rest, and follows [`std::error::Error::source`] to the failure underneath, if any.
#[derive(Clone, Debug)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where in the pipeline.
    pub stage: Stage,
    /// The id of the node at fault, as written in the graph.
    pub node: Option<String>,
    /// What happened, for people.
    pub message: String,
    /// What to do about it.
    pub remediation: String,
    setting: Option<Setting>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Errors are equal when all they say is equal (their sources are not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.kind == other.kind
            && self.stage == other.stage
            && self.node == other.node
            && self.message == other.message
            && self.remediation == other.remediation
            && self.setting == other.setting
    }
}

impl Eq for Error {}

impl Error {
    /// An error of `kind` at `stage`, with no node.
    pub(crate) fn new(
        kind: ErrorKind,
        stage: Stage,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        Error {
            kind,
            stage,
            node: None,
            message: message.into(),
            remediation: remediation.into(),
            setting: None,
            source: None,
        }
    }

    pub(crate) fn at_node(mut self, node: Option<String>) -> Self {
        self.node = node;
        self
    }

    /// The same error, its remediation pointing at `setting`.
    pub(crate) fn for_setting(mut self, setting: Setting) -> Self {
        self.setting = Some(setting);
        self
    }

    /// The same error, caused by `source`.
    pub(crate) fn caused_by(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The host setting the remediation refers to, if any (raise the fuel, point at another
    /// database, …).
    pub fn setting(&self) -> Option<Setting> {
        self.setting
    }

    /// The kind in snake_case (`fuel_exhausted`, `invalid_graph`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::InvalidGraph => "invalid_graph",
            ErrorKind::ResourceExceeded => "resource_exceeded",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::OptimizationFailed => "optimization_failed",
            ErrorKind::CodegenFailed => "codegen_failed",
            ErrorKind::RustCompileError => "rust_compile_error",
            ErrorKind::Toolchain => "toolchain",
            ErrorKind::FuelExhausted { .. } => "fuel_exhausted",
            ErrorKind::MemoryExceeded { .. } => "memory_exceeded",
            ErrorKind::DeadlineExceeded { .. } => "deadline_exceeded",
            ErrorKind::Overflow => "overflow",
            ErrorKind::DivisionByZero => "division_by_zero",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::IndexOutOfRange => "index_out_of_range",
            ErrorKind::MissingValue => "missing_value",
            ErrorKind::ImportDenied { .. } => "import_denied",
            ErrorKind::Trap => "trap",
            ErrorKind::CacheUnavailable => "cache_unavailable",
            ErrorKind::UnknownDeployment => "unknown_deployment",
            ErrorKind::FootprintDenied => "footprint_denied",
            ErrorKind::EffectFailed { .. } => "effect_failed",
            ErrorKind::DriverUnavailable => "driver_unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.message, self.kind_name())?;
        if let Some(node) = &self.node {
            write!(f, " at node {node:?}")?;
        }
        write!(f, ", stage {})", self.stage.name())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<crate::graph::GraphError> for Error {
    fn from(e: crate::graph::GraphError) -> Self {
        let kind = match e.kind {
            crate::graph::GraphErrorKind::ResourceExceeded => ErrorKind::ResourceExceeded,
            _ => ErrorKind::InvalidGraph,
        };
        Error::new(kind, Stage::Parse, e.message, e.remediation).at_node(e.node)
    }
}
