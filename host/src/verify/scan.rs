//! The one scanner of the unsafe policy (seed 4.3), used by `graphjit verify` on the sources it
//! embeds and by the tidy test (`tests/all/unsafe_policy.rs`) on the whole repository: it finds
//! each `unsafe` keyword in code (comments, strings and character literals blanked first, so
//! the word in a doc comment or a string is not code) and reads the comment right above it.

/// The seed's five comment lines, in the order they must appear.
pub const FIVE_LINES: [&str; 5] = [
    "ASSUMPTION:",
    "DEPENDS ON:",
    "TLA+ PROPERTY:",
    "FAILURE MODE:",
    "MITIGATION:",
];

/// The sources that hold `unsafe`, embedded so that the binary can show its own evidence;
/// the tidy test checks that no other source file holds one.
pub const UNSAFE_SOURCES: &[(&str, &str)] = &[
    ("host/src/runtime/mod.rs", include_str!("../runtime/mod.rs")),
    (
        "guest-template/src/lib.rs",
        include_str!("../../../guest-template/src/lib.rs"),
    ),
    (
        "guest-template/src/realloc.rs",
        include_str!("../../../guest-template/src/realloc.rs"),
    ),
];

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `source` with comments, string literals and character literals replaced by spaces
/// (newlines kept, so that offsets and line numbers stay those of the source).
pub fn code_only(source: &str) -> String {
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
pub fn unsafe_lines(source: &str) -> Vec<usize> {
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
pub fn comment_above(lines: &[&str], at: usize) -> Vec<String> {
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

/// The five lines missing (or out of order) from `comment`, by tag without its colon.
pub fn missing_lines(comment: &[String]) -> Vec<&'static str> {
    let mut position = 0;
    let mut missing = Vec::new();
    for tag in FIVE_LINES {
        match comment[position..].iter().position(|c| c.starts_with(tag)) {
            Some(offset) => position += offset + 1,
            None => missing.push(tag.trim_end_matches(':')),
        }
    }
    missing
}

/// Whether the `unsafe` on line `at` (0-based) of `source` has the five lines right above it.
pub fn documented(source: &str, at: usize) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    missing_lines(&comment_above(&lines, at)).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_sees_code_not_strings_or_comments() {
        // The strings below are scanner input with the keyword in them, never compiled.
        // ASSUMPTION: none: test data for `unsafe_lines` and `documented`.
        // DEPENDS ON: nothing at run time.
        // TLA+ PROPERTY: none (a test fixture).
        // FAILURE MODE: none: no code of these strings ever runs.
        // MITIGATION: not applicable.
        let source = "let s = \"unsafe { }\"; // unsafe here\nunsafe { f() }\nlet t = '\"'; let u = '\\''; fn g<'a>() {}\nlet v = \"unsafe\";\n";
        assert_eq!(unsafe_lines(source), [1]);
        assert!(!documented(source, 1));
        let good = "// ASSUMPTION: a\n// DEPENDS ON: b\n// TLA+ PROPERTY: c\n// FAILURE MODE: d\n// MITIGATION: e\n#[allow(unsafe_code)]\nlet x = unsafe { f() };\n";
        assert_eq!(unsafe_lines(good), [6]);
        assert!(documented(good, 6));
        let separated = good.replace("#[allow", "let y = 1;\n#[allow");
        assert!(
            !documented(&separated, 7),
            "code between the comment and the block"
        );
        let out_of_order = "// DEPENDS ON: b\n// ASSUMPTION: a\n// TLA+ PROPERTY: c\n// FAILURE MODE: d\n// MITIGATION: e\nunsafe { f() }\n";
        assert!(!documented(out_of_order, 5));
    }

    #[test]
    fn the_host_unsafe_blocks_are_found_and_documented() {
        let found: usize = UNSAFE_SOURCES
            .iter()
            .map(|(_, text)| unsafe_lines(text).len())
            .sum();
        assert!(
            found >= 3,
            "the embedded sources lost their unsafe blocks: {found}"
        );
        for (path, text) in UNSAFE_SOURCES {
            for line in unsafe_lines(text) {
                assert!(documented(text, line), "{path}:{}", line + 1);
            }
        }
    }
}
