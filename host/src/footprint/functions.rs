//! Which SQL functions a graph may call: an allow-list of built-ins known to be pure.
//!
//! Invariants:
//! - A function is allowed only if its case-folded name is in [`PURE`] and it is unqualified
//!   or qualified with `pg_catalog`. Everything else is refused: an allow-list, because
//!   PostgreSQL has thousands of functions and a deny-list would miss the next `dblink`.
//! - [`SIDE_EFFECTS`] only chooses the message ("has side effects" rather than "not on the
//!   list"); nothing in it is ever allowed, and both lists are disjoint (a test checks it).
//! - "Pure" here means: no writes, no waiting, no files, no network, no settings, no other
//!   SQL run from a string, no catalog lookups by name. Volatile-but-harmless functions
//!   (`random`, `now`, `clock_timestamp`, `gen_random_uuid`) are allowed: they touch nothing
//!   outside the statement.
//!
//! ASSUMPTION: graphs cannot create functions or operators (DDL is refused), so a built-in
//! name means the built-in, and functional notation `t.f` can only reach functions taking the
//! row type, of which the built-ins here have none with effects.

/// Built-in functions (and aggregates, window functions, SQL-syntax functions that the parser
/// turns into calls such as `current_date`) known to be pure. Sorted; a test checks it.
const PURE: &[&str] = &[
    "abs",
    "acos",
    "acosh",
    "age",
    "array_agg",
    "array_append",
    "array_cat",
    "array_dims",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "avg",
    "bit_and",
    "bit_length",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "cbrt",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "chr",
    "clock_timestamp",
    "coalesce",
    "concat",
    "concat_ws",
    "corr",
    "cos",
    "cosh",
    "count",
    "covar_pop",
    "covar_samp",
    "cume_dist",
    "current_date",
    "current_time",
    "current_timestamp",
    "date_bin",
    "date_part",
    "date_trunc",
    "decode",
    "degrees",
    "dense_rank",
    "div",
    "encode",
    "every",
    "exp",
    "extract",
    "factorial",
    "first_value",
    "floor",
    "format",
    "gcd",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "greatest",
    "initcap",
    "isfinite",
    "json_agg",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_extract_path",
    "json_extract_path_text",
    "json_object_agg",
    "json_object_keys",
    "json_strip_nulls",
    "json_typeof",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_strip_nulls",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lag",
    "last_value",
    "lcm",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "localtime",
    "localtimestamp",
    "log",
    "log10",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "max",
    "md5",
    "min",
    "mod",
    "mode",
    "now",
    "nth_value",
    "ntile",
    "nullif",
    "num_nonnulls",
    "num_nulls",
    "octet_length",
    "overlay",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pi",
    "position",
    "pow",
    "power",
    "radians",
    "random",
    "rank",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_substr",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "row_to_json",
    "rpad",
    "rtrim",
    "scale",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sign",
    "sin",
    "sinh",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "string_to_array",
    "strpos",
    "substr",
    "substring",
    "sum",
    "tan",
    "tanh",
    "to_char",
    "to_date",
    "to_hex",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "transaction_timestamp",
    "translate",
    "trim",
    "trunc",
    "unnest",
    "upper",
    "var_pop",
    "var_samp",
    "variance",
    "width_bucket",
];

/// Functions known to have side effects, to wait, or to reach outside the database. Only
/// used to word the refusal; sorted; prefixes end in `*` and match any name starting with
/// them.
const SIDE_EFFECTS: &[&str] = &[
    "current_setting",
    "dblink*",
    "lo_*",
    "nextval",
    "pg_advisory*",
    "pg_cancel_backend",
    "pg_ls_*",
    "pg_notify",
    "pg_read_*",
    "pg_reload_conf",
    "pg_sleep*",
    "pg_stat_file",
    "pg_terminate_backend",
    "pg_try_advisory*",
    "query_to_xml*",
    "set_config",
    "setseed",
    "setval",
    "txid_*",
];

/// Whether a function may be called, given its case-folded name parts.
pub(crate) fn classify(parts: &[&str]) -> Option<super::FunctionRefusal> {
    let name = match parts {
        [name] | ["pg_catalog", name] => *name,
        _ => return Some(super::FunctionRefusal::UserDefined),
    };
    if PURE.binary_search(&name).is_ok() {
        return None;
    }
    if has_side_effects(name) {
        return Some(super::FunctionRefusal::SideEffect);
    }
    Some(super::FunctionRefusal::NotAllowListed)
}

/// Whether an unqualified, case-folded function name is on the allow-list: what the
/// databases' own authorizers are told.
pub(crate) fn is_pure_function(name: &str) -> bool {
    PURE.binary_search(&name).is_ok() || SQLITE_OPERATOR_FUNCTIONS.contains(&name)
}

/// Operators that SQLite's authorizer reports as function calls (`a LIKE b` is `like(b, a)`
/// there); the check already accepted the operator itself.
const SQLITE_OPERATOR_FUNCTIONS: &[&str] = &["like"];

fn has_side_effects(name: &str) -> bool {
    SIDE_EFFECTS
        .iter()
        .any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *entry,
        })
}

#[cfg(test)]
pub(super) fn lists() -> (&'static [&'static str], &'static [&'static str]) {
    (PURE, SIDE_EFFECTS)
}
