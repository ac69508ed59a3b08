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
    fast: Option<regex::Regex>,
    uses_boundary: bool,
}

impl PyRegex {
    /// `re.compile(pattern, re.IGNORECASE if ignorecase else 0)`.
    pub fn new(pattern: &str, ignorecase: bool) -> Result<PyRegex, ReError> {
        let (items, flags) = parse_pattern(pattern, if ignorecase { FLAG_I } else { 0 })?;
        let node = compile_items(&items, flags)?;
        let prog = ProgBuilder::build(&node);
        let mut rust = String::new();
        let mut uses_boundary = false;
        let fast = if min_width(&node) > 0 && to_rust(&node, &mut rust, &mut uses_boundary) {
            regex::RegexBuilder::new(&rust)
                .size_limit(64 << 20)
                .dfa_size_limit(16 << 20)
                .build()
                .ok()
        } else {
            None
        };
        Ok(PyRegex {
            prog,
            fast,
            uses_boundary,
        })
    }

    fn fast_for(&self, text: &str) -> Option<&regex::Regex> {
        let fast = self.fast.as_ref()?;
        if text.is_empty() {
            return None;
        }
        if self.uses_boundary
            && text
                .chars()
                .any(|c| tables().word_mismatch.contains(c as u32))
        {
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
