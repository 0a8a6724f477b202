//! The generator behind [`super::generate`]: a deterministic RNG and a builder that adds
//! random well-typed nodes, tracking which ids of which type are in scope.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::hostile_strings;

/// A random well-typed graph, a function of `seed` alone.
pub(super) fn graph(seed: u64) -> Json {
    let mut b = Builder {
        rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        next: 0,
        pools: BTreeMap::new(),
        data: false,
    };
    let mut nodes = Vec::new();
    let inputs = [
        ("i64", json!(b.int())),
        ("f64", b.float_json()),
        ("string", json!(b.text())),
        ("bool", json!(b.rng.chance(50))),
    ];
    for (ty, default) in inputs {
        if ty == "bool" && b.rng.chance(50) {
            continue;
        }
        let id = b.id();
        nodes.push(json!({"id": id, "op": "input", "type": ty, "default": default}));
        b.add(ty, &id);
    }
    for _ in 0..4 + b.rng.below(20) {
        b.step(&mut nodes, 0);
    }
    let mut outputs = serde_json::Map::new();
    for k in 0..1 + b.rng.below(4) {
        let key = b.any_key(true);
        let node = b.pick(&key);
        let name = if b.rng.chance(10) {
            format!("{}{k}", b.text())
        } else {
            format!("out{k}")
        };
        outputs.insert(name, json!(node));
    }
    // Version 2 only where the graph uses its types: version 1 stays covered.
    let version = if b.data { 2 } else { 1 };
    json!({"version": version, "nodes": nodes, "outputs": outputs})
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
    fn choose<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Type keys: "i64", "f64", "bool", "string", "tuple", `tensor_key(shape)`, or one of
/// [`DATA`]'s (format version 2).
struct Builder {
    rng: Rng,
    next: usize,
    /// Node ids visible at the current point, by type key.
    pools: BTreeMap<String, Vec<String>>,
    /// Whether a version 2 type was used.
    data: bool,
}

/// The version 2 type keys and their JSON types.
const DATA: &[(&str, &str)] = &[
    ("list<i64>", r#"{"list": "i64"}"#),
    ("list<f64>", r#"{"list": "f64"}"#),
    ("list<bool>", r#"{"list": "bool"}"#),
    ("list<string>", r#"{"list": "string"}"#),
    ("option<i64>", r#"{"option": "i64"}"#),
    ("option<f64>", r#"{"option": "f64"}"#),
    ("record", r#"{"record": {"k": "i64", "v": "f64"}}"#),
];

/// The element key of a list key.
fn element(list: &str) -> &str {
    list.strip_prefix("list<")
        .and_then(|k| k.strip_suffix('>'))
        .unwrap_or("i64")
}

/// Tensor shapes the generator uses: scalars, vectors, matrices that chain through matmul.
/// `[3]` and `[2, 1]` broadcast against the matrices (NumPy's rule).
const SHAPES: &[&[u32]] = &[
    &[],
    &[1],
    &[4],
    &[2, 3],
    &[3, 2],
    &[3, 3],
    &[8, 8],
    &[9],
    &[3],
    &[2, 1],
];

const TENSOR_UNARY: &[&str] = &[
    "neg", "abs", "sqrt", "exp", "ln", "sin", "cos", "tanh", "floor", "ceil", "relu", "sigmoid",
];
const F64_UNARY: &[&str] = &[
    "neg", "abs", "sqrt", "exp", "ln", "sin", "cos", "tanh", "floor", "ceil",
];
const F64_BINARY: &[&str] = &["add", "sub", "mul", "div", "min", "max", "pow"];
const I64_BINARY: &[&str] = &["add", "sub", "mul", "div", "rem", "min", "max"];
const TENSOR_BINARY: &[&str] = &["add", "sub", "mul", "div", "min", "max"];
const REDUCTIONS: &[&str] = &["sum", "reduce_max", "reduce_min", "mean"];
const ORDERED: &[&str] = &["eq", "ne", "lt", "le", "gt", "ge"];

fn tensor_key(shape: &[u32]) -> String {
    format!("tensor{shape:?}")
}

impl Builder {
    fn id(&mut self) -> String {
        self.next += 1;
        if self.rng.chance(10) {
            let hostile = *self.rng.choose(hostile_strings());
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

    /// A visible node of type `key` (which must have one).
    fn pick(&mut self, key: &str) -> String {
        let pool = self.pools.get(key).cloned().unwrap_or_default();
        self.rng.choose(&pool).clone()
    }

    /// A key with at least one visible node; tuples only if `tuples`.
    fn any_key(&mut self, tuples: bool) -> String {
        let keys: Vec<String> = self
            .pools
            .iter()
            .filter(|(k, v)| !v.is_empty() && (tuples || k.as_str() != "tuple"))
            .map(|(k, _)| k.clone())
            .collect();
        self.rng.choose(&keys).clone()
    }

    fn int(&mut self) -> i64 {
        match self.rng.below(24) {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => -1,
            3 => 0,
            4 => 1 << 40,
            _ => self.rng.below(200) as i64 - 100,
        }
    }

    fn float_json(&mut self) -> Json {
        match self.rng.below(28) {
            0 => json!("nan"),
            1 => json!("inf"),
            2 => json!("-inf"),
            3 => json!(-0.0),
            4 => json!(1e300),
            5 => json!(1e-310),
            6 => json!(0.0),
            _ => json!((self.rng.below(2000) as f64 - 1000.0) / 64.0),
        }
    }

    fn text(&mut self) -> String {
        if self.rng.chance(50) {
            self.rng.choose(hostile_strings()).to_string()
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
        match self.rng.below(if depth < 3 { 19 } else { 16 }) {
            0 => self.constant(nodes),
            1 | 2 => self.i64_step(nodes),
            3 | 4 => self.f64_step(nodes),
            5 => self.compare_step(nodes),
            6 => self.logic_step(nodes),
            7 => self.string_step(nodes),
            8..=10 => self.tensor_step(nodes),
            11 => self.fork_step(nodes),
            12 => {
                let args: Vec<String> = (0..1 + self.rng.below(3))
                    .map(|_| {
                        let key = self.any_key(true);
                        self.pick(&key)
                    })
                    .collect();
                let last = args.last().cloned().unwrap_or_default();
                let key = self.key_of(&last);
                self.push(nodes, &key, json!({"op": "sequence", "args": args}));
            }
            13 | 14 => self.data_step(nodes, depth),
            15 => self.list_region_step(nodes, depth),
            16 | 17 => self.if_step(nodes, depth),
            _ => self.loop_step(nodes, depth),
        }
    }

    /// A small constant of scalar `key`.
    fn scalar(&mut self, key: &str) -> Json {
        match key {
            "i64" => json!(self.int()),
            "f64" => self.float_json(),
            "bool" => json!(self.rng.chance(50)),
            _ => json!(self.text()),
        }
    }

    /// A visible list of `key`, made (a constant, `range` or `list`) when there is none or
    /// now and then anyway.
    fn list_of(&mut self, nodes: &mut Vec<Json>, key: &str) -> String {
        self.data = true;
        if self.has(key) && self.rng.chance(70) {
            return self.pick(key);
        }
        let item = element(key).to_string();
        let node = match self.rng.below(3) {
            0 if item == "i64" => {
                let start = self.rng.below(10) as i64 - 3;
                let end = start + self.rng.below(12) as i64 - 2;
                let a = self.push(nodes, "i64", json!({"op": "const", "value": start}));
                let b = self.push(nodes, "i64", json!({"op": "const", "value": end}));
                json!({"op": "range", "args": [a, b]})
            }
            1 if self.has(&item) => {
                let args: Vec<String> = (0..1 + self.rng.below(3))
                    .map(|_| self.pick(&item))
                    .collect();
                json!({"op": "list", "args": args})
            }
            _ => {
                let values: Vec<Json> =
                    (0..self.rng.below(6)).map(|_| self.scalar(&item)).collect();
                let ty: Json = serde_json::from_str(
                    DATA.iter()
                        .find(|(k, _)| *k == key)
                        .map_or(r#"{"list": "i64"}"#, |(_, t)| t),
                )
                .unwrap_or_default();
                json!({"op": "const", "type": ty, "value": values})
            }
        };
        self.push(nodes, key, node)
    }

    /// A visible option of `key` (`option<i64>` or `option<f64>`), made when there is none.
    fn option_of(&mut self, nodes: &mut Vec<Json>, key: &str) -> String {
        self.data = true;
        if self.has(key) && self.rng.chance(60) {
            return self.pick(key);
        }
        let item = if key == "option<i64>" { "i64" } else { "f64" };
        let node = if self.rng.chance(30) {
            json!({"op": "none", "type": {"option": item}})
        } else {
            json!({"op": "some", "args": [self.pick(item)]})
        };
        self.push(nodes, key, node)
    }

    /// A list, option or record op (format version 2).
    fn data_step(&mut self, nodes: &mut Vec<Json>, _depth: usize) {
        let lists = ["list<i64>", "list<f64>", "list<bool>", "list<string>"];
        let key = *self.rng.choose(&lists);
        match self.rng.below(12) {
            0 => {
                let l = self.list_of(nodes, key);
                let op = *self.rng.choose(&["reverse", "concat", "slice"]);
                let args = match op {
                    "reverse" => json!([l]),
                    "concat" => json!([l, self.list_of(nodes, key)]),
                    _ => {
                        let start = self.rng.below(5) as i64 - 1;
                        let len = self.rng.below(6) as i64;
                        let a = self.push(nodes, "i64", json!({"op": "const", "value": start}));
                        let b = self.push(nodes, "i64", json!({"op": "const", "value": len}));
                        json!([l, a, b])
                    }
                };
                self.push(nodes, key, json!({"op": op, "args": args}));
            }
            1 => {
                let l = self.list_of(nodes, key);
                self.push(nodes, "i64", json!({"op": "len", "args": [l]}));
            }
            2 => {
                // Positions from the i64 pool: often past the end (index_out_of_range).
                let l = self.list_of(nodes, key);
                let i = if self.rng.chance(60) {
                    let i = self.rng.below(4) as i64;
                    self.push(nodes, "i64", json!({"op": "const", "value": i}))
                } else {
                    self.pick("i64")
                };
                self.push(
                    nodes,
                    element(key).to_string().as_str(),
                    json!({"op": "get", "args": [l, i]}),
                );
            }
            3 => {
                let key = *self.rng.choose(&["list<i64>", "list<f64>"]);
                let l = self.list_of(nodes, key);
                let item = element(key).to_string();
                match self.rng.below(3) {
                    0 => {
                        self.push(nodes, &item, json!({"op": "sum", "args": [l]}));
                    }
                    _ => {
                        let op = *self.rng.choose(&["min", "max"]);
                        self.push(
                            nodes,
                            &format!("option<{item}>"),
                            json!({"op": op, "args": [l]}),
                        );
                    }
                }
            }
            4 => {
                let l = self.list_of(nodes, "list<bool>");
                let op = *self.rng.choose(&["any", "all"]);
                self.push(nodes, "bool", json!({"op": op, "args": [l]}));
            }
            5 | 6 => {
                let key = *self.rng.choose(&["option<i64>", "option<f64>"]);
                let o = self.option_of(nodes, key);
                let item = if key == "option<i64>" { "i64" } else { "f64" };
                match self.rng.below(3) {
                    0 => {
                        self.push(nodes, "bool", json!({"op": "is_some", "args": [o]}));
                    }
                    1 => {
                        let d = self.pick(item);
                        self.push(nodes, item, json!({"op": "unwrap_or", "args": [o, d]}));
                    }
                    _ => {
                        self.push(nodes, item, json!({"op": "unwrap", "args": [o]}));
                    }
                }
            }
            7 => {
                self.data = true;
                let (k, v) = (self.pick("i64"), self.pick("f64"));
                self.push(
                    nodes,
                    "record",
                    json!({"op": "record", "fields": ["v", "k"], "args": [v, k]}),
                );
            }
            8 | 9 if self.has("record") => {
                let r = self.pick("record");
                if self.rng.chance(50) {
                    let (field, key) = *self.rng.choose(&[("k", "i64"), ("v", "f64")]);
                    self.push(
                        nodes,
                        key,
                        json!({"op": "field", "field": field, "args": [r]}),
                    );
                } else {
                    let v = self.pick("f64");
                    self.push(
                        nodes,
                        "record",
                        json!({"op": "with", "field": "v", "args": [r, v]}),
                    );
                }
            }
            10 if self.rng.chance(40) => {
                // JSON out and back in: a list's text read as the same type, or a string's
                // (often not JSON at all: invalid_value at the node).
                let l = self.list_of(nodes, key);
                let text = if self.rng.chance(70) {
                    self.push(nodes, "string", json!({"op": "json_emit", "args": [l]}))
                } else {
                    self.pick("string")
                };
                let ty: Json = serde_json::from_str(
                    DATA.iter()
                        .find(|(k, _)| *k == key)
                        .map_or(r#"{"list": "i64"}"#, |(_, t)| t),
                )
                .unwrap_or_default();
                self.push(
                    nodes,
                    key,
                    json!({"op": "json_parse", "type": ty, "args": [text]}),
                );
            }
            10 => {
                let (a, b) = (self.pick("string"), self.pick("string"));
                if self.rng.chance(50) {
                    self.push(
                        nodes,
                        "list<string>",
                        json!({"op": "split", "args": [a, b]}),
                    );
                } else {
                    let l = self.list_of(nodes, "list<string>");
                    self.push(nodes, "string", json!({"op": "join", "args": [l, b]}));
                }
            }
            _ => {
                // `zip`, read back through the records' fields: pairs of i64 and f64.
                let (a, b) = (
                    self.list_of(nodes, "list<i64>"),
                    self.list_of(nodes, "list<f64>"),
                );
                let z = self.push(nodes, "list<zipped>", json!({"op": "zip", "args": [a, b]}));
                if self.rng.chance(50) {
                    let i = self.push(nodes, "i64", json!({"op": "const", "value": 0}));
                    let pair = self.push(nodes, "pair", json!({"op": "get", "args": [z, i]}));
                    let (field, key) = *self.rng.choose(&[("first", "i64"), ("second", "f64")]);
                    self.push(
                        nodes,
                        key,
                        json!({"op": "field", "field": field, "args": [pair]}),
                    );
                }
            }
        }
    }

    /// `map`, `filter`, `fold`, `sort_by` or `group_by` over a list, with a random body; or a
    /// `cached` region over any visible value.
    fn list_region_step(&mut self, nodes: &mut Vec<Json>, depth: usize) {
        if depth >= 3 {
            return self.data_step(nodes, depth);
        }
        let lists = ["list<i64>", "list<f64>", "list<bool>", "list<string>"];
        let key = *self.rng.choose(&lists);
        let l = self.list_of(nodes, key);
        let item_key = element(key).to_string();
        let x = self.id();
        match self.rng.below(6) {
            5 => {
                // Memoized: both engines of a differential run share the host's memo, so the
                // second one is served what the first stored.
                self.data = true;
                let arg_key = self.any_key(false);
                let a = self.pick(&arg_key);
                let to = *self.rng.choose(&["i64", "f64", "bool", "string"]);
                let (body, result) = self.region(&[(&arg_key, &x)], &[to.to_string()], depth);
                let cache_key = format!("k{}", self.rng.below(3));
                let node = json!({"op": "cached", "key": cache_key, "args": [a],
                    "body": {"params": [x], "nodes": body, "result": result[0]}});
                self.push(nodes, to, node);
            }
            3 => {
                // Sort by a key of any orderable type the body computes.
                let to = *self.rng.choose(&["i64", "f64", "bool", "string"]);
                let (body, result) = self.region(&[(&item_key, &x)], &[to.to_string()], depth);
                let node = json!({"op": "sort_by", "args": [l],
                    "body": {"params": [x], "nodes": body, "result": result[0]}});
                self.push(nodes, key, node);
            }
            4 => {
                let to = *self.rng.choose(&["i64", "bool", "string"]);
                let (body, result) = self.region(&[(&item_key, &x)], &[to.to_string()], depth);
                let node = json!({"op": "group_by", "args": [l],
                    "body": {"params": [x], "nodes": body, "result": result[0]}});
                // One key per element and key type (`list<…>`: never a loop state).
                let groups = self.push(nodes, &format!("list<groups {key} {to}>"), node);
                let n = self.push(nodes, "i64", json!({"op": "len", "args": [groups]}));
                let _ = n;
            }
            0 => {
                let to = *self.rng.choose(&["i64", "f64", "bool", "string"]);
                let (body, result) = self.region(&[(&item_key, &x)], &[to.to_string()], depth);
                let node = json!({"op": "map", "args": [l],
                    "body": {"params": [x], "nodes": body, "result": result[0]}});
                self.push(nodes, &format!("list<{to}>"), node);
            }
            1 => {
                if !self.has("bool") {
                    let (a, b) = (self.pick("i64"), self.pick("i64"));
                    self.push(nodes, "bool", json!({"op": "lt", "args": [a, b]}));
                }
                let (body, result) = self.region(&[(&item_key, &x)], &["bool".to_string()], depth);
                let node = json!({"op": "filter", "args": [l],
                    "body": {"params": [x], "nodes": body, "result": result[0]}});
                self.push(nodes, key, node);
            }
            _ => {
                let acc_key = *self.rng.choose(&["i64", "f64"]);
                let init = self.pick(acc_key);
                let acc = self.id();
                let (body, result) = self.region(
                    &[(acc_key, &acc), (&item_key, &x)],
                    &[acc_key.to_string()],
                    depth,
                );
                let node = json!({"op": "fold", "args": [l, init],
                    "body": {"params": [acc, x], "nodes": body, "result": result[0]}});
                self.push(nodes, acc_key, node);
            }
        }
    }

    /// The type key of a visible node.
    fn key_of(&self, id: &str) -> String {
        self.pools
            .iter()
            .find(|(_, ids)| ids.iter().any(|i| i == id))
            .map_or_else(|| "i64".to_string(), |(k, _)| k.clone())
    }

    fn constant(&mut self, nodes: &mut Vec<Json>) {
        match self.rng.below(4) {
            0 => {
                let v = self.int();
                self.push(nodes, "i64", json!({"op": "const", "value": v}));
            }
            1 => {
                let v = self.float_json();
                let node = json!({"op": "const", "type": "f64", "value": v});
                self.push(nodes, "f64", node);
            }
            2 => {
                let v = self.rng.chance(50);
                self.push(nodes, "bool", json!({"op": "const", "value": v}));
            }
            _ => {
                let v = self.text();
                self.push(nodes, "string", json!({"op": "const", "value": v}));
            }
        }
    }

    fn i64_step(&mut self, nodes: &mut Vec<Json>) {
        let (a, b) = (self.pick("i64"), self.pick("i64"));
        let node = match self.rng.below(5) {
            0 => json!({"op": self.rng.choose(&["neg", "abs"]), "args": [a]}),
            1 => {
                let x = self.pick("f64");
                json!({"op": "to_i64", "args": [x]})
            }
            2 if self.rng.chance(40) => {
                let c = self.pick("i64");
                json!({"op": "clamp", "args": [a, b, c]})
            }
            _ => json!({"op": self.rng.choose(I64_BINARY), "args": [a, b]}),
        };
        self.push(nodes, "i64", node);
    }

    fn f64_step(&mut self, nodes: &mut Vec<Json>) {
        let (a, b) = (self.pick("f64"), self.pick("f64"));
        let node = match self.rng.below(6) {
            0 | 1 => json!({"op": self.rng.choose(F64_UNARY), "args": [a]}),
            2 => {
                let i = self.pick("i64");
                json!({"op": "to_f64", "args": [i]})
            }
            3 if self.rng.chance(40) => {
                let c = self.pick("f64");
                json!({"op": "clamp", "args": [a, b, c]})
            }
            _ => json!({"op": self.rng.choose(F64_BINARY), "args": [a, b]}),
        };
        self.push(nodes, "f64", node);
    }

    fn compare_step(&mut self, nodes: &mut Vec<Json>) {
        let key = *self.rng.choose(&["i64", "f64", "f64", "string", "bool"]);
        if !self.has(key) {
            return;
        }
        let op = if matches!(key, "string" | "bool") {
            *self.rng.choose(&["eq", "ne"])
        } else {
            *self.rng.choose(ORDERED)
        };
        let (a, b) = (self.pick(key), self.pick(key));
        self.push(nodes, "bool", json!({"op": op, "args": [a, b]}));
    }

    fn logic_step(&mut self, nodes: &mut Vec<Json>) {
        if !self.has("bool") {
            return self.compare_step(nodes);
        }
        let op = *self.rng.choose(&["and", "or", "xor", "not"]);
        let (a, b) = (self.pick("bool"), self.pick("bool"));
        let args = if op == "not" {
            json!([a])
        } else {
            json!([a, b])
        };
        self.push(nodes, "bool", json!({"op": op, "args": args}));
    }

    fn string_step(&mut self, nodes: &mut Vec<Json>) {
        match self.rng.below(6) {
            0 => {
                let key = *self.rng.choose(&["i64", "f64"]);
                let a = self.pick(key);
                self.push(nodes, "string", json!({"op": "to_string", "args": [a]}));
            }
            1 => {
                let a = self.pick("string");
                self.push(nodes, "i64", json!({"op": "len", "args": [a]}));
            }
            2 => {
                let (a, b) = (self.pick("string"), self.pick("string"));
                self.push(nodes, "string", json!({"op": "concat", "args": [a, b]}));
            }
            3 => {
                let op = *self.rng.choose(&["contains", "starts_with", "ends_with"]);
                let (a, b) = (self.pick("string"), self.pick("string"));
                self.push(nodes, "bool", json!({"op": op, "args": [a, b]}));
            }
            4 => {
                let op = *self
                    .rng
                    .choose(&["trim", "to_lower", "to_upper", "replace"]);
                let a = self.pick("string");
                let args = if op == "replace" {
                    json!([a, self.pick("string"), self.pick("string")])
                } else {
                    json!([a])
                };
                self.push(nodes, "string", json!({"op": op, "args": args}));
            }
            _ => {
                let a = self.pick("string");
                if self.rng.chance(70) {
                    // Small non-negative positions mostly; a negative length now and then.
                    let start = self.rng.below(6) as i64;
                    let len = self.rng.below(8) as i64 - 1;
                    let start = self.push(nodes, "i64", json!({"op": "const", "value": start}));
                    let len = self.push(nodes, "i64", json!({"op": "const", "value": len}));
                    self.push(
                        nodes,
                        "string",
                        json!({"op": "substring", "args": [a, start, len]}),
                    );
                } else {
                    let (op, key) = *self
                        .rng
                        .choose(&[("parse_i64", "i64"), ("parse_f64", "f64")]);
                    self.push(nodes, key, json!({"op": op, "args": [a]}));
                }
            }
        }
    }

    fn tensor_step(&mut self, nodes: &mut Vec<Json>) {
        let shape = *self.rng.choose(SHAPES);
        let key = tensor_key(shape);
        if !self.has(&key) || self.rng.chance(25) {
            let count: u32 = shape.iter().product();
            let node = match self.rng.below(4) {
                0 => json!({"op": "iota", "shape": shape}),
                1 => json!({"op": "fill", "shape": shape, "value": self.float_json()}),
                2 if shape.is_empty() => {
                    let x = self.pick("f64");
                    json!({"op": "to_tensor", "args": [x]})
                }
                _ => {
                    let data: Vec<Json> = (0..count).map(|_| self.float_json()).collect();
                    json!({"op": "const", "type": {"tensor": shape}, "value": data})
                }
            };
            self.push(nodes, &key, node);
            return;
        }
        let a = self.pick(&key);
        match self.rng.below(9) {
            7 => self.broadcast_step(nodes, shape, &a),
            8 => self.axis_step(nodes, shape, &a),
            0 | 1 => {
                let op = self.rng.choose(TENSOR_UNARY);
                self.push(nodes, &key, json!({"op": op, "args": [a]}));
            }
            2 if self.rng.chance(30) => {
                // Bounds of the same shape or `[]`, either side larger.
                let bound = |this: &mut Self| {
                    if this.has("tensor[]") && this.rng.chance(50) {
                        this.pick("tensor[]")
                    } else {
                        this.pick(&key)
                    }
                };
                let (lo, hi) = (bound(self), bound(self));
                self.push(nodes, &key, json!({"op": "clamp", "args": [a, lo, hi]}));
            }
            2 | 3 => {
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
                let op = self.rng.choose(TENSOR_BINARY);
                self.push(nodes, &key, json!({"op": op, "args": args}));
            }
            4 => {
                let op = self.rng.choose(REDUCTIONS);
                let r = self.push(nodes, "tensor[]", json!({"op": op, "args": [a]}));
                if self.rng.chance(50) {
                    self.push(nodes, "f64", json!({"op": "to_f64", "args": [r]}));
                }
            }
            5 => self.matrix_step(nodes, shape, &a),
            _ => {
                let count: u32 = shape.iter().product();
                if count == 1 {
                    self.push(nodes, "f64", json!({"op": "to_f64", "args": [a]}));
                    return;
                }
                let to: Vec<u32> = match (shape, count) {
                    ([2, 3], _) => vec![3, 2],
                    (_, 9) => vec![3, 3],
                    (_, 64) => vec![4, 16],
                    (_, n) => vec![n],
                };
                let to_key = tensor_key(&to);
                let node = json!({"op": "reshape", "args": [a], "shape": to});
                self.push(nodes, &to_key, node);
            }
        }
    }

    /// A binary op (or `clamp`) of `a` and a tensor of another shape that broadcasts with
    /// `shape` by NumPy's rule, either side first.
    fn broadcast_step(&mut self, nodes: &mut Vec<Json>, shape: &[u32], a: &str) {
        let partners: Vec<(&[u32], Vec<u32>)> = SHAPES
            .iter()
            .copied()
            .filter(|s| !s.is_empty() && *s != shape && self.has(&tensor_key(s)))
            .filter_map(|s| graphjit_value::axes::broadcast(shape, s).map(|out| (s, out)))
            .collect();
        if partners.is_empty() {
            return;
        }
        let (other, out) = self.rng.choose(&partners).clone();
        let b = self.pick(&tensor_key(other));
        let node = if self.rng.chance(20) {
            json!({"op": "clamp", "args": [a, b, a]})
        } else {
            let op = self.rng.choose(TENSOR_BINARY);
            let args = if self.rng.chance(50) {
                json!([a, b])
            } else {
                json!([b, a])
            };
            json!({"op": op, "args": args})
        };
        self.push(nodes, &tensor_key(&out), node);
    }

    /// A reduction along an axis of `a` (with or without `keepdims`), or `softmax` /
    /// `log_softmax` along one; axes written from either end.
    fn axis_step(&mut self, nodes: &mut Vec<Json>, shape: &[u32], a: &str) {
        if shape.is_empty() {
            return;
        }
        let rank = shape.len();
        let k = self.rng.below(rank);
        let axis = if self.rng.chance(50) {
            k as i64
        } else {
            k as i64 - rank as i64
        };
        if self.rng.chance(30) {
            // Over the axes `k..`: scale (and bias) of that block's shape, when one exists.
            let key = tensor_key(&shape[k..]);
            if self.has(&key) {
                let scale = self.pick(&key);
                let mut args = vec![a.to_owned(), scale];
                if self.rng.chance(50) {
                    args.push(self.pick(&key));
                }
                let mut node = json!({"op": "layer_norm", "args": args, "axis": axis});
                if self.rng.chance(50) {
                    node["epsilon"] = json!(0.001);
                }
                self.push(nodes, &tensor_key(shape), node);
                return;
            }
        }
        if self.rng.chance(35) {
            let op = if self.rng.chance(50) {
                "softmax"
            } else {
                "log_softmax"
            };
            self.push(
                nodes,
                &tensor_key(shape),
                json!({"op": op, "args": [a], "axis": axis}),
            );
            return;
        }
        let keepdims = self.rng.chance(40);
        let out = graphjit_value::axes::reduced_shape(shape, k, keepdims);
        let op = self.rng.choose(REDUCTIONS);
        let mut node = json!({"op": op, "args": [a], "axis": axis});
        if keepdims || self.rng.chance(20) {
            node["keepdims"] = json!(keepdims);
        }
        self.push(nodes, &tensor_key(&out), node);
    }

    /// `transpose` or `matmul` of matrix `a` (shape `shape`), when shapes allow.
    fn matrix_step(&mut self, nodes: &mut Vec<Json>, shape: &[u32], a: &str) {
        let &[m, k] = shape else {
            return;
        };
        let partners: Vec<&[u32]> = SHAPES
            .iter()
            .copied()
            .filter(|s| s.len() == 2 && s[0] == k && self.has(&tensor_key(s)))
            .collect();
        if partners.is_empty() || self.rng.chance(30) {
            let flipped = tensor_key(&[k, m]);
            self.push(nodes, &flipped, json!({"op": "transpose", "args": [a]}));
            return;
        }
        let other = *self.rng.choose(&partners);
        let b = self.pick(&tensor_key(other));
        let out = tensor_key(&[m, other[1]]);
        self.push(nodes, &out, json!({"op": "matmul", "args": [a, b]}));
    }

    fn fork_step(&mut self, nodes: &mut Vec<Json>) {
        let mut args = Vec::new();
        let mut keys = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let key = self.any_key(false);
            args.push(self.pick(&key));
            keys.push(key);
        }
        let fork = self.push(nodes, "tuple", json!({"op": "fork", "args": args}));
        let index = self.rng.below(keys.len());
        let key = keys[index].clone();
        self.push(
            nodes,
            &key,
            json!({"op": "get", "args": [fork], "index": index}),
        );
    }

    /// Nodes of a region computing a value of type `key`, with the given params in scope;
    /// the region's nodes are out of scope afterwards.
    fn region(&mut self, params: &[(&str, &str)], keys: &[String], depth: usize) -> (Json, Json) {
        let saved = self.pools.clone();
        for (key, id) in params {
            self.add(key, id);
        }
        let mut inner = Vec::new();
        for _ in 0..self.rng.below(5) {
            self.step(&mut inner, depth + 1);
        }
        // A result of a scalar type nothing in scope has yet (a `map` to bool, say) is a
        // constant of the region.
        for key in keys {
            if !self.has(key) && matches!(key.as_str(), "i64" | "f64" | "bool" | "string") {
                let value = self.scalar(key);
                let ty = if key == "string" {
                    "string".to_string()
                } else {
                    key.clone()
                };
                self.push(
                    &mut inner,
                    key,
                    json!({"op": "const", "type": ty, "value": value}),
                );
            }
        }
        let results: Vec<String> = keys.iter().map(|k| self.pick(k)).collect();
        self.pools = saved;
        (json!(inner), json!(results))
    }

    fn if_step(&mut self, nodes: &mut Vec<Json>, depth: usize) {
        if !self.has("bool") {
            let (a, b) = (self.pick("i64"), self.pick("i64"));
            self.push(nodes, "bool", json!({"op": "lt", "args": [a, b]}));
        }
        let cond = self.pick("bool");
        let key = self.any_key(false);
        let keys = [key.clone()];
        let (then_nodes, then_result) = self.region(&[], &keys, depth);
        let (else_nodes, else_result) = self.region(&[], &keys, depth);
        let node = json!({
            "op": "if",
            "args": [cond],
            "then": {"nodes": then_nodes, "result": then_result[0]},
            "else": {"nodes": else_nodes, "result": else_result[0]},
        });
        self.push(nodes, &key, node);
    }

    fn loop_step(&mut self, nodes: &mut Vec<Json>, depth: usize) {
        let mut keys = Vec::new();
        let mut init = Vec::new();
        for _ in 0..1 + self.rng.below(2) {
            let key = loop {
                let key = self.any_key(false);
                // String and list states could double in length every iteration.
                if key != "string" && !key.starts_with("list<") {
                    break key;
                }
            };
            init.push(self.pick(&key));
            keys.push(key);
        }
        let index = self.id();
        let states: Vec<String> = keys.iter().map(|_| self.id()).collect();
        let mut params: Vec<(&str, &str)> = vec![("i64", index.as_str())];
        params.extend(
            keys.iter()
                .map(String::as_str)
                .zip(states.iter().map(String::as_str)),
        );
        let (body_nodes, results) = self.region(&params, &keys, depth);
        let mut param_names = vec![index.clone()];
        param_names.extend(states.iter().cloned());
        let node = json!({
            "op": "loop",
            "args": init,
            "iterations": self.rng.below(21),
            "body": {"params": param_names, "nodes": body_nodes, "results": results},
        });
        let key = if keys.len() == 1 {
            keys[0].clone()
        } else {
            "tuple".to_string()
        };
        let id = self.push(nodes, &key, node);
        if keys.len() > 1 {
            let index = self.rng.below(keys.len());
            let key = keys[index].clone();
            self.push(
                nodes,
                &key,
                json!({"op": "get", "args": [id], "index": index}),
            );
        }
    }
}
