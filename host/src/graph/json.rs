//! The graph's JSON form (format version 1), documented in `docs/graph-format.md`.
//!
//! Serde lives only here: these types are converted at once by `lower` and never escape it.
//! Unknown fields are errors (`deny_unknown_fields`), so a typo never silently changes a graph.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Read first, with every other field ignored, so that a future version's graph gets a
/// version error rather than a confusing field error.
#[derive(Deserialize)]
pub(super) struct VersionProbe {
    pub(super) version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GraphJson {
    #[expect(dead_code, reason = "checked by VersionProbe before this parse")]
    pub(super) version: u32,
    #[serde(default)]
    pub(super) name: Option<String>,
    pub(super) nodes: Vec<NodeJson>,
    pub(super) outputs: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) limits: Option<LimitsJson>,
    /// Parsed and checked by `footprint::Footprint` (its own format and errors).
    #[serde(default)]
    pub(super) footprint: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsJson {
    pub(super) fuel: Option<u64>,
    pub(super) memory: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeJson {
    pub(super) id: String,
    pub(super) op: String,
    #[serde(default)]
    pub(super) args: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub(super) ty: Option<TypeJson>,
    pub(super) value: Option<serde_json::Value>,
    pub(super) default: Option<serde_json::Value>,
    pub(super) shape: Option<Vec<DimJson>>,
    pub(super) iterations: Option<u64>,
    pub(super) index: Option<u32>,
    pub(super) then: Option<RegionJson>,
    #[serde(rename = "else")]
    pub(super) otherwise: Option<RegionJson>,
    pub(super) body: Option<RegionJson>,
    /// `db_query` / `db_execute`: the SQL text, `$1`… for the args.
    pub(super) sql: Option<String>,
    /// `http`: the method.
    pub(super) method: Option<String>,
    /// `http`: the URL.
    pub(super) url: Option<String>,
    /// `kernel`: which kernel.
    pub(super) kernel: Option<String>,
    /// `log`: the level.
    pub(super) level: Option<String>,
    /// Effects: nodes that must run first (ordering only).
    pub(super) after: Option<Vec<String>>,
    /// `record`: the field name of each argument.
    pub(super) fields: Option<Vec<String>>,
    /// `field`, `with`: which field.
    pub(super) field: Option<String>,
    /// `http`: the request headers it sets (one argument each, after the body).
    pub(super) headers: Option<Vec<String>>,
    /// `http`: `body` (the default) or `full`.
    pub(super) response: Option<String>,
    /// `cached`: the declared cache key.
    pub(super) key: Option<String>,
    /// `cached`: how long an entry lives, in milliseconds.
    pub(super) ttl_ms: Option<u64>,
    /// Reductions, `softmax`, `log_softmax`: the tensor axis (negative from the end).
    pub(super) axis: Option<i64>,
    /// Reductions along an axis: keep it, with extent 1.
    pub(super) keepdims: Option<bool>,
    /// `layer_norm`: added to the variance.
    pub(super) epsilon: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegionJson {
    #[serde(default)]
    pub(super) params: Vec<String>,
    #[serde(default)]
    pub(super) nodes: Vec<NodeJson>,
    pub(super) result: Option<String>,
    pub(super) results: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum TypeJson {
    Name(String),
    Tensor { tensor: Vec<DimJson> },
    List(ListJson),
    Record(RecordJson),
    Option(OptionJson),
}

/// One dimension of a tensor type or a `shape`: a size, or a name bound at run time from the
/// inputs (see `lower::dims`).
#[derive(Deserialize, Clone, PartialEq, Eq, Debug)]
#[serde(untagged)]
pub(crate) enum DimJson {
    Size(u32),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListJson {
    pub(super) list: Box<TypeJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OptionJson {
    pub(super) option: Box<TypeJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordJson {
    pub(super) record: FieldsJson,
}

/// A record's fields as written, duplicates kept (a map would let the last one win silently;
/// lowering refuses them).
pub(super) struct FieldsJson(pub(super) Vec<(String, TypeJson)>);

impl<'de> Deserialize<'de> for FieldsJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = FieldsJson;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of field names to types")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FieldsJson, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, TypeJson>()? {
                    fields.push(entry);
                }
                Ok(FieldsJson(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl NodeJson {
    /// Sub-regions present on this node, with the field name each came from.
    pub(super) fn regions(&self) -> impl Iterator<Item = (&'static str, &RegionJson)> {
        [
            ("then", &self.then),
            ("else", &self.otherwise),
            ("body", &self.body),
        ]
        .into_iter()
        .filter_map(|(name, r)| r.as_ref().map(|r| (name, r)))
    }
}

impl RegionJson {
    /// The result names, from `result` or `results`.
    pub(super) fn result_names(&self) -> Vec<&String> {
        match (&self.result, &self.results) {
            (Some(r), _) => vec![r],
            (None, Some(rs)) => rs.iter().collect(),
            (None, None) => Vec::new(),
        }
    }
}
