//! Python's `re` (CPython 3.11), the engine's one implementation, used by the content filter
//! and by model conditions alike.
//!
//! Regexes follow Python's `re` exactly. Patterns are parsed with Python's grammar and
//! compiled with Python's semantics for `IGNORECASE` (simple lower-casing plus CPython's
//! extra case equivalences such as `i`/`ı`, `s`/`ſ`), `\d`, `\w`, `\s`, `\b`, `.` and `$`.
//! Most patterns run on the `regex` crate with explicit character classes. Constructs the
//! `regex` crate lacks — look-ahead and look-behind (eight prebuilt patterns use them), a
//! non-`MULTILINE` `$`, patterns that can match the empty string (Python's `finditer`
//! empty-match rules), and `\b` on text containing characters whose word-ness differs between
//! Python and Rust (combining marks, `²`, `½`, connector punctuation) — run on a small
//! backtracking matcher in this module that follows `sre`'s search order, with memoised states
//! so it stays polynomial. Python features with no exact equivalent here (backreferences,
//! atomic groups, possessive quantifiers, conditional groups, `\N{…}`, the `a`/`x`/`L` flags,
//! repeats of a sub-pattern that can match the empty string, repeat bounds above 1000) are
//! rejected at load with a message naming the construct.
//!
//! Character classes come from the `regex-syntax` Unicode tables; they agree with CPython
//! 3.11 (Unicode 14) for every character assigned in Unicode 14 (the differential test checks
//! this exhaustively); characters assigned later may classify differently.
//!
//!
//! Layout: [`parse`] (Python's grammar), [`compile`] (flags and classes resolved, the `regex`
//! crate translation), [`vm`] (the backtracking matcher), [`chars`] (character tables),
//! [`pystr`] (string helpers).

mod chars;
mod compile;
mod parse;
mod pystr;
#[cfg(test)]
mod tests;
mod vm;

pub use chars::pychar;
pub use parse::ReError;

pub(crate) use chars::*;
pub(crate) use compile::*;
pub(crate) use parse::*;
pub(crate) use pystr::*;
pub(crate) use vm::*;

/// A compiled Python regex.
#[derive(Debug)]
pub struct PyRegex {
    prog: Prog,
    /// The exact `regex` crate translation for searching, where one exists.
    fast: Option<regex::Regex>,
    /// The same anchored at both ends, for [`PyRegex::fullmatch`].
    fast_full: Option<regex::Regex>,
    uses_boundary: bool,
    /// For fullmatch patterns: the exact translation (`regex` syntax, unanchored) when it has
    /// no `\b`, for building automata (`plan`).
    automaton_source: Option<String>,
}

/// What a compiled pattern is for: its fast paths are built for that use only.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    Search,
    FullMatch,
}

fn build_fast(rust: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(rust)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .ok()
}

impl PyRegex {
    /// `re.compile(pattern, re.IGNORECASE if ignorecase else 0)`, for searching (`finditer`,
    /// `search`, `sub`).
    pub fn new(pattern: &str, ignorecase: bool) -> Result<PyRegex, ReError> {
        PyRegex::compile(pattern, if ignorecase { FLAG_I } else { 0 }, Use::Search)
    }

    /// `re.compile(pattern)` for `fullmatch` only (model conditions): the fast path is the
    /// translation anchored at both ends.
    pub fn for_fullmatch(pattern: &str) -> Result<PyRegex, ReError> {
        PyRegex::compile(pattern, 0, Use::FullMatch)
    }

    fn compile(pattern: &str, flags: u8, usage: Use) -> Result<PyRegex, ReError> {
        let (items, flags) = parse_pattern(pattern, flags)?;
        let node = compile_items(&items, flags)?;
        let prog = ProgBuilder::build(&node);
        let mut rust = String::new();
        let mut uses_boundary = false;
        let translated = to_rust(&node, &mut rust, &mut uses_boundary);
        let (fast, fast_full) = match usage {
            _ if !translated => (None, None),
            // Python's finditer empty-match rules differ from the regex crate's.
            Use::Search if min_width(&node) > 0 => (build_fast(&rust), None),
            Use::Search => (None, None),
            Use::FullMatch => (None, build_fast(&format!(r"\A(?:{rust})\z"))),
        };
        let automaton_source = (fast_full.is_some() && !uses_boundary).then_some(rust);
        Ok(PyRegex {
            prog,
            fast,
            fast_full,
            uses_boundary,
            automaton_source,
        })
    }

    /// The pattern in `regex` syntax, exactly equivalent for `fullmatch` (anchor it at both
    /// ends), when there is one without `\b`: what automata over model names are built from.
    pub fn automaton_source(&self) -> Option<&str> {
        self.automaton_source.as_deref()
    }

    /// Whether `fullmatch` runs on the `regex` crate (else on the backtracking matcher).
    pub fn has_fast_fullmatch(&self) -> bool {
        self.fast_full.is_some()
    }

    /// `\b` differs between Python and the regex crate on these texts.
    fn boundary_differs(&self, text: &str) -> bool {
        self.uses_boundary
            && text
                .chars()
                .any(|c| tables().word_mismatch.contains(c as u32))
    }

    fn fast_for(&self, text: &str) -> Option<&regex::Regex> {
        let fast = self.fast.as_ref()?;
        if text.is_empty() {
            return None;
        }
        if self.boundary_differs(text) {
            return None;
        }
        Some(fast)
    }

    /// `[m.span() for m in finditer(text)]` (byte offsets).
    pub fn find_iter(&self, text: &str) -> Vec<(usize, usize)> {
        if let Some(fast) = self.fast_for(text) {
            return fast.find_iter(text).map(|m| (m.start(), m.end())).collect();
        }
        let mut out = Vec::new();
        let mut pos = 0;
        let mut must_advance = false;
        while pos <= text.len() {
            match self.prog.search(text, pos, must_advance) {
                Some((s, e)) => {
                    out.push((s, e));
                    must_advance = s == e;
                    pos = e;
                }
                None => break,
            }
        }
        out
    }

    /// `bool(search(text))`.
    pub fn search(&self, text: &str) -> bool {
        match self.fast_for(text) {
            Some(fast) => fast.is_match(text),
            None => self.prog.search(text, 0, false).is_some(),
        }
    }

    /// `bool(fullmatch(text))`.
    pub fn fullmatch(&self, text: &str) -> bool {
        if let Some(fast) = &self.fast_full
            && !text.is_empty()
            && !self.boundary_differs(text)
        {
            return fast.is_match(text);
        }
        self.fullmatch_backtracking(text)
    }

    /// `bool(fullmatch(text))` on the backtracking matcher (what the fast path must agree
    /// with).
    pub fn fullmatch_backtracking(&self, text: &str) -> bool {
        self.prog
            .match_at(text, 0, false, true, &mut Visited::default())
            .is_some()
    }

    /// `sub(repl, text)` with a replacement free of backslashes and group references.
    pub fn sub(&self, text: &str, repl: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut prev = 0;
        for (s, e) in self.find_iter(text) {
            out.push_str(&text[prev..s]);
            out.push_str(repl);
            prev = e;
        }
        out.push_str(&text[prev..]);
        out
    }
}
