//! Test support shared by unit tests, integration tests and later passes: a generator of
//! random well-typed graphs (as JSON), and a corpus of hostile strings.
//!
//! Invariants: every generated graph parses; generation is a pure function of the seed, so a
//! failing case is reproduced from the seed proptest prints. Graphs exercise error paths
//! (overflow, division by zero, NaN to i64) on purpose, but most of them succeed.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// Strings that try to break out of literals, comments and identifiers in generated code.
pub fn hostile_strings() -> &'static [&'static str] {
    &[
        "\"",
        "\"); } fn evil() { loop {} } //",
        "*/ /* // \n#![no_std]",
        "line\nbreak\r\n",
        "back\\slash\\",
        "nul\u{0}byte",
        "ünïcödé ✓ 漢字 \u{202e}rtl",
        "{}{{}}%s%n",
        "r#\"raw\"#",
        "'\\u{7f}'",
    ]
}

/// Random well-typed graphs in JSON format v1; every input has a default.
pub fn arb_graph() -> impl Strategy<Value = Json> {
    any::<u64>().prop_map(generate)
}

/// The graph for `seed` (what [`arb_graph`] yields).
pub fn generate(seed: u64) -> Json {
    let mut b = Builder {
        rng: Rng(seed | 1),
        next: 0,
        pools: BTreeMap::new(),
    };
    let mut nodes = Vec::new();
    for (ty, default) in [
        ("i64", json!(b.int())),
        ("f64", json!(b.float_json())),
        ("string", json!(b.text())),
    ] {
        let id = b.id();
        nodes.push(json!({"id": id, "op": "input", "type": ty, "default": default}));
        b.add(ty, &id);
    }
    let steps = 4 + b.rng.below(20);
    for _ in 0..steps {
        b.step(&mut nodes, 0);
    }
    let mut outputs = serde_json::Map::new();
    for k in 0..1 + b.rng.below(4) {
        let kinds: Vec<String> = b.pools.keys().cloned().collect();
        let kind = &kinds[b.rng.below(kinds.len())];
        let node = b.pick(kind);
        outputs.insert(format!("out{k}"), json!(node));
    }
    json!({"version": 1, "nodes": nodes, "outputs": outputs})
}

/// xorshift64*: small, deterministic, good enough to pick shapes of graphs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Builder {
    rng: Rng,
    next: usize,
    /// Node ids by type key ("i64", "f64", "bool", "string", "tensor[2,3]").
    pools: BTreeMap<String, Vec<String>>,
}

const SHAPES: &[&[u32]] = &[&[], &[4], &[2, 3], &[3, 2], &[9]];

fn tensor_key(shape: &[u32]) -> String {
    format!("tensor{shape:?}")
}

impl Builder {
    fn id(&mut self) -> String {
        self.next += 1;
        if self.rng.chance(10) {
            let hostile = hostile_strings()[self.rng.below(hostile_strings().len())];
            format!("{hostile}#{}", self.next)
        } else {
            format!("n{}", self.next)
        }
    }

    fn add(&mut self, key: &str, id: &str) {
        self.pools
            .entry(key.to_string())
            .or_default()
            .push(id.to_string());
    }

    fn has(&self, key: &str) -> bool {
        self.pools.get(key).is_some_and(|p| !p.is_empty())
    }

    fn pick(&mut self, key: &str) -> String {
        let pool = self.pools.get(key).cloned().unwrap_or_default();
        pool[self.rng.below(pool.len())].clone()
    }

    fn int(&mut self) -> i64 {
        match self.rng.below(20) {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => 0,
            _ => self.rng.below(200) as i64 - 100,
        }
    }

    fn float_json(&mut self) -> Json {
        match self.rng.below(24) {
            0 => json!("nan"),
            1 => json!("inf"),
            2 => json!("-inf"),
            3 => json!(-0.0),
            4 => json!(1e300),
            _ => json!((self.rng.below(2000) as f64 - 1000.0) / 64.0),
        }
    }

    fn text(&mut self) -> String {
        if self.rng.chance(50) {
            hostile_strings()[self.rng.below(hostile_strings().len())].to_string()
        } else {
            format!("s{}", self.rng.below(100))
        }
    }

    fn push(&mut self, nodes: &mut Vec<Json>, key: &str, mut node: Json) -> String {
        let id = self.id();
        node["id"] = json!(id);
        nodes.push(node);
        self.add(key, &id);
        id
    }

    /// Adds one random node (maybe with regions) to `nodes`; `depth` bounds nesting.
    fn step(&mut self, nodes: &mut Vec<Json>, depth: usize) {
        match self.rng.below(if depth < 2 { 14 } else { 11 }) {
            0 => {
                let v = self.int();
                self.push(nodes, "i64", json!({"op": "const", "value": v}));
            }
            1 => {
                let v = self.float_json();
                self.push(
                    nodes,
                    "f64",
                    json!({"op": "const", "type": "f64", "value": v}),
                );
            }
            2 => {
                let op = [
                    "add", "sub", "mul", "div", "rem", "min", "max", "neg", "abs",
                ][self.rng.below(9)];
                let (a, b) = (self.pick("i64"), self.pick("i64"));
                let args = if matches!(op, "neg" | "abs") {
                    json!([a])
                } else {
                    json!([a, b])
                };
                self.push(nodes, "i64", json!({"op": op, "args": args}));
            }
            3 => {
                const UNARY: &[&str] = &[
                    "neg", "abs", "sqrt", "exp", "ln", "sin", "cos", "tanh", "floor", "ceil",
                ];
                const BINARY: &[&str] = &["add", "sub", "mul", "div", "min", "max", "pow"];
                let (a, b) = (self.pick("f64"), self.pick("f64"));
                let node = if self.rng.chance(50) {
                    json!({"op": UNARY[self.rng.below(UNARY.len())], "args": [a]})
                } else {
                    json!({"op": BINARY[self.rng.below(BINARY.len())], "args": [a, b]})
                };
                self.push(nodes, "f64", node);
            }
            4 => {
                let ty = if self.rng.chance(50) { "i64" } else { "f64" };
                let op = ["eq", "ne", "lt", "le", "gt", "ge"][self.rng.below(6)];
                let (a, b) = (self.pick(ty), self.pick(ty));
                self.push(nodes, "bool", json!({"op": op, "args": [a, b]}));
            }
            5 if self.has("bool") => {
                let op = ["and", "or", "xor", "not"][self.rng.below(4)];
                let (a, b) = (self.pick("bool"), self.pick("bool"));
                let args = if op == "not" {
                    json!([a])
                } else {
                    json!([a, b])
                };
                self.push(nodes, "bool", json!({"op": op, "args": args}));
            }
            6 => match self.rng.below(5) {
                0 => {
                    let a = self.pick("i64");
                    self.push(nodes, "f64", json!({"op": "to_f64", "args": [a]}));
                }
                1 => {
                    let a = self.pick("f64");
                    self.push(nodes, "i64", json!({"op": "to_i64", "args": [a]}));
                }
                2 => {
                    let a = if self.rng.chance(50) {
                        self.pick("i64")
                    } else {
                        self.pick("f64")
                    };
                    self.push(nodes, "string", json!({"op": "to_string", "args": [a]}));
                }
                3 => {
                    let (a, b) = (self.pick("string"), self.pick("string"));
                    self.push(nodes, "string", json!({"op": "concat", "args": [a, b]}));
                }
                _ => {
                    let a = self.pick("string");
                    self.push(nodes, "i64", json!({"op": "len", "args": [a]}));
                }
            },
            7 | 8 => self.tensor_step(nodes),
            9 => {
                let (a, b) = (self.pick("i64"), self.pick("f64"));
                let fork = self.push(nodes, "tuple", json!({"op": "fork", "args": [a, b]}));
                let index = self.rng.below(2);
                self.push(
                    nodes,
                    if index == 0 { "i64" } else { "f64" },
                    json!({"op": "get", "args": [fork], "index": index}),
                );
            }
            10 => {
                let (a, b) = (self.pick("i64"), self.pick("f64"));
                self.push(nodes, "f64", json!({"op": "sequence", "args": [a, b]}));
            }
            11 | 12 => self.if_step(nodes, depth),
            _ => self.loop_step(nodes, depth),
        }
    }

    fn tensor_step(&mut self, nodes: &mut Vec<Json>) {
        let shape = SHAPES[self.rng.below(SHAPES.len())];
        let key = tensor_key(shape);
        let count: u32 = shape.iter().product();
        if !self.has(&key) || self.rng.chance(30) {
            let node = match self.rng.below(3) {
                0 => json!({"op": "iota", "shape": shape}),
                1 => json!({"op": "fill", "shape": shape, "value": self.float_json()}),
                _ => {
                    let data: Vec<Json> = (0..count).map(|_| self.float_json()).collect();
                    json!({"op": "const", "type": {"tensor": shape}, "value": data})
                }
            };
            self.push(nodes, &key, node);
            return;
        }
        let a = self.pick(&key);
        match self.rng.below(6) {
            0 => {
                let ops = [
                    "neg", "abs", "sqrt", "exp", "ln", "sin", "cos", "tanh", "floor", "ceil",
                    "relu", "sigmoid",
                ];
                let op = ops[self.rng.below(ops.len())];
                self.push(nodes, &key, json!({"op": op, "args": [a]}));
            }
            1 => {
                let op = ["add", "sub", "mul", "div", "min", "max"][self.rng.below(6)];
                let b = if self.has("tensor[]") && self.rng.chance(40) {
                    self.pick("tensor[]")
                } else {
                    self.pick(&key)
                };
                let args = if self.rng.chance(50) {
                    json!([a, b])
                } else {
                    json!([b, a])
                };
                self.push(nodes, &key, json!({"op": op, "args": args}));
            }
            2 => {
                let op = ["sum", "reduce_max", "reduce_min", "mean"][self.rng.below(4)];
                let r = self.push(nodes, "tensor[]", json!({"op": op, "args": [a]}));
                if self.rng.chance(50) {
                    self.push(nodes, "f64", json!({"op": "to_f64", "args": [r]}));
                }
            }
            3 if shape == [2, 3] && self.has("tensor[3, 2]") => {
                let b = self.pick("tensor[3, 2]");
                self.push(
                    nodes,
                    "tensor[2, 2]",
                    json!({"op": "matmul", "args": [a, b]}),
                );
            }
            4 if shape.len() == 2 => {
                let flipped = [shape[1], shape[0]];
                self.push(
                    nodes,
                    &tensor_key(&flipped),
                    json!({"op": "transpose", "args": [a]}),
                );
            }
            5 if count == 6 => {
                let to: &[u32] = if shape.len() == 2 { &[6] } else { &[3, 2] };
                self.push(
                    nodes,
                    &tensor_key(to),
                    json!({"op": "reshape", "args": [a], "shape": to}),
                );
            }
            _ => {
                let x = self.pick("f64");
                self.push(nodes, "tensor[]", json!({"op": "to_tensor", "args": [x]}));
            }
        }
    }

    /// A branch region computing one value of `key` from outer nodes (captures).
    fn region(&mut self, key: &str, depth: usize) -> Json {
        let saved = self.pools.clone();
        let mut inner = Vec::new();
        for _ in 0..self.rng.below(4) {
            self.step(&mut inner, depth + 1);
        }
        let result = self.pick(key);
        // Nodes defined inside are not visible after the region.
        self.pools = saved;
        json!({"nodes": inner, "result": result})
    }

    fn if_step(&mut self, nodes: &mut Vec<Json>, depth: usize) {
        if !self.has("bool") {
            let (a, b) = (self.pick("i64"), self.pick("i64"));
            self.push(nodes, "bool", json!({"op": "lt", "args": [a, b]}));
        }
        let cond = self.pick("bool");
        let key = if self.rng.chance(50) { "i64" } else { "f64" };
        let (then, otherwise) = (self.region(key, depth), self.region(key, depth));
        self.push(
            nodes,
            key,
            json!({"op": "if", "args": [cond], "then": then, "else": otherwise}),
        );
    }

    fn loop_step(&mut self, nodes: &mut Vec<Json>, depth: usize) {
        let key = if self.rng.chance(50) { "i64" } else { "f64" };
        let init = self.pick(key);
        let saved = self.pools.clone();
        let (index, state) = (self.id(), self.id());
        self.add("i64", &index);
        self.add(key, &state);
        let mut inner = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            self.step(&mut inner, depth + 1);
        }
        let result = self.pick(key);
        self.pools = saved;
        let iterations = self.rng.below(7);
        let body = json!({"params": [index, state], "nodes": inner, "results": [result]});
        self.push(
            nodes,
            key,
            json!({"op": "loop", "args": [init], "iterations": iterations, "body": body}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalLimits, eval};
    use crate::graph::{Limits, parse};

    #[test]
    fn generated_graphs_parse_and_evaluate_without_panicking() {
        let mut errors = 0;
        for seed in 0..600u64 {
            let json = generate(seed).to_string();
            let graph = parse(json.as_bytes(), &Limits::default())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{json}"));
            let inputs: Vec<graphjit_value::Value> = graph
                .inputs
                .iter()
                .map(|&id| match &graph.node(id).op {
                    crate::graph::Op::Input { default: Some(c) } => crate::host::const_value(c),
                    _ => panic!("generated inputs have defaults"),
                })
                .collect();
            if eval(
                &graph,
                &inputs,
                &EvalLimits {
                    fuel: 1 << 30,
                    memory_bytes: 1 << 28,
                },
            )
            .is_err()
            {
                errors += 1;
            }
        }
        // Error paths are exercised, but most graphs succeed.
        assert!(
            errors > 0 && errors < 300,
            "{errors} of 600 generated graphs fail"
        );
    }
}
