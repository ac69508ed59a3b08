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
//!    model, make the same conditions hold) form one *group*.
//! 2. **Across team, key and model**, groups combine by intersecting the attachments they let
//!    through; combinations that let through the same attachments (and conditions) merge. A
//!    combination that lets through no attachment that differs between the states (present in
//!    one only, or whose policy resolves differently) cannot change: it is counted as
//!    unchanged and not split further.
//! 3. **Tags** are sets, explored per combination ([`super::tags`]), by what they contribute.
//! 4. **Classes**: the (combination, tag state) pairs that gain and lose the same guardrails;
//!    a representative request is assembled from the witnesses and resolved for real in both
//!    states, and must agree.
//!
//! Size: per dimension, at most one class per reachable automaton state (for wildcards, about
//! the total length of the patterns); the combinations are at most the product of the three
//! dimensions' groups, and the tag states of one combination at most 2^(guardrails that can
//! differ) — exponential in the worst case, which is why all are capped ([`Limits`]) with an
//! error naming the cap.

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub(super) use super::bits::Bits;
use super::describe::{describe, describe_tuples};
use super::strings::{self, Predicate, StringClass};
use super::tags::{Contribution, NodeTags, TagClasses, difference};
use crate::engine::attach::{chosen, matches_any, resolve_request};
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
#[derive(Debug, Default)]
pub struct Partition {
    pub changed: Vec<RequestClass>,
    pub unchanged: usize,
    pub unwitnessed: Vec<RequestClass>,
    locator: Option<Locator>,
}

/// What [`Partition::locate`] needs: the classes of the other dimensions that were split
/// further, their tag states, and where each state went.
#[derive(Debug)]
struct Locator {
    nodes: HashMap<(Bits, Vec<bool>), usize>,
    tags: Vec<NodeTags>,
    located: Vec<Vec<Located>>,
    conditions: Vec<crate::engine::pyregex::ModelPattern>,
    tag_classes: TagClasses,
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
        let Some(l) = &self.locator else {
            return Located::Unchanged;
        };
        let union: Vec<&Attachment> = base.attachments.iter().chain(new.attachments).collect();
        let mut pass = Bits::new(union.len());
        let (team, key, model) = (
            ctx.team_alias.as_deref(),
            ctx.key_alias.as_deref(),
            ctx.model.as_deref(),
        );
        for (i, a) in union.iter().enumerate() {
            if a.scope_matches_by(
                |p| matches_any(team, p),
                |p| matches_any(key, p),
                |p| matches_any(model, p),
                |_| true,
            ) {
                pass.set(i);
            }
        }
        let cond: Vec<bool> = l
            .conditions
            .iter()
            .map(|p| model.is_some_and(|m| p.matches(m)))
            .collect();
        let Some(&node) = l.nodes.get(&(pass, cond)) else {
            return Located::Unchanged;
        };
        let classes: Vec<usize> = ctx
            .tags
            .iter()
            .flatten()
            .filter_map(|t| l.tag_classes.class_of(t))
            .collect();
        match l.tags[node].state_of(&classes) {
            Some(s) => l.located[node][s],
            None => Located::Unchanged,
        }
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
        "internal error: the example {example} of class '{class}' gains and loses {got:?}, not {want:?}"
    )]
    Inconsistent {
        class: String,
        example: String,
        got: Vec<String>,
        want: Vec<String>,
    },
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
    /// The answers per pattern of the dimension.
    pub(super) holds: Vec<bool>,
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

pub(super) fn dimension_passes(a: &Attachment, dim: Dim, ok: &dyn Fn(&[String]) -> bool) -> bool {
    let yes = |_: &[String]| true;
    match dim {
        Dim::Team => a.scope_matches_by(ok, yes, yes, yes),
        Dim::Key => a.scope_matches_by(yes, ok, yes, yes),
        Dim::Model => a.scope_matches_by(yes, yes, ok, yes),
        Dim::Tags => a.scope_matches_by(yes, yes, yes, ok),
    }
}

/// Distinct patterns of a dimension over all attachments, in first-seen order.
pub(super) fn patterns(all: &[&Attachment], dim: Dim) -> Vec<String> {
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

/// A combination of one group per dimension: team, key, model, and the tag state's
/// description (`ALL_TAGS`: whatever the tags).
pub(super) type Tuple = [usize; 4];

/// The tag part of a combination that holds whatever the tags.
pub(super) const ALL_TAGS: usize = usize::MAX;

/// Combinations remembered per class of the other dimensions.
const MAX_TUPLES: usize = 4096;

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
    let info: Vec<DimInfo> = vec![
        scalar_groups(Dim::Team, &union, &conditions, limits)?,
        scalar_groups(Dim::Key, &union, &conditions, limits)?,
        scalar_groups(Dim::Model, &union, &conditions, limits)?,
    ];
    let tag_classes = TagClasses::new(&union, limits)?;
    // Guardrail names, interned in sorted order (bit sets of them are sorted by construction).
    let names: Vec<String> = [base.production, new.production]
        .iter()
        .flat_map(|p| p.values())
        .flat_map(|c| c.add.iter())
        .cloned()
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let name_id: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let groups: Vec<&Vec<Group>> = info.iter().map(|i| &i.groups).collect();
    let unstable = unstable(base, new);
    let mut all = Bits::new(union.len());
    for i in 0..union.len() {
        all.set(i);
    }
    let mut out = Partition::default();

    // Team, key, model: combine dimension by dimension; merge combinations that let the same
    // attachments through with the same conditions; leave out what reaches nothing unstable.
    type Node = (Bits, Vec<bool>, Vec<[usize; 3]>);
    let mut nodes: Vec<Node> = vec![(all, vec![false; conditions.len()], vec![[0; 3]])];
    for (d, dim) in [Dim::Team, Dim::Key, Dim::Model].into_iter().enumerate() {
        let mut next: Vec<Node> = Vec::new();
        let mut at: HashMap<(Bits, Vec<bool>), usize> = HashMap::new();
        for (pass, cond, tuples) in &nodes {
            for (gi, g) in groups[d].iter().enumerate() {
                let p = pass.and(&g.pass);
                if !p.intersects(&unstable) {
                    out.unchanged += 1;
                    continue;
                }
                let c = if dim == Dim::Model {
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

    // Tags, per node: the states tag sets reach, each with what it adds and removes.
    /// Per attachment, once per set of conditions: `None` when its policy does not apply,
    /// else whether it is a default and its policy's guardrails.
    type Applied = Option<(bool, Bits)>;
    let mut per_attachment: HashMap<Vec<bool>, Vec<Option<Applied>>> = HashMap::new();
    let mut tags: Vec<NodeTags> = Vec::with_capacity(nodes.len());
    let mut located: Vec<Vec<Located>> = Vec::with_capacity(nodes.len());
    /// (added, removed) → the (combination, tag state) pairs with that difference.
    type Members = Vec<(usize, usize)>;
    let mut by_difference: BTreeMap<(Vec<String>, Vec<String>), Members> = BTreeMap::new();
    for (ni, (pass, cond, _)) in nodes.iter().enumerate() {
        let facts = Facts {
            pass,
            cond,
            cond_index: &cond_index,
        };
        // (default?, guardrails) of each attachment whose policy applies, under `cond`.
        let cache = per_attachment
            .entry(cond.clone())
            .or_insert_with(|| vec![None; union.len()]);
        let mut of = |i: usize| -> Option<(bool, Bits)> {
            cache[i]
                .get_or_insert_with(|| {
                    let (side, a) = if i < nb {
                        (base, &base.attachments[i])
                    } else {
                        (new, &new.attachments[i - nb])
                    };
                    policy_applies(&a.policy, side.production, &facts).then(|| {
                        let mut gs = Bits::new(names.len());
                        for g in resolved_guardrails(&a.policy, side.production, Some(&facts)) {
                            if let Some(&id) = name_id.get(g) {
                                gs.set(id);
                            }
                        }
                        (a.default, gs)
                    })
                })
                .clone()
        };
        let mut contribution = |set: &Bits| {
            let (mut b, mut n) = (
                Contribution::empty(names.len()),
                Contribution::empty(names.len()),
            );
            for i in set.ones() {
                let Some((default, gs)) = of(i) else { continue };
                let c = if i < nb { &mut b } else { &mut n };
                if default {
                    c.default = c.default.or(&gs);
                } else {
                    c.has_non_default = true;
                    c.non_default = c.non_default.or(&gs);
                }
            }
            (b, n)
        };
        let start = contribution(&pass.and(&tag_classes.untagged));
        let per_class = tag_classes
            .hits
            .iter()
            .map(|h| contribution(&pass.and(h)))
            .collect();
        let nt = NodeTags::explore(start, per_class, limits.tag_sets)?;
        let mut here = Vec::with_capacity(nt.states.len());
        for (si, (state, _)) in nt.states.iter().enumerate() {
            let d = difference(state, &names);
            if d.0.is_empty() && d.1.is_empty() {
                out.unchanged += 1;
            } else {
                by_difference.entry(d).or_default().push((ni, si));
            }
            here.push(Located::Unchanged);
        }
        tags.push(nt);
        located.push(here);
    }

    // One class per difference; its example resolved for real in both states.
    let tag_text = |path: &[usize]| -> String {
        if path.is_empty() {
            return "no matching tag".into();
        }
        let names: Vec<String> = path
            .iter()
            .map(|&c| {
                describe(
                    Dim::Tags,
                    &tag_classes.preds,
                    &tag_classes.classes[c].holds,
                    &tag_classes.classes,
                    false,
                )
            })
            .collect();
        match names.as_slice() {
            [one] => one.clone(),
            many => format!(
                "tags {}",
                many.iter()
                    .map(|n| n.strip_prefix("tag ").unwrap_or(n))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        }
    };
    let mut tag_texts: Vec<String> = Vec::new();
    let mut tag_ids: HashMap<Vec<usize>, usize> = HashMap::new();
    for ((added, removed), members) in by_difference {
        let member_nodes: BTreeSet<usize> = members.iter().map(|&(n, _)| n).collect();
        let tag_free: BTreeSet<usize> = member_nodes
            .iter()
            .copied()
            .filter(|&n| members.iter().filter(|&&(m, _)| m == n).count() == tags[n].states.len())
            .collect();
        let mut tuples: Vec<Tuple> = Vec::new();
        let mut truncated = false;
        for &(n, s) in &members {
            let t = if tag_free.contains(&n) {
                ALL_TAGS
            } else {
                let path = &tags[n].states[s].1;
                *tag_ids.entry(path.clone()).or_insert_with(|| {
                    tag_texts.push(tag_text(path));
                    tag_texts.len() - 1
                })
            };
            truncated |= nodes[n].2.len() >= MAX_TUPLES;
            for x in &nodes[n].2 {
                if tuples.len() >= MAX_TUPLES {
                    truncated = true;
                    break;
                }
                tuples.push([x[0], x[1], x[2], t]);
            }
        }
        let description = describe_tuples(&info, &tag_texts, &tuples, truncated);
        let example = members.iter().find_map(|&(n, s)| {
            let path = &tags[n].states[s].1;
            let tag_values: Option<Vec<String>> = path
                .iter()
                .map(|&c| tag_classes.classes[c].witness.clone())
                .collect();
            let tag_values = tag_values?;
            nodes[n]
                .2
                .iter()
                .find_map(|t| example(&groups, t, &tag_values))
        });
        let class = match example {
            Some(ctx) => {
                let b = resolve_request(base.attachments, base.production, &ctx);
                let a = resolve_request(new.attachments, new.production, &ctx);
                let got_added: Vec<String> = a
                    .effective_guardrails
                    .iter()
                    .filter(|g| !b.effective_guardrails.contains(g))
                    .cloned()
                    .collect();
                let got_removed: Vec<String> = b
                    .effective_guardrails
                    .iter()
                    .filter(|g| !a.effective_guardrails.contains(g))
                    .cloned()
                    .collect();
                if (&got_added, &got_removed) != (&added, &removed) {
                    return Err(ClassError::Inconsistent {
                        class: description,
                        example: format!("{ctx:?}"),
                        got: [got_added, got_removed].concat(),
                        want: [added, removed].concat(),
                    });
                }
                RequestClass {
                    description,
                    example: Some(ctx),
                    before: b.effective_guardrails,
                    after: a.effective_guardrails,
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
            None => {
                // The first member, evaluated in full (the states compare fewer guardrails).
                let (n, s) = members[0];
                let mut pass = nodes[n].0.and(&tag_classes.untagged);
                for &c in &tags[n].states[s].1 {
                    pass = pass.or(&nodes[n].0.and(&tag_classes.hits[c]));
                }
                let facts = Facts {
                    pass: &pass,
                    cond: &nodes[n].1,
                    cond_index: &cond_index,
                };
                let (before, policies_before) = evaluate(base, 0, &facts);
                let (after, policies_after) = evaluate(new, nb, &facts);
                RequestClass {
                    description,
                    example: None,
                    before,
                    after,
                    policies_before,
                    policies_after,
                }
            }
        };
        let at = if class.example.is_some() {
            out.changed.push(class);
            Located::Changed(out.changed.len() - 1)
        } else {
            out.unwitnessed.push(class);
            Located::Unwitnessed(out.unwitnessed.len() - 1)
        };
        for &(n, s) in &members {
            located[n][s] = at;
        }
    }
    out.locator = Some(Locator {
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(i, (p, c, _))| ((p.clone(), c.clone()), i))
            .collect(),
        tags,
        located,
        conditions,
        tag_classes,
    });
    Ok(out)
}

/// A request from a combination's groups and tag values, when every group has a witness.
fn example(groups: &[&Vec<Group>], t: &[usize; 3], tags: &[String]) -> Option<MatchContext> {
    let value = |d: usize| -> Option<Option<String>> {
        let members = &groups[d][t[d]].members;
        // The null value when the group has it (the simplest request), else a witness.
        members
            .iter()
            .find(|m| m.witness == Some(None))
            .or_else(|| members.iter().find(|m| m.witness.is_some()))
            .and_then(|m| m.witness.clone())
    };
    Some(MatchContext {
        team_alias: value(0)?,
        key_alias: value(1)?,
        model: value(2)?,
        tags: (!tags.is_empty()).then(|| tags.to_vec()),
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
        let mut new = base.clone();
        new.push(att("y", |a| a.tags = strs(&["int"])));
        let p = run((&base, &pols), (&new, &pols));
        // One difference (gains gy), whatever else the tags bring.
        assert_eq!(p.changed.len(), 1, "{p:?}");
        let c = &p.changed[0];
        assert_eq!(c.description, "(tag int or tags ext + int)");
        assert_eq!(
            c.after
                .iter()
                .filter(|g| !c.before.contains(g))
                .collect::<Vec<_>>(),
            ["gy"]
        );
        let both = MatchContext {
            tags: strs(&["ext", "int"]),
            ..Default::default()
        };
        let sides = (
            Side {
                attachments: &base,
                production: &pols,
            },
            Side {
                attachments: &new,
                production: &pols,
            },
        );
        assert_eq!(p.locate(sides.0, sides.1, &both), Located::Changed(0));
        let ext = MatchContext {
            tags: strs(&["ext"]),
            ..Default::default()
        };
        assert_eq!(p.locate(sides.0, sides.1, &ext), Located::Unchanged);
    }

    #[test]
    fn many_tag_attachments_do_not_explode() {
        // 40 tags, each its own policy and guardrail: 2^40 tag sets, one difference.
        let mut pols: PolicyMap = (0..40)
            .map(|i| (format!("t{i}"), policy(&[&format!("g{i}")])))
            .collect();
        let base: Vec<Attachment> = (0..40)
            .map(|i| att(&format!("t{i}"), |a| a.tags = strs(&[&format!("app-{i}")])))
            .collect();
        pols.insert("new".into(), policy(&["fresh"]));
        let mut new = base.clone();
        new.push(att("new", |a| a.teams = strs(&["ops"])));
        let p = run((&base, &pols), (&new, &pols));
        assert_eq!(p.changed.len(), 1, "{:?}", p.changed);
        assert_eq!(p.changed[0].description, "team ops");
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
