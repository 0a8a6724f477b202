//! The lexical gate in front of the SQL check: only text that every lexer involved — ours
//! (`sqlparser`), PostgreSQL's and SQLite's — cuts into the same tokens gets through, and the
//! database receives the canonical re-serialization of what was parsed, never the graph's text.
//!
//! Why: the footprint check parses SQL with one lexer and the database lexes it again with
//! another. Where the two disagree on where a comment, string, operator or identifier begins
//! and ends (`*/*`, nested block comments, a comment ended by CR, `E'…'` escapes, quoted names
//! whose case SQLite ignores), the database runs a statement the check never saw. This module
//! removes the disagreement instead of modelling it.
//!
//! Invariants:
//! - [`check`] accepts only an allow-list of tokens: unquoted ASCII words, double-quoted names
//!   without upper-case ASCII letters (SQLite compares quoted names without case, PostgreSQL
//!   with it), plain decimal numbers, standard `'…'` strings, `$n` placeholders, and the
//!   operators in [`OPERATORS`]. Comments, escape / dollar / bit / hex / national / Unicode
//!   strings, brackets, custom or unknown operators, CR and other control characters are
//!   refused, each with what to remove ([`Lexeme`]).
//! - Two operators never touch (`*-`, `<-`): PostgreSQL reads a run of operator characters as
//!   one operator where SQLite reads several. A number is never directly followed by a word,
//!   number, period, string or placeholder, nor a placeholder by a word or number.
//! - [`canonical`] prints the parsed statements; the text is accepted only if it passes
//!   [`check`] again and parses back to the same statements. That text, and only it, is what a
//!   driver runs.
//!
//! This module knows nothing of drivers or footprints.

use std::fmt;

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::Denied;

/// Operators both databases lex as the same single token, and mean the same by.
const OPERATORS: &[&str] = &[
    ",", "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "||", "(", ")", ".", ";",
    "::",
];

/// What the gate refused: the graph author removes it (or passes the data as a parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lexeme {
    /// `--` or `/* */`.
    Comment,
    /// A carriage return, NUL, form feed or another control character than tab and newline.
    ControlCharacter(u32),
    /// `E'…'`, `U&'…'`, `$$…$$`, `B'…'`, `X'…'`, `N'…'` or another non-standard string.
    StringForm(&'static str),
    /// An operator outside [`OPERATORS`] (shown as written, bounded).
    Operator(String),
    /// Two operators with nothing between them.
    AdjacentOperators(String),
    /// A word with characters other than ASCII letters, digits and `_`.
    Word,
    /// A double-quoted name with upper-case ASCII letters.
    QuotedCase,
    /// A name quoted with backticks or brackets.
    QuoteStyle(char),
    /// A number other than plain decimal (`0x1f`, `1_000`), or one glued to what follows.
    Number,
    /// A placeholder other than `$1` … `$65535` without leading zeros, or one glued to a word.
    Placeholder,
    /// The canonical text did not parse back to the same statements (a parser round-trip gap).
    NotCanonical,
}

impl fmt::Display for Lexeme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Comment => f.write_str("a comment"),
            Self::ControlCharacter(code) => write!(f, "the control character U+{code:04X}"),
            Self::StringForm(form) => write!(f, "{form}"),
            Self::Operator(op) => write!(f, "the operator {op:?}"),
            Self::AdjacentOperators(ops) => write!(f, "operators with no space between ({ops:?})"),
            Self::Word => f.write_str("a word with characters other than ASCII letters, digits, _"),
            Self::QuotedCase => f.write_str("a double-quoted name with capital letters"),
            Self::QuoteStyle(c) => write!(f, "a name quoted with {c:?}"),
            Self::Number => f.write_str("a number that is not plain decimal, or glued to a name"),
            Self::Placeholder => f.write_str("a placeholder other than $1, $2, …"),
            Self::NotCanonical => f.write_str("SQL that does not print back to itself"),
        }
    }
}

impl Lexeme {
    /// What the author should do instead.
    pub(crate) fn remediation(&self) -> &'static str {
        match self {
            Self::Comment => "remove the comment",
            Self::ControlCharacter(_) => {
                "remove it (end lines with \\n alone; pass data with control characters as a parameter)"
            }
            Self::StringForm(_) => {
                "write a plain '...' string (double any ') or pass the value as a parameter"
            }
            Self::Operator(_) => {
                "use only = <> != < > <= >= + - * / % || :: (or an allow-listed function)"
            }
            Self::AdjacentOperators(_) => "put a space between the operators",
            Self::Word => "write names in ASCII letters, digits and _ (or double-quote them)",
            Self::QuotedCase => {
                "use lower-case table and column names (SQLite and PostgreSQL disagree on the \
                 case of quoted names)"
            }
            Self::QuoteStyle(_) => "quote names with double quotes",
            Self::Number => "write numbers in plain decimal, separated from names by a space",
            Self::Placeholder => "number parameters $1, $2, … without leading zeros",
            Self::NotCanonical => {
                "simplify the statement; this form does not survive a print and re-parse"
            }
        }
    }
}

fn refuse(lexeme: Lexeme) -> Result<(), Denied> {
    Err(Denied::SqlLexeme { lexeme })
}

/// Refuses any text that another lexer could cut differently (see the module invariants).
pub(crate) fn check(sql: &str) -> Result<(), Denied> {
    if let Some(c) = sql
        .chars()
        .find(|&c| (c.is_control() && c != '\t' && c != '\n') || is_bidi_or_invisible(c))
    {
        return refuse(Lexeme::ControlCharacter(u32::from(c)));
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| Denied::SqlSyntax {
            message: super::denied::shown(&e.to_string()),
        })?;
    // The previous significant token, and whether whitespace came after it.
    let mut previous: Option<&Token> = None;
    let mut spaced = true;
    for token in &tokens {
        let kind = classify(token);
        let kind = match kind {
            Ok(kind) => kind,
            Err(lexeme) => return refuse(lexeme),
        };
        if kind == Kind::Space {
            spaced = true;
            continue;
        }
        if !spaced && let Some(previous) = previous {
            let before = classify(previous).unwrap_or(Kind::Space);
            let glued = match (before, kind) {
                (Kind::Operator, Kind::Operator) => {
                    // Parentheses, commas, periods and semicolons are punctuation: they end a
                    // run of operator characters in every lexer.
                    is_operator_char_token(previous) && is_operator_char_token(token)
                }
                (Kind::Number, Kind::Word | Kind::Number | Kind::Str | Kind::Placeholder) => true,
                (Kind::Number, Kind::Operator) => matches!(token, Token::Period),
                (Kind::Placeholder, Kind::Word | Kind::Number) => true,
                _ => false,
            };
            if glued {
                return refuse(match before {
                    Kind::Operator => Lexeme::AdjacentOperators(format!("{previous}{token}")),
                    Kind::Placeholder => Lexeme::Placeholder,
                    _ => Lexeme::Number,
                });
            }
        }
        previous = Some(token);
        spaced = false;
    }
    Ok(())
}

/// Characters that render invisibly or reorder text: never needed in SQL, always suspect.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Space,
    Word,
    Number,
    Str,
    Placeholder,
    Operator,
}

fn classify(token: &Token) -> Result<Kind, Lexeme> {
    Ok(match token {
        Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab) => Kind::Space,
        Token::Whitespace(_) => return Err(Lexeme::Comment),
        Token::Word(word) => match word.quote_style {
            None => {
                let mut chars = word.value.chars();
                let ok = chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(Lexeme::Word);
                }
                Kind::Word
            }
            Some('"') => {
                if word.value.chars().any(|c| c.is_ascii_uppercase()) {
                    return Err(Lexeme::QuotedCase);
                }
                Kind::Word
            }
            Some(other) => return Err(Lexeme::QuoteStyle(other)),
        },
        Token::Number(text, long) => {
            if *long || !plain_decimal(text) {
                return Err(Lexeme::Number);
            }
            Kind::Number
        }
        Token::SingleQuotedString(_) => Kind::Str,
        Token::Placeholder(text) => {
            let digits = text.strip_prefix('$').unwrap_or("");
            let ok = !digits.is_empty()
                && digits.len() <= 5
                && !digits.starts_with('0')
                && digits.chars().all(|c| c.is_ascii_digit())
                && digits.parse::<u32>().is_ok_and(|n| n <= 65_535);
            if !ok {
                return Err(Lexeme::Placeholder);
            }
            Kind::Placeholder
        }
        Token::EscapedStringLiteral(_) => {
            return Err(Lexeme::StringForm("an E'...' escape string"));
        }
        Token::UnicodeStringLiteral(_) => return Err(Lexeme::StringForm("a U&'...' string")),
        Token::DollarQuotedString(_) => return Err(Lexeme::StringForm("a $$...$$ string")),
        Token::HexStringLiteral(_) => return Err(Lexeme::StringForm("an X'...' string")),
        Token::NationalStringLiteral(_) => return Err(Lexeme::StringForm("an N'...' string")),
        Token::SingleQuotedByteStringLiteral(_) | Token::DoubleQuotedByteStringLiteral(_) => {
            return Err(Lexeme::StringForm("a B'...' string"));
        }
        Token::DoubleQuotedString(_) => return Err(Lexeme::QuoteStyle('"')),
        // Punctuation, and the operators every lexer reads alike ([`OPERATORS`]).
        Token::Comma
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::SemiColon
        | Token::DoubleColon => Kind::Operator,
        token if is_operator_char_token(token) => Kind::Operator,
        Token::EOF => Kind::Space,
        Token::Char(c) if c.is_whitespace() => return Err(Lexeme::ControlCharacter(u32::from(*c))),
        other => {
            let mut shown = other.to_string();
            shown.truncate(shown.char_indices().nth(16).map_or(shown.len(), |(i, _)| i));
            if shown.starts_with('\'') || shown.contains('\'') {
                return Err(Lexeme::StringForm("a string form other than '...'"));
            }
            return Err(Lexeme::Operator(shown));
        }
    })
}

/// Tokens made of operator characters (PostgreSQL's `+-*/<>=~!@#%^&|`?`), which a run of
/// joins into one operator there.
fn is_operator_char_token(token: &Token) -> bool {
    matches!(
        token,
        Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
    )
}

/// `12`, `1.5`, `.5`, `1.`, `1e9`, `2.5E-3`: what PostgreSQL and SQLite both read as one
/// decimal number.
fn plain_decimal(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && fraction.is_none_or(digits)
        && (!whole.is_empty() || fraction.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// The text a driver runs for `statements`: their canonical print, `; `-separated, checked
/// to pass [`check`] and to parse back to the same statements.
pub(crate) fn canonical(
    statements: &[Statement],
    recursion_limit: usize,
) -> Result<String, Denied> {
    let text = statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let not_canonical = || Denied::SqlLexeme {
        lexeme: Lexeme::NotCanonical,
    };
    check(&text).map_err(|_| not_canonical())?;
    let reparsed = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(recursion_limit)
        .try_with_sql(&text)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|_| not_canonical())?;
    if reparsed != statements {
        return Err(not_canonical());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> Lexeme {
        match check(sql) {
            Err(Denied::SqlLexeme { lexeme }) => lexeme,
            other => panic!("{sql:?}: expected a lexical refusal, got {other:?}"),
        }
    }

    #[test]
    fn plain_sql_passes() {
        for sql in [
            "SELECT a, b FROM t WHERE a = $1 AND b <> 'it''s' ORDER BY a DESC LIMIT 10",
            "SELECT count(*) FROM t WHERE x >= 1.5e-3 OR y != .5",
            "SELECT \"weird name\" FROM \"t 1\" WHERE a::text || 'x' = $2",
            "INSERT INTO t (a, b) VALUES ($1, $2)",
            "SELECT 2 * -1, 3 - -2, (4) / (2)",
            "SELECT a\n\tFROM t",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn what_another_lexer_could_read_differently_is_refused() {
        assert_eq!(refused("SELECT 1 -- x"), Lexeme::Comment);
        assert_eq!(refused("SELECT 1 /* x */"), Lexeme::Comment);
        assert_eq!(refused("SELECT 1 /* /* */ */"), Lexeme::Comment);
        assert_eq!(refused("SELECT 1 */*x*/ 2"), Lexeme::Comment);
        // sqlparser folds `|/--` into one custom operator; PostgreSQL and SQLite end the
        // operator and start a comment. Refused either way.
        assert!(matches!(
            refused("SELECT 1 |/-- x\n 2"),
            Lexeme::Comment | Lexeme::Operator(_)
        ));
        assert_eq!(refused("SELECT 1\r"), Lexeme::ControlCharacter(13));
        assert_eq!(refused("SELECT 1\u{c}"), Lexeme::ControlCharacter(12));
        assert_eq!(refused("SELECT\u{0}1"), Lexeme::ControlCharacter(0));
        assert_eq!(refused("SELECT\u{202e}1"), Lexeme::ControlCharacter(0x202e));
        assert!(matches!(refused("SELECT E'\\''"), Lexeme::StringForm(_)));
        assert!(matches!(refused("SELECT $$x$$"), Lexeme::StringForm(_)));
        assert!(matches!(
            refused("SELECT $a$x$a$"),
            Lexeme::StringForm(_) | Lexeme::Placeholder
        ));
        assert!(matches!(refused("SELECT X'00'"), Lexeme::StringForm(_)));
        assert!(matches!(refused("SELECT B'01'"), Lexeme::StringForm(_)));
        assert!(matches!(refused("SELECT N'x'"), Lexeme::StringForm(_)));
        assert!(matches!(refused("SELECT U&'x'"), Lexeme::StringForm(_)));
        assert!(matches!(refused("SELECT 1 @ 2"), Lexeme::Operator(_)));
        assert!(matches!(refused("SELECT 1 |/ 2"), Lexeme::Operator(_)));
        assert!(matches!(refused("SELECT a[1] FROM t"), Lexeme::Operator(_)));
        assert!(matches!(
            refused("SELECT a -> 'k' FROM t"),
            Lexeme::Operator(_)
        ));
        assert!(matches!(
            refused("SELECT 2*-1"),
            Lexeme::AdjacentOperators(_)
        ));
        assert!(matches!(
            refused("SELECT 1<-1"),
            Lexeme::AdjacentOperators(_)
        ));
        assert_eq!(refused("SELECT \"Secret\" FROM t"), Lexeme::QuotedCase);
        assert_eq!(refused("SELECT `a` FROM t"), Lexeme::Operator("`".into()));
        assert_eq!(refused("SELECT 0x1f"), Lexeme::Number);
        assert_eq!(refused("SELECT 1from t"), Lexeme::Number);
        assert_eq!(refused("SELECT a$b FROM t"), Lexeme::Word);
        assert_eq!(refused("SELECT café FROM t"), Lexeme::Word);
        assert_eq!(refused("SELECT $01"), Lexeme::Placeholder);
        assert!(matches!(
            refused("SELECT ?"),
            Lexeme::Placeholder | Lexeme::Operator(_)
        ));
        assert!(matches!(refused("SELECT :a"), Lexeme::Operator(_)));
    }

    #[test]
    fn every_listed_operator_passes_the_gate() {
        for op in OPERATORS {
            let sql = match *op {
                "(" | ")" => "SELECT (a) FROM t".to_string(),
                "," => "SELECT a, b FROM t".to_string(),
                "." => "SELECT t.a FROM t".to_string(),
                ";" => "SELECT 1; SELECT 2".to_string(),
                "::" => "SELECT a::text FROM t".to_string(),
                binary => format!("SELECT a {binary} b FROM t"),
            };
            assert_eq!(check(&sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn decimals() {
        for ok in ["1", "1.5", ".5", "1.", "1e9", "2.5E-3", "7e+2"] {
            assert!(plain_decimal(ok), "{ok}");
        }
        for bad in ["", ".", "1e", "0x1", "1_0", "1e+", "e5", "1..2"] {
            assert!(!plain_decimal(bad), "{bad}");
        }
    }
}
