//! Model-condition patterns with Python `re.fullmatch` semantics.
//!
//! LiteLLM matches a condition pattern first by string equality, then with
//! `re.fullmatch(pattern, model)`; a pattern Python cannot compile matches only itself.
//! Rust's `regex` crate differs from Python's `re` in syntax and in a few class definitions,
//! so patterns are parsed here with Python's grammar and translated into an equivalent Rust
//! regex. Three answers are possible:
//!
//! * [`PatternKind::Regex`]: valid in Python and inside the subset we translate exactly;
//! * [`PatternKind::LiteralOnly`]: Python raises `re.error` (so LiteLLM compares it as a plain
//!   string), e.g. `(`, `*gpt`, `a{2,1}`;
//! * [`PatternKind::Unsupported`]: valid in Python but outside the exact subset (backreferences,
//!   lookaround, inline flags, `\b`, possessive quantifiers, …). Validation rejects these with
//!   a message naming the construct; this is a deliberate difference from LiteLLM (api.md).

use std::fmt::Write as _;

/// Largest repetition bound we translate (keeps compiled regexes small).
const MAX_REPEAT: u32 = 1000;
/// Compiled-size limit for one condition regex.
const SIZE_LIMIT: usize = 1 << 20;
/// Deepest group nesting parsed. The parser recurses once per group, so without a bound a
/// long run of `(` overflows the stack and aborts the process (webhook, controller, CLI).
/// One level more and the translation (inside `\A(?:…)\z`) exceeds the regex crate's nesting
/// limit of 250, so every pattern this rejects was unsupported before too (as "too large");
/// Python itself stops near 500 levels with a RecursionError.
const MAX_NESTING: usize = 248;

/// A model-condition pattern, compiled once.
#[derive(Clone, Debug)]
pub struct ModelPattern {
    raw: String,
    kind: PatternKind,
}

/// How a pattern is evaluated.
#[derive(Clone, Debug)]
pub enum PatternKind {
    /// Exact match, then full-match of this regex.
    Regex(regex::Regex),
    /// Python cannot compile the pattern: exact string comparison only.
    LiteralOnly,
    /// Valid Python, but not translatable exactly; the reason names the construct.
    Unsupported(String),
}

impl ModelPattern {
    /// Compile a pattern.
    pub fn new(raw: &str) -> Self {
        let kind = match translate(raw) {
            Ok(rust) => match regex::RegexBuilder::new(&rust)
                .size_limit(SIZE_LIMIT)
                .build()
            {
                Ok(re) => PatternKind::Regex(re),
                Err(_) => PatternKind::Unsupported("the pattern is too large".to_string()),
            },
            Err(Problem::PythonInvalid) => PatternKind::LiteralOnly,
            Err(Problem::Unsupported(why)) => PatternKind::Unsupported(why),
        };
        ModelPattern {
            raw: raw.to_string(),
            kind,
        }
    }

    /// The pattern as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// How it is evaluated.
    pub fn kind(&self) -> &PatternKind {
        &self.kind
    }

    /// LiteLLM's `_matches_pattern`: equality, then Python full match. An unsupported pattern
    /// matches only by equality (validation never lets one reach production).
    pub fn matches(&self, value: &str) -> bool {
        if self.raw == value {
            return true;
        }
        match &self.kind {
            PatternKind::Regex(re) => re.is_match(value),
            PatternKind::LiteralOnly | PatternKind::Unsupported(_) => false,
        }
    }
}

impl PartialEq for ModelPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

#[derive(Debug, PartialEq)]
enum Problem {
    PythonInvalid,
    Unsupported(String),
}

fn unsupported<T>(what: &str) -> Result<T, Problem> {
    Err(Problem::Unsupported(what.to_string()))
}

/// Translate a Python pattern into a Rust regex anchored at both ends.
fn translate(pattern: &str) -> Result<String, Problem> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut parser = Parser {
        chars: &chars,
        pos: 0,
        depth: 0,
    };
    let body = parser.alternation()?;
    if parser.pos != chars.len() {
        // Only an unmatched ')' stops the top-level alternation early.
        return Err(Problem::PythonInvalid);
    }
    Ok(format!(r"\A(?:{body})\z"))
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    depth: usize,
}

/// What a parsed item is, for Python's "nothing to repeat" / "multiple repeat" rules.
#[derive(Clone, Copy, PartialEq)]
enum Item {
    Atom,
    Anchor,
    Repeated,
}

const PY_WHITESPACE: &str = r"\t\n\x0B\x0C\r\x1C-\x1F \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}";
const PY_WORD: &str = r"\p{L}\p{N}_";

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn alternation(&mut self) -> Result<String, Problem> {
        let mut out = self.branch()?;
        while self.peek() == Some('|') {
            self.pos += 1;
            out.push('|');
            out.push_str(&self.branch()?);
        }
        Ok(out)
    }

    fn branch(&mut self) -> Result<String, Problem> {
        let mut items: Vec<(String, Item)> = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '|' => break,
                ')' => {
                    if self.depth == 0 {
                        return Err(Problem::PythonInvalid); // unbalanced parenthesis
                    }
                    break;
                }
                '*' | '+' | '?' => {
                    self.pos += 1;
                    self.quantify(&mut items, c.to_string())?;
                }
                '{' => match self.brace_quantifier()? {
                    Some(q) => self.quantify(&mut items, q)?,
                    None => {
                        self.pos += 1;
                        items.push((regex_syntax::escape("{"), Item::Atom));
                    }
                },
                _ => items.push(self.atom()?),
            }
        }
        Ok(items.into_iter().map(|(text, _)| text).collect())
    }

    /// Apply a quantifier to the last item, with Python's error rules, then an optional
    /// lazy `?` (kept) or possessive `+` (unsupported).
    fn quantify(&mut self, items: &mut [(String, Item)], q: String) -> Result<(), Problem> {
        let Some((text, item)) = items.last_mut() else {
            return Err(Problem::PythonInvalid); // nothing to repeat
        };
        match item {
            Item::Anchor => return Err(Problem::PythonInvalid), // nothing to repeat
            Item::Repeated => return Err(Problem::PythonInvalid), // multiple repeat
            Item::Atom => {}
        }
        let mut quantified = format!("(?:{text}){q}");
        match self.peek() {
            Some('?') => {
                self.pos += 1;
                quantified.push('?');
            }
            Some('+') => return unsupported("a possessive quantifier"),
            _ => {}
        }
        *text = quantified;
        *item = Item::Repeated;
        Ok(())
    }

    /// `{m}`, `{m,}`, `{,n}`, `{m,n}`, `{,}` at the current position, or `None` when Python
    /// reads the brace as a literal.
    fn brace_quantifier(&mut self) -> Result<Option<String>, Problem> {
        let mut i = self.pos + 1;
        let mut lo = String::new();
        while let Some(c) = self.chars.get(i).filter(|c| c.is_ascii_digit()) {
            lo.push(*c);
            i += 1;
        }
        let mut hi = String::new();
        let mut comma = false;
        if self.chars.get(i) == Some(&',') {
            comma = true;
            i += 1;
            while let Some(c) = self.chars.get(i).filter(|c| c.is_ascii_digit()) {
                hi.push(*c);
                i += 1;
            }
        }
        if self.chars.get(i) != Some(&'}') {
            return Ok(None);
        }
        if !comma && lo.is_empty() {
            return Ok(None); // "{}" is literal
        }
        let parse = |s: &str| -> Result<Option<u64>, Problem> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse::<u64>()
                    .map(Some)
                    .map_err(|_| Problem::PythonInvalid)
            }
        };
        let lo_n = parse(&lo)?;
        let hi_n = parse(&hi)?;
        const PY_MAXREPEAT: u64 = 4_294_967_295;
        if lo_n.is_some_and(|n| n >= PY_MAXREPEAT) || hi_n.is_some_and(|n| n >= PY_MAXREPEAT) {
            return Err(Problem::PythonInvalid); // the repetition number is too large
        }
        if let (Some(l), Some(h)) = (lo_n, hi_n)
            && h < l
        {
            return Err(Problem::PythonInvalid); // min repeat greater than max repeat
        }
        if lo_n.unwrap_or(0) > u64::from(MAX_REPEAT) || hi_n.unwrap_or(0) > u64::from(MAX_REPEAT) {
            return unsupported("a repetition count above 1000");
        }
        self.pos = i + 1;
        let l = lo_n.unwrap_or(0);
        Ok(Some(match (comma, hi_n) {
            (false, _) => format!("{{{l}}}"),
            (true, None) => format!("{{{l},}}"),
            (true, Some(h)) => format!("{{{l},{h}}}"),
        }))
    }

    fn atom(&mut self) -> Result<(String, Item), Problem> {
        let Some(c) = self.peek() else {
            return Err(Problem::PythonInvalid);
        };
        self.pos += 1;
        match c {
            '(' => {
                if self.peek() == Some('?') {
                    if self.peek_at(1) == Some(':') {
                        self.pos += 2;
                    } else {
                        return unsupported(
                            "a (?...) group other than (?:...) (named groups, lookaround, inline flags, comments)",
                        );
                    }
                }
                if self.depth >= MAX_NESTING {
                    return unsupported("groups nested more than 248 deep");
                }
                self.depth += 1;
                let inner = self.alternation()?;
                if self.peek() != Some(')') {
                    return Err(Problem::PythonInvalid); // missing ), unterminated subpattern
                }
                self.pos += 1;
                self.depth -= 1;
                Ok((format!("(?:{inner})"), Item::Atom))
            }
            '[' => Ok((self.class()?, Item::Atom)),
            '.' => Ok(("(?-s:.)".to_string(), Item::Atom)),
            '^' => Ok((r"\A".to_string(), Item::Anchor)),
            '$' => {
                if self.only_group_ends_follow() {
                    Ok((r"\z".to_string(), Item::Anchor))
                } else {
                    unsupported(
                        "'$' followed by more pattern (Python's $ also matches before a final newline)",
                    )
                }
            }
            '\\' => Ok(match self.escape(false)? {
                Escaped::Char(ch) => (regex_syntax::escape(&ch.to_string()), Item::Atom),
                Escaped::Set(set) => (set, Item::Atom),
                Escaped::Anchor(anchor) => (anchor, Item::Anchor),
            }),
            other => Ok((regex_syntax::escape(&other.to_string()), Item::Atom)),
        }
    }

    /// After a `$`: true when the rest of the pattern can only close groups and end the
    /// pattern or a top-level alternative, so `$` is equivalent to end-of-string.
    fn only_group_ends_follow(&self) -> bool {
        let mut depth = self.depth;
        for &c in &self.chars[self.pos..] {
            match c {
                ')' if depth > 0 => depth -= 1,
                '|' if depth == 0 => return true,
                _ => return false,
            }
        }
        true
    }

    /// An escape after the backslash. Inside a class, `\b` is a backspace and anchors are errors.
    fn escape(&mut self, in_class: bool) -> Result<Escaped, Problem> {
        let Some(c) = self.peek() else {
            return Err(Problem::PythonInvalid); // bad escape (end of pattern)
        };
        self.pos += 1;
        let set = |s: String| Ok(Escaped::Set(s));
        match c {
            'd' => set(r"\d".into()),
            'D' => set(if in_class {
                r"[^\d]".into()
            } else {
                r"\D".into()
            }),
            'w' => set(if in_class {
                PY_WORD.into()
            } else {
                format!("[{PY_WORD}]")
            }),
            'W' => set(format!("[^{PY_WORD}]")),
            's' => set(if in_class {
                PY_WHITESPACE.into()
            } else {
                format!("[{PY_WHITESPACE}]")
            }),
            'S' => set(format!("[^{PY_WHITESPACE}]")),
            'A' | 'Z' | 'B' if in_class => Err(Problem::PythonInvalid), // bad escape in a set
            'A' => Ok(Escaped::Anchor(r"\A".into())),
            'Z' => Ok(Escaped::Anchor(r"\z".into())),
            'b' if in_class => Ok(Escaped::Char('\u{8}')),
            'b' | 'B' => unsupported(r"\b or \B (word boundaries)"),
            'a' => Ok(Escaped::Char('\u{7}')),
            'f' => Ok(Escaped::Char('\u{c}')),
            'n' => Ok(Escaped::Char('\n')),
            'r' => Ok(Escaped::Char('\r')),
            't' => Ok(Escaped::Char('\t')),
            'v' => Ok(Escaped::Char('\u{b}')),
            'x' => self.hex_digits(2).map(Escaped::Char),
            'u' => self.hex_digits(4).map(Escaped::Char),
            'U' => self.hex_digits(8).map(Escaped::Char),
            'N' => unsupported(r"\N{...} named characters"),
            '0'..='9' => unsupported("backreferences and octal escapes"),
            c if c.is_ascii_alphabetic() => Err(Problem::PythonInvalid), // bad escape
            other => Ok(Escaped::Char(other)),
        }
    }

    fn hex_digits(&mut self, n: usize) -> Result<char, Problem> {
        let end = self.pos + n;
        if end > self.chars.len() {
            return Err(Problem::PythonInvalid);
        }
        let digits: String = self.chars[self.pos..end].iter().collect();
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Problem::PythonInvalid);
        }
        self.pos = end;
        let code = u32::from_str_radix(&digits, 16).map_err(|_| Problem::PythonInvalid)?;
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None if code > 0x10FFFF => Err(Problem::PythonInvalid),
            None => unsupported("a surrogate code point"),
        }
    }

    /// A character class, after its `[`.
    fn class(&mut self) -> Result<String, Problem> {
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let start = self.pos;
        let mut items = 0usize;
        loop {
            let Some(c) = self.peek() else {
                return Err(Problem::PythonInvalid); // unterminated character set
            };
            if c == ']' && self.pos > start {
                self.pos += 1;
                break;
            }
            let first = self.class_member()?;
            // A range `a-z`, unless '-' is the last member.
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                self.pos += 1;
                let second = self.class_member()?;
                let (ClassMember::Char(lo), ClassMember::Char(hi)) = (&first, &second) else {
                    return Err(Problem::PythonInvalid); // bad character range
                };
                if hi < lo {
                    return Err(Problem::PythonInvalid);
                }
                let _ = write!(
                    out,
                    "{}-{}",
                    regex_syntax::escape(&lo.to_string()),
                    regex_syntax::escape(&hi.to_string())
                );
            } else {
                match first {
                    ClassMember::Char(ch) => out.push_str(&regex_syntax::escape(&ch.to_string())),
                    ClassMember::Set(s) => out.push_str(&s),
                }
            }
            items += 1;
        }
        if items == 0 {
            return Err(Problem::PythonInvalid);
        }
        out.push(']');
        Ok(out)
    }

    fn class_member(&mut self) -> Result<ClassMember, Problem> {
        let Some(c) = self.peek() else {
            return Err(Problem::PythonInvalid);
        };
        self.pos += 1;
        if c != '\\' {
            return Ok(ClassMember::Char(c));
        }
        match self.escape(true)? {
            Escaped::Char(ch) => Ok(ClassMember::Char(ch)),
            Escaped::Set(set) => Ok(ClassMember::Set(set)),
            Escaped::Anchor(_) => Err(Problem::PythonInvalid),
        }
    }
}

enum ClassMember {
    Char(char),
    Set(String),
}

enum Escaped {
    Char(char),
    Set(String),
    Anchor(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &str) -> &'static str {
        match ModelPattern::new(p).kind() {
            PatternKind::Regex(_) => "regex",
            PatternKind::LiteralOnly => "literal",
            PatternKind::Unsupported(_) => "unsupported",
        }
    }

    fn m(p: &str, v: &str) -> bool {
        ModelPattern::new(p).matches(v)
    }

    #[test]
    fn glob_is_not_supported_in_conditions() {
        assert!(!m("gpt-*", "gpt-4"));
        assert!(m("gpt-*", "gpt--"));
        assert!(m("gpt-*", "gpt"));
        assert!(m("gpt-.*", "gpt-4o"));
    }

    #[test]
    fn full_match_and_exact_first() {
        assert!(!m("gpt-4", "gpt-4o"));
        assert!(m("gpt-4o|gpt-4", "gpt-4"));
        assert!(m("(gpt|claude)-.+", "claude-3"));
        assert!(!m("(gpt|claude)-.+", "claude-"));
        assert!(m("gpt-3.5-turbo", "gpt-3.5-turbo"));
        assert!(m("gpt-3.5-turbo", "gpt-3x5-turbo"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(!m("GPT-4", "gpt-4"));
    }

    #[test]
    fn python_invalid_patterns_are_literal_only() {
        for p in [
            "(", "[", "*gpt", "gpt-(", "a{2,1}", "+x", "a**", ")", "\\", "[]", "[z-a]", r"\q",
            "a|*",
        ] {
            assert_eq!(kind(p), "literal", "{p}");
            assert!(m(p, p), "{p} matches itself");
        }
        assert!(!m("(", "x"));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        for p in [
            r"(a)\1",
            "(?=a)a",
            "(?i)gpt",
            r"\bgpt",
            "a*+",
            "(?P<x>a)",
            "a${2}",
            r"\N{DASH}",
            "a{2000}",
        ] {
            assert_eq!(kind(p), "unsupported", "{p}");
        }
    }

    #[test]
    fn python_brace_literals() {
        assert!(m("a{", "a{"));
        assert!(m("a{x}", "a{x}"));
        assert!(m("a{}", "a{}"));
        assert!(m("a{1,2", "a{1,2"));
        assert!(m("a{,2}", ""));
        assert!(m("a{,2}", "aa"));
        assert!(!m("a{,2}", "aaa"));
        assert!(m("gpt-4{1,2}o", "gpt-44o"));
        assert_eq!(kind("{2}"), "literal");
        assert!(m("{a}", "{a}"));
    }

    #[test]
    fn classes() {
        assert!(m("[a-z]+-\\d+", "gpt-4"));
        assert!(m("[^x]+", "abc"));
        assert!(!m("[^x]+", "axc"));
        assert!(m("[]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m(r"[\w.]+", "gpt-3.5".replace('-', "_").as_str()));
        assert!(m(r"\w+-\w+", "gpt-4o"));
        assert!(m("o[13](-mini)?", "o3-mini"));
        assert!(m(r"[\s]", "\u{1c}"));
        assert!(m(r"\s", "\u{1c}"));
        assert!(!m(r"\S", "\u{1c}"));
        assert!(m(r"[[]", "["));
    }

    #[test]
    fn deep_nesting_is_unsupported_not_a_stack_overflow() {
        let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(m(&deep(MAX_NESTING), "a"));
        assert_eq!(kind(&deep(MAX_NESTING + 1)), "unsupported");
        // The same kind as before the bound: the regex crate refuses the translation.
        let n = MAX_NESTING + 1;
        let translated = format!(r"\A(?:{}a{})\z", "(?:".repeat(n), ")".repeat(n));
        assert!(regex::Regex::new(&translated).is_err());
        for p in [deep(100_000), "(".repeat(100_000), "(?:".repeat(50_000)] {
            let ModelPattern { kind, .. } = ModelPattern::new(&p);
            assert!(
                matches!(&kind, PatternKind::Unsupported(why) if why.contains("nested")),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn anchors_and_dollar() {
        assert!(m("^gpt$", "gpt"));
        assert!(!m("gpt$", "gpt\n"));
        assert!(m("(a$)|b", "a"));
        assert_eq!(kind("a$b"), "unsupported");
        assert_eq!(kind("^*"), "literal");
        assert!(m(r"\Agpt\Z", "gpt"));
    }

    #[test]
    fn lazy_and_escapes() {
        assert!(m("a+?", "aaa"));
        assert!(m(r"gpt-\d\.\d-turbo", "gpt-3.5-turbo"));
        assert!(m(r"\x41", "A"));
        assert!(m(r"\-", "-"));
        assert!(m(r"(?:ab)*", "abab"));
        assert!(m(".*-mini", "o3-mini"));
        assert!(!m(".", "\n"));
    }
}
