//! Tidy checks on the repository's own shape: the code map stays true.

use std::path::Path;

/// Every module of the library (a directory or a file directly under `host/src`) is named in
/// `ARCHITECTURE.md` as `host/src/NAME` (in the code map or the entry points), so a new module
/// cannot land without a line saying what it is for.
#[test]
fn architecture_code_map_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(root.join("host/src")).expect("host/src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() || name.ends_with(".rs") {
            modules.push(name);
        }
    }
    assert!(modules.len() > 10, "host/src lost modules: {modules:?}");
    let missing: Vec<&String> = modules
        .iter()
        .filter(|m| {
            let dir = m.trim_end_matches(".rs");
            !map.contains(&format!("host/src/{m}"))
                && !map.contains(&format!("host/src/{dir}/"))
                && !map.contains(&format!("host/src/{dir}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name {missing:?}: add a `### host/src/...` entry"
    );
}
