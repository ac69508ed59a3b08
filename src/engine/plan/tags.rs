//! The tag dimension of `plan`'s classes. A request's tags let through the union of what
//! each tag lets through, so tag sets are not a partition of strings but unions of single-tag
//! classes — up to 2^(tag classes) of them. They are explored per class of the other three
//! dimensions, and two tag sets are one state when they leave the same guardrails deciding the
//! change: what each state's effective set would be, restricted to the guardrails whose
//! membership can differ between the states.

use std::collections::HashMap;

use super::classes::{Bits, ClassError, Dim, Limits};
use super::strings::{self, Predicate, StringClass};
use crate::engine::model::Attachment;

/// The single-tag classes: every combination of tag patterns a tag can match.
#[derive(Debug)]
pub(super) struct TagClasses {
    pub(super) preds: Vec<Predicate>,
    pub(super) classes: Vec<StringClass>,
    /// Per class: the attachments (union positions) whose tag list it hits.
    pub(super) hits: Vec<Bits>,
    /// Attachments the tag dimension never stops (global, or no tag list).
    pub(super) untagged: Bits,
    index: HashMap<Vec<bool>, usize>,
}

impl TagClasses {
    pub(super) fn new(union: &[&Attachment], limits: Limits) -> Result<Self, ClassError> {
        let wild = super::classes::patterns(union, Dim::Tags);
        let preds: Vec<Predicate> = wild.iter().cloned().map(Predicate::Wildcard).collect();
        let pos: HashMap<&str, usize> = wild
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        let classes =
            strings::classes(&preds, limits.states).map_err(|source| ClassError::Strings {
                dimension: "tag",
                source,
            })?;
        let n = union.len();
        let pass_with = |ok: &dyn Fn(&[String]) -> bool| {
            let mut b = Bits::new(n);
            for (i, a) in union.iter().enumerate() {
                if super::classes::dimension_passes(a, Dim::Tags, ok) {
                    b.set(i);
                }
            }
            b
        };
        let untagged = pass_with(&|_| false);
        let hits = classes
            .iter()
            .map(|c| {
                pass_with(&|ps: &[String]| {
                    ps.iter()
                        .any(|p| pos.get(p.as_str()).is_some_and(|&i| c.holds[i]))
                })
                .minus(&untagged)
            })
            .collect();
        let index = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.holds.clone(), i))
            .collect();
        Ok(TagClasses {
            preds,
            classes,
            hits,
            untagged,
            index,
        })
    }

    /// The class of one tag value.
    pub(super) fn class_of(&self, tag: &str) -> Option<usize> {
        let holds: Vec<bool> = self.preds.iter().map(|p| p.holds(tag)).collect();
        self.index.get(&holds).copied()
    }
}

/// What the attachments in scope contribute on one side: the guardrails (interned, as bit
/// sets) of the non-default ones (and whether there is one: then defaults are dropped) and of
/// the defaults.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Contribution {
    pub(super) has_non_default: bool,
    pub(super) non_default: Bits,
    pub(super) default: Bits,
}

impl Contribution {
    pub(super) fn empty(guardrails: usize) -> Contribution {
        Contribution {
            has_non_default: false,
            non_default: Bits::new(guardrails),
            default: Bits::new(guardrails),
        }
    }

    pub(super) fn add(&mut self, o: &Contribution) {
        self.has_non_default |= o.has_non_default;
        self.non_default = self.non_default.or(&o.non_default);
        self.default = self.default.or(&o.default);
    }

    fn is_empty(&self) -> bool {
        !self.has_non_default && self.non_default.is_empty() && self.default.is_empty()
    }

    fn project(&self, r: Option<&Bits>) -> Contribution {
        match r {
            None => self.clone(),
            Some(r) => Contribution {
                has_non_default: self.has_non_default,
                non_default: self.non_default.and(r),
                default: self.default.and(r),
            },
        }
    }

    /// LiteLLM's effective set: the non-default attachments' if any matched, else the
    /// defaults'.
    pub(super) fn effective(&self) -> &Bits {
        if self.has_non_default {
            &self.non_default
        } else {
            &self.default
        }
    }
}

/// A state of the tag dimension: both sides' contributions (restricted to what can differ).
pub(super) type State = (Contribution, Contribution);

/// The tag states of one class of the other dimensions.
#[derive(Debug)]
pub(super) struct NodeTags {
    /// Per tag class: what it adds on each side (restricted).
    per_class: Vec<Option<State>>,
    start: State,
    /// Every reachable state, with the tag classes of the first tag set that reached it.
    pub(super) states: Vec<(State, Vec<usize>)>,
    index: HashMap<State, usize>,
}

impl NodeTags {
    /// Explore the tag sets from `start` (the attachments that need no tag) and what each
    /// tag class adds. When no default attachment is in play, or both sides always agree on
    /// whether a non-default attachment matched, only guardrails some contribution has on one
    /// side and not the other can end up added or removed, so states are compared on those
    /// alone.
    pub(super) fn explore(
        start: State,
        per_class: Vec<State>,
        limit: usize,
    ) -> Result<NodeTags, ClassError> {
        // Whether a non-default matched only matters when there are defaults to drop.
        let all = || std::iter::once(&start).chain(per_class.iter());
        let no_defaults = all().all(|(b, n)| b.default.is_empty() && n.default.is_empty());
        let symmetric = no_defaults || all().all(|(b, n)| b.has_non_default == n.has_non_default);
        let relevant: Option<Bits> = symmetric.then(|| {
            let mut r = start.0.non_default.zeros_like();
            for (b, n) in all() {
                r = r.or(&b.non_default.xor(&n.non_default));
                r = r.or(&b.default.xor(&n.default));
            }
            r
        });
        let project = |s: &State| {
            (
                s.0.project(relevant.as_ref()),
                s.1.project(relevant.as_ref()),
            )
        };
        let per_class: Vec<Option<State>> = per_class
            .iter()
            .map(|s| (!(s.0.is_empty() && s.1.is_empty())).then(|| project(s)))
            .collect();
        let start = project(&start);
        let mut out = NodeTags {
            per_class,
            start: start.clone(),
            states: vec![(start.clone(), Vec::new())],
            index: HashMap::from([(start, 0)]),
        };
        let mut at = 0;
        while at < out.states.len() {
            for c in 0..out.per_class.len() {
                let Some(add) = &out.per_class[c] else {
                    continue;
                };
                let (mut s, mut path) = out.states[at].clone();
                s.0.add(&add.0);
                s.1.add(&add.1);
                if out.index.contains_key(&s) {
                    continue;
                }
                path.push(c);
                out.index.insert(s.clone(), out.states.len());
                out.states.push((s, path));
                if out.states.len() > limit {
                    return Err(ClassError::TooManyTagSets(limit));
                }
            }
            at += 1;
        }
        Ok(out)
    }

    /// The state a request's tag classes reach.
    pub(super) fn state_of(&self, classes: &[usize]) -> Option<usize> {
        let mut s = self.start.clone();
        for &c in classes {
            if let Some(Some(add)) = self.per_class.get(c) {
                s.0.add(&add.0);
                s.1.add(&add.1);
            }
        }
        self.index.get(&s).copied()
    }
}

/// Guardrails added and removed in a state, by name (sorted: names are interned in order).
pub(super) fn difference(s: &State, names: &[String]) -> (Vec<String>, Vec<String>) {
    let (before, after) = (s.0.effective(), s.1.effective());
    let named = |b: Bits| b.ones().map(|i| names[i].clone()).collect();
    (named(after.minus(before)), named(before.minus(after)))
}
