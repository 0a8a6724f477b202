//! `graphjit explain` and `graphjit verify`: what a graph is and does, in text or JSON.

use super::say;
use graphjit::Stage;

use super::args::{ExplainArgs, read_graph};
use super::error::CliError;

/// Prints what `graphjit explain` shows.
pub(crate) fn explain(args: &ExplainArgs) -> Result<(), CliError> {
    let mut graph = read_graph(&args.file)?;
    if !args.inputs.is_empty() {
        let inputs = graph.parse_inputs(&args.inputs)?;
        graph = graph.specialize(&inputs)?.into_owned();
    }
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
            CliError::own(
                "internal",
                Stage::Parse,
                e.to_string(),
                "report this as a bug",
            )
        })?;
        say!("{json}");
        return Ok(());
    }
    let e = &explanation;
    say!("graph {}", e.name.as_deref().unwrap_or("(unnamed)"));
    say!("  hash     {}", e.hash);
    say!("  nodes    {}", e.nodes);
    let inputs: Vec<String> = e.inputs.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    say!("  inputs   {}", inputs.join(", "));
    say!("  outputs  {}", e.outputs.join(", "));
    if !e.dims.is_empty() {
        say!(
            "  dims     {} (generic: compiles once per binding; shown with every dim 1, \
             explain a binding with --input)",
            e.dims.join(", ")
        );
        for line in &e.specializations {
            say!("  specialization {line}");
        }
    }
    if let Some(origin) = &e.specialization_of {
        say!("  specialization of {origin}");
    }
    let effects: Vec<String> = e
        .effects
        .iter()
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect();
    say!(
        "  effects  {}",
        if effects.is_empty() {
            "none".to_owned()
        } else {
            effects.join(", ")
        }
    );
    for (section, entries) in &e.footprint {
        if !entries.is_empty() {
            say!("  footprint {section}: {}", entries.join(", "));
        }
    }
    say!("passes ({} → {} nodes)", e.nodes, e.nodes_optimized);
    for report in &e.passes {
        say!(
            "  {:<5} {} changed, {} → {} nodes",
            report.pass.name(),
            report.changed,
            report.nodes_before,
            report.nodes_after
        );
    }
    for (title, lines) in [("before the passes", &e.before), ("after", &e.after)] {
        say!("graph {title}");
        const SHOWN: usize = 40;
        for line in lines.iter().take(SHOWN) {
            say!("  {line}");
        }
        if lines.len() > SHOWN {
            say!("  … {} more (all of them with --json)", lines.len() - SHOWN);
        }
    }
    say!(
        "memory plan: at most {} bytes of tensors live at once (each freed after its last reader)",
        e.planned_peak_bytes
    );
    if !e.placements.is_empty() {
        say!("placement (matmul: guest or native host, estimated time with copies)");
        for p in &e.placements {
            say!(
                "  {:<12} {}×{}×{}  guest {:.1} µs, host {:.1} µs → {}",
                p.node,
                p.dims[0],
                p.dims[1],
                p.dims[2],
                p.guest_us,
                p.host_us,
                p.choice
            );
        }
    }
    if !e.rounds.is_empty() {
        say!("rounds (independent effects sent as one host call, served concurrently)");
        for round in &e.rounds {
            say!("  {}", round.join(", "));
        }
    }
    if !e.cached.is_empty() {
        say!(
            "cached (results kept across runs; this host's memo: {} entries, {} hits, {} misses)",
            e.memo.entries,
            e.memo.hits,
            e.memo.misses
        );
        for line in &e.cached {
            say!("  {line}");
        }
    }
    say!("cache");
    say!("  key      {}", e.key);
    let why = match e.cache {
        graphjit::CacheSource::Memory => "memory (ready in this process)",
        graphjit::CacheSource::Disk => {
            "disk (a precompiled component is there; verified when loaded)"
        }
        graphjit::CacheSource::Miss => "miss (not in memory or on disk: a run compiles it)",
    };
    say!("  a run now: {why}");
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
        say!("  {name:<9} {value}");
    }
    say!("  rustc     {}", i.rustc.lines().next().unwrap_or(""));
    if args.assumptions {
        say!("assumptions");
        for a in &e.assumptions {
            say!("  [{}] {}", a.component, a.assumption);
            say!("      if not: {}", a.failure_mode);
            say!("      mitigation: {}", a.mitigation);
            say!(
                "      TLA+ properties relying on it: {}",
                a.properties.join(", ")
            );
        }
    }
    Ok(())
}

/// Prints the checklist; whether every item holds.
pub(crate) fn verify(args: &ExplainArgs) -> Result<bool, CliError> {
    let mut graph = read_graph(&args.file)?;
    if !args.inputs.is_empty() {
        let inputs = graph.parse_inputs(&args.inputs)?;
        graph = graph.specialize(&inputs)?.into_owned();
    }
    let host = args.cache.host()?;
    let checklist = host.verify(&graph);
    if args.json {
        let json = serde_json::json!({
            "graph": checklist.graph,
            "ok": checklist.ok(),
            "items": checklist.items,
        });
        say!("{json}");
    } else {
        for item in &checklist.items {
            say!("[{}] {}", if item.ok { "x" } else { " " }, item.item);
            say!("      {}", item.evidence);
        }
    }
    Ok(checklist.ok())
}
