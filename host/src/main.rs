//! The `graphjit` command: a thin layer over the library API (`cli/`).
//!
//! Exit status: 0 success; 1 a `verify` item failed; 2 invalid graph, inputs or usage; 3
//! compilation failed; 4 the run failed. With `--json`, stdout is exactly one JSON object,
//! success or failure.

mod cli;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => cli::run::report(&args, cli::run::run(&args, true)),
        Command::Eval(args) => cli::run::report(&args, cli::run::run(&args, false)),
        Command::Compile(args) => plain(cli::files::compile(&args)),
        Command::Cache { action } => plain(cli::files::cache_command(&action)),
        Command::Explain(args) => plain(cli::explain::explain(&args)),
        Command::Verify(args) => match cli::explain::verify(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => failed(&e),
        },
    }
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
