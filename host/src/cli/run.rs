//! `graphjit run` and `graphjit eval`: bind the inputs, run (compiled or interpreted), report.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use graphjit::{CompileStats, Host, RunLimits, RunOutput, Stage, value_to_json, value_to_text};
use serde_json::json;

use super::args::{RunArgs, read_graph};
use super::error::CliError;
use super::ms;

/// A run's outputs, and how the component was made ready (none for `eval`).
pub(crate) struct Success {
    output: RunOutput,
    compiled: Option<CompileStats>,
}

/// Runs the graph of `args`: compiled when `compile`, else with the interpreter.
pub(crate) fn run(args: &RunArgs, compile: bool) -> Result<Success, CliError> {
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
    // One evaluation without effects or a memo needs no host.
    if !compile && !graph.has_effects() && !graph.memoizes() {
        let mut output = Host::eval(&graph, &inputs, limits)?;
        for _ in 1..args.repeat {
            output = Host::eval(&graph, &inputs, limits)?;
        }
        return Ok(Success {
            output,
            compiled: None,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::own(
                "internal",
                Stage::Run,
                format!("cannot start the async runtime: {e}"),
                "check the process's thread limits",
            )
        })?;
    let host = args.cache.host()?;
    if let Some(url) = &args.database_url {
        runtime.block_on(host.connect_database(url))?;
    } else if graph.has_effects() {
        let init = match &args.db_init {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                CliError::own(
                    "invalid_input",
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
        let mut output = runtime.block_on(host.eval_effects(&graph, &inputs, limits))?;
        for _ in 1..args.repeat {
            output = runtime.block_on(host.eval_effects(&graph, &inputs, limits))?;
        }
        return Ok(Success {
            output,
            compiled: None,
        });
    }
    // A graph that names dims compiles as its specialization for these inputs' shapes.
    let graph = graph.specialize(&inputs)?;
    let compiled = host.compile(&graph)?;
    let mut output = runtime.block_on(host.run(&compiled, &inputs, limits))?;
    for _ in 1..args.repeat {
        output = runtime.block_on(host.run(&compiled, &inputs, limits))?;
    }
    Ok(Success {
        output,
        compiled: Some(compiled.stats),
    })
}

/// Prints the outcome (one JSON object with `--json`; else outputs on stdout, costs or the
/// error on stderr) and returns the exit status.
pub(crate) fn report(args: &RunArgs, result: Result<Success, CliError>) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(success) if args.json => {
            let _ = writeln!(stdout, "{}", success_json(&success));
            ExitCode::SUCCESS
        }
        Ok(success) => {
            let output = &success.output;
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
            let memo = if output.memo_hits + output.memo_misses > 0 {
                format!(
                    ", memo {} hit(s) {} miss(es)",
                    output.memo_hits, output.memo_misses
                )
            } else {
                String::new()
            };
            eprintln!(
                "{compile}ran in {:.1} µs, fuel used {}{memo}",
                output.run_time.as_secs_f64() * 1e6,
                output.fuel_used
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                let _ = writeln!(stdout, "{}", e.to_json());
            } else {
                e.print();
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn success_json(success: &Success) -> serde_json::Value {
    output_json(&success.output, success.compiled.as_ref())
}

/// The `{"output", "stats"}` object of a run (and of the service's answers).
pub(crate) fn output_json(
    output: &RunOutput,
    compiled: Option<&CompileStats>,
) -> serde_json::Value {
    let outputs: serde_json::Map<String, serde_json::Value> = output
        .outputs
        .iter()
        .map(|(name, v)| (name.clone(), value_to_json(v)))
        .collect();
    let mut stats = json!({
        "fuel_used": output.fuel_used,
        "compile_ms": compiled.map_or(0.0, |c| ms(c.total)),
        "run_us": output.run_time.as_secs_f64() * 1e6,
        "cache": compiled.map_or("none", |c| c.cache.name()),
        "memo": {"hits": output.memo_hits, "misses": output.memo_misses},
    });
    if let Some(compiled) = compiled {
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
    json!({"output": outputs, "stats": stats})
}
