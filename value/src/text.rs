//! The string ops' rules (docs/graph-format.md, "Strings"), one definition for both engines:
//! the guest template calls these and `eval` calls these, so the two agree on every string
//! bit for bit, and on which inputs fail.
//!
//! Invariants:
//! - Text is UTF-8 and every result is too; positions (`substring`) count chars (Unicode
//!   scalar values), never bytes, so no result ends inside a character.
//! - Nothing panics: a bad argument is an `Err` with a message saying what was wrong; an op
//!   whose result can outgrow its arguments (`replace`) states its size before allocating
//!   ([`replaced_len`]), so a caller refuses it against a memory limit first.

use alloc::format;
use alloc::string::String;

/// Whether `s` contains `pattern` (every string contains `""`).
pub fn contains(s: &str, pattern: &str) -> bool {
    s.contains(pattern)
}

/// Whether `s` starts with `prefix`.
pub fn starts_with(s: &str, prefix: &str) -> bool {
    s.starts_with(prefix)
}

/// Whether `s` ends with `suffix`.
pub fn ends_with(s: &str, suffix: &str) -> bool {
    s.ends_with(suffix)
}

/// The byte length `replace(s, from, to)` would have: every non-overlapping occurrence of
/// `from`, left to right, replaced; an empty `from` occurs before every char and at the end.
/// `None` when it does not fit a `usize`.
pub fn replaced_len(s: &str, from: &str, to: &str) -> Option<usize> {
    let count = if from.is_empty() {
        s.chars().count().checked_add(1)?
    } else {
        s.matches(from).count()
    };
    s.len()
        .checked_sub(count.checked_mul(from.len())?)?
        .checked_add(count.checked_mul(to.len())?)
}

/// `s` with every non-overlapping occurrence of `from` (left to right) replaced by `to`; an
/// empty `from` inserts `to` before every char and at the end (`replace("ab", "", "-")` is
/// `"-a-b-"`). Check [`replaced_len`] against the memory limit first.
pub fn replace(s: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    replace_into(&mut out, s, from, to);
    out
}

/// [`replace`], appended to `out` (which a caller reserved [`replaced_len`] bytes in).
pub fn replace_into(out: &mut String, s: &str, from: &str, to: &str) {
    if from.is_empty() {
        for c in s.chars() {
            out.push_str(to);
            out.push(c);
        }
        out.push_str(to);
        return;
    }
    let mut rest = s;
    while let Some(at) = rest.find(from) {
        out.push_str(&rest[..at]);
        out.push_str(to);
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
}

/// `s` without leading and trailing whitespace (Unicode `White_Space`).
pub fn trim(s: &str) -> String {
    String::from(s.trim())
}

/// `s` in lower case (Unicode's full case mapping: one char may become several).
pub fn to_lower(s: &str) -> String {
    s.to_lowercase()
}

/// `s` in upper case (Unicode's full case mapping: `ß` becomes `SS`).
pub fn to_upper(s: &str) -> String {
    s.to_uppercase()
}

/// The `len` chars of `s` from char `start` on, fewer where `s` ends first (`""` when `start`
/// is past the end). A negative `start` or `len` is an error.
pub fn substring(s: &str, start: i64, len: i64) -> Result<String, String> {
    if start < 0 || len < 0 {
        return Err(format!(
            "substring takes a start and a length of at least 0, got {start} and {len}"
        ));
    }
    // Both fit a usize on every target once they are known not to exceed the char count.
    let skip = usize::try_from(start).unwrap_or(usize::MAX);
    let take = usize::try_from(len).unwrap_or(usize::MAX);
    Ok(s.chars().skip(skip).take(take).collect())
}

/// The pieces of `s` between the non-overlapping occurrences of `sep`, left to right (so
/// `n` occurrences give `n + 1` pieces, some of them empty); an empty `sep` is an error
/// (`invalid_value`): it has no one meaning.
pub fn split<'a>(s: &'a str, sep: &'a str) -> Result<core::str::Split<'a, &'a str>, String> {
    if sep.is_empty() {
        return Err(String::from("split needs a non-empty separator"));
    }
    Ok(s.split(sep))
}

/// The bytes `join(items, sep)` makes, or `None` when that overflows.
pub fn joined_len<S: AsRef<str>>(items: &[S], sep: &str) -> Option<usize> {
    let seps = sep.len().checked_mul(items.len().saturating_sub(1))?;
    items
        .iter()
        .try_fold(seps, |acc, s| acc.checked_add(s.as_ref().len()))
}

/// `items` with `sep` between each two, appended to `out` (which a caller reserved
/// [`joined_len`] bytes in).
pub fn join_into<S: AsRef<str>>(out: &mut String, items: &[S], sep: &str) {
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(s.as_ref());
    }
}

/// `s` as an i64: an optional `+` or `-`, then ASCII digits, nothing else (no spaces, no
/// `_`); out of range is an error too.
pub fn parse_i64(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|e| format!("{:?} is not an i64: {e}", preview(s)))
}

/// `s` as an f64: decimal digits with an optional sign, point and exponent (`-1.5e3`), or
/// `inf`, `infinity`, `nan` in any case, nothing else; the nearest f64 (NaN canonical).
pub fn parse_f64(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map(crate::canonical_f64)
        .map_err(|e| format!("{:?} is not an f64: {e}", preview(s)))
}

/// The first 40 chars of `s`, for messages.
fn preview(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_states_its_size_and_keeps_to_char_boundaries() {
        for (s, from, to) in [
            ("abcabc", "b", "XY"),
            ("aaaa", "aa", "b"),
            ("ab", "", "-"),
            ("", "", "-"),
            ("héllo wörld", "ö", "oe"),
            ("x", "y", "z"),
        ] {
            assert_eq!(replaced_len(s, from, to), Some(replace(s, from, to).len()));
        }
        assert_eq!(replace("ab", "", "-"), "-a-b-");
        assert_eq!(replace("aaaa", "aa", "b"), "bb");
    }

    #[test]
    fn split_and_join_are_inverse() {
        let parts: alloc::vec::Vec<&str> = split("a,,b,", ",").expect("splits").collect();
        assert_eq!(parts, ["a", "", "b", ""]);
        assert!(split("abc", "").is_err());
        let mut out = String::new();
        join_into(&mut out, &parts, ",");
        assert_eq!(out, "a,,b,");
        assert_eq!(joined_len(&parts, ","), Some(5));
        assert_eq!(joined_len::<&str>(&[], ","), Some(0));
    }

    #[test]
    fn substring_counts_chars_and_clamps_at_the_end() {
        assert_eq!(substring("héllo", 1, 3).as_deref(), Ok("éll"));
        assert_eq!(substring("héllo", 4, 10).as_deref(), Ok("o"));
        assert_eq!(substring("héllo", 9, 1).as_deref(), Ok(""));
        assert_eq!(substring("héllo", 0, i64::MAX).as_deref(), Ok("héllo"));
        assert!(substring("x", -1, 1).is_err());
        assert!(substring("x", 0, -1).is_err());
    }

    #[test]
    fn parsing_is_strict() {
        assert_eq!(parse_i64("-42"), Ok(-42));
        assert_eq!(parse_i64("+7"), Ok(7));
        for bad in [
            " 1",
            "1 ",
            "1_000",
            "",
            "9223372036854775808",
            "0x10",
            "1.0",
        ] {
            assert!(parse_i64(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_f64("-1.5e3"), Ok(-1500.0));
        assert_eq!(parse_f64("inf"), Ok(f64::INFINITY));
        assert!(parse_f64("NaN").is_ok_and(f64::is_nan));
        for bad in [" 1", "1,5", "", "e5", "--1"] {
            assert!(parse_f64(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn case_mapping_is_unicode_full() {
        assert_eq!(to_upper("straße"), "STRASSE");
        assert_eq!(to_lower("ÀÉ"), "àé");
        assert_eq!(trim("\u{3000} a b \n"), "a b");
    }
}
