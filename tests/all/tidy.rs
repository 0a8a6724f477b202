//! Tidy checks on the repository's own shape: the code map stays true, and code comments cite
//! only what the repository holds.

use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_none_or(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The folders a comment may cite a path under (a path elsewhere is not the repository's).
const TOP_LEVEL: [&str; 10] = [
    "docs/",
    "specs/",
    "examples/",
    "tests/",
    "benches/",
    "wit/",
    "host/",
    "guest-template/",
    "value/",
    "scripts/",
];

/// What is wrong with the citations in one comment line: a path under a top-level folder that
/// does not exist, a seed section (`seed 4.3`, `seed §6`) the seed does not have, or a document
/// outside the repository.
fn citation_problems(comment: &str, root: &Path, seed_sections: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for outside in ["DESIGN", "STYLE", "../shared"] {
        if comment.contains(outside) {
            found.push(format!("cites {outside}, which is not in the repository"));
        }
    }
    let words: Vec<&str> = comment.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        let path_char = |c: char| c.is_alphanumeric() || "/._-".contains(c);
        let token: String = word
            .trim_start_matches(|c: char| !path_char(c))
            .chars()
            .take_while(|&c| path_char(c))
            .collect();
        let token = token.trim_end_matches('.');
        // A pattern (`specs/{module}.tla`, `host/src/NAME`) is not a path.
        let is_path = TOP_LEVEL.iter().any(|top| token.starts_with(top))
            && !word.contains('{')
            && !token.contains("NAME")
            && !token.ends_with('/');
        if is_path && !root.join(token).exists() {
            found.push(format!("cites {token}, which does not exist"));
        }
        // `seed 4.3` or `seed §6` (a plain `seed 225` is a generator seed, not a citation).
        if word.trim_start_matches(['(', '"']).trim_end_matches("'s") == "seed" {
            let Some(next) = words.get(i + 1) else {
                continue;
            };
            let section: String = next
                .trim_start_matches('§')
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let section = section.trim_end_matches('.');
            let cited = next.starts_with('§') || section.contains('.');
            if cited && !section.is_empty() && !seed_sections.iter().any(|s| s == section) {
                found.push(format!(
                    "cites seed {section}, which docs/seed.md does not have"
                ));
            }
        }
    }
    found
}

/// The section numbers of `docs/seed.md` (`## 4.`, `### 4.3`).
fn seed_sections(root: &Path) -> Vec<String> {
    let seed = std::fs::read_to_string(root.join("docs/seed.md")).expect("docs/seed.md");
    seed.lines()
        .filter(|line| line.starts_with("##"))
        .filter_map(|line| line.trim_start_matches('#').split_whitespace().next())
        .map(|number| number.trim_end_matches('.').to_owned())
        .filter(|number| number.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

/// Code comments cite documents in the repository only: every path they name exists, every
/// seed section exists in `docs/seed.md`, and nothing outside (the team's own notes) is cited.
#[test]
fn comments_cite_only_what_the_repository_holds() {
    let root = repository();
    let sections = seed_sections(&root);
    assert!(
        sections.iter().any(|s| s == "4.3"),
        "the seed's sections: {sections:?}"
    );
    let mut files = Vec::new();
    for folder in ["host", "guest-template", "value", "tests", "benches"] {
        rust_files(&root.join(folder), &mut files);
    }
    let mut report = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read source");
        for (number, line) in source.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix("//") else {
                continue;
            };
            for problem in citation_problems(comment, &root, &sections) {
                let relative = file.strip_prefix(&root).unwrap_or(file);
                report.push(format!("{}:{}: {problem}", relative.display(), number + 1));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_citation_check_catches_what_it_should() {
    let root = repository();
    let sections = seed_sections(&root);
    let check = |comment: &str| citation_problems(comment, &root, &sections).len();
    assert_eq!(
        check("/ the unsafe policy (seed 4.3), `examples/hello.json`"),
        0
    );
    assert_eq!(check("/ found by the preservation test, seed 225"), 0);
    assert_eq!(check("/ see seed 4.9"), 1);
    assert_eq!(check("/ see seed §12"), 1);
    assert_eq!(check("/ see DESIGN §7"), 1);
    assert_eq!(check("/ see examples/nope.json."), 1);
}

/// Every module of the library (a directory or a file directly under `host/src`) is named in
/// `ARCHITECTURE.md` as `host/src/NAME` (in the code map or the entry points), so a new module
/// cannot land without a line saying what it is for.
#[test]
fn architecture_code_map_names_every_module() {
    let root = repository();
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
