//! Python string semantics the guardrails need: `str.strip`, `re.escape`, `repr`, `\b`.

use super::*;

// ─────────────────────────────────────────────────────────────────────────────
// Python string semantics
// ─────────────────────────────────────────────────────────────────────────────

/// `str.strip()` (Python whitespace).
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(pychar::is_space)
}

/// `re.escape` (Python 3.7+).
pub(crate) fn py_re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `repr(str)`.
pub(crate) fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let u = c as u32;
        match c {
            _ if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if u < 0x20 || u == 0x7f => out.push_str(&format!("\\x{u:02x}")),
            _ if u < 0x7f => out.push(c),
            _ if pychar::is_printable(c) => out.push(c),
            _ if u <= 0xff => out.push_str(&format!("\\x{u:02x}")),
            _ if u <= 0xffff => out.push_str(&format!("\\u{u:04x}")),
            _ => out.push_str(&format!("\\U{u:08x}")),
        }
    }
    out.push(quote);
    out
}

/// `re.search(r"\b" + re.escape(word) + r"\b", text)` without building a regex.
pub(crate) fn contains_word_bounded(text: &str, word: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let mut from = 0;
    while from <= text.len() {
        let Some(i) = text[from..].find(word) else {
            return false;
        };
        let s = from + i;
        let e = s + word.len();
        if at_boundary(text, s) && at_boundary(text, e) {
            return true;
        }
        from = s + text[s..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Python's `\b` at a byte position (Unicode word characters; never on an empty string).
pub(crate) fn at_boundary(text: &str, pos: usize) -> bool {
    if text.is_empty() {
        return false;
    }
    let before = text[..pos].chars().next_back().is_some_and(pychar::is_word);
    let after = text[pos..].chars().next().is_some_and(pychar::is_word);
    before != after
}
