//! The `graphjit` command: a thin layer over the library API (`cli/`).
//!
//! Exit status: 0 success; 1 a `verify` item failed; 2 invalid graph, inputs or usage; 3
//! compilation failed; 4 the run failed. With `--json`, stdout is exactly one JSON object,
//! success or failure.

mod cli;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::args::{CacheAction, CompileArgs, ExplainArgs, RunArgs};
use cli::error::CliError;

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
    /// Serve graphs to many tenants over HTTP (docs/service.md).
    Serve {
        /// The service's configuration (TOML: `listen`, `[tenants.NAME]`).
        #[arg(long, value_name = "FILE")]
        config: std::path::PathBuf,
    },
    /// Read an API key on stdin and print the hash to store as a tenant's `key_hash`.
    KeyHash,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => cli::run::report(&args, cli::run::run(&args, true)),
        Command::Eval(args) => cli::run::report(&args, cli::run::run(&args, false)),
        Command::Compile(args) => plain(cli::files::compile(&args)),
        Command::Cache { action } => plain(cli::files::cache_command(&action)),
        Command::Serve { config } => plain(serve::serve(&config)),
        Command::KeyHash => plain(key_hash()),
        Command::Explain(args) => plain(cli::explain::explain(&args)),
        Command::Verify(args) => match cli::explain::verify(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => failed(&e),
        },
    }
}

/// `graphjit key-hash`: one key on stdin (one trailing newline dropped), its hash on stdout.
fn key_hash() -> Result<(), CliError> {
    use std::io::Read as _;
    let refuse = |message: String| {
        CliError::own(
            "invalid_input",
            graphjit::Stage::Setup,
            message,
            "pipe one random key of at least 16 bytes: `head -c 24 /dev/urandom | base64`",
        )
    };
    let mut key = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut key)
        .map_err(|e| refuse(format!("cannot read the key on stdin: {e}")))?;
    let key = key
        .strip_suffix("\r\n")
        .or_else(|| key.strip_suffix('\n'))
        .unwrap_or(&key);
    if key.len() < 16 || key.chars().any(char::is_control) {
        return Err(refuse(format!(
            "a key is at least 16 bytes with no control characters; this one is {} bytes",
            key.len()
        )));
    }
    println!("{}", serve::key_hash(key));
    Ok(())
}

fn plain(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e),
    }
}

fn failed(e: &CliError) -> ExitCode {
    e.print();
    ExitCode::from(e.exit_code())
}
