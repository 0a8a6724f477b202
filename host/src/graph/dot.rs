//! Graphviz of a graph (`graphjit explain --dot`): people would rather look than read.
//!
//! Invariant: user text (ids) only ever appears inside quoted, escaped labels; node names in
//! the DOT text are generated (`n17`), so a hostile id cannot change the output's structure.

use std::fmt::Write as _;

use super::{Const, FusedStep, Graph, NodeId, Op, Region};

/// Escapes `text` for a double-quoted DOT label.
fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A JSON string literal: user text can never end the attribute list early.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A constant as text: numbers in Rust's shortest round-trip form, strings quoted, tensors
/// with their shape and at most eight elements.
fn constant(c: &Const) -> String {
    match c {
        Const::Bool(b) => b.to_string(),
        Const::I64(v) => v.to_string(),
        Const::F64(v) => format!("{v:?}"),
        Const::Str(s) => quoted(s),
        Const::Tensor(t) => {
            let shown: Vec<String> = t.data.iter().take(8).map(|v| format!("{v:?}")).collect();
            let more = if t.data.len() > 8 { ", …" } else { "" };
            format!("{:?} [{}{more}]", t.shape, shown.join(", "))
        }
        Const::Data(value) => {
            let text = crate::values::value_to_text(value);
            match text.char_indices().nth(64) {
                Some((end, _)) => format!("{}…", &text[..end]),
                None => text,
            }
        }
    }
}

/// The attributes of an op that its name and arguments do not show, or `None`.
fn attributes(op: &Op) -> Option<String> {
    let steps = |steps: &[FusedStep]| {
        let shown: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(r, step)| match step {
                FusedStep::Arg(k) => format!("r{r} = arg {k}"),
                FusedStep::Index => format!("r{r} = index"),
                FusedStep::Const(bits) => format!("r{r} = {:?}", f32::from_bits(*bits)),
                FusedStep::Unary(op, a) => format!("r{r} = {}(r{a})", op.name()),
                FusedStep::Binary(op, a, b) => format!("r{r} = {}(r{a}, r{b})", op.name()),
            })
            .collect();
        shown.join("; ")
    };
    Some(match op {
        Op::Input { default: Some(c) } => format!("default: {}", constant(c)),
        Op::Const(c) => constant(c),
        Op::Loop { iterations, .. } => format!("iterations: {iterations}"),
        Op::Cached { key, ttl_ms, .. } => match ttl_ms {
            Some(ms) => format!("key: {}, ttl: {ms} ms", quoted(key)),
            None => format!("key: {}", quoted(key)),
        },
        Op::Iota { shape } | Op::Reshape { shape } => format!("shape: {shape:?}"),
        Op::Fill { shape, value } => format!("shape: {shape:?}, value: {value:?}"),
        Op::DbQuery { sql, answer } => format!("sql: {}, answer: {answer:?}", quoted(sql)),
        Op::DbExecute { sql } => format!("sql: {}", quoted(sql)),
        Op::DbExecuteMany { sql, fields } => format!(
            "sql: {}, fields: {}",
            quoted(sql),
            quoted(&fields.join(", "))
        ),
        Op::Http {
            method,
            url,
            headers,
            answer,
        } => {
            let mut text = format!("method: {}, url: {}", quoted(method), quoted(url));
            if !headers.is_empty() {
                text.push_str(&format!(", headers: {}", quoted(&headers.join(", "))));
            }
            let response = match (answer.full, answer.headers) {
                (false, _) => "",
                (true, false) => "full response, ",
                (true, true) => "full response with headers, ",
            };
            text.push_str(&format!(", answer: {response}{:?}", answer.body));
            text
        }
        Op::Kernel { name } => format!("name: {}", quoted(name)),
        Op::Record { names } => format!("fields: {}", quoted(&names.join(", "))),
        Op::GetField { name, .. } | Op::With { name, .. } => format!("field: {}", quoted(name)),
        Op::Log { level } => format!("level: {}", quoted(level)),
        Op::ReduceAxis { axis, keepdims, .. } => match keepdims {
            true => format!("axis: {axis}, keepdims"),
            false => format!("axis: {axis}"),
        },
        Op::Softmax { axis, .. } => format!("axis: {axis}"),
        Op::LayerNorm { axis, epsilon } => format!("axis: {axis}, epsilon: {epsilon:?}"),
        Op::Fused {
            steps: program,
            reduce,
        } => match reduce {
            Some((_, shape)) => format!("shape: {shape:?}; {}", steps(program)),
            None => steps(program),
        },
        Op::FusedReductions {
            steps: program,
            outputs,
            shape,
        } => {
            let outputs: Vec<String> = outputs
                .iter()
                .map(|(r, op)| format!("{}(r{r})", op.name()))
                .collect();
            format!(
                "shape: {shape:?}; {}; outputs {}",
                steps(program),
                outputs.join(", ")
            )
        }
        Op::Input { default: None }
        | Op::Param
        | Op::If { .. }
        | Op::Unary(_)
        | Op::Str(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Fork
        | Op::Sequence
        | Op::Get { .. }
        | Op::List
        | Op::Range
        | Op::Slice
        | Op::Reverse
        | Op::Any
        | Op::All
        | Op::Map { .. }
        | Op::Filter { .. }
        | Op::Fold { .. }
        | Op::SortBy { .. }
        | Op::GroupBy { .. }
        | Op::Zip
        | Op::Split
        | Op::Join
        | Op::JsonParse
        | Op::JsonEmit
        | Op::Some
        | Op::None
        | Op::IsSome
        | Op::UnwrapOr
        | Op::Unwrap
        | Op::Transpose
        | Op::MatMul
        | Op::Clamp
        | Op::NativeMatMul
        | Op::Reduce(_)
        | Op::ToF64
        | Op::ToI64
        | Op::ToTensor
        | Op::Concat
        | Op::Len
        | Op::ToString => return None,
    })
}

impl Graph {
    /// The graph as text, one line per node in canonical order (regions indented under their
    /// node): `id = op(args) : type`, ids as JSON strings so that no id can fake a line.
    /// What `explain` shows before and after the passes.
    pub(crate) fn listing(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.list_region(&self.root, 0, false, &mut lines);
        lines
    }

    /// [`Graph::listing`] with every attribute a pass can change: constants, shapes, SQL,
    /// URLs, fused programs (`{...}` after the type), and the graph-wide `batch` flag. What the
    /// golden tests (`tests/graphs/`) record after each pass, so that a pass's change is a
    /// visible line.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn detailed_listing(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.batch_effects {
            lines.push("(effects batched into rounds)".to_owned());
        }
        if self.fuse_lists {
            let demanded = self.demanded();
            let reads = self.reads();
            let mut regions = vec![&self.root];
            while let Some(region) = regions.pop() {
                for chain in self.list_chains(region, &demanded, &reads) {
                    let names: Vec<&str> = chain
                        .iter()
                        .map(|&id| self.node(id).name.as_str())
                        .collect();
                    lines.push(format!("(one loop: {})", names.join(" → ")));
                }
                for &id in &region.nodes {
                    regions.extend(self.node(id).op.regions());
                }
            }
        }
        self.list_region(&self.root, 0, true, &mut lines);
        lines
    }

    fn list_region(&self, region: &Region, depth: usize, detailed: bool, lines: &mut Vec<String>) {
        let name = |id: &NodeId| serde_json::to_string(&self.node(*id).name).unwrap_or_default();
        for &id in &region.nodes {
            let node = self.node(id);
            let args: Vec<String> = node.args.iter().map(name).collect();
            let detail = match &node.op {
                Op::Fused { steps, reduce } => match reduce {
                    Some((op, _)) => format!("[{} steps → {}]", steps.len(), op.name()),
                    None => format!("[{} steps]", steps.len()),
                },
                Op::FusedReductions { steps, outputs, .. } => {
                    let ops: Vec<&str> = outputs.iter().map(|(_, op)| op.name()).collect();
                    format!("[{} steps → {}]", steps.len(), ops.join(", "))
                }
                Op::Get { index: Some(index) } => format!("[{index}]"),
                // An axis changes the result: `sum[axis 0]` is not `sum`.
                Op::ReduceAxis {
                    axis,
                    keepdims: true,
                    ..
                } => format!("[axis {axis}, keepdims]"),
                Op::ReduceAxis { axis, .. }
                | Op::Softmax { axis, .. }
                | Op::LayerNorm { axis, .. } => format!("[axis {axis}]"),
                _ => String::new(),
            };
            let after = if node.after.is_empty() {
                String::new()
            } else {
                let after: Vec<String> = node.after.iter().map(name).collect();
                format!(" after {}", after.join(", "))
            };
            let attributes = match detailed {
                true => attributes(&node.op).map_or(String::new(), |a| format!(" {{{a}}}")),
                false => String::new(),
            };
            lines.push(format!(
                "{}{} = {}{detail}({}){after} : {}{attributes}",
                "  ".repeat(depth),
                name(&id),
                node.op.name(),
                args.join(", "),
                node.ty
            ));
            for region in node.op.regions() {
                self.list_region(region, depth + 1, detailed, lines);
            }
        }
    }

    /// The graph as a Graphviz digraph: one box per node (id, op, type), argument edges solid,
    /// `after` edges dashed, each `if`/`loop` region a cluster whose results point at its
    /// owner (dotted), outputs as double octagons.
    pub(crate) fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph graphjit {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        self.dot_region(&self.root, 1, &mut out);
        for (i, node) in self.nodes.iter().enumerate() {
            for a in &node.args {
                let _ = writeln!(out, "  n{} -> n{i};", a.0);
            }
            for a in &node.after {
                let _ = writeln!(out, "  n{} -> n{i} [style=dashed];", a.0);
            }
            for region in node.op.regions() {
                for r in &region.results {
                    let _ = writeln!(out, "  n{} -> n{i} [style=dotted];", r.0);
                }
            }
        }
        for (k, (name, result)) in self.outputs.iter().zip(&self.root.results).enumerate() {
            let _ = writeln!(
                out,
                "  out{k} [shape=doubleoctagon, label=\"{}\"];\n  n{} -> out{k};",
                label(name),
                result.0
            );
        }
        out.push_str("}\n");
        out
    }

    fn dot_region(&self, region: &Region, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for &id in region.params.iter().chain(&region.nodes) {
            self.dot_node(id, &pad, out);
            for (k, sub) in self.node(id).op.regions().into_iter().enumerate() {
                let _ = writeln!(out, "{pad}subgraph cluster_{}_{k} {{", id.0);
                let _ = writeln!(out, "{pad}  style=rounded; color=gray;");
                self.dot_region(sub, depth + 1, out);
                let _ = writeln!(out, "{pad}}}");
            }
        }
    }

    fn dot_node(&self, id: NodeId, pad: &str, out: &mut String) {
        let node = self.node(id);
        let style = if node.op.is_effect() {
            ", style=filled, fillcolor=\"#ffe0b0\""
        } else if node.op.name() == "fused" {
            ", style=filled, fillcolor=\"#d0f0d0\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{pad}n{} [label=\"{}\\n{} : {}\"{style}];",
            id.0,
            label(&node.name),
            node.op.name(),
            label(&node.ty.to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{Limits, parse};

    #[test]
    fn hostile_ids_stay_inside_labels() {
        let g = parse(
            br#"{"version": 1, "nodes": [
                {"id": "x\"]; evil -> n0; a [label=\"", "op": "input", "type": "i64", "default": 1},
                {"id": "y\n}", "op": "neg", "args": ["x\"]; evil -> n0; a [label=\""]}
            ], "outputs": {"o\"": "y\n}"}}"#,
            &Limits::default(),
        )
        .expect("parses");
        let dot = g.to_dot();
        let edges: Vec<&str> = dot
            .lines()
            .map(str::trim)
            .filter(|l| l.contains(" -> ") && !l.contains('['))
            .collect();
        assert_eq!(edges, ["n0 -> n1;", "n1 -> out0;"], "{dot}");
        assert!(
            !dot.lines().any(|l| l.trim_start().starts_with("evil")),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
        assert_eq!(dot.lines().filter(|l| l.trim() == "}").count(), 1, "{dot}");
    }
}
