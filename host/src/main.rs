//! The `graphjit` command: a thin layer over the library API.
//!
//! Exit status: 0 success; 2 invalid graph, inputs or usage; 3 compilation failed; 4 the run
//! failed. With `--json`, stdout is exactly one JSON object, success or failure.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use graphjit::{
    Error, ErrorKind, Graph, Host, RunLimits, RunOutput, Stage, value_to_json, value_to_text,
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
}

#[derive(Args)]
struct RunArgs {
    /// The graph (JSON, format v1).
    file: PathBuf,
    /// An input value, `NAME=VALUE` (repeatable). Tensors: a JSON array of numbers.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_pair)]
    inputs: Vec<(String, String)>,
    /// Fuel budget (overrides the graph's `limits.fuel`; default 1e9).
    #[arg(long)]
    fuel: Option<u64>,
    /// Memory limit in bytes (overrides the graph's `limits.memory`; default 256 MiB).
    #[arg(long)]
    memory: Option<u64>,
    /// Wall-clock limit in milliseconds (default 10000).
    #[arg(long, value_name = "MS")]
    deadline_ms: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
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
        Command::Compile(args) => match compile(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}\n  remediation: {}", e.remediation);
                exit(e.exit_code())
            }
        },
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

struct Success {
    output: RunOutput,
    compile_time: Option<Duration>,
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
    let mut limits = graph.limits_over(RunLimits::default());
    limits.fuel = args.fuel.unwrap_or(limits.fuel);
    limits.memory_bytes = args.memory.unwrap_or(limits.memory_bytes);
    if let Some(ms) = args.deadline_ms {
        limits.deadline = Duration::from_millis(ms);
    }
    if !compile {
        return Host::eval(&graph, &inputs, limits).map(|output| Success {
            output,
            compile_time: None,
        });
    }
    let host = Host::new()?;
    let start = Instant::now();
    let compiled = host.compile(&graph)?;
    let compile_time = start.elapsed();
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
    let output = runtime.block_on(host.run(&compiled, &inputs, limits))?;
    Ok(Success {
        output,
        compile_time: Some(compile_time),
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
                let object = json!({
                    "output": outputs,
                    "stats": {
                        "fuel_used": output.fuel_used,
                        "compile_ms": success.compile_time.map_or(0.0, |t| t.as_secs_f64() * 1e3),
                        "run_us": output.run_time.as_secs_f64() * 1e6,
                        "cache": if success.compile_time.is_some() { "miss" } else { "none" },
                    }
                });
                let _ = writeln!(stdout, "{object}");
            } else {
                for (name, value) in &output.outputs {
                    let _ = writeln!(stdout, "{name} = {}", value_to_text(value));
                }
                let compile = success.compile_time.map_or(String::new(), |t| {
                    format!("compiled in {:.1} ms, ", t.as_secs_f64() * 1e3)
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
                let object = json!({
                    "error": {
                        "kind": e.kind_name(),
                        "stage": e.stage.name(),
                        "node": e.node,
                        "message": e.message,
                        "remediation": e.remediation,
                    }
                });
                let _ = writeln!(stdout, "{object}");
            } else {
                eprintln!("error: {e}\n  remediation: {}", e.remediation);
            }
            exit(e.exit_code())
        }
    }
}

fn compile(args: &CompileArgs) -> Result<(), Error> {
    let graph = read_graph(&args.file)?;
    let bytes = match args.emit {
        Emit::Rust => graph.rust_source().into_bytes(),
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
