//! Test support shared by unit tests, integration tests, benches and later passes: a
//! generator of random well-typed graphs (as JSON, format v1), a corpus of hostile
//! strings, a throwaway PostgreSQL cluster ([`postgres`]) and a local HTTP server
//! ([`http_server`]) for the drivers' tests: real servers on loopback, never mocks.
//!
//! Invariants:
//! - Every generated graph parses (`graph::parse` with default limits) and every input has a
//!   default, so a graph runs with no inputs given.
//! - Generation is a pure function of one `u64` seed ([`generate`]); a failing case is
//!   reproduced from the seed alone.
//! - Graphs exercise error paths on purpose (i64 overflow, division by zero, NaN to i64), and
//!   NaN/inf-producing float math, but most of them succeed.
//! - Sizes stay small (tensors ≤ 64 elements, loops ≤ 20 iterations, nesting ≤ 3), so
//!   hundreds of graphs evaluate or compile in seconds.

pub mod baselines;
mod builder;
pub mod golden;
pub mod http_server;
pub mod postgres;
/// The unsafe policy's scanner, the one `graphjit verify` runs (for the tidy test).
pub use crate::verify::scan as unsafe_scan;

use proptest::prelude::*;
use serde_json::Value as Json;

/// Strings that try to break out of literals, comments and identifiers in generated code.
pub fn hostile_strings() -> &'static [&'static str] {
    &[
        "\"",
        "\"); }",
        "\"); } fn evil() { loop {} } //",
        "*/ /* // \n#![no_std]",
        "line\nbreak\r\n",
        "back\\slash\\",
        "\\\"",
        "nul\u{0}byte",
        "ünïcödé ✓ 漢字 \u{202e}rtl 🦀",
        "{}{{}}%s%n",
        "r#\"raw\"#",
        "'\\u{7f}'",
        "\u{feff}bom",
        "",
    ]
}

/// Random well-typed graphs in JSON format v1; every input has a default.
///
/// Shrinking is by seed only: a failure is reported with the graph for its seed.
pub fn arb_graph() -> impl Strategy<Value = Json> {
    any::<u64>().prop_map(generate)
}

/// The graph for `seed` (what [`arb_graph`] yields).
pub fn generate(seed: u64) -> Json {
    builder::graph(seed)
}

/// A small deterministic generator from `state`: each call steps a 64-bit LCG and returns a
/// number below `n` (0 for `n` = 0).
fn lcg(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n.max(1)
    }
}

/// A random DAG of elementwise tensor ops (shape `[n]` with `[]` broadcasts), with reuse and
/// several outputs, as graph JSON: what fusion works on.
pub fn elementwise_dag(seed: u64) -> String {
    let mut next = lcg(seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407));
    let len = 1 + next(40);
    let mut nodes = vec![
        format!(r#"{{"id": "t0", "op": "iota", "shape": [{len}]}}"#),
        r#"{"id": "s0", "op": "const", "type": {"tensor": []}, "value": [0.37]}"#.to_string(),
        format!(r#"{{"id": "t1", "op": "fill", "shape": [{len}], "value": -1.5}}"#),
        r#"{"id": "s1", "op": "const", "type": {"tensor": []}, "value": ["nan"]}"#.to_string(),
    ];
    let mut full = vec!["t0".to_string(), "t1".to_string()];
    let scalars = ["s0", "s1"];
    let unary = [
        "neg", "abs", "sqrt", "exp", "ln", "sin", "cos", "tanh", "floor", "ceil", "relu", "sigmoid",
    ];
    let binary = ["add", "sub", "mul", "div", "min", "max"];
    let count = 2 + next(14);
    for i in 0..count {
        let id = format!("e{i}");
        let a = full[next(full.len() as u64) as usize].clone();
        if next(3) == 0 {
            let op = unary[next(unary.len() as u64) as usize];
            nodes.push(format!(
                r#"{{"id": "{id}", "op": "{op}", "args": ["{a}"]}}"#
            ));
        } else if next(6) == 0 {
            // Bounds from the chain or the `[]` scalars (a NaN bound included).
            let bound = |next: &mut dyn FnMut(u64) -> u64| {
                if next(3) == 0 {
                    scalars[next(2) as usize].to_string()
                } else {
                    full[next(full.len() as u64) as usize].clone()
                }
            };
            let (lo, hi) = (bound(&mut next), bound(&mut next));
            nodes.push(format!(
                r#"{{"id": "{id}", "op": "clamp", "args": ["{a}", "{lo}", "{hi}"]}}"#
            ));
        } else {
            let op = binary[next(binary.len() as u64) as usize];
            let b = if next(4) == 0 {
                scalars[next(2) as usize].to_string()
            } else {
                full[next(full.len() as u64) as usize].clone()
            };
            let (x, y) = if next(2) == 0 { (a, b) } else { (b, a) };
            nodes.push(format!(
                r#"{{"id": "{id}", "op": "{op}", "args": ["{x}", "{y}"]}}"#
            ));
        }
        full.push(id);
    }
    let last = full.last().cloned().unwrap_or_default();
    let extra = full[next(full.len() as u64) as usize].clone();
    nodes.push(format!(
        r#"{{"id": "total", "op": "sum", "args": ["{last}"]}}"#
    ));
    // Two or three private map→reduce chains over tensors already there: siblings that
    // horizontal fusion computes in one loop.
    let mut outputs = format!(r#""total": "total", "last": "{last}", "extra": "{extra}""#);
    let reductions = ["sum", "reduce_max", "reduce_min", "mean"];
    for k in 0..2 + next(2) {
        let source = full[next(full.len() as u64) as usize].clone();
        let op = unary[next(unary.len() as u64) as usize];
        let reduce = reductions[next(reductions.len() as u64) as usize];
        nodes.push(format!(
            r#"{{"id": "h{k}", "op": "{op}", "args": ["{source}"]}}"#
        ));
        nodes.push(format!(
            r#"{{"id": "hr{k}", "op": "{reduce}", "args": ["h{k}"]}}"#
        ));
        outputs.push_str(&format!(r#", "hr{k}": "hr{k}""#));
    }
    format!(
        r#"{{"version": 1, "nodes": [{}], "outputs": {{{outputs}}}}}"#,
        nodes.join(", ")
    )
}

/// A random graph of effects and the pure nodes between them, as graph JSON: `kernel
/// softmax` calls over tensors (some on earlier answers, so effects come in several stages),
/// `log` lines, `after` edges between effects, tensor adds and sums, and i64 divisions that
/// sometimes divide by zero. What batching works on: which calls share a round, which error a
/// run ends with.
pub fn effect_dag(seed: u64) -> String {
    let mut next = lcg(seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(0x6a09_e667_f3bc_c909));
    let len = 1 + next(12);
    let mut nodes = vec![
        format!(r#"{{"id": "t0", "op": "iota", "shape": [{len}]}}"#),
        format!(r#"{{"id": "t1", "op": "fill", "shape": [{len}], "value": -0.75}}"#),
        format!(
            r#"{{"id": "i0", "op": "const", "value": {}}}"#,
            next(1000) as i64 - 500
        ),
        format!(
            r#"{{"id": "d0", "op": "const", "value": {}}}"#,
            next(3) as i64
        ),
    ];
    let mut tensors = vec!["t0".to_string(), "t1".to_string()];
    let mut effects: Vec<String> = Vec::new();
    let mut scalars: Vec<String> = Vec::new();
    for j in 0..2 + next(9) {
        let pick = |v: &Vec<String>, r: u64| v[(r % v.len() as u64) as usize].clone();
        let after = if !effects.is_empty() && next(10) < 3 {
            format!(r#", "after": ["{}"]"#, pick(&effects, next(1000)))
        } else {
            String::new()
        };
        match next(8) {
            0..=3 => {
                let arg = pick(&tensors, next(1000));
                nodes.push(format!(
                    r#"{{"id": "k{j}", "op": "kernel", "kernel": "softmax", "args": ["{arg}"]{after}}}"#
                ));
                tensors.push(format!("k{j}"));
                effects.push(format!("k{j}"));
            }
            4 => {
                let arg = if next(2) == 0 || scalars.is_empty() {
                    pick(&tensors, next(1000))
                } else {
                    pick(&scalars, next(1000))
                };
                nodes.push(format!(
                    r#"{{"id": "l{j}", "op": "log", "args": ["{arg}"]{after}}}"#
                ));
                effects.push(format!("l{j}"));
            }
            5 => {
                let (a, b) = (pick(&tensors, next(1000)), pick(&tensors, next(1000)));
                nodes.push(format!(
                    r#"{{"id": "a{j}", "op": "add", "args": ["{a}", "{b}"]}}"#
                ));
                tensors.push(format!("a{j}"));
            }
            6 => {
                nodes.push(format!(
                    r#"{{"id": "q{j}", "op": "div", "args": ["i0", "d0"]}}"#
                ));
                scalars.push(format!("q{j}"));
            }
            _ => {
                let a = pick(&tensors, next(1000));
                nodes.push(format!(r#"{{"id": "s{j}", "op": "sum", "args": ["{a}"]}}"#));
                nodes.push(format!(
                    r#"{{"id": "f{j}", "op": "to_f64", "args": ["s{j}"]}}"#
                ));
                scalars.push(format!("f{j}"));
            }
        }
    }
    let mut outputs = vec![format!(r#""last": "{}""#, tensors[tensors.len() - 1])];
    for (k, s) in scalars.iter().enumerate() {
        outputs.push(format!(r#""x{k}": "{s}""#));
    }
    format!(
        r#"{{"version": 1, "nodes": [{}], "outputs": {{{}}}, "footprint": {{"kernels": ["softmax"]}}}}"#,
        nodes.join(", "),
        outputs.join(", ")
    )
}

/// The inputs' defaults in `graph.inputs` order, or `None` if an input has none.
#[cfg(test)]
pub(crate) fn default_inputs(graph: &crate::graph::Graph) -> Option<Vec<graphjit_value::Value>> {
    graph
        .inputs
        .iter()
        .map(|&id| match &graph.nodes.get(id.index())?.op {
            crate::graph::Op::Input { default: Some(c) } => Some(crate::eval::const_value(c)),
            _ => None,
        })
        .collect()
}

/// This process's resident memory in bytes (`VmRSS` from `/proc/self/status`; 0 where there is
/// none): for tests that show a hostile input did not make the host hold its size.
pub fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| {
            kb.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Limits, parse};

    #[test]
    fn generation_is_a_function_of_the_seed() {
        for seed in 0..50 {
            assert_eq!(generate(seed), generate(seed));
        }
        assert_ne!(generate(1), generate(2));
    }

    #[test]
    fn generated_graphs_cover_every_op_kind() {
        let mut seen = std::collections::BTreeSet::new();
        fn walk(nodes: &Json, seen: &mut std::collections::BTreeSet<String>) {
            for node in nodes.as_array().into_iter().flatten() {
                seen.insert(node["op"].as_str().unwrap_or("?").to_string());
                // The forms of an op that its name does not show.
                let op = match node["op"].as_str() {
                    Some("sum" | "mean" | "reduce_max" | "reduce_min") => "a reduction",
                    Some(op) => op,
                    None => "?",
                };
                for field in ["axis", "keepdims", "epsilon"] {
                    if node.get(field).is_some() {
                        seen.insert(format!("{op} with {field}"));
                    }
                }
                for region in ["then", "else", "body"] {
                    walk(&node[region]["nodes"], seen);
                }
            }
        }
        for seed in 0..500 {
            walk(&generate(seed)["nodes"], &mut seen);
        }
        // Every pure and structural op of the table (effects have their own generator).
        let all: Vec<&str> = crate::graph::OpKind::written()
            .map(crate::graph::OpKind::spec)
            .filter(|spec| !matches!(spec.class, crate::graph::Class::Effect(_)))
            .map(|spec| spec.name)
            .collect();
        let forms = [
            "a reduction with axis",
            "a reduction with keepdims",
            "softmax with axis",
            "layer_norm with epsilon",
        ];
        let missing: Vec<&&str> = all
            .iter()
            .chain(&forms)
            .filter(|op| !seen.contains(**op))
            .collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }

    #[test]
    fn generated_graphs_use_structured_data_and_mostly_evaluate() {
        let limits = crate::eval::EvalLimits {
            fuel: 50_000_000,
            memory_bytes: 64 << 20,
            deadline: None,
        };
        let (mut v2, mut v2_ok, mut regions) = (0, 0, 0);
        for seed in 0..500 {
            let json = generate(seed);
            if json["version"] != 2 {
                continue;
            }
            v2 += 1;
            let text = json.to_string();
            regions += usize::from(
                ["\"map\"", "\"filter\"", "\"fold\""]
                    .iter()
                    .any(|op| text.contains(op)),
            );
            let graph = parse(text.as_bytes(), &Limits::default()).expect("parses");
            let inputs = default_inputs(&graph).expect("defaults");
            v2_ok += usize::from(crate::eval::eval(&graph, &inputs, &limits).is_ok());
        }
        // Most graphs hold lists, options or records, a good share of them map, filter or fold,
        // and most of those evaluate without an error (errors are covered too, not only them).
        assert!(v2 >= 250, "{v2} of 500 graphs use version 2 types");
        assert!(regions >= 100, "{regions} graphs have map, filter or fold");
        assert!(v2_ok * 2 >= v2, "{v2_ok} of {v2} version 2 graphs evaluate");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arb_graph_yields_graphs_that_parse_with_defaults(json in arb_graph()) {
            let text = json.to_string();
            let graph = parse(text.as_bytes(), &Limits::default())
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert!(default_inputs(&graph).is_some());
        }
    }
}
