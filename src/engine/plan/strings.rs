//! Classes of strings: which of a list of string predicates (LiteLLM wildcards, model
//! conditions) a string satisfies, every combination that some string achieves, with a
//! shortest witness.
//!
//! The predicates become one multi-pattern DFA (`regex-automata`, every pattern anchored at
//! both ends, all matches reported). A breadth-first walk over its states, paired with a
//! small UTF-8 automaton so that every path spells a valid string, reaches every state a
//! string can reach; at each one, the end-of-input transition says which patterns match. So
//! the combinations found are exactly those some string achieves, and each comes with the
//! shortest string that achieves it (the walk tries printable ASCII first).
//!
//! A condition that has no exact automaton (`\b`, look-around, Python's `$` before a final
//! newline) is *opaque*: it is evaluated with the Python-`re` matcher on several witnesses of
//! each combination of the others. Combinations of opaque answers that no witness showed are
//! returned without a witness: they may or may not exist, and the caller lists them as such.

use std::collections::{HashMap, HashSet, VecDeque};

use regex_automata::dfa::Automaton;
use regex_automata::dfa::dense;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use crate::engine::attach::wildcard_matches;
use crate::engine::pyregex::{ModelPattern, PatternKind};

/// A string predicate.
#[derive(Clone, Debug)]
pub enum Predicate {
    /// A LiteLLM attachment pattern: exact, or a prefix when it ends in `*`.
    Wildcard(String),
    /// A model-condition pattern: equality, then Python's `re.fullmatch`.
    Condition(ModelPattern),
}

impl Predicate {
    /// Whether `s` satisfies the predicate (the engine's own rule).
    pub fn holds(&self, s: &str) -> bool {
        match self {
            Predicate::Wildcard(p) => wildcard_matches(s, p),
            Predicate::Condition(p) => p.matches(s),
        }
    }

    /// The predicate as a `regex` pattern anchored at both ends, when it has an exact one.
    fn automaton_pattern(&self) -> Option<String> {
        let esc = regex_syntax::escape;
        match self {
            Predicate::Wildcard(p) => Some(match p.strip_suffix('*') {
                Some(prefix) => format!(r"\A{}(?s:.)*\z", esc(prefix)),
                None => format!(r"\A{}\z", esc(p)),
            }),
            Predicate::Condition(p) => match p.kind() {
                PatternKind::Regex(re) => re
                    .automaton_source()
                    .map(|src| format!(r"\A(?:{}|(?:{src}))\z", esc(p.raw()))),
                PatternKind::LiteralOnly | PatternKind::Unsupported(_) => {
                    Some(format!(r"\A{}\z", esc(p.raw())))
                }
            },
        }
    }
}

/// One combination of answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringClass {
    /// One answer per predicate, in input order.
    pub holds: Vec<bool>,
    /// A string with exactly these answers (the shortest found, non-empty when one exists);
    /// `None` when only opaque answers make the combination and no witness showed it.
    pub witness: Option<String>,
}

/// Why the classes could not be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StringsError {
    #[error("the patterns {0} do not build an automaton: {1}")]
    Automaton(String, String),
    #[error(
        "the patterns {0} distinguish more than {1} automaton states; plan cannot enumerate their combinations"
    )]
    TooManyStates(String, usize),
    #[error(
        "{0} model conditions have no exact automaton (look-around, \\b or a final $); plan analyses at most {1}"
    )]
    TooManyOpaque(usize, usize),
}

/// Witnesses kept per combination of the automaton's answers, to try opaque conditions on.
const WITNESSES_PER_CLASS: usize = 8;
/// Opaque conditions analysed at most (their unseen combinations are listed).
const MAX_OPAQUE: usize = 8;

/// Every combination of answers some string achieves (and, with opaque conditions, the
/// combinations no witness ruled in or out, without a witness). At most `max_states`
/// automaton states are explored.
pub fn classes(preds: &[Predicate], max_states: usize) -> Result<Vec<StringClass>, StringsError> {
    let mut dfa_preds: Vec<usize> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    let mut opaque: Vec<usize> = Vec::new();
    for (i, p) in preds.iter().enumerate() {
        match p.automaton_pattern() {
            Some(src) => {
                dfa_preds.push(i);
                sources.push(src);
            }
            None => opaque.push(i),
        }
    }
    if opaque.len() > MAX_OPAQUE {
        return Err(StringsError::TooManyOpaque(opaque.len(), MAX_OPAQUE));
    }
    let names = || {
        let list: Vec<String> = preds
            .iter()
            .take(5)
            .map(|p| match p {
                Predicate::Wildcard(s) => format!("'{s}'"),
                Predicate::Condition(m) => format!("/{}/", m.raw()),
            })
            .collect();
        let more = preds.len().saturating_sub(5);
        if more > 0 {
            format!("{} (and {more} more)", list.join(", "))
        } else {
            list.join(", ")
        }
    };
    // Witness strings per combination of the automaton's answers, shortest first.
    let mut found: Vec<(Vec<bool>, Vec<String>)> = Vec::new();
    let mut index: HashMap<Vec<bool>, usize> = HashMap::new();
    let mut record = |holds: Vec<bool>, s: &[u8]| {
        let Ok(s) = std::str::from_utf8(s) else {
            return;
        };
        let at = *index.entry(holds.clone()).or_insert_with(|| {
            found.push((holds, Vec::new()));
            found.len() - 1
        });
        let list = &mut found[at].1;
        if list.len() < WITNESSES_PER_CLASS {
            list.push(s.to_string());
        }
    };
    if sources.is_empty() {
        record(vec![false; preds.len()], b"");
        record(vec![false; preds.len()], b"a");
    } else {
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(regex_automata::dfa::StartKind::Anchored)
                    .determinize_size_limit(Some(256 << 20))
                    .dfa_size_limit(Some(256 << 20)),
            )
            .build_many(&sources)
            .map_err(|e| StringsError::Automaton(names(), e.to_string()))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| StringsError::Automaton(names(), e.to_string()))?;
        let bytes = representative_bytes(dfa.byte_classes());
        let answers = |state| {
            let mut holds = vec![false; preds.len()];
            let eoi = dfa.next_eoi_state(state);
            if dfa.is_match_state(eoi) {
                for k in 0..dfa.match_len(eoi) {
                    holds[dfa_preds[dfa.match_pattern(eoi, k).as_usize()]] = true;
                }
            }
            holds
        };
        // With opaque conditions, each state is reached by several paths (more witnesses to
        // try them on); else once.
        let visits = if opaque.is_empty() {
            1
        } else {
            WITNESSES_PER_CLASS
        };
        let mut seen: HashMap<(StateID, Utf8), usize> = HashMap::new();
        let mut queue: VecDeque<(StateID, Utf8, Vec<u8>)> = VecDeque::new();
        seen.insert((start, Utf8::BOUNDARY), 1);
        queue.push_back((start, Utf8::BOUNDARY, Vec::new()));
        while let Some((state, utf8, text)) = queue.pop_front() {
            if utf8 == Utf8::BOUNDARY {
                record(answers(state), &text);
            }
            for &b in &bytes {
                let Some(u) = utf8.step(b) else { continue };
                let next = dfa.next_state(state, b);
                if dfa.is_quit_state(next) {
                    continue;
                }
                let count = seen.entry((next, u)).or_insert(0);
                if *count < visits {
                    *count += 1;
                    if seen.len() > max_states {
                        return Err(StringsError::TooManyStates(names(), max_states));
                    }
                    let mut t = text.clone();
                    t.push(b);
                    queue.push_back((next, u, t));
                }
            }
        }
    }
    // Opaque conditions: evaluate on the witnesses; list unseen combinations without one.
    let mut out: Vec<StringClass> = Vec::new();
    let mut emitted: HashSet<Vec<bool>> = HashSet::new();
    for (holds, witnesses) in found {
        let mut shown: HashSet<Vec<bool>> = HashSet::new();
        // The shortest non-empty witness first: "" only when it is the only one.
        let mut ordered: Vec<&String> = witnesses.iter().filter(|w| !w.is_empty()).collect();
        ordered.extend(witnesses.iter().filter(|w| w.is_empty()));
        for w in ordered {
            let mut h = holds.clone();
            for &i in &opaque {
                h[i] = preds[i].holds(w);
            }
            if shown.insert(h.clone()) && emitted.insert(h.clone()) {
                out.push(StringClass {
                    holds: h,
                    witness: Some(w.clone()),
                });
            }
        }
        if !opaque.is_empty() {
            for combo in 0u32..(1 << opaque.len()) {
                let mut h = holds.clone();
                for (bit, &i) in opaque.iter().enumerate() {
                    h[i] = combo & (1 << bit) != 0;
                }
                if !shown.contains(&h) && emitted.insert(h.clone()) {
                    out.push(StringClass {
                        holds: h,
                        witness: None,
                    });
                }
            }
        }
    }
    // Witnessed first (an unwitnessed combination may later turn out to have a witness).
    let witnessed: HashSet<Vec<bool>> = out
        .iter()
        .filter(|c| c.witness.is_some())
        .map(|c| c.holds.clone())
        .collect();
    out.retain(|c| c.witness.is_some() || !witnessed.contains(&c.holds));
    Ok(out)
}

/// One byte per (DFA byte class, UTF-8 role), printable ASCII first, for readable witnesses.
fn representative_bytes(classes: &regex_automata::util::alphabet::ByteClasses) -> Vec<u8> {
    let order = (b'a'..=b'z')
        .chain(b'0'..=b'9')
        .chain([b'-', b'_', b'.', b'/', b':'])
        .chain(0x20..=0x7e)
        .chain(0x80..=0xff)
        .chain(0x00..0x20)
        .chain([0x7f]);
    let mut seen: HashSet<(u8, u8)> = HashSet::new();
    order
        .filter(|&b| seen.insert((classes.get(b), utf8_role(b))))
        .collect()
}

/// The bytes UTF-8 treats alike.
fn utf8_role(b: u8) -> u8 {
    match b {
        0x00..=0x7f => 0,
        0x80..=0x8f => 1,
        0x90..=0x9f => 2,
        0xa0..=0xbf => 3,
        0xc2..=0xdf => 4,
        0xe0 => 5,
        0xe1..=0xec | 0xee..=0xef => 6,
        0xed => 7,
        0xf0 => 8,
        0xf1..=0xf3 => 9,
        0xf4 => 10,
        _ => 11,
    }
}

/// Where a UTF-8 decoder is: continuation bytes still expected and the range of the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Utf8 {
    remaining: u8,
    lo: u8,
    hi: u8,
}

impl Utf8 {
    const BOUNDARY: Utf8 = Utf8 {
        remaining: 0,
        lo: 0,
        hi: 0,
    };

    fn expect(remaining: u8, lo: u8, hi: u8) -> Option<Utf8> {
        Some(Utf8 { remaining, lo, hi })
    }

    fn step(self, b: u8) -> Option<Utf8> {
        if self.remaining > 0 {
            if b < self.lo || b > self.hi {
                return None;
            }
            return if self.remaining == 1 {
                Some(Utf8::BOUNDARY)
            } else {
                Utf8::expect(self.remaining - 1, 0x80, 0xbf)
            };
        }
        match b {
            0x00..=0x7f => Some(Utf8::BOUNDARY),
            0xc2..=0xdf => Utf8::expect(1, 0x80, 0xbf),
            0xe0 => Utf8::expect(2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => Utf8::expect(2, 0x80, 0xbf),
            0xed => Utf8::expect(2, 0x80, 0x9f),
            0xf0 => Utf8::expect(3, 0x90, 0xbf),
            0xf1..=0xf3 => Utf8::expect(3, 0x80, 0xbf),
            0xf4 => Utf8::expect(3, 0x80, 0x8f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wild(ps: &[&str]) -> Vec<Predicate> {
        ps.iter()
            .map(|p| Predicate::Wildcard(p.to_string()))
            .collect()
    }

    fn check(preds: &[Predicate], classes: &[StringClass]) {
        for c in classes {
            if let Some(w) = &c.witness {
                let got: Vec<bool> = preds.iter().map(|p| p.holds(w)).collect();
                assert_eq!(got, c.holds, "witness {w:?}");
            }
        }
    }

    #[test]
    fn wildcards_give_every_combination_a_string_achieves() {
        let preds = wild(&["research-*", "research-nlp", "*", "ops"]);
        let cs = classes(&preds, 100_000).unwrap();
        check(&preds, &cs);
        let mut got: Vec<Vec<bool>> = cs.iter().map(|c| c.holds.clone()).collect();
        got.sort();
        let mut want = vec![
            vec![false, false, true, false],
            vec![true, false, true, false],
            vec![true, true, true, false],
            vec![false, false, true, true],
        ];
        want.sort();
        assert_eq!(got, want);
        assert!(cs.iter().all(|c| c.witness.as_deref() != Some("")));
    }

    #[test]
    fn conditions_and_non_ascii_strings() {
        let preds = vec![
            Predicate::Condition(ModelPattern::new("gpt-.*")),
            Predicate::Condition(ModelPattern::new("[^a-z]+")),
            Predicate::Condition(ModelPattern::new(r"\w+")),
            Predicate::Wildcard("gpt-4*".into()),
        ];
        let cs = classes(&preds, 100_000).unwrap();
        check(&preds, &cs);
        // A non-ASCII word character: matches [^a-z]+ and \w+ but not the others.
        assert!(cs.iter().any(|c| c.holds == vec![false, true, true, false]));
        assert!(cs.iter().all(|c| c.witness.is_some()));
    }

    #[test]
    fn opaque_conditions_are_tried_on_witnesses_and_unseen_combinations_listed() {
        let preds = vec![
            Predicate::Condition(ModelPattern::new(r"gpt-4(?!o).*")),
            Predicate::Wildcard("gpt-4*".into()),
        ];
        let cs = classes(&preds, 100_000).unwrap();
        check(&preds, &cs);
        assert!(
            cs.iter()
                .any(|c| c.holds == vec![true, true] && c.witness.is_some())
        );
        // Never true without the prefix: listed, but without a witness.
        assert!(
            cs.iter()
                .any(|c| c.holds == vec![true, false] && c.witness.is_none())
        );
        // The prefix without the condition (gpt-4o) exists: listed, witnessed or not.
        assert!(cs.iter().any(|c| c.holds == vec![false, true]));
    }

    #[test]
    fn literal_only_and_equality_first() {
        // Python cannot compile "(": it matches itself only. "a.c" matches itself and "abc".
        let preds = vec![
            Predicate::Condition(ModelPattern::new("(")),
            Predicate::Condition(ModelPattern::new("a.c")),
        ];
        let cs = classes(&preds, 100_000).unwrap();
        check(&preds, &cs);
        assert_eq!(cs.len(), 3);
    }

    #[test]
    fn the_state_limit_is_an_error_naming_the_patterns() {
        let preds = wild(&["abcdefghij"]);
        let e = classes(&preds, 3).unwrap_err();
        assert!(e.to_string().contains("'abcdefghij'"), "{e}");
    }
}
