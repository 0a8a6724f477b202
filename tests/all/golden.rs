//! The golden corpus: every example, every regression graph and the graphs of `tests/graphs/`,
//! each with a blessed expectation in `tests/graphs/expected/` — the graph as lowered, after
//! each pass, the generated Rust, and the outcome (outputs and fuel, or the error's kind and
//! node) of `eval` and of the compiled run. A change to lowering, a pass, codegen or the guest
//! template shows up as a diff of these files, reviewed with the change.
//!
//! Bless (rewrite every expectation from what the code does now, and delete those whose graph
//! is gone): `GRAPHJIT_BLESS=1 cargo test -p graphjit --test all golden`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use graphjit::{Error, Graph, RunLimits, RunOutput};

use crate::support::{compile, eval_with, run_with};

/// Where the corpus's graphs are, relative to the repository root, with the prefix their
/// expectations are named by.
const CORPUS: &[(&str, &str)] = &[
    ("examples", "examples"),
    ("tests/regressions", "regressions"),
    ("host/src/passes/regressions", "pass-regressions"),
    ("tests/graphs", "graphs"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn outcome(out: &mut String, title: &str, result: &Result<RunOutput, Error>) {
    let _ = writeln!(out, "== {title}");
    match result {
        Ok(run) => {
            let _ = writeln!(out, "fuel {}", run.fuel_used);
            for (name, value) in &run.outputs {
                let _ = writeln!(out, "{name} = {}", graphjit::value_to_text(value));
                if let graphjit::Value::Tensor(t) = value {
                    // The text shows a long tensor's head; its bits are checked whole here.
                    let mut hasher = blake3::Hasher::new();
                    for x in &t.data {
                        hasher.update(&x.to_bits().to_le_bytes());
                    }
                    let _ = writeln!(out, "  bits {}", &hasher.finalize().to_hex()[..16]);
                }
            }
        }
        // The kind and the node: messages of effect failures name addresses and timings.
        Err(e) => {
            let _ = writeln!(
                out,
                "error {} at {}",
                e.kind_name(),
                e.node.as_deref().unwrap_or("-")
            );
        }
    }
}

/// The whole expectation of one graph file.
fn expectation(bytes: &[u8]) -> String {
    let mut out = graphjit::testing::golden::compile_side(bytes);
    let Ok(graph) = Graph::from_json(bytes) else {
        return out;
    };
    let effects = crate::support::host().explain(&graph).effects;
    if ["db_query", "db_execute", "http"]
        .iter()
        .any(|op| effects.contains_key(*op))
    {
        out.push_str(
            "== eval, run\n(served by a database or an HTTP server: tests/all/effects.rs)\n",
        );
        return out;
    }
    let limits = RunLimits::default();
    outcome(&mut out, "eval", &eval_with(&graph, limits));
    outcome(
        &mut out,
        "run (every pass)",
        &run_with(&compile(&graph), limits),
    );
    out
}

#[test]
fn every_corpus_graph_matches_its_blessed_expectation() {
    let bless = std::env::var_os("GRAPHJIT_BLESS").is_some_and(|v| v == "1");
    let expected_dir = root().join("tests/graphs/expected");
    let mut graphs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (dir, prefix) in CORPUS {
        let entries = std::fs::read_dir(root().join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let stem = path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .into_owned();
                graphs.insert(format!("{prefix}-{stem}.txt"), path);
            }
        }
    }
    assert!(graphs.len() >= 14, "the corpus lost graphs: {graphs:?}");
    let mut failures = Vec::new();
    for (name, path) in &graphs {
        let bytes = std::fs::read(path).expect("graph");
        let actual = expectation(&bytes);
        let file = expected_dir.join(name);
        if bless {
            std::fs::create_dir_all(&expected_dir).expect("dir");
            std::fs::write(&file, &actual).expect("write");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(blessed) if blessed == actual => {}
            Ok(blessed) => failures.push(format!(
                "{} differs from {}:\n{}",
                path.display(),
                file.display(),
                first_difference(&blessed, &actual)
            )),
            Err(_) => failures.push(format!(
                "{} has no expectation {}",
                path.display(),
                file.display()
            )),
        }
    }
    // An expectation whose graph is gone is stale.
    let present: BTreeSet<String> = std::fs::read_dir(&expected_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for stale in present.iter().filter(|name| !graphs.contains_key(*name)) {
        if bless {
            std::fs::remove_file(expected_dir.join(stale)).expect("remove");
        } else {
            failures.push(format!("tests/graphs/expected/{stale} has no graph"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches (rerun with GRAPHJIT_BLESS=1 to accept, and review the diff):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The first differing line, with a little context, of blessed against actual.
fn first_difference(blessed: &str, actual: &str) -> String {
    let (b, a): (Vec<&str>, Vec<&str>) = (blessed.lines().collect(), actual.lines().collect());
    let at = b
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(b.len().min(a.len()));
    let from = at.saturating_sub(2);
    let mut out = format!("at line {}:\n", at + 1);
    for line in b.iter().skip(from).take(5) {
        let _ = writeln!(out, "- {line}");
    }
    for line in a.iter().skip(from).take(5) {
        let _ = writeln!(out, "+ {line}");
    }
    out
}
