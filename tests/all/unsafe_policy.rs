//! The unsafe policy, checked on the repository (seed 4.3):
//! - every `unsafe` in the workspace's Rust source (blocks, `unsafe fn`, `unsafe extern`,
//!   `unsafe impl`, `#[unsafe(...)]` attributes) has, right above it (attributes between are
//!   allowed), a comment with the seed's five lines in order: ASSUMPTION, DEPENDS ON, TLA+
//!   PROPERTY, FAILURE MODE, MITIGATION;
//! - a `TLA+ PROPERTY` naming `Module!Property` names a module in `specs/` that defines it;
//! - generated code never contains `unsafe`: the Rust generated for every graph in `examples/`
//!   and for a few hundred graphs of the shared generator (`graphjit::testing::generate`).
//!
//! The scanner is the library's own (`graphjit::testing::unsafe_scan`, what `graphjit verify`
//! runs): the source is lexed first (comments, strings and character literals blanked), so
//! that the word in a doc comment or a string is not code; and the files `verify` embeds as its
//! evidence are exactly the files that hold `unsafe`. wit-bindgen's expansions (built into
//! `OUT_DIR`, not source) are outside the check; `guest-template/src/lib.rs` documents them.

use std::path::{Path, PathBuf};

use graphjit::testing::unsafe_scan::{UNSAFE_SOURCES, comment_above, missing_lines, unsafe_lines};

use crate::support::graph;

/// The folders whose Rust source is checked, relative to the repository.
const SOURCE_ROOTS: [&str; 5] = ["host", "guest-template", "value", "tests", "benches"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// What is wrong with the documentation of each `unsafe` in `source` (empty: nothing).
fn problems(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for line in unsafe_lines(source) {
        let comment = comment_above(&lines, line);
        let missing = missing_lines(&comment);
        if !missing.is_empty() {
            found.push(format!(
                "line {}: `unsafe` without the seed's five lines right above it (missing or out of order: {}): {}",
                line + 1,
                missing.join(", "),
                lines[line].trim()
            ));
        }
        for property in comment
            .iter()
            .filter_map(|c| c.strip_prefix("TLA+ PROPERTY:"))
        {
            found
                .extend(check_property(property.trim()).map(|e| format!("line {}: {e}", line + 1)));
        }
    }
    found
}

/// A `Module!Property` citation must name a spec in `specs/` that defines the property; the
/// module is the spec's name or its last word (`Cache!NoStaleArtifact` is `CompileCache.tla`'s).
fn check_property(text: &str) -> Option<String> {
    let cited = text.split_whitespace().next()?;
    let (module, property) = cited.split_once('!')?;
    let property: String = property
        .chars()
        .take_while(|&c| c.is_alphanumeric() || c == '_')
        .collect();
    let specs = repository().join("specs");
    let spec = std::fs::read_dir(&specs)
        .expect("specs/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "tla"))
        .find(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .is_some_and(|stem| stem == module || stem.ends_with(module))
        });
    let Some(spec) = spec else {
        return Some(format!(
            "TLA+ PROPERTY cites {cited}, but specs/ has no module {module}"
        ));
    };
    let text = std::fs::read_to_string(&spec).expect("read the spec");
    let defined = text.lines().any(|line| {
        line.strip_prefix(property.as_str())
            .is_some_and(|rest| rest.trim_start().starts_with("=="))
    });
    (!defined).then(|| {
        format!(
            "TLA+ PROPERTY cites {cited}, but {} does not define {property}",
            spec.display()
        )
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_unsafe_in_the_source_carries_the_five_lines() {
    let root = repository();
    let mut files = Vec::new();
    for folder in SOURCE_ROOTS {
        rust_files(&root.join(folder), &mut files);
    }
    assert!(files.len() > 20, "found the source: {}", files.len());
    let mut report = Vec::new();
    let mut documented = 0;
    let mut holding = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read source");
        let found = unsafe_lines(&source).len();
        documented += found;
        let relative = file.strip_prefix(&root).unwrap_or(file);
        if found > 0 && !relative.starts_with("tests") && !relative.starts_with("benches") {
            holding.push(relative.display().to_string());
        }
        for problem in problems(&source) {
            report.push(format!(
                "{}: {problem}",
                file.strip_prefix(&root).unwrap_or(file).display()
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    // `verify` shows the evidence of the files it embeds: they must be all of them.
    holding.sort();
    let mut embedded: Vec<String> = UNSAFE_SOURCES.iter().map(|(p, _)| p.to_string()).collect();
    embedded.sort();
    assert_eq!(holding, embedded, "update verify::scan::UNSAFE_SOURCES");
    // The known ones: load_precompiled, the guest's link directive, cabi_realloc (three).
    assert!(documented >= 5, "found {documented} unsafe keywords");
}

#[test]
fn generated_code_never_contains_unsafe() {
    let mut checked = 0;
    let examples = repository().join("examples");
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let json = std::fs::read_to_string(&path).expect("read example");
            let source = graph(&json).rust_source().expect("rust");
            assert!(
                unsafe_lines(&source).is_empty(),
                "{}:\n{source}",
                path.display()
            );
            checked += 1;
        }
    }
    for seed in 0..300 {
        let json = graphjit::testing::generate(seed).to_string();
        let source = graph(&json).rust_source().expect("rust");
        assert!(unsafe_lines(&source).is_empty(), "seed {seed}:\n{source}");
        checked += 1;
    }
    assert!(checked > 300);
}

#[test]
fn the_checker_sees_code_and_only_code() {
    let documented = "// ASSUMPTION: a\n// DEPENDS ON: b\n// TLA+ PROPERTY: none\n\
                      // FAILURE MODE: c\n// MITIGATION: d\n#[allow(unsafe_code, reason = \"x\")]\n\
                      let x = unsafe { f() };\n";
    assert_eq!(unsafe_lines(documented), [6]);
    assert!(
        problems(documented).is_empty(),
        "{:?}",
        problems(documented)
    );
    let multi_line_attribute = "// ASSUMPTION: a\n// DEPENDS ON: b\n// TLA+ PROPERTY: none\n\
                      // FAILURE MODE: c\n// MITIGATION: d\n#[allow(\n    unsafe_code,\n)]\n\
                      unsafe impl Send for X {}\n";
    assert!(problems(multi_line_attribute).is_empty());
    let bare = "fn f() {\n    unsafe { g() }\n}\n";
    assert_eq!(problems(bare).len(), 1);
    let out_of_order = documented.replace(
        "// ASSUMPTION: a\n// DEPENDS ON: b\n",
        "// DEPENDS ON: b\n// ASSUMPTION: a\n",
    );
    assert_eq!(problems(&out_of_order).len(), 1);
    let separated = documented.replace("#[allow", "let y = 1;\n#[allow");
    assert_eq!(problems(&separated).len(), 1);
    let not_code = "//! no `unsafe` here\n/* unsafe /* nested */ unsafe */\nlet s = \"unsafe\";\n\
                    let r = r#\"unsafe \"quoted\"\"#;\nlet b = br\"\\\";\nlet c = '\"'; let unsafe_code = 1;\n\
                    fn f<'a>() {}\n";
    assert!(unsafe_lines(not_code).is_empty(), "{not_code}");
    let cites_missing =
        documented.replace("TLA+ PROPERTY: none", "TLA+ PROPERTY: Cache!NoSuchProperty");
    assert_eq!(
        problems(&cites_missing).len(),
        1,
        "{:?}",
        problems(&cites_missing)
    );
    let cites_real = documented.replace(
        "TLA+ PROPERTY: none",
        "TLA+ PROPERTY: Cache!NoStaleArtifact (why)",
    );
    assert!(
        problems(&cites_real).is_empty(),
        "{:?}",
        problems(&cites_real)
    );
}
