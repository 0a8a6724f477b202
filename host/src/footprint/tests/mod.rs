//! Footprint tests: adversarial SQL, URLs and addresses, each asserting the exact typed
//! outcome, plus properties (no input panics; table names round-trip).

mod egress;
mod footprint;
mod properties;
mod sql;
mod url;

use std::collections::BTreeSet;

use super::{Access, Denied, Footprint, SqlConstruct, TableName};

pub(super) fn footprint(json: &str) -> Footprint {
    match Footprint::from_json(json) {
        Ok(footprint) => footprint,
        Err(error) => panic!("test footprint is invalid: {error}\n{json}"),
    }
}

pub(super) fn table(text: &str) -> TableName {
    TableName::parse(text).expect("test table name")
}

pub(super) fn tables(names: &[&str]) -> BTreeSet<TableName> {
    names.iter().map(|name| table(name)).collect()
}

/// The refusal for `access` of `name`.
pub(super) fn denied_table(name: &str, access: Access) -> Denied {
    let table = table(name);
    let system = table.is_system();
    Denied::Table {
        table,
        access,
        system,
    }
}

pub(super) fn construct(construct: SqlConstruct) -> Denied {
    Denied::SqlConstruct { construct }
}
