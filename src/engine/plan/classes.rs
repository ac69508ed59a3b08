//! The partition of requests that two states distinguish (api.md §8, "Requests").
//!
//! A request is (team, key, model, tags). What the policy engine does with it depends only
//! on which attachments are in scope and which model conditions hold, and each of those is a
//! question about one dimension: does the team match one of these patterns, does the model
//! match this condition, does one of the tags match one of these patterns. So:
//!
//! 1. **Per dimension**, the string classes of [`super::strings`] over every pattern either
//!    state names there (plus the null value) give every combination of answers a value can
//!    have. Values whose answers let exactly the same attachments through (and, for the
//!    model, make the same conditions hold) form one *group*. Tags are sets: a request's tags
//!    let through the union of what each tag lets through, so the tag groups are the unions
//!    of single-tag classes that some tag set reaches.
//! 2. **Across dimensions**, groups combine by intersecting the attachments they let
//!    through; combinations that let through the same attachments (and conditions) are one
//!    class. A combination that lets through no attachment that differs between the states
//!    (present in one only, or whose policy resolves differently) cannot change: it is
//!    counted as unchanged and not split further.
//! 3. **Each class** is evaluated in both states by the engine's own rules
//!    ([`chosen`], [`policy_applies`], [`resolved_guardrails`]) with the class's answers as
//!    the facts; a representative request is assembled from the groups' witnesses and
//!    resolved for real in both states, and must agree.
//!
//! Size: per dimension, at most one class per reachable automaton state (for wildcards, about
//! the total length of the patterns); the classes combine as a product of the groups of the
//! four dimensions, and the tag groups can number up to 2^(tag patterns) — the worst case is
//! exponential, which is why both are capped ([`Limits`]) with an error naming the cap.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::describe::{describe, describe_tuples};
use super::strings::{self, Predicate, StringClass};
use crate::engine::attach::{chosen, resolve_request};
use crate::engine::condition::ModelFacts;
use crate::engine::inherit::{policy_applies, resolved_guardrails};
use crate::engine::model::{Attachment, MatchContext, ModelCondition, PolicyContent, PolicyMap};

/// One state: attachments in registry order and the production policies.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub attachments: &'a [Attachment],
    pub production: &'a PolicyMap,
}

/// Caps on the work (the partition can be exponential in the number of tag patterns).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Automaton states explored per dimension.
    pub states: usize,
    /// Tag-set groups.
    pub tag_sets: usize,
    /// Classes (combinations) at any step.
    pub classes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            states: 2_000_000,
            tag_sets: 100_000,
            classes: 2_000_000,
        }
    }
}

/// A class of requests whose effective guardrails differ (or might) between the states.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestClass {
    pub description: String,
    /// A request of the class, resolved for real in both states; `None`: unwitnessed.
    pub example: Option<MatchContext>,
    /// Effective guardrails in the base state, sorted.
    pub before: Vec<String>,
    pub after: Vec<String>,
    /// Matched policies (match order) of the example; empty when unwitnessed.
    pub policies_before: Vec<String>,
    pub policies_after: Vec<String>,
}

/// The requests part of a plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partition {
    pub changed: Vec<RequestClass>,
    pub unchanged: usize,
    pub unwitnessed: Vec<RequestClass>,
    /// Every class evaluated, by its answers: changed (index), unwitnessed, or unchanged.
    index: HashMap<(Bits, Vec<bool>), Located>,
    conditions: Vec<crate::engine::pyregex::ModelPattern>,
}

/// Where a request falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Located {
    /// In `changed[i]`.
    Changed(usize),
    /// In `unwitnessed[i]`.
    Unwitnessed(usize),
    /// In a class whose guardrails stay the same (evaluated, or in a region no differing
    /// attachment reaches).
    Unchanged,
}

impl Partition {
    /// The class a concrete request falls in (the same states as [`partition`] was given).
    pub fn locate(&self, base: Side<'_>, new: Side<'_>, ctx: &MatchContext) -> Located {
        let union: Vec<&Attachment> = base.attachments.iter().chain(new.attachments).collect();
        let mut pass = Bits::new(union.len());
        for (i, a) in union.iter().enumerate() {
            if a.scope_matches(ctx) {
                pass.set(i);
            }
        }
        let cond: Vec<bool> = self
            .conditions
            .iter()
            .map(|p| ctx.model.as_deref().is_some_and(|m| p.matches(m)))
            .collect();
        self.index
            .get(&(pass, cond))
            .copied()
            .unwrap_or(Located::Unchanged)
    }
}

/// Why the partition could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    #[error("{dimension}: {source}")]
    Strings {
        dimension: &'static str,
        source: strings::StringsError,
    },
    #[error(
        "the tag patterns reach more than {0} distinct sets of attachments; plan cannot list them all"
    )]
    TooManyTagSets(usize),
    #[error("the states distinguish more than {0} classes of requests; plan cannot list them all")]
    TooManyClasses(usize),
    #[error(
        "internal error: the example {example} of class '{class}' resolves to {got:?} in the {state} state, not {want:?}"
    )]
    Inconsistent {
        class: String,
        example: String,
        state: &'static str,
        got: Vec<String>,
        want: Vec<String>,
    },
}

/// A set of attachment positions (base attachments first, then the new state's).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn and(&self, o: &Bits) -> Bits {
        Bits(self.0.iter().zip(&o.0).map(|(a, b)| a & b).collect())
    }
    fn or(&self, o: &Bits) -> Bits {
        Bits(self.0.iter().zip(&o.0).map(|(a, b)| a | b).collect())
    }
    fn intersects(&self, o: &Bits) -> bool {
        self.0.iter().zip(&o.0).any(|(a, b)| a & b != 0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Dim {
    Team,
    Key,
    Model,
    Tags,
}

impl Dim {
    pub(super) fn noun(self) -> &'static str {
        match self {
            Dim::Team => "team",
            Dim::Key => "key",
            Dim::Model => "model",
            Dim::Tags => "tag",
        }
    }
    fn list(self, a: &Attachment) -> &[String] {
        let l = match self {
            Dim::Team => &a.teams,
            Dim::Key => &a.keys,
            Dim::Model => &a.models,
            Dim::Tags => &a.tags,
        };
        l.as_deref().unwrap_or(&[])
    }
}

/// One value class of a dimension: its answers, a value (`Some(None)`: null), a description.
#[derive(Clone, Debug)]
pub(super) struct Member {
    witness: Option<Option<String>>,
    pub(super) description: String,
    /// Team, key, model: the answers per pattern of the dimension.
    pub(super) holds: Vec<bool>,
    /// Tags only: the tag values.
    tags: Vec<String>,
}

/// Values of one dimension that let the same attachments through.
#[derive(Clone, Debug)]
pub(super) struct Group {
    pass: Bits,
    /// Model only: which condition patterns hold.
    cond: Vec<bool>,
    pub(super) members: Vec<Member>,
}

/// A dimension's groups and the patterns its members answer.
pub(super) struct DimInfo {
    pub(super) dim: Dim,
    pub(super) groups: Vec<Group>,
    pub(super) preds: Vec<Predicate>,
}

/// The answers of a class as facts for the engine's rules.
struct Facts<'a> {
    pass: &'a Bits,
    cond: &'a [bool],
    cond_index: &'a HashMap<String, usize>,
}

impl ModelFacts for Facts<'_> {
    fn model_condition(&self, c: &ModelCondition) -> bool {
        c.patterns()
            .iter()
            .any(|p| self.cond_index.get(p.raw()).is_some_and(|&i| self.cond[i]))
    }
}

fn dimension_passes(a: &Attachment, dim: Dim, ok: &dyn Fn(&[String]) -> bool) -> bool {
    let yes = |_: &[String]| true;
    match dim {
        Dim::Team => a.scope_matches_by(ok, yes, yes, yes),
        Dim::Key => a.scope_matches_by(yes, ok, yes, yes),
        Dim::Model => a.scope_matches_by(yes, yes, ok, yes),
        Dim::Tags => a.scope_matches_by(yes, yes, yes, ok),
    }
}

/// Distinct patterns of a dimension over all attachments, in first-seen order.
fn patterns(all: &[&Attachment], dim: Dim) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for a in all {
        if a.is_global() {
            continue;
        }
        for p in dim.list(a) {
            if seen.insert(p.clone()) {
                out.push(p.clone());
            }
        }
    }
    out
}

/// Distinct model-condition patterns of both states' production policies.
fn condition_patterns(sides: [Side<'_>; 2]) -> Vec<crate::engine::pyregex::ModelPattern> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for side in sides {
        for p in side.production.values() {
            if let Some(Some(c)) = &p.condition {
                for m in c.patterns() {
                    if seen.insert(m.raw().to_string()) {
                        out.push(m.clone());
                    }
                }
            }
        }
    }
    out
}

/// The groups of a scalar dimension (team, key, model).
fn scalar_groups(
    dim: Dim,
    union: &[&Attachment],
    conditions: &[crate::engine::pyregex::ModelPattern],
    limits: Limits,
) -> Result<DimInfo, ClassError> {
    let wild = patterns(union, dim);
    let nw = wild.len();
    let mut preds: Vec<Predicate> = wild.iter().cloned().map(Predicate::Wildcard).collect();
    if dim == Dim::Model {
        preds.extend(conditions.iter().cloned().map(Predicate::Condition));
    }
    let index: HashMap<&str, usize> = wild
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut classes =
        strings::classes(&preds, limits.states).map_err(|source| ClassError::Strings {
            dimension: dim.noun(),
            source,
        })?;
    // The null value: only the literal "*" matches it, no condition holds.
    let null_holds: Vec<bool> = preds
        .iter()
        .map(|p| matches!(p, Predicate::Wildcard(w) if w == "*"))
        .collect();
    let described: Vec<String> = classes
        .iter()
        .map(|c| describe(dim, &preds, &c.holds, &classes, false))
        .collect();
    classes.push(StringClass {
        holds: null_holds,
        witness: None,
    });
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: HashMap<(Bits, Vec<bool>), usize> = HashMap::new();
    let last = classes.len() - 1;
    for (ci, c) in classes.iter().enumerate() {
        let is_null = ci == last;
        let ok = |ps: &[String]| {
            ps.iter()
                .any(|p| index.get(p.as_str()).is_some_and(|&i| c.holds[i]))
        };
        let mut pass = Bits::new(union.len());
        for (i, a) in union.iter().enumerate() {
            if dimension_passes(a, dim, &ok) {
                pass.set(i);
            }
        }
        let cond = c.holds[nw..].to_vec();
        let member = Member {
            witness: if is_null {
                Some(None)
            } else {
                c.witness.clone().map(Some)
            },
            description: if is_null {
                describe(dim, &preds, &c.holds, &classes, true)
            } else {
                described[ci].clone()
            },
            holds: c.holds.clone(),
            tags: Vec::new(),
        };
        let at = *by_key
            .entry((pass.clone(), cond.clone()))
            .or_insert_with(|| {
                groups.push(Group {
                    pass,
                    cond,
                    members: Vec::new(),
                });
                groups.len() - 1
            });
        groups[at].members.push(member);
    }
    Ok(DimInfo { dim, groups, preds })
}

/// The groups of the tag dimension: unions of single-tag classes that a tag set reaches.
fn tag_groups(union: &[&Attachment], limits: Limits) -> Result<DimInfo, ClassError> {
    let wild = patterns(union, Dim::Tags);
    let preds: Vec<Predicate> = wild.iter().cloned().map(Predicate::Wildcard).collect();
    let index: HashMap<&str, usize> = wild
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let classes =
        strings::classes(&preds, limits.states).map_err(|source| ClassError::Strings {
            dimension: "tag",
            source,
        })?;
    // What each tag lets through, beyond the attachments without a tag list.
    let n = union.len();
    let mut untagged = Bits::new(n);
    let none = |_: &[String]| false;
    for (i, a) in union.iter().enumerate() {
        if dimension_passes(a, Dim::Tags, &none) {
            untagged.set(i);
        }
    }
    let hits: Vec<Bits> = classes
        .iter()
        .map(|c| {
            let ok = |ps: &[String]| {
                ps.iter()
                    .any(|p| index.get(p.as_str()).is_some_and(|&i| c.holds[i]))
            };
            let mut b = Bits::new(n);
            for (i, a) in union.iter().enumerate() {
                if dimension_passes(a, Dim::Tags, &ok) {
                    b.set(i);
                }
            }
            b
        })
        .collect();
    // Breadth first from no tags: every union some tag set reaches, with its tag list.
    let mut groups: Vec<Group> = vec![Group {
        pass: untagged.clone(),
        cond: Vec::new(),
        members: vec![Member {
            witness: Some(None),
            description: "no matching tag".into(),
            holds: Vec::new(),
            tags: Vec::new(),
        }],
    }];
    let mut by_pass: HashMap<Bits, usize> = HashMap::from([(untagged, 0)]);
    let mut at = 0;
    while at < groups.len() {
        for (ci, c) in classes.iter().enumerate() {
            let pass = groups[at].pass.or(&hits[ci]);
            let Some(w) = &c.witness else { continue };
            let base = &groups[at].members[0];
            let mut tags = base.tags.clone();
            if by_pass.contains_key(&pass) {
                continue;
            }
            tags.push(w.clone());
            let d = describe(Dim::Tags, &preds, &c.holds, &classes, false);
            let description = if base.tags.is_empty() {
                d
            } else {
                format!("{} and {d}", base.description)
            };
            by_pass.insert(pass.clone(), groups.len());
            groups.push(Group {
                pass,
                cond: Vec::new(),
                members: vec![Member {
                    witness: Some(Some(String::new())),
                    description,
                    holds: Vec::new(),
                    tags,
                }],
            });
            if groups.len() > limits.tag_sets {
                return Err(ClassError::TooManyTagSets(limits.tag_sets));
            }
        }
        at += 1;
    }
    Ok(DimInfo {
        dim: Dim::Tags,
        groups,
        preds: Vec::new(),
    })
}

/// The policy chain with contents, root last; what decides a policy's guardrails.
fn chain<'a>(name: &str, p: &'a PolicyMap) -> Vec<(&'a str, &'a PolicyContent)> {
    let mut out: Vec<(&str, &PolicyContent)> = Vec::new();
    let mut current = Some(name);
    while let Some(n) = current {
        if out.iter().any(|(k, _)| *k == n) {
            break;
        }
        let Some((k, c)) = p.get_key_value(n) else {
            break;
        };
        out.push((k.as_str(), c));
        current = c.parent();
    }
    out
}

/// Union positions whose attachment may behave differently between the states: not present
/// identically (as many times) in both, or its policy resolves from different contents.
fn unstable(base: Side<'_>, new: Side<'_>) -> Bits {
    let nb = base.attachments.len();
    let mut out = Bits::new(nb + new.attachments.len());
    let count = |list: &[Attachment], a: &Attachment| list.iter().filter(|x| *x == a).count();
    for (i, a) in base.attachments.iter().enumerate() {
        if count(base.attachments, a) != count(new.attachments, a)
            || chain(&a.policy, base.production) != chain(&a.policy, new.production)
        {
            out.set(i);
        }
    }
    for (j, a) in new.attachments.iter().enumerate() {
        if count(base.attachments, a) != count(new.attachments, a)
            || chain(&a.policy, base.production) != chain(&a.policy, new.production)
        {
            out.set(nb + j);
        }
    }
    out
}

/// Effective guardrails (sorted) and matched policies (match order) of a class in one state.
fn evaluate(side: Side<'_>, offset: usize, facts: &Facts<'_>) -> (Vec<String>, Vec<String>) {
    let in_scope: Vec<&Attachment> = side
        .attachments
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            facts.pass.get(offset + i) && policy_applies(&a.policy, side.production, facts)
        })
        .map(|(_, a)| a)
        .collect();
    let picked = chosen(in_scope);
    let mut effective: BTreeSet<&str> = BTreeSet::new();
    for a in &picked {
        effective.extend(resolved_guardrails(&a.policy, side.production, Some(facts)));
    }
    (
        effective.into_iter().map(str::to_string).collect(),
        picked.iter().map(|a| a.policy.clone()).collect(),
    )
}

/// A combination of one group per dimension.
pub(super) type Tuple = [usize; 4];

/// Compute the partition.
pub fn partition(base: Side<'_>, new: Side<'_>, limits: Limits) -> Result<Partition, ClassError> {
    let union: Vec<&Attachment> = base.attachments.iter().chain(new.attachments).collect();
    let nb = base.attachments.len();
    let conditions = condition_patterns([base, new]);
    let cond_index: HashMap<String, usize> = conditions
        .iter()
        .enumerate()
        .map(|(i, p)| (p.raw().to_string(), i))
        .collect();
    let dims = [Dim::Team, Dim::Key, Dim::Model, Dim::Tags];
    let info: Vec<DimInfo> = vec![
        scalar_groups(Dim::Team, &union, &conditions, limits)?,
        scalar_groups(Dim::Key, &union, &conditions, limits)?,
        scalar_groups(Dim::Model, &union, &conditions, limits)?,
        tag_groups(&union, limits)?,
    ];
    let groups: Vec<&Vec<Group>> = info.iter().map(|i| &i.groups).collect();
    let unstable = unstable(base, new);
    let mut all = Bits::new(union.len());
    for i in 0..union.len() {
        all.set(i);
    }
    let mut out = Partition::default();

    // Combine dimension by dimension; merge combinations that let the same things through.
    let mut nodes: Vec<(Bits, Vec<bool>, Vec<Tuple>)> =
        vec![(all, vec![false; conditions.len()], vec![[0; 4]])];
    for (d, dim) in dims.iter().enumerate() {
        let mut next: Vec<(Bits, Vec<bool>, Vec<Tuple>)> = Vec::new();
        let mut at: HashMap<(Bits, Vec<bool>), usize> = HashMap::new();
        for (pass, cond, tuples) in &nodes {
            for (gi, g) in groups[d].iter().enumerate() {
                let p = pass.and(&g.pass);
                if !p.intersects(&unstable) {
                    out.unchanged += 1;
                    continue;
                }
                let c = if *dim == Dim::Model {
                    g.cond.clone()
                } else {
                    cond.clone()
                };
                let i = *at.entry((p.clone(), c.clone())).or_insert_with(|| {
                    next.push((p, c, Vec::new()));
                    next.len() - 1
                });
                let list = &mut next[i].2;
                for t in tuples {
                    if list.len() >= MAX_TUPLES {
                        break;
                    }
                    let mut t = *t;
                    t[d] = gi;
                    list.push(t);
                }
                if next.len() > limits.classes {
                    return Err(ClassError::TooManyClasses(limits.classes));
                }
            }
        }
        nodes = next;
    }

    // Evaluate every class in both states; merge those with the same before and after.
    let mut merged: BTreeMap<(Vec<String>, Vec<String>), Vec<usize>> = BTreeMap::new();
    let mut evaluated: Vec<(Vec<String>, Vec<String>)> = Vec::with_capacity(nodes.len());
    for (n, (pass, cond, _)) in nodes.iter().enumerate() {
        let facts = Facts {
            pass,
            cond,
            cond_index: &cond_index,
        };
        let (before, policies_before) = evaluate(base, 0, &facts);
        let (after, policies_after) = evaluate(new, nb, &facts);
        evaluated.push((policies_before, policies_after));
        if before == after {
            out.unchanged += 1;
            out.index
                .insert((pass.clone(), cond.clone()), Located::Unchanged);
        } else {
            merged.entry((before, after)).or_default().push(n);
        }
    }
    for ((before, after), members) in merged {
        let tuples: Vec<Tuple> = members
            .iter()
            .flat_map(|&n| nodes[n].2.iter().copied())
            .collect();
        let truncated = members.iter().any(|&n| nodes[n].2.len() >= MAX_TUPLES);
        let description = describe_tuples(&info, &tuples, truncated);
        let example = tuples.iter().find_map(|t| example(&groups, t));
        let class = match example {
            Some(ctx) => {
                let b = resolve_request(base.attachments, base.production, &ctx);
                let a = resolve_request(new.attachments, new.production, &ctx);
                for (state, got, want) in [
                    ("base", &b.effective_guardrails, &before),
                    ("new", &a.effective_guardrails, &after),
                ] {
                    if got != want {
                        return Err(ClassError::Inconsistent {
                            class: description,
                            example: format!("{ctx:?}"),
                            state,
                            got: got.clone(),
                            want: want.clone(),
                        });
                    }
                }
                RequestClass {
                    description,
                    example: Some(ctx),
                    before,
                    after,
                    policies_before: b
                        .matched_policies
                        .into_iter()
                        .map(|m| m.policy_name)
                        .collect(),
                    policies_after: a
                        .matched_policies
                        .into_iter()
                        .map(|m| m.policy_name)
                        .collect(),
                }
            }
            None => RequestClass {
                description,
                example: None,
                before,
                after,
                policies_before: evaluated[members[0]].0.clone(),
                policies_after: evaluated[members[0]].1.clone(),
            },
        };
        let at = if class.example.is_some() {
            out.changed.push(class);
            Located::Changed(out.changed.len() - 1)
        } else {
            out.unwitnessed.push(class);
            Located::Unwitnessed(out.unwitnessed.len() - 1)
        };
        for &n in &members {
            out.index
                .insert((nodes[n].0.clone(), nodes[n].1.clone()), at);
        }
    }
    out.conditions = conditions;
    Ok(out)
}

/// Combinations remembered per class (for its example and description).
const MAX_TUPLES: usize = 4096;

/// A request from a combination's groups, when every one has a witness.
fn example(groups: &[&Vec<Group>], t: &Tuple) -> Option<MatchContext> {
    let value = |d: usize| -> Option<Option<String>> {
        let members = &groups[d][t[d]].members;
        // The null value when the group has it (the simplest request), else a witness.
        members
            .iter()
            .find(|m| m.witness == Some(None))
            .or_else(|| members.iter().find(|m| m.witness.is_some()))
            .and_then(|m| m.witness.clone())
    };
    let tags = &groups[3][t[3]].members[0].tags;
    Some(MatchContext {
        team_alias: value(0)?,
        key_alias: value(1)?,
        model: value(2)?,
        tags: (!tags.is_empty()).then(|| tags.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pyregex::ModelPattern;

    fn policy(add: &[&str]) -> PolicyContent {
        PolicyContent {
            add: add.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn att(policy: &str, f: impl FnOnce(&mut Attachment)) -> Attachment {
        let mut a = Attachment {
            policy: policy.into(),
            ..Default::default()
        };
        f(&mut a);
        a
    }

    fn strs(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn run(base: (&[Attachment], &PolicyMap), new: (&[Attachment], &PolicyMap)) -> Partition {
        partition(
            Side {
                attachments: base.0,
                production: base.1,
            },
            Side {
                attachments: new.0,
                production: new.1,
            },
            Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_team_attachment_changes_only_that_team_and_reads_as_one() {
        let pols: PolicyMap = [
            ("base".into(), policy(&["a"])),
            ("extra".into(), policy(&["b"])),
        ]
        .into();
        let base = vec![att("base", |a| a.scope = Some("*".into()))];
        let mut new = base.clone();
        new.push(att("extra", |a| a.teams = strs(&["research-*"])));
        let p = run((&base, &pols), (&new, &pols));
        assert_eq!(p.changed.len(), 1, "{p:?}");
        let c = &p.changed[0];
        assert_eq!(c.description, "team research-*");
        assert_eq!(
            (c.before.clone(), c.after.clone()),
            (
                vec!["a".to_string()],
                vec!["a".to_string(), "b".to_string()]
            )
        );
        assert!(
            c.example
                .as_ref()
                .unwrap()
                .team_alias
                .as_deref()
                .unwrap()
                .starts_with("research-")
        );
        assert!(p.unwitnessed.is_empty());
    }

    #[test]
    fn a_new_attachment_can_take_defaults_away() {
        let pols: PolicyMap = [
            ("fallback".into(), policy(&["d"])),
            ("keys".into(), policy(&["k"])),
        ]
        .into();
        let base = vec![att("fallback", |a| a.default = true)];
        let mut new = base.clone();
        new.push(att("keys", |a| a.keys = strs(&["ci-*"])));
        let p = run((&base, &pols), (&new, &pols));
        assert_eq!(p.changed.len(), 1);
        assert_eq!(p.changed[0].before, vec!["d"]);
        assert_eq!(p.changed[0].after, vec!["k"]);
        assert_eq!(p.changed[0].description, "key ci-*");
    }

    #[test]
    fn several_tags_reach_the_union_of_what_each_lets_through() {
        let pols: PolicyMap = [("x".into(), policy(&["gx"])), ("y".into(), policy(&["gy"]))].into();
        let base = vec![att("x", |a| a.tags = strs(&["ext"]))];
        // New: y needs both?—no: y on tag "int"; a request with both tags gets both.
        let mut new = base.clone();
        new.push(att("y", |a| a.tags = strs(&["int"])));
        let p = run((&base, &pols), (&new, &pols));
        let afters: BTreeSet<Vec<String>> = p.changed.iter().map(|c| c.after.clone()).collect();
        assert!(afters.contains(&vec!["gy".to_string()]));
        assert!(
            afters.contains(&vec!["gx".to_string(), "gy".to_string()]),
            "{p:?}"
        );
        let both = p.changed.iter().find(|c| c.after.len() == 2).unwrap();
        assert_eq!(
            both.example.as_ref().unwrap().tags.as_ref().unwrap().len(),
            2
        );
    }

    #[test]
    fn a_changed_condition_splits_models() {
        let mut cond = policy(&["c"]);
        cond.condition = Some(Some(ModelCondition::One(ModelPattern::new("gpt-.*"))));
        let mut cond2 = policy(&["c"]);
        cond2.condition = Some(Some(ModelCondition::One(ModelPattern::new("gpt-4.*"))));
        let base_p: PolicyMap = [("p".into(), cond)].into();
        let new_p: PolicyMap = [("p".into(), cond2)].into();
        let atts = vec![att("p", |a| a.scope = Some("*".into()))];
        let p = run((&atts, &base_p), (&atts, &new_p));
        assert_eq!(p.changed.len(), 1);
        let c = &p.changed[0];
        assert_eq!(c.removed_for_test(), vec!["c"]);
        let m = c.example.as_ref().unwrap().model.clone().unwrap();
        assert!(m.starts_with("gpt-") && !m.starts_with("gpt-4"), "{m}");
        assert_eq!(
            c.description,
            "model matching /gpt-.*/ not matching /gpt-4.*/"
        );
    }

    impl RequestClass {
        fn removed_for_test(&self) -> Vec<&str> {
            self.before
                .iter()
                .filter(|g| !self.after.contains(g))
                .map(String::as_str)
                .collect()
        }
    }

    #[test]
    fn identical_states_change_nothing() {
        let pols: PolicyMap = [("p".into(), policy(&["a"]))].into();
        let atts = vec![att("p", |a| a.teams = strs(&["t-*", "t-1"]))];
        let p = run((&atts, &pols), (&atts, &pols));
        assert!(p.changed.is_empty() && p.unwitnessed.is_empty());
        assert!(p.unchanged >= 1);
    }
}
