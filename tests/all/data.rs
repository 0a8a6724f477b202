//! Structured data (format version 2): lists, records, options and bytes, their ops and the
//! regions `map`, `filter` and `fold` — the same values in `eval` and in the compiled
//! component with and without the passes, the typed errors of each op at its node in both
//! engines, and the graphs typing refuses.

use std::collections::BTreeMap;

use graphjit::{ErrorKind, Graph, RunLimits, Value};

use crate::support::{block_on, compile, eval_with, graph, run_with, unoptimized, values};

/// The outputs in eval, asserted equal (bit for bit) to the compiled run with every pass and
/// with none, as JSON.
fn agreed(g: &Graph) -> serde_json::Value {
    let limits = RunLimits::default();
    let expected = values(&eval_with(g, limits).expect("eval"));
    let optimized = values(&run_with(&compile(g), limits).expect("run"));
    let compiled = unoptimized().compile(g).expect("compiles unoptimized");
    let plain =
        values(&block_on(unoptimized().run(&compiled, &BTreeMap::new(), limits)).expect("run"));
    assert_eq!(expected, optimized, "eval vs run with the passes");
    assert_eq!(expected, plain, "eval vs run without the passes");
    serde_json::Value::Array(expected.iter().map(graphjit::value_to_json).collect())
}

/// A version 2 graph of `nodes` (JSON text) with the output `r`.
fn v2(nodes: &str) -> Graph {
    graph(&format!(
        r#"{{"version": 2, "nodes": [{nodes}], "outputs": {{"r": "r"}}}}"#
    ))
}

const ORDERS: &str = r#"{"id": "orders", "op": "input",
    "type": {"list": {"record": {"id": "i64", "total": "f64", "note": {"option": "string"}}}},
    "default": [{"id": 1, "total": 5.5}, {"id": 2, "total": 20.25, "note": "rush"},
                {"id": 3, "total": 12.0, "note": null}, {"id": 4, "total": -0.0, "note": "é"}]}"#;

#[test]
fn a_filter_map_fold_pipeline_over_records_agrees_in_both_engines() {
    let g = v2(&format!(
        r#"{ORDERS},
        {{"id": "limit", "op": "const", "value": 10.0}},
        {{"id": "big", "op": "filter", "args": ["orders"], "body": {{"params": ["o"], "nodes": [
            {{"id": "t", "op": "field", "field": "total", "args": ["o"]}},
            {{"id": "over", "op": "gt", "args": ["t", "limit"]}}], "result": "over"}}}},
        {{"id": "totals", "op": "map", "args": ["big"], "body": {{"params": ["p"], "nodes": [
            {{"id": "t2", "op": "field", "field": "total", "args": ["p"]}}], "result": "t2"}}}},
        {{"id": "notes", "op": "map", "args": ["orders"], "body": {{"params": ["q"], "nodes": [
            {{"id": "n", "op": "field", "field": "note", "args": ["q"]}},
            {{"id": "dash", "op": "const", "value": "-"}},
            {{"id": "txt", "op": "unwrap_or", "args": ["n", "dash"]}}], "result": "txt"}}}},
        {{"id": "zero", "op": "const", "value": 0}},
        {{"id": "ids", "op": "fold", "args": ["orders", "zero"], "body": {{"params": ["acc", "x"],
            "nodes": [{{"id": "i", "op": "field", "field": "id", "args": ["x"]}},
                      {{"id": "s", "op": "add", "args": ["acc", "i"]}}], "result": "s"}}}},
        {{"id": "sum", "op": "sum", "args": ["totals"]}},
        {{"id": "max", "op": "max", "args": ["totals"]}},
        {{"id": "count", "op": "len", "args": ["big"]}},
        {{"id": "r", "op": "record", "fields": ["sum", "max", "count", "notes", "ids"],
          "args": ["sum", "max", "count", "notes", "ids"]}}"#
    ));
    assert_eq!(
        agreed(&g),
        serde_json::json!([{"count": 2, "ids": 10, "max": 20.25, "notes": ["-", "rush", "-", "é"],
                            "sum": 32.25}])
    );
}

#[test]
fn list_record_and_option_ops_agree_in_both_engines() {
    let list = r#"{"id": "xs", "op": "const", "type": {"list": "i64"}, "value": [3, 1, 4, 1, 5]},
                  {"id": "one", "op": "const", "value": 1}, {"id": "two", "op": "const", "value": 2}"#;
    let cases = [
        (
            r#"{"id": "r", "op": "reverse", "args": ["xs"]}"#,
            serde_json::json!([5, 1, 4, 1, 3]),
        ),
        (
            r#"{"id": "r", "op": "slice", "args": ["xs", "one", "two"]}"#,
            serde_json::json!([1, 4]),
        ),
        (
            r#"{"id": "r", "op": "get", "args": ["xs", "two"]}"#,
            serde_json::json!(4),
        ),
        (
            r#"{"id": "r", "op": "concat", "args": ["xs", "xs"]}"#,
            serde_json::json!([3, 1, 4, 1, 5, 3, 1, 4, 1, 5]),
        ),
        (
            r#"{"id": "r", "op": "range", "args": ["two", "one"]}"#,
            serde_json::json!([]),
        ),
        (
            r#"{"id": "r", "op": "min", "args": ["xs"]}"#,
            serde_json::json!(1),
        ),
        (
            r#"{"id": "r", "op": "list", "args": ["two", "one", "two"]}"#,
            serde_json::json!([2, 1, 2]),
        ),
        (
            r#"{"id": "m", "op": "map", "args": ["xs"], "body": {"params": ["x"], "nodes": [
              {"id": "b", "op": "gt", "args": ["x", "two"]}], "result": "b"}},
            {"id": "r", "op": "fork", "args": ["any", "all"]},
            {"id": "any", "op": "any", "args": ["m"]}, {"id": "all", "op": "all", "args": ["m"]}"#,
            serde_json::json!([[true, false]]),
        ),
        (
            r#"{"id": "rec", "op": "record", "fields": ["b", "a"], "args": ["one", "xs"]},
            {"id": "r", "op": "with", "field": "b", "args": ["rec", "two"]}"#,
            serde_json::json!({"a": [3, 1, 4, 1, 5], "b": 2}),
        ),
        (
            r#"{"id": "s", "op": "some", "args": ["xs"]},
            {"id": "r", "op": "fork", "args": ["is", "u"]},
            {"id": "is", "op": "is_some", "args": ["s"]}, {"id": "u", "op": "unwrap", "args": ["s"]}"#,
            serde_json::json!([[true, [3, 1, 4, 1, 5]]]),
        ),
        (
            r#"{"id": "n", "op": "none", "type": {"option": "f64"}},
            {"id": "h", "op": "const", "value": 0.5},
            {"id": "r", "op": "unwrap_or", "args": ["n", "h"]}"#,
            serde_json::json!(0.5),
        ),
        (
            r#"{"id": "e", "op": "const", "type": {"list": "f64"}, "value": []},
            {"id": "r", "op": "fork", "args": ["s", "m"]},
            {"id": "s", "op": "sum", "args": ["e"]}, {"id": "m", "op": "max", "args": ["e"]}"#,
            serde_json::json!([[0.0, null]]),
        ),
        (
            r#"{"id": "b", "op": "const", "type": "bytes", "value": [0, 255]},
            {"id": "r", "op": "len", "args": ["c"]}, {"id": "c", "op": "concat", "args": ["b", "b"]}"#,
            serde_json::json!(4),
        ),
    ];
    for (nodes, expected) in cases {
        let g = v2(&format!("{list}, {nodes}"));
        let got = agreed(&g);
        // A fork's outputs are one tuple (an array); every other case has one output.
        let got = match expected {
            serde_json::Value::Array(ref e) if e.first().is_some_and(|x| x.is_array()) => got,
            _ => got.get(0).cloned().unwrap_or_default(),
        };
        assert_eq!(got, expected, "{nodes}");
    }
}

#[test]
fn the_ops_fail_with_their_typed_errors_at_the_node_in_both_engines() {
    let list = r#"{"id": "xs", "op": "const", "type": {"list": "i64"}, "value": [9223372036854775807, 1]},
                  {"id": "five", "op": "const", "value": 5}, {"id": "neg", "op": "const", "value": -1}"#;
    let cases = [
        (
            r#"{"id": "r", "op": "get", "args": ["xs", "five"]}"#,
            ErrorKind::IndexOutOfRange,
        ),
        (
            r#"{"id": "r", "op": "get", "args": ["xs", "neg"]}"#,
            ErrorKind::IndexOutOfRange,
        ),
        (
            r#"{"id": "r", "op": "slice", "args": ["xs", "neg", "five"]}"#,
            ErrorKind::InvalidValue,
        ),
        (
            r#"{"id": "r", "op": "sum", "args": ["xs"]}"#,
            ErrorKind::Overflow,
        ),
        (
            r#"{"id": "n", "op": "none", "type": {"option": "i64"}},
            {"id": "r", "op": "unwrap", "args": ["n"]}"#,
            ErrorKind::MissingValue,
        ),
        // The error of an element is the body node's, on the element that fails first.
        (
            r#"{"id": "r", "op": "map", "args": ["xs"], "body": {"params": ["x"], "nodes": [
              {"id": "y", "op": "add", "args": ["x", "five"]}], "result": "y"}}"#,
            ErrorKind::Overflow,
        ),
    ];
    for (nodes, kind) in cases {
        let g = v2(&format!("{list}, {nodes}"));
        let limits = RunLimits::default();
        let eval = eval_with(&g, limits).expect_err("eval fails");
        let run = run_with(&compile(&g), limits).expect_err("run fails");
        let node = if nodes.contains(r#""id": "y""#) {
            "y"
        } else {
            "r"
        };
        for e in [&eval, &run] {
            assert_eq!(e.kind, kind, "{nodes}: {e}");
            assert_eq!(e.node.as_deref(), Some(node), "{nodes}: {e}");
        }
    }
}

#[test]
fn a_range_past_the_memory_limit_is_refused_in_both_engines() {
    let g = v2(r#"{"id": "a", "op": "const", "value": 0},
                  {"id": "b", "op": "const", "value": 100000000},
                  {"id": "r", "op": "range", "args": ["a", "b"]}"#);
    let limits = RunLimits {
        memory_bytes: 16 << 20,
        ..RunLimits::default()
    };
    let eval = eval_with(&g, limits).expect_err("eval refuses");
    let run = run_with(&compile(&g), limits).expect_err("run refuses");
    for e in [&eval, &run] {
        assert!(matches!(e.kind, ErrorKind::MemoryExceeded { .. }), "{e}");
    }
    assert_eq!(eval.node.as_deref(), Some("r"));
}

#[test]
fn a_long_map_is_bounded_by_fuel_in_both_engines() {
    let g = v2(r#"{"id": "a", "op": "const", "value": 0},
                  {"id": "b", "op": "const", "value": 1000000},
                  {"id": "xs", "op": "range", "args": ["a", "b"]},
                  {"id": "r", "op": "map", "args": ["xs"], "body": {"params": ["x"], "nodes": [
                     {"id": "y", "op": "mul", "args": ["x", "x"]}], "result": "y"}}"#);
    let limits = RunLimits {
        fuel: 10_000,
        ..RunLimits::default()
    };
    for e in [
        eval_with(&g, limits).expect_err("eval runs out"),
        run_with(&compile(&g), limits).expect_err("run runs out"),
    ] {
        assert!(matches!(e.kind, ErrorKind::FuelExhausted { .. }), "{e}");
    }
}

#[test]
fn typing_refuses_what_the_data_types_do_not_allow() {
    let refused = [
        // Version 1 graphs cannot use the new types.
        r#"{"version": 1, "nodes": [{"id": "r", "op": "input", "type": {"list": "i64"}}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "r", "op": "input", "type": {"option": {"option": "i64"}}}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "r", "op": "input", "type": {"record": {"a": "i64", "a": "f64"}}}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "r", "op": "input", "type": {"list": "i64", "x": 1}}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "r", "op": "record", "fields": ["x", "x"], "args": ["a", "a"]}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "r", "op": "list", "args": ["a", "b"]}, {"id": "b", "op": "const", "value": 1.5}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "xs", "op": "const", "type": {"list": "i64"}, "value": [1]}, {"id": "r", "op": "filter", "args": ["xs"], "body": {"params": ["x"], "nodes": [], "result": "x"}}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "xs", "op": "const", "type": {"list": "i64"}, "value": [1]}, {"id": "z", "op": "const", "value": 0.5}, {"id": "r", "op": "fold", "args": ["xs", "z"], "body": {"params": ["acc", "x"], "nodes": [], "result": "x"}}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "a", "op": "const", "value": 1}, {"id": "s", "op": "some", "args": ["a"]}, {"id": "r", "op": "field", "field": "x", "args": ["s"]}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "r", "op": "const", "type": {"list": "i64"}, "value": [1, 2.5]}], "outputs": {"r": "r"}}"#,
        r#"{"version": 2, "nodes": [{"id": "r", "op": "const", "type": "bytes", "value": [256]}], "outputs": {"r": "r"}}"#,
    ];
    for json in refused {
        let err = Graph::from_json(json.as_bytes()).expect_err(json);
        assert_eq!(err.kind, ErrorKind::InvalidGraph, "{json}: {err}");
    }
    // A list is no SQL parameter (options and bytes are: tests/all/effects.rs).
    let list_param = r#"{"version": 2, "nodes": [{"id": "xs", "op": "const", "type": {"list": "i64"}, "value": [1]}, {"id": "r", "op": "db_query", "sql": "SELECT $1", "type": "i64", "args": ["xs"]}], "outputs": {"r": "r"}}"#;
    let err = Graph::from_json(list_param.as_bytes()).expect_err("list parameter");
    assert!(err.message.contains("SQL parameter"), "{err}");
    assert_eq!(err.node.as_deref(), Some("r"));
    // Deep nesting is a typed refusal, not a stack overflow.
    let deep = format!(
        r#"{{"version": 2, "nodes": [{{"id": "r", "op": "input", "type": {}"i64"{}}}], "outputs": {{"r": "r"}}}}"#,
        r#"{"list": "#.repeat(100),
        "}".repeat(100)
    );
    assert!(Graph::from_json(deep.as_bytes()).is_err());
}

#[test]
fn structured_inputs_are_checked_against_their_type_and_cross_into_the_guest() {
    let g = graph(&format!(
        r#"{{"version": 2, "nodes": [{ORDERS}], "outputs": {{"r": "orders"}}}}"#
    ));
    let parse = |text: &str| g.parse_inputs(&[("orders".to_string(), text.to_string())]);
    for bad in [
        r#"[{"id": 1}]"#,
        r#"[{"id": 1, "total": 2.0, "extra": 1}]"#,
        r#"[{"id": "1", "total": 2.0}]"#,
        r#"{"id": 1, "total": 2.0}"#,
        r#"[{"id": 99999999999999999999, "total": 2.0}]"#,
        r#"[{"id": 1, "total": 2.0, "note": 5}]"#,
        "[",
    ] {
        let err = parse(bad).expect_err(bad);
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}: {err}");
    }
    let inputs = parse(r#"[{"id": 7, "total": 1.5}, {"id": 8, "total": 2.0, "note": "n"}]"#)
        .expect("parses");
    let expected = serde_json::json!([{"id": 7, "note": null, "total": 1.5},
                                      {"id": 8, "note": "n", "total": 2.0}]);
    assert_eq!(graphjit::value_to_json(&inputs["orders"]), expected);
    let host = crate::support::host();
    let run = block_on(host.run(&compile(&g), &inputs, RunLimits::default())).expect("runs");
    assert_eq!(values(&run), [inputs["orders"].clone()]);
    assert!(matches!(values(&run)[0], Value::List(_)));
}

#[test]
fn wordcount_with_split_group_by_and_sort_by_agrees_in_both_engines() {
    let g = v2(r#"{"id": "text", "op": "input", "type": "string",
                   "default": "the cat and the hat and the bat"},
        {"id": "space", "op": "const", "value": " "},
        {"id": "words", "op": "split", "args": ["text", "space"]},
        {"id": "groups", "op": "group_by", "args": ["words"], "body": {"params": ["w"], "nodes": [],
            "result": "w"}},
        {"id": "counts", "op": "map", "args": ["groups"], "body": {"params": ["g"], "nodes": [
            {"id": "word", "op": "field", "field": "key", "args": ["g"]},
            {"id": "items", "op": "field", "field": "items", "args": ["g"]},
            {"id": "n", "op": "len", "args": ["items"]},
            {"id": "c", "op": "record", "fields": ["word", "count"], "args": ["word", "n"]}],
            "result": "c"}},
        {"id": "ranked", "op": "sort_by", "args": ["counts"], "body": {"params": ["c2"], "nodes": [
            {"id": "cnt", "op": "field", "field": "count", "args": ["c2"]},
            {"id": "negc", "op": "neg", "args": ["cnt"]}], "result": "negc"}},
        {"id": "top", "op": "map", "args": ["ranked"], "body": {"params": ["c3"], "nodes": [
            {"id": "wd", "op": "field", "field": "word", "args": ["c3"]}], "result": "wd"}},
        {"id": "comma", "op": "const", "value": ","},
        {"id": "r", "op": "join", "args": ["top", "comma"]}"#);
    // Counts 3, 2, 1, 1, 1; ties keep the groups' (alphabetical) order: sort_by is stable.
    assert_eq!(agreed(&g), serde_json::json!(["the,and,bat,cat,hat"]));
}

#[test]
fn sort_by_orders_floats_totally_and_zip_stops_at_the_shorter_list() {
    let g = v2(r#"{"id": "xs", "op": "const", "type": {"list": "f64"},
                   "value": ["nan", 0.0, -0.0, "-inf", 2.5, "inf"]},
        {"id": "sorted", "op": "sort_by", "args": ["xs"], "body": {"params": ["x"], "nodes": [],
            "result": "x"}},
        {"id": "ns", "op": "const", "type": {"list": "i64"}, "value": [1, 2, 3]},
        {"id": "z", "op": "zip", "args": ["ns", "sorted"]},
        {"id": "r", "op": "fork", "args": ["sorted", "z"]}"#);
    assert_eq!(
        agreed(&g),
        serde_json::json!([[["-inf", -0.0, 0.0, 2.5, "inf", "nan"],
            [{"first": 1, "second": "-inf"}, {"first": 2, "second": -0.0},
             {"first": 3, "second": 0.0}]]])
    );
}

#[test]
fn split_with_an_empty_separator_is_invalid_value_and_a_huge_join_is_refused() {
    let g = v2(r#"{"id": "s", "op": "const", "value": "abc"},
                  {"id": "e", "op": "const", "value": ""},
                  {"id": "r", "op": "split", "args": ["s", "e"]}"#);
    let limits = RunLimits::default();
    for e in [
        eval_with(&g, limits).expect_err("eval"),
        run_with(&compile(&g), limits).expect_err("run"),
    ] {
        assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
        assert_eq!(e.node.as_deref(), Some("r"));
    }
    // 2,000 copies of a 1 KiB string (2 MiB), joined (2 MiB more): over a 3 MiB limit.
    let g = v2(r#"{"id": "a", "op": "const", "value": 0},
                  {"id": "b", "op": "const", "value": 2000},
                  {"id": "xs", "op": "range", "args": ["a", "b"]},
                  {"id": "s", "op": "input", "type": "string", "default": "x"},
                  {"id": "k", "op": "const", "value": 10},
                  {"id": "big", "op": "loop", "args": ["s"], "iterations": 10, "body": {
                     "params": ["i", "t"], "nodes": [{"id": "tt", "op": "concat", "args": ["t", "t"]}],
                     "results": ["tt"]}},
                  {"id": "many", "op": "map", "args": ["xs"], "body": {"params": ["x"], "nodes": [],
                     "result": "big"}},
                  {"id": "sep", "op": "const", "value": ""},
                  {"id": "r", "op": "join", "args": ["many", "sep"]}"#);
    let limits = RunLimits {
        memory_bytes: 3 << 20,
        ..RunLimits::default()
    };
    let outcome = |r: Result<graphjit::RunOutput, graphjit::Error>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.kind_name().to_string(),
    };
    assert_eq!(outcome(eval_with(&g, limits)), "memory_exceeded");
    assert_eq!(outcome(run_with(&compile(&g), limits)), "memory_exceeded");
}

#[test]
fn json_parse_and_emit_round_trip_and_name_the_path_of_bad_json_in_both_engines() {
    let record = r#"{"list": {"record": {"id": "i64", "tags": {"list": "string"}, "price": {"option": "f64"}}}}"#;
    let g = v2(&format!(
        r#"{{"id": "text", "op": "input", "type": "string",
             "default": "[{{\"tags\": [\"a\", \"\\u00e9\\n\"], \"id\": 7}}, {{\"id\": -1, \"tags\": [], \"price\": 2.5}}]"}},
           {{"id": "rows", "op": "json_parse", "type": {record}, "args": ["text"]}},
           {{"id": "again", "op": "json_emit", "args": ["rows"]}},
           {{"id": "back", "op": "json_parse", "type": {record}, "args": ["again"]}},
           {{"id": "same", "op": "json_emit", "args": ["back"]}},
           {{"id": "r", "op": "fork", "args": ["again", "same"]}}"#
    ));
    let canonical = r#"[{"id":7,"price":null,"tags":["a","é\n"]},{"id":-1,"price":2.5,"tags":[]}]"#;
    assert_eq!(agreed(&g), serde_json::json!([[canonical, canonical]]));
    for (text, path) in [
        (
            r#"[{\"id\": 1, \"id\": 2, \"tags\": []}]"#,
            "$[0]: the field \\\"id\\\" appears twice",
        ),
        (r#"[{\"id\": 1.5, \"tags\": []}]"#, "$[0].id"),
        (r#"[{\"id\": 1, \"tags\": [3]}]"#, "$[0].tags[0]"),
        (r#"[{\"id\": 1}]"#, "missing"),
        ("[", "EOF"),
    ] {
        let g = v2(&format!(
            r#"{{"id": "text", "op": "const", "value": "{text}"}},
               {{"id": "r", "op": "json_parse", "type": {record}, "args": ["text"]}}"#
        ));
        let limits = RunLimits::default();
        for e in [
            eval_with(&g, limits).expect_err(text),
            run_with(&compile(&g), limits).expect_err(text),
        ] {
            assert_eq!(e.kind, ErrorKind::InvalidValue, "{text}: {e}");
            assert_eq!(e.node.as_deref(), Some("r"));
            let path = path.replace("\\\"", "\"");
            assert!(e.message.contains(&path), "{text}: {}", e.message);
        }
    }
    let nan = v2(
        r#"{"id": "x", "op": "const", "type": "f64", "value": "nan"},
                    {"id": "r", "op": "json_emit", "args": ["x"]}"#,
    );
    for e in [
        eval_with(&nan, RunLimits::default()).expect_err("eval"),
        run_with(&compile(&nan), RunLimits::default()).expect_err("run"),
    ] {
        assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    }
}
