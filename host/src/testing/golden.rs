//! The compile side of a golden expectation (`tests/all/golden.rs` walks the corpus and adds
//! what `eval` and `run` give): what lowering made of a graph, the graph after each pass of
//! the pipeline in order, and the Rust that every pass together generates. A change to
//! lowering, a pass or codegen shows up as a text diff of these files.
//!
//! Invariant: the text is a pure function of the graph's bytes (listings read node names and
//! canonical order only; codegen is deterministic), so it is the same on every machine.

use crate::graph::{self, Limits};
use crate::passes::{self, Pass, PassConfig};

/// The sections of a graph's expectation that need no run: `== parse`, `== as written`, one
/// `== after PASS` per pass of the pipeline, `== rust`. A graph that does not parse ends after
/// `== parse` with its error.
pub fn compile_side(json: &[u8]) -> String {
    let mut out = String::from("== parse\n");
    let parsed = match graph::parse(json, &Limits::default()) {
        Ok(parsed) => parsed,
        Err(e) => {
            out.push_str(&format!(
                "error {:?} at {}: {}\nfix: {}\n",
                e.kind,
                e.node.as_deref().unwrap_or("-"),
                e.message,
                e.remediation
            ));
            return out;
        }
    };
    out.push_str(&format!(
        "ok: {} nodes, hash {}\n",
        parsed.nodes.len(),
        parsed.canonical_hash().to_hex()
    ));
    section(&mut out, "as written", &parsed.detailed_listing());
    let mut current = parsed;
    for pass in Pass::ALL {
        let only = PassConfig::parse(pass.name()).unwrap_or_else(|_| PassConfig::none());
        match passes::optimize(&current, &only) {
            Ok((next, reports)) => {
                let changed: usize = reports.iter().map(|r| r.changed).sum();
                let title = format!("after {} (changed {changed})", pass.name());
                if changed == 0 && next.detailed_listing() == current.detailed_listing() {
                    out.push_str(&format!("== {title}\n(the same)\n"));
                } else {
                    section(&mut out, &title, &next.detailed_listing());
                }
                current = next;
            }
            Err(e) => {
                out.push_str(&format!("== after {}\nerror: {e}\n", pass.name()));
                return out;
            }
        }
    }
    out.push_str("== rust (every pass)\n");
    match crate::codegen::generate(&current) {
        Ok(generated) => out.push_str(&generated.source),
        Err(e) => out.push_str(&format!("codegen_failed: {e}\n")),
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn section(out: &mut String, title: &str, lines: &[String]) {
    out.push_str(&format!("== {title}\n"));
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
}
