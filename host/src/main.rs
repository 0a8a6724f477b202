//! The `graphjit` command: a thin layer over the library API.
//!
//! Exit status: 0 success; 2 invalid graph, inputs or usage; 3 compilation failed; 4 the run
//! failed. With `--json`, stdout is exactly one JSON object, success or failure.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use graphjit::{
    CompileStats, Error, ErrorKind, Graph, Host, HostConfig, RunLimits, RunOutput, Stage,
    value_to_json, value_to_text,
};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "graphjit",
    version,
    about = "Compute graphs → safe Rust → wasm32 components, run in wasmtime under fuel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a graph to a component and run it in the sandbox.
    Run(RunArgs),
    /// Evaluate a graph with the reference interpreter (no compilation).
    Eval(RunArgs),
    /// Compile a graph and write the generated Rust or the component.
    Compile(CompileArgs),
    /// Show a graph's shape, effects, footprint, cache key (and whether it would hit), and with
    /// --assumptions the assumptions its execution rests on.
    Explain(ExplainArgs),
    /// The seed's verification checklist for a graph, each item measured with its evidence;
    /// exits 1 when an item fails.
    Verify(ExplainArgs),
    /// Inspect or empty the disk cache of precompiled components.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

#[derive(Args)]
struct ExplainArgs {
    /// The graph (JSON, format v1).
    file: PathBuf,
    /// List the assumption inventory (drivers, toolchain, clock) with the TLA+ properties
    /// that depend on each.
    #[arg(long)]
    assumptions: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Print Graphviz of the optimized graph instead (`| dot -Tsvg > graph.svg`).
    #[arg(long, conflicts_with_all = ["json", "assumptions"])]
    dot: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Subcommand)]
enum CacheAction {
    /// Entries, bytes and the bound of the disk cache.
    Stats {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Delete every cached component.
    Clear {
        #[command(flatten)]
        cache: CacheArgs,
    },
}

#[derive(Args)]
struct CacheArgs {
    /// Directory of precompiled components (default: `$GRAPHJIT_CACHE_DIR/components`, else
    /// `~/.cache/graphjit/components`). Must be writable by this user only.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_disk_cache: bool,
    /// Let HTTP effects reach loopback addresses (a local test server); refused by default.
    #[arg(long)]
    allow_loopback: bool,
    /// Trust this CA certificate (PEM, may hold several, or DER) for `https` effects, besides
    /// the built-in Mozilla roots (repeatable).
    #[arg(long = "tls-root", value_name = "FILE")]
    tls_roots: Vec<PathBuf>,
    /// Optimizer passes: all (default), none, or a list such as fold,cse,dce,fuse,batch.
    #[arg(long, value_name = "all|none|LIST", default_value = "all")]
    passes: String,
}

impl CacheArgs {
    fn host(&self) -> Result<Host, Error> {
        let passes = graphjit::PassConfig::parse(&self.passes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                Stage::Setup,
                e,
                "use --passes all, none, or a comma-separated list",
            )
        })?;
        let mut config = HostConfig {
            passes,
            ..HostConfig::default()
        };
        config.http.allow_loopback = self.allow_loopback;
        for path in &self.tls_roots {
            config.http.extra_roots.extend(read_certificates(path)?);
        }
        if self.no_disk_cache {
            config.cache.disk_dir = None;
        } else if let Some(dir) = &self.cache_dir {
            config.cache.disk_dir = Some(dir.clone());
        }
        Host::with_config(&config)
    }
}

/// The certificates in `path`: every one of a PEM file, or the file itself as DER.
fn read_certificates(path: &std::path::Path) -> Result<Vec<Vec<u8>>, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unreadable = |message: String| {
        Error::new(
            ErrorKind::InvalidInput,
            Stage::Setup,
            message,
            "give a CA certificate file, PEM or DER",
        )
    };
    let bytes = std::fs::read(path)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(vec![bytes]);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(unreadable(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

#[derive(Args)]
struct RunArgs {
    /// The graph (JSON, format v1).
    file: PathBuf,
    /// An input value, `NAME=VALUE` (repeatable). Tensors: a JSON array of numbers.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_pair)]
    inputs: Vec<(String, String)>,
    /// Fuel budget (default 1e9); a graph's `limits.fuel` may only lower it.
    #[arg(long)]
    fuel: Option<u64>,
    /// Memory limit in bytes (default 256 MiB); a graph's `limits.memory` may only lower it.
    #[arg(long)]
    memory: Option<u64>,
    /// Wall-clock limit in milliseconds (default 10000).
    #[arg(long, value_name = "MS")]
    deadline_ms: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Serve DB effects from this PostgreSQL (`postgres://user@host:port/db`); graphs still
    /// reach only the tables their footprint declares.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Without --database-url, DB effects use an embedded in-memory SQLite database; this SQL
    /// script (tables and rows) runs in it first.
    #[arg(long, value_name = "FILE.sql", conflicts_with = "database_url")]
    db_init: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Args)]
struct CompileArgs {
    /// The graph (JSON, format v1).
    file: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    emit: Emit,
    /// Output file (default: stdout for Rust; required for wasm unless stdout is not a terminal).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Emit {
    Rust,
    Wasm,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => report(&args, run(&args, true)),
        Command::Eval(args) => report(&args, run(&args, false)),
        Command::Compile(args) => plain(compile(&args)),
        Command::Cache { action } => plain(cache_command(&action)),
        Command::Explain(args) => plain(explain(&args)),
        Command::Verify(args) => match verify(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e}\n  remediation: {}", e.remediation);
                exit(e.exit_code())
            }
        },
    }
}

fn plain(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}\n  remediation: {}", e.remediation);
            exit(e.exit_code())
        }
    }
}

fn cache_command(action: &CacheAction) -> Result<(), Error> {
    let (CacheAction::Stats { cache: args, .. } | CacheAction::Clear { cache: args }) = action;
    let host = args.host()?;
    let disk_error = |e: graphjit::DiskCacheError| {
        Error::new(
            ErrorKind::CacheUnavailable,
            Stage::Setup,
            e.to_string(),
            "check the cache directory",
        )
    };
    match action {
        CacheAction::Stats { json, .. } => {
            let Some(stats) = host.disk_cache_stats() else {
                println!("no disk cache (--no-disk-cache)");
                return Ok(());
            };
            let stats = stats.map_err(disk_error)?;
            let dir = args
                .cache_dir
                .clone()
                .unwrap_or_else(graphjit::default_disk_dir);
            if *json {
                let object = json!({
                    "dir": dir.display().to_string(),
                    "entries": stats.entries,
                    "bytes": stats.bytes,
                    "max_bytes": stats.max_bytes,
                });
                println!("{object}");
            } else {
                println!(
                    "{}: {} components, {} bytes (bound {} bytes)",
                    dir.display(),
                    stats.entries,
                    stats.bytes,
                    stats.max_bytes
                );
            }
        }
        CacheAction::Clear { .. } => {
            let removed = host.clear_cache().map_err(disk_error)?;
            println!("removed {removed} cached components");
        }
    }
    Ok(())
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

struct Success {
    output: RunOutput,
    compiled: Option<CompileStats>,
}

fn read_graph(path: &Path) -> Result<Graph, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error {
        kind: ErrorKind::InvalidInput,
        stage: Stage::Parse,
        node: None,
        message: format!("cannot read {}: {e}", path.display()),
        remediation: "check the path".into(),
    })?;
    Graph::from_json(&bytes)
}

fn run(args: &RunArgs, compile: bool) -> Result<Success, Error> {
    let graph = read_graph(&args.file)?;
    let inputs = graph.parse_inputs(&args.inputs)?;
    // The caller's limits (flags, else the defaults); the graph's own `limits` may only lower
    // them.
    let mut allowed = RunLimits::default();
    allowed.fuel = args.fuel.unwrap_or(allowed.fuel);
    allowed.memory_bytes = args.memory.unwrap_or(allowed.memory_bytes);
    if let Some(ms) = args.deadline_ms {
        allowed.deadline = Duration::from_millis(ms);
    }
    let limits = graph.limits_over(allowed);
    if !compile && !graph.has_effects() {
        return Host::eval(&graph, &inputs, limits).map(|output| Success {
            output,
            compiled: None,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error {
            kind: ErrorKind::Internal,
            stage: Stage::Run,
            node: None,
            message: format!("cannot start the async runtime: {e}"),
            remediation: "check the process's thread limits".into(),
        })?;
    let host = args.cache.host()?;
    if let Some(url) = &args.database_url {
        runtime.block_on(host.connect_database(url))?;
    } else if graph.has_effects() {
        let init = match &args.db_init {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    Stage::Setup,
                    format!("cannot read {}: {e}", path.display()),
                    "check the --db-init path",
                )
            })?),
            None => None,
        };
        host.use_embedded_database(init.as_deref())?;
    }
    if !compile {
        let output = runtime.block_on(host.eval_effects(&graph, &inputs, limits))?;
        return Ok(Success {
            output,
            compiled: None,
        });
    }
    let compiled = host.compile(&graph)?;
    let output = runtime.block_on(host.run(&compiled, &inputs, limits))?;
    Ok(Success {
        output,
        compiled: Some(compiled.stats),
    })
}

fn report(args: &RunArgs, result: Result<Success, Error>) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(success) => {
            let output = &success.output;
            if args.json {
                let outputs: serde_json::Map<String, serde_json::Value> = output
                    .outputs
                    .iter()
                    .map(|(name, v)| (name.clone(), value_to_json(v)))
                    .collect();
                let mut stats = json!({
                    "fuel_used": output.fuel_used,
                    "compile_ms": success.compiled.as_ref().map_or(0.0, |c| ms(c.total)),
                    "run_us": output.run_time.as_secs_f64() * 1e6,
                    "cache": success.compiled.as_ref().map_or("none", |c| c.cache.name()),
                });
                if let Some(compiled) = &success.compiled {
                    let stages = &compiled.stages;
                    stats["key"] = json!(compiled.key);
                    stats["cache_reason"] = json!(compiled.reason);
                    stats["context"] = json!(output.context);
                    stats["peak_memory_bytes"] = json!(output.peak_memory_bytes);
                    stats["effect_calls"] = json!(output.effect_calls);
                    stats["effect_rounds"] = json!(output.effect_rounds);
                    stats["stages_ms"] = json!({
                        "key": ms(stages.key),
                        "codegen": ms(stages.codegen),
                        "rustc": ms(stages.rustc),
                        "load": ms(stages.load),
                        "disk_read": ms(stages.disk_read),
                        "disk_write": ms(stages.disk_write),
                    });
                }
                let object = json!({"output": outputs, "stats": stats});
                let _ = writeln!(stdout, "{object}");
            } else {
                for (name, value) in &output.outputs {
                    let _ = writeln!(stdout, "{name} = {}", value_to_text(value));
                }
                let compile = success.compiled.as_ref().map_or(String::new(), |c| {
                    format!(
                        "ready in {:.1} ms (cache: {}), ",
                        ms(c.total),
                        c.cache.name()
                    )
                });
                eprintln!(
                    "{compile}ran in {:.1} µs, fuel used {}",
                    output.run_time.as_secs_f64() * 1e6,
                    output.fuel_used
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                let mut object = json!({
                    "error": {
                        "kind": e.kind_name(),
                        "stage": e.stage.name(),
                        "node": e.node,
                        "message": e.message,
                        "remediation": e.remediation,
                    }
                });
                // A failed effect says which class of failure (retry a timeout, fix a syntax).
                if let graphjit::ErrorKind::EffectFailed { class } = &e.kind {
                    object["error"]["class"] = json!(class.name());
                }
                let _ = writeln!(stdout, "{object}");
            } else {
                eprintln!("error: {e}\n  remediation: {}", e.remediation);
            }
            exit(e.exit_code())
        }
    }
}

fn explain(args: &ExplainArgs) -> Result<(), Error> {
    let graph = read_graph(&args.file)?;
    let host = args.cache.host()?;
    if args.dot {
        print!("{}", host.dot(&graph)?);
        return Ok(());
    }
    let mut explanation = host.explain(&graph);
    if !args.assumptions {
        explanation.assumptions.clear();
    }
    if args.json {
        let json = serde_json::to_value(&explanation).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                Stage::Parse,
                e.to_string(),
                "report this as a bug",
            )
        })?;
        println!("{json}");
        return Ok(());
    }
    let e = &explanation;
    println!("graph {}", e.name.as_deref().unwrap_or("(unnamed)"));
    println!("  hash     {}", e.hash);
    println!("  nodes    {}", e.nodes);
    let inputs: Vec<String> = e.inputs.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    println!("  inputs   {}", inputs.join(", "));
    println!("  outputs  {}", e.outputs.join(", "));
    let effects: Vec<String> = e
        .effects
        .iter()
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect();
    println!(
        "  effects  {}",
        if effects.is_empty() {
            "none".to_owned()
        } else {
            effects.join(", ")
        }
    );
    for (section, entries) in &e.footprint {
        if !entries.is_empty() {
            println!("  footprint {section}: {}", entries.join(", "));
        }
    }
    println!("passes ({} → {} nodes)", e.nodes, e.nodes_optimized);
    for report in &e.passes {
        println!(
            "  {:<5} {} changed, {} → {} nodes",
            report.pass.name(),
            report.changed,
            report.nodes_before,
            report.nodes_after
        );
    }
    for (title, lines) in [("before the passes", &e.before), ("after", &e.after)] {
        println!("graph {title}");
        const SHOWN: usize = 40;
        for line in lines.iter().take(SHOWN) {
            println!("  {line}");
        }
        if lines.len() > SHOWN {
            println!("  … {} more (all of them with --json)", lines.len() - SHOWN);
        }
    }
    println!(
        "memory plan: at most {} bytes of tensors live at once (each freed after its last reader)",
        e.planned_peak_bytes
    );
    if !e.placements.is_empty() {
        println!("placement (matmul: guest or native host, estimated time with copies)");
        for p in &e.placements {
            println!(
                "  {:<12} {}×{}×{}  guest {:.1} µs, host {:.1} µs → {}",
                p.node, p.dims[0], p.dims[1], p.dims[2], p.guest_us, p.host_us, p.choice
            );
        }
    }
    if !e.rounds.is_empty() {
        println!("rounds (independent effects sent as one host call, served concurrently)");
        for round in &e.rounds {
            println!("  {}", round.join(", "));
        }
    }
    println!("cache");
    println!("  key      {}", e.key);
    let why = match e.cache {
        graphjit::CacheSource::Memory => "memory (ready in this process)",
        graphjit::CacheSource::Disk => {
            "disk (a precompiled component is there; verified when loaded)"
        }
        graphjit::CacheSource::Miss => "miss (not in memory or on disk: a run compiles it)",
    };
    println!("  a run now: {why}");
    let i = &e.ingredients;
    for (name, value) in [
        ("graph", &i.graph),
        ("passes", &i.passes),
        ("target", &i.target),
        ("features", &i.target_features),
        ("opt-level", &i.opt_level),
        ("engine", &i.engine),
        ("template", &i.template),
        ("codegen", &i.codegen),
    ] {
        println!("  {name:<9} {value}");
    }
    println!("  rustc     {}", i.rustc.lines().next().unwrap_or(""));
    if args.assumptions {
        println!("assumptions");
        for a in &e.assumptions {
            println!("  [{}] {}", a.component, a.assumption);
            println!("      if not: {}", a.failure_mode);
            println!("      mitigation: {}", a.mitigation);
            println!(
                "      TLA+ properties relying on it: {}",
                a.properties.join(", ")
            );
        }
    }
    Ok(())
}

fn verify(args: &ExplainArgs) -> Result<bool, Error> {
    let graph = read_graph(&args.file)?;
    let host = args.cache.host()?;
    let checklist = host.verify(&graph);
    if args.json {
        let json = serde_json::json!({
            "graph": checklist.graph,
            "ok": checklist.ok(),
            "items": checklist.items,
        });
        println!("{json}");
    } else {
        for item in &checklist.items {
            println!("[{}] {}", if item.ok { "x" } else { " " }, item.item);
            println!("      {}", item.evidence);
        }
    }
    Ok(checklist.ok())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn compile(args: &CompileArgs) -> Result<(), Error> {
    let graph = read_graph(&args.file)?;
    let bytes = match args.emit {
        Emit::Rust => graph
            .rust_source_with(&graphjit::PassConfig::default())?
            .into_bytes(),
        Emit::Wasm => Host::new()?.compile_wasm(&graph)?,
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &bytes),
        None => std::io::stdout().lock().write_all(&bytes),
    };
    written.map_err(|e| Error {
        kind: ErrorKind::Internal,
        stage: Stage::Compile,
        node: None,
        message: format!("cannot write the output: {e}"),
        remediation: "check the output path".into(),
    })
}
