//! The command-line contract, checked from outside exactly as the README states it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn graphjit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the graphjit binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn json_of(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn write_temp(json: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), json).expect("write graph");
    file
}

#[test]
fn run_hello_with_default_and_given_input() {
    let out = graphjit(&["run", "examples/hello.json", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json_of(&out);
    assert!(json["output"].is_object(), "{json}");
    let stats = &json["stats"];
    assert!(stats["fuel_used"].as_u64().is_some_and(|f| f > 0), "{json}");
    assert!(
        stats["compile_ms"].as_f64().is_some_and(|t| t > 0.0),
        "{json}"
    );
    assert!(stats["run_us"].as_f64().is_some(), "{json}");
    // The default disk cache is shared with earlier runs: a miss the first time, a disk hit
    // after (tests/all/cache.rs checks each path with its own directory).
    assert!(
        stats["cache"] == "miss" || stats["cache"] == "disk",
        "{json}"
    );
    assert_eq!(stats["key"].as_str().map(str::len), Some(64), "{json}");
    // The interpreter prints the same outputs.
    let eval = json_of(&graphjit(&["eval", "examples/hello.json", "--json"]));
    assert_eq!(eval["output"], json["output"]);
    // Supplying the input changes the answer.
    let other = json_of(&graphjit(&[
        "run",
        "examples/hello.json",
        "--json",
        "--input",
        "x=7",
    ]));
    assert_ne!(other["output"], json["output"]);
    assert_eq!(
        other["output"],
        json_of(&graphjit(&[
            "eval",
            "examples/hello.json",
            "--json",
            "--input",
            "x=7"
        ]))["output"]
    );
}

#[test]
fn scalar_graph_output_is_exact() {
    let g = write_temp(
        r#"{"version": 1, "nodes": [
            {"id": "x", "op": "input", "type": "i64", "default": 20},
            {"id": "y", "op": "input", "type": "f64", "default": 0.5},
            {"id": "two", "op": "const", "value": 2},
            {"id": "x2", "op": "mul", "args": ["x", "two"]},
            {"id": "xf", "op": "to_f64", "args": ["x2"]},
            {"id": "r", "op": "add", "args": ["xf", "y"]}
        ], "outputs": {"doubled": "x2", "r": "r"}}"#,
    );
    let path = g.path().to_str().expect("utf-8 path");
    let json = json_of(&graphjit(&["run", path, "--json", "--input", "x=21"]));
    assert_eq!(
        json["output"],
        serde_json::json!({"doubled": 42, "r": 42.5})
    );
}

#[test]
fn invalid_graph_exits_2_with_typed_json() {
    let g = write_temp(
        r#"{"version": 1, "nodes": [{"id": "a", "op": "neg", "args": ["ghost"]}], "outputs": {"a": "a"}}"#,
    );
    let out = graphjit(&["run", g.path().to_str().expect("path"), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = &json_of(&out)["error"];
    assert_eq!(err["kind"], "invalid_graph");
    assert_eq!(err["stage"], "parse");
    assert_eq!(err["node"], "a");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("ghost")));
    assert!(err["remediation"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(graphjit(&["run"]).status.code(), Some(2));
    assert_eq!(
        graphjit(&["run", "examples/hello.json", "--frobnicate"])
            .status
            .code(),
        Some(2)
    );
    let out = graphjit(&[
        "run",
        "examples/hello.json",
        "--json",
        "--input",
        "x=notanumber",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["error"]["kind"], "invalid_input");
    assert!(
        json_of(&out)["error"]["remediation"]
            .as_str()
            .is_some_and(|r| r.ends_with("(--input NAME=VALUE)"))
    );
    let out = graphjit(&[
        "run",
        "examples/hello.json",
        "--json",
        "--input",
        "nosuch=1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // An input given twice is refused, not last-one-wins.
    let out = graphjit(&[
        "run",
        "examples/hello.json",
        "--json",
        "--input",
        "x=1",
        "--input",
        "x=2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let error = &json_of(&out)["error"];
    assert_eq!(
        (&error["kind"], &error["node"]),
        (&serde_json::json!("invalid_input"), &serde_json::json!("x"))
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("given twice")),
        "{error}"
    );
}

#[test]
fn fuel_bomb_exits_4_quickly() {
    let started = std::time::Instant::now();
    let out = graphjit(&[
        "run",
        "examples/fuel-bomb.json",
        "--fuel",
        "1000000",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = &json_of(&out)["error"];
    assert_eq!(err["kind"], "fuel_exhausted");
    assert_eq!(err["stage"], "run");
    // The library names the setting; the CLI names its flag.
    assert!(
        err["remediation"]
            .as_str()
            .is_some_and(|r| r.ends_with("(--fuel)")),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs_f64() < 10.0,
        "includes compiling; the run itself is bounded by fuel"
    );
}

#[test]
fn runtime_logic_error_exits_4() {
    let g = write_temp(
        r#"{"version": 1, "nodes": [
            {"id": "a", "op": "input", "type": "i64", "default": 1},
            {"id": "z", "op": "input", "type": "i64", "default": 0},
            {"id": "q", "op": "rem", "args": ["a", "z"]}
        ], "outputs": {"q": "q"}}"#,
    );
    let out = graphjit(&["run", g.path().to_str().expect("path"), "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let err = &json_of(&out)["error"];
    assert_eq!(
        (err["kind"].as_str(), err["node"].as_str()),
        (Some("division_by_zero"), Some("q"))
    );
}

#[test]
fn compile_failure_exits_3() {
    // With no rustc to be found, compilation fails with a typed toolchain error.
    let out = Command::new(env!("CARGO_BIN_EXE_graphjit"))
        .args(["run", "examples/hello.json", "--json"])
        .current_dir(repo())
        .env("PATH", "/nonexistent")
        .env("GRAPHJIT_RUSTC", "/nonexistent/rustc")
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json_of(&out)["error"]["kind"], "toolchain");
}

#[test]
fn compile_emits_deterministic_safe_rust_and_a_component() {
    let a = graphjit(&["compile", "examples/tensor.json", "--emit", "rust"]);
    let b = graphjit(&["compile", "examples/tensor.json", "--emit", "rust"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let source = String::from_utf8(a.stdout).expect("utf-8");
    assert!(source.contains("fn graph("));
    for banned in ["unsafe", ".unwrap()", ".expect(", "panic!", "unreachable!"] {
        assert!(!source.contains(banned), "generated code contains {banned}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = dir.path().join("g.wasm");
    let out = graphjit(&[
        "compile",
        "examples/tensor.json",
        "--emit",
        "wasm",
        "-o",
        wasm.to_str().expect("path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&wasm).expect("component written");
    assert_eq!(&bytes[..4], b"\0asm");
}

#[test]
fn every_example_runs_and_agrees_with_eval() {
    for example in ["examples/hello.json", "examples/tensor.json"] {
        let run = json_of(&graphjit(&["run", example, "--json"]));
        let eval = json_of(&graphjit(&["eval", example, "--json"]));
        assert!(run.get("output").is_some(), "{example}: {run}");
        assert_eq!(run["output"], eval["output"], "{example}");
    }
}

#[test]
fn verify_measures_each_item_and_fails_without_evidence() {
    let tla = tempfile::tempdir().expect("temp dir");
    let verify = |record: Option<&str>| {
        if let Some(text) = record {
            std::fs::write(tla.path().join("last-check.txt"), text).expect("record");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_graphjit"))
            .args([
                "verify",
                "examples/kernels.json",
                "--json",
                "--no-disk-cache",
            ])
            .env("GRAPHJIT_TLA_HOME", tla.path())
            .current_dir(repo())
            .output()
            .expect("runs");
        (out.status.code(), json_of(&out))
    };
    let item = |json: &serde_json::Value, prefix: &str| {
        json["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["item"].as_str().is_some_and(|t| t.starts_with(prefix)))
            .cloned()
            .unwrap_or_else(|| panic!("no item {prefix}: {json}"))
    };
    // No TLC result yet: that item fails, and so does the command.
    let (code, json) = verify(None);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(item(&json, "TLA+")["ok"], false);
    assert_eq!(item(&json, "Generated code")["ok"], true, "{json}");
    assert_eq!(item(&json, "No unsafe")["ok"], true, "{json}");
    let inventory = item(&json, "Assumption inventory");
    assert!(
        inventory["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("kernels")),
        "{inventory}"
    );
    // A TLC run that failed a spec still fails the item.
    let (code, json) = verify(Some(
        "date: 2026-11-26T00:00:00Z\nfailed: 1\nFootprint ok: x\n",
    ));
    assert_eq!(code, Some(1));
    assert_eq!(item(&json, "TLA+")["ok"], false);
    let (code, json) = verify(Some(
        "date: 2026-11-26T00:00:00Z\nfailed: 0\nFootprint              ok: no error (1 states)\n",
    ));
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["ok"], true);
}

#[test]
fn fusion_keeps_the_answer_and_drops_the_intermediate_buffers() {
    let graph = write_temp(
        r#"{"version": 1, "nodes": [
            {"id": "t", "op": "iota", "shape": [262144]},
            {"id": "k", "op": "const", "type": {"tensor": []}, "value": [0.000001]},
            {"id": "a", "op": "mul", "args": ["t", "k"]},
            {"id": "b", "op": "tanh", "args": ["a"]},
            {"id": "c", "op": "relu", "args": ["b"]},
            {"id": "d", "op": "add", "args": ["c", "a"]},
            {"id": "s", "op": "sum", "args": ["d"]}
        ], "outputs": {"s": "s"}}"#,
    );
    let path = graph.path().to_str().expect("utf-8 path");
    let run = |passes: &str| {
        json_of(&graphjit(&[
            "run",
            path,
            "--json",
            "--no-disk-cache",
            "--passes",
            passes,
        ]))
    };
    let (plain, fused) = (run("none"), run("all"));
    assert_eq!(plain["output"], fused["output"], "bit-identical answer");
    let peak = |j: &serde_json::Value| j["stats"]["peak_memory_bytes"].as_u64().expect("peak");
    assert!(
        peak(&fused) * 5 < peak(&plain) * 2,
        "fused peak {} is not under 0.4x of {}",
        peak(&fused),
        peak(&plain)
    );
    assert_ne!(
        plain["stats"]["key"], fused["stats"]["key"],
        "passes are in the key"
    );
}

#[test]
fn eval_obeys_deadline_ms_and_the_graph_cannot_raise_fuel() {
    // All the fuel a u64 holds: only the wall clock can stop this loop.
    let started = std::time::Instant::now();
    let out = graphjit(&[
        "eval",
        "examples/fuel-bomb.json",
        "--fuel",
        "18446744073709551615",
        "--deadline-ms",
        "300",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = &json_of(&out)["error"];
    assert_eq!(err["kind"], "deadline_exceeded", "{err}");
    assert_eq!(err["stage"], "eval", "{err}");
    assert!(
        started.elapsed().as_secs_f64() < 5.0,
        "{:?}",
        started.elapsed()
    );
    // The graph asks for 10^18 fuel; the caller's --fuel is what it gets.
    let out = graphjit(&[
        "eval",
        "tests/regressions/raises-its-own-fuel.json",
        "--fuel",
        "1000000",
        "--deadline-ms",
        "5000",
        "--json",
    ]);
    let err = &json_of(&out)["error"];
    assert_eq!(err["kind"], "fuel_exhausted", "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("the budget is 1000000")),
        "{err}"
    );
}

#[test]
fn a_failed_effect_reports_its_class_in_json() {
    // A loopback port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let g = write_temp(&format!(
        r#"{{"version": 1, "nodes": [
            {{"id": "body", "op": "http", "method": "GET", "url": "http://127.0.0.1:{port}/x"}}
        ], "outputs": {{"body": "body"}},
        "footprint": {{"http": [{{"method": "GET", "scheme": "http", "host": "127.0.0.1",
                                  "port": {port}, "path_prefix": "/"}}]}}}}"#
    ));
    let path = g.path().to_str().expect("path");
    let out = graphjit(&["eval", path, "--json", "--allow-loopback"]);
    assert_eq!(out.status.code(), Some(4));
    let err = &json_of(&out)["error"];
    assert_eq!(
        (
            err["kind"].as_str(),
            err["class"].as_str(),
            err["node"].as_str()
        ),
        (Some("effect_failed"), Some("connection"), Some("body")),
        "{err}"
    );
    // Other kinds carry no class.
    let out = graphjit(&["eval", "tests/graphs/division-by-zero.json", "--json"]);
    assert!(json_of(&out)["error"].get("class").is_none());
}

#[test]
fn a_graph_with_named_dims_takes_tensors_of_any_binding_on_the_command_line() {
    let file = write_temp(
        r#"{"version": 2, "nodes": [
            {"id": "x", "op": "input", "type": {"tensor": ["batch", 2]}},
            {"id": "p", "op": "softmax", "args": ["x"]}
        ], "outputs": {"p": "p"}}"#,
    );
    let path = file.path().to_str().expect("utf-8 path");
    for (mode, input, shape) in [
        ("eval", "x=[[1, 2], [3, 5], [0, 0]]", [3, 2]),
        ("run", "x=[[1, 2], [3, 5], [0, 0]]", [3, 2]),
        ("run", r#"x={"shape": [1, 2], "data": [1, 2]}"#, [1, 2]),
    ] {
        let out = graphjit(&[mode, path, "--json", "--no-disk-cache", "--input", input]);
        let json = json_of(&out);
        assert_eq!(
            json["output"]["p"]["shape"],
            serde_json::json!(shape),
            "{mode} {input}: {json}"
        );
    }
    let out = graphjit(&[
        "run",
        path,
        "--json",
        "--no-disk-cache",
        "--input",
        "x=[[1, 2, 3]]",
    ]);
    let json = json_of(&out);
    assert_eq!(json["error"]["kind"], "invalid_input", "{json}");
    assert_eq!(json["error"]["node"], "x", "{json}");
    let out = graphjit(&["run", path, "--json", "--input", "x=[[1, 2], [3]]"]);
    assert_eq!(json_of(&out)["error"]["kind"], "invalid_input");
    let out = graphjit(&["explain", path, "--input", "x=[[1, 2]]"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("specialization of "), "{text}");
    assert!(text.contains("batch = 1"), "{text}");
    let out = graphjit(&["explain", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("inputs   x: tensor[batch, 2]"), "{text}");
    assert!(text.contains("dims     batch"), "{text}");
}
