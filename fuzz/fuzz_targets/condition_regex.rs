//! Bytes → the Python-`re`-compatible model-condition pattern (`engine::pyregex::ModelPattern`
//! on `engine::pyre`: Python's grammar, the regex crate where the translation is exact, the
//! memoised backtracking matcher elsewhere) → matched against model names
//! through `engine::condition`, as a policy's `condition: {model: ...}` is evaluated.
//!
//! Input (UTF-8, lossily): the pattern, then model names, separated by NUL bytes. More model
//! names are derived from the input (the pattern itself, with a trailing newline, common model
//! names, a long backtracking bait).
//!
//! Sane output: a pattern always matches itself (LiteLLM compares by equality first); the
//! condition evaluators agree with the pattern; the regex-crate fast path and the backtracking
//! matcher give the same full-match answer; a pattern without metacharacters matches only
//! itself; Python's `re.escape(m)` matches exactly `m`. Matching is linear on the fast path
//! and polynomial (memoised) on the matcher; scripts/fuzz.sh runs with `-timeout` so a slow
//! input is a crash too.
#![no_main]

use std::sync::LazyLock;

use guardrail_operator::engine::condition::{condition_holds, model_condition_holds};
use guardrail_operator::engine::model::{MatchContext, ModelCondition, PolicyContent};
use guardrail_operator::engine::pyregex::{ModelPattern, PatternKind};
use libfuzzer_sys::fuzz_target;

/// Python's metacharacters outside a class (besides `\`).
const META: &str = ".^$*+?{}[]|()\\";

/// Python's `re.escape` (3.7+): these characters get a backslash, everything else is literal.
fn py_escape(s: &str) -> String {
    const SPECIAL: &str = "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}";
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Matches no model name here (they come from NUL-separated input).
static NEVER: LazyLock<ModelPattern> = LazyLock::new(|| ModelPattern::new("\u{0}never"));

fn holds(p: &ModelPattern, model: &str) -> bool {
    let m = p.matches(model);
    let one = ModelCondition::One(p.clone());
    assert_eq!(model_condition_holds(&one, Some(model)), m);
    assert!(
        !model_condition_holds(&one, None),
        "a null model never matches"
    );
    let many = ModelCondition::Many(vec![NEVER.clone(), p.clone()]);
    assert_eq!(
        model_condition_holds(&many, Some(model)),
        m,
        "a list is any"
    );
    let policy = PolicyContent {
        condition: Some(Some(one)),
        ..Default::default()
    };
    let ctx = MatchContext {
        model: Some(model.to_string()),
        ..Default::default()
    };
    assert_eq!(condition_holds(&policy, &ctx), m);
    m
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let raw = parts.next().unwrap_or_default();
    let mut models: Vec<String> = parts.map(str::to_string).collect();
    // The name re.escape is checked on: the first given one, else the pattern's text.
    let escape_probe = models.first().cloned().unwrap_or_else(|| raw.to_string());
    models.extend(
        [
            "",
            "gpt-4o",
            "gpt-4o-mini",
            "claude-3-5-sonnet",
            "o3-mini",
            "gpt-3.5-turbo",
        ]
        .map(String::from),
    );
    models.push(format!("{raw}\n"));
    models.push(format!("{raw}{raw}"));
    models.push(format!("{}!", "a".repeat(2_000)));

    let p = ModelPattern::new(raw);
    assert_eq!(p.raw(), raw);
    assert!(holds(&p, raw), "a pattern always matches itself: {raw:?}");
    // The regex crate fast path and the backtracking matcher agree on every model.
    if let PatternKind::Regex(re) = p.kind() {
        for m in &models {
            assert_eq!(
                re.fullmatch(m),
                re.fullmatch_backtracking(m),
                "fast path and matcher disagree: {raw:?} on {m:?}"
            );
        }
    }
    let literal = !raw.chars().any(|c| META.contains(c));
    if literal {
        assert!(
            matches!(p.kind(), PatternKind::Regex(_)),
            "a pattern without metacharacters is a valid regex: {raw:?} is {:?}",
            p.kind()
        );
    }
    for m in &models {
        let hit = holds(&p, m);
        if literal {
            assert_eq!(hit, m == raw, "{raw:?} against {m:?}");
        }
    }

    // re.escape(m) matches m and nothing longer or shorter. Compiling is the costly part
    // (a full DFA for small regexes), so only for one name.
    {
        let m = &escape_probe;
        let escaped = ModelPattern::new(&py_escape(m));
        let PatternKind::Regex(re) = escaped.kind() else {
            panic!(
                "re.escape({m:?}) = {:?} is {:?}",
                py_escape(m),
                escaped.kind()
            );
        };
        assert!(re.fullmatch(m), "re.escape({m:?}) does not match it");
        assert!(!holds(&escaped, &format!("{m}x")));
        assert!(!holds(&escaped, &format!("{m}\n")));
        if let Some(shorter) = m.char_indices().last().map(|(i, _)| &m[..i]) {
            assert!(!holds(&escaped, shorter));
        }
    }
});
