//! The unsafe policy, checked on the repository (seed 4.3; DESIGN §9; STYLE "Tidy tests"):
//! - every `unsafe` in the workspace's Rust source (blocks, `unsafe fn`, `unsafe extern`,
//!   `unsafe impl`, `#[unsafe(...)]` attributes) has, right above it (attributes between are
//!   allowed), a comment with the seed's five lines in order: ASSUMPTION, DEPENDS ON, TLA+
//!   PROPERTY, FAILURE MODE, MITIGATION;
//! - a `TLA+ PROPERTY` naming `Module!Property` names a module in `specs/` that defines it;
//! - generated code never contains `unsafe`: the Rust generated for every graph in `examples/`
//!   and for a few hundred graphs of the shared generator (`graphjit::testing::generate`).
//!
//! The source is lexed first (comments, strings and character literals blanked), so that the
//! word in a doc comment or a string is not code. wit-bindgen's expansions (built into
//! `OUT_DIR`, not source) are outside the check; `guest-template/src/lib.rs` documents them.

use std::path::{Path, PathBuf};

use crate::support::graph;

const FIVE_LINES: [&str; 5] = [
    "ASSUMPTION:",
    "DEPENDS ON:",
    "TLA+ PROPERTY:",
    "FAILURE MODE:",
    "MITIGATION:",
];

/// The folders whose Rust source is checked, relative to the repository.
const SOURCE_ROOTS: [&str; 5] = ["host", "guest-template", "value", "tests", "benches"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `source` with comments, string literals and character literals replaced by spaces
/// (newlines kept, so that offsets and line numbers stay those of the source).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let previous_is_ident = i > 0 && is_ident(chars[i - 1]);
        // `r` opens a raw string alone or after a `b`/`c` prefix: br"…", cr#"…"#.
        let raw_start = !previous_is_ident
            || (matches!(chars[i - 1], 'b' | 'c') && (i == 1 || !is_ident(chars[i - 2])));
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && raw_start && matches!(next, Some('"' | '#')) {
            // A raw string r"…", r#"…"# (or, without a quote after the hashes, a raw identifier).
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let body = i + 2 + hashes;
            let mut end = body;
            while end < chars.len() {
                if chars[end] == '"'
                    && chars[end + 1..].iter().take_while(|&&h| h == '#').count() >= hashes
                {
                    end += 1 + hashes;
                    break;
                }
                end += 1;
            }
            for &skipped in &chars[i..end.min(chars.len())] {
                out.push(blank(skipped));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{…}'.
            out.push_str("  ");
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            // Code, or a lifetime.
            out.push(c);
            i += 1;
        }
    }
    out
}

/// 0-based line numbers of each `unsafe` keyword in `source`.
fn unsafe_lines(source: &str) -> Vec<usize> {
    let code = code_only(source);
    let mut lines = Vec::new();
    for (line_number, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let word: Vec<char> = "unsafe".chars().collect();
        let found = (0..chars.len()).any(|at| {
            chars[at..].starts_with(&word)
                && (at == 0 || !is_ident(chars[at - 1]))
                && chars.get(at + word.len()).is_none_or(|&c| !is_ident(c))
        });
        if found {
            lines.push(line_number);
        }
    }
    lines
}

/// The comment lines right above line `at` (attributes in between skipped), top first, each
/// without its `//` and leading spaces.
fn comment_above(lines: &[&str], at: usize) -> Vec<String> {
    let mut above = at;
    // Attributes, single- or multi-line, sit between the comment and the item.
    while above > 0 {
        let line = lines[above - 1].trim();
        if line.starts_with("#[") {
            above -= 1;
        } else if line.ends_with(']') && !line.starts_with("//") {
            let start = (0..above - 1)
                .rev()
                .find(|&l| lines[l].trim().starts_with("#["));
            match start {
                Some(start) => above = start,
                None => break,
            }
        } else {
            break;
        }
    }
    let mut comment = Vec::new();
    while above > 0 && lines[above - 1].trim().starts_with("//") {
        above -= 1;
        let text = lines[above].trim().trim_start_matches('/').trim_start();
        comment.push(text.to_owned());
    }
    comment.reverse();
    comment
}

/// What is wrong with the documentation of each `unsafe` in `source` (empty: nothing).
fn problems(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for line in unsafe_lines(source) {
        let comment = comment_above(&lines, line);
        let mut position = 0;
        let mut missing = Vec::new();
        for tag in FIVE_LINES {
            match comment[position..].iter().position(|c| c.starts_with(tag)) {
                Some(offset) => position += offset + 1,
                None => missing.push(tag.trim_end_matches(':')),
            }
        }
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
    let property: String = property.chars().take_while(|&c| is_ident(c)).collect();
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
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read source");
        documented += unsafe_lines(&source).len();
        for problem in problems(&source) {
            report.push(format!(
                "{}: {problem}",
                file.strip_prefix(&root).unwrap_or(file).display()
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
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
