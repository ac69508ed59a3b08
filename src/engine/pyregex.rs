//! Model-condition patterns with Python `re.fullmatch` semantics.
//!
//! LiteLLM matches a condition pattern first by string equality, then with
//! `re.fullmatch(pattern, model)`; a pattern Python cannot compile matches only itself.
//! Patterns compile on the engine's one Python-`re` implementation ([`super::pyre`], the one
//! the content filter uses), so conditions follow Python exactly, lookaround and `\b`
//! included. Three answers are possible:
//!
//! * [`PatternKind::Regex`]: valid in Python;
//! * [`PatternKind::LiteralOnly`]: Python raises `re.error` (so LiteLLM compares it as a plain
//!   string), e.g. `(`, `*gpt`, `a{2,1}`;
//! * [`PatternKind::Unsupported`]: valid in Python but without an exact implementation here
//!   (backreferences, atomic groups, possessive quantifiers, conditional groups, groups nested
//!   more than 100 deep, …). Validation rejects these with a message naming the construct;
//!   this is a deliberate difference from LiteLLM (api.md).

use std::sync::Arc;

use super::pyre::{PyRegex, ReError};

/// A model-condition pattern, compiled once.
#[derive(Clone, Debug)]
pub struct ModelPattern {
    raw: String,
    kind: PatternKind,
}

/// How a pattern is evaluated.
#[derive(Clone, Debug)]
pub enum PatternKind {
    /// Exact match, then full match of this regex.
    Regex(Arc<PyRegex>),
    /// Python cannot compile the pattern: exact string comparison only.
    LiteralOnly,
    /// Valid Python, but not implemented exactly; the reason names the construct.
    Unsupported(String),
}

impl ModelPattern {
    /// Compile a pattern.
    pub fn new(raw: &str) -> Self {
        let kind = match PyRegex::for_fullmatch(raw) {
            Ok(re) => PatternKind::Regex(Arc::new(re)),
            Err(ReError::Invalid(_)) => PatternKind::LiteralOnly,
            Err(ReError::Unsupported(why)) => PatternKind::Unsupported(why),
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
            PatternKind::Regex(re) => re.fullmatch(value),
            PatternKind::LiteralOnly | PatternKind::Unsupported(_) => false,
        }
    }
}

impl PartialEq for ModelPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
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
        for p in [r"(a)\1", "a*+", "(?>a)", r"\N{DASH}", "a{2000}", "(?x)gpt"] {
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
        // One limit for conditions and content-filter regexes: 100 levels.
        let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(m(&deep(100), "a"));
        assert_eq!(kind(&deep(101)), "unsupported");
        for p in [deep(100_000), "(".repeat(100_000), "(?:".repeat(50_000)] {
            let ModelPattern { kind, .. } = ModelPattern::new(&p);
            assert!(
                matches!(&kind, PatternKind::Unsupported(why) if why.contains("nested")),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn lookaround_word_boundaries_and_inline_flags_follow_python() {
        assert!(m(r"gpt-4(?!o).*", "gpt-4-turbo"));
        assert!(!m(r"gpt-4(?!o).*", "gpt-4o"));
        assert!(m(r"(?=.*mini).*", "o3-mini"));
        assert!(!m(r"(?=.*mini).*", "o3"));
        assert!(m(r".*(?<=-mini)", "o3-mini"));
        assert!(!m(r".*(?<!-mini)", "o3-mini"));
        assert!(m(r"\bgpt\b.*", "gpt-4"));
        assert!(!m(r".*\bpt.*", "gpt-4"));
        assert!(m("(?i)GPT-4o", "gpt-4O"));
        assert!(m("(?i:GPT)-4o", "gpt-4o"));
        assert!(!m("(?i:GPT)-4O", "gpt-4o"));
        assert_eq!(kind("(?P<f>gpt)-(?P=f)"), "unsupported");
        assert!(m("(?P<family>gpt|claude)-.*", "claude-3"));
        // Python's \b: a combining mark is not a word character, so `e\u{301}` ends a word
        // after `e` (the regex crate would say otherwise).
        assert!(m("cafe\\b\u{301}", "cafe\u{301}"));
    }

    #[test]
    fn the_fast_path_agrees_with_the_backtracking_matcher() {
        let models = [
            "",
            "gpt-4",
            "gpt-4o",
            "gpt-4o-mini",
            "o3-mini",
            "claude-3-5-sonnet",
            "GPT-4",
            "gpt\n",
            "caf\u{e9}",
            "cafe\u{301}",
            "x\u{b2}",
            "a_b-c",
            "ab ab",
        ];
        let patterns = [
            "gpt-4",
            "gpt-.*",
            "(gpt|claude)-.+",
            r"\w+",
            r"[\w-]+",
            "gpt-4o?",
            ".*mini",
            r"\bgpt\b.*",
            r".*\b",
            "(?i)gpt.*",
            "a|ab",
            r"\S+",
            r"[^-]+(-[^-]+)*",
            "o[0-9]-.*",
            r"(?:ab)*|ab ab",
            "x\u{b2}",
            r"x\w",
            r"\d+",
        ];
        for p in patterns {
            let PatternKind::Regex(re) = ModelPattern::new(p).kind().clone() else {
                panic!("{p} compiles");
            };
            assert!(re.has_fast_fullmatch(), "{p} has a fast path");
            for v in models {
                assert_eq!(
                    re.fullmatch(v),
                    re.fullmatch_backtracking(v),
                    "{p:?} on {v:?}"
                );
            }
        }
    }

    #[test]
    fn anchors_and_dollar() {
        assert!(m("^gpt$", "gpt"));
        assert!(!m("gpt$", "gpt\n"));
        assert!(m("(a$)|b", "a"));
        // Valid Python that can never match (Python allows it; so do we).
        assert_eq!(kind("a$b"), "regex");
        assert!(!m("a$b", "a\nb"));
        assert!(m("a$\n", "a\n"));
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
