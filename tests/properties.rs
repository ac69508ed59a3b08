//! Property tests for the engine's algebra.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use guardrail_operator::api::Stage;
use guardrail_operator::engine::attach::{matched_policies, resolve_request};
use guardrail_operator::engine::inherit::{inheritance_chain, resolve_policy};
use guardrail_operator::engine::lifecycle::{VersionInput, decide};
use guardrail_operator::engine::model::{Attachment, MatchContext, PolicyContent, PolicyMap};
use guardrail_operator::engine::pyregex::ModelPattern;
use guardrail_operator::engine::resolver::Resolver;
use proptest::prelude::*;

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const GUARDRAILS: [&str; 5] = ["g1", "g2", "g3", "g4", "g5"];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_map(str::to_string)
}

fn guardrail_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(GUARDRAILS.to_vec()).prop_map(str::to_string),
        0..4,
    )
}

fn content() -> impl Strategy<Value = PolicyContent> {
    (prop::option::of(name()), guardrail_list(), guardrail_list()).prop_map(
        |(inherit, add, remove)| PolicyContent {
            inherit,
            add,
            remove,
            ..Default::default()
        },
    )
}

fn policies() -> impl Strategy<Value = PolicyMap> {
    prop::collection::btree_map(name(), content(), 1..6)
}

/// Policies, some with a model condition (on the context's model values).
fn policies_with_conditions() -> impl Strategy<Value = PolicyMap> {
    prop::collection::btree_map(
        name(),
        (
            content(),
            prop::option::of(prop::option::of(
                prop::sample::select(vec!["m1", "m.*", "t-9"]).prop_map(str::to_string),
            )),
        )
            .prop_map(|(mut c, cond)| {
                c.condition = cond.map(|m| {
                    m.map(|p| {
                        guardrail_operator::engine::model::ModelCondition::One(ModelPattern::new(
                            &p,
                        ))
                    })
                });
                c
            }),
        1..6,
    )
}

fn pattern_list() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["*", "t1", "t-*", "k1", "m1", "x"]).prop_map(str::to_string),
        0..3,
    ))
}

fn attachment() -> impl Strategy<Value = Attachment> {
    (
        name(),
        prop::option::of(prop::sample::select(vec!["*", "all"]).prop_map(str::to_string)),
        pattern_list(),
        pattern_list(),
        pattern_list(),
        pattern_list(),
        prop::option::of(-3i32..3),
        any::<bool>(),
    )
        .prop_map(
            |(policy, scope, teams, keys, models, tags, priority, default)| Attachment {
                policy,
                scope,
                teams,
                keys,
                models,
                tags,
                priority,
                default,
            },
        )
}

fn context() -> impl Strategy<Value = MatchContext> {
    let v = || {
        prop::option::of(
            prop::sample::select(vec!["", "t1", "t-9", "k1", "m1"]).prop_map(str::to_string),
        )
    };
    (
        v(),
        v(),
        v(),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["", "x", "t1"]).prop_map(str::to_string),
            0..3,
        )),
    )
        .prop_map(|(team_alias, key_alias, model, tags)| MatchContext {
            team_alias,
            key_alias,
            model,
            tags,
        })
}

proptest! {
    /// The indexed resolver answers exactly what the linear scan answers: same matched policies
    /// in the same order with the same reasons, same guardrails.
    #[test]
    fn the_indexed_resolver_equals_the_linear_scan(pols in policies_with_conditions(), atts in prop::collection::vec(attachment(), 0..10), ctxs in prop::collection::vec(context(), 1..6)) {
        let resolver = Resolver::new(&atts, &pols);
        for ctx in &ctxs {
            prop_assert_eq!(resolver.resolve(ctx), resolve_request(&atts, &pols, ctx));
        }
    }

    /// The effective set is the union of each matched policy's resolution, and neither the set of
    /// matched policies nor the effective guardrails depend on the registry order.
    #[test]
    fn effective_set_is_an_order_independent_union(pols in policies(), mut atts in prop::collection::vec(attachment(), 0..8), ctx in context()) {
        let r = resolve_request(&atts, &pols, &ctx);
        let mut union = BTreeSet::new();
        for m in &r.matched_policies {
            union.extend(resolve_policy(&m.policy_name, &pols, Some(&ctx)).guardrails);
        }
        prop_assert_eq!(r.effective_guardrails.iter().cloned().collect::<BTreeSet<_>>(), union);
        let names: BTreeSet<String> = matched_policies(&atts, &pols, &ctx).into_iter().map(|m| m.policy_name).collect();
        atts.reverse();
        let r2 = resolve_request(&atts, &pols, &ctx);
        prop_assert_eq!(&r.effective_guardrails, &r2.effective_guardrails);
        let names2: BTreeSet<String> = matched_policies(&atts, &pols, &ctx).into_iter().map(|m| m.policy_name).collect();
        prop_assert_eq!(names, names2);
    }

    /// Resolution is the fold of add-then-remove along the chain, root first; the chain never
    /// repeats a name and ends with the policy itself.
    #[test]
    fn resolution_is_a_fold_along_the_chain(pols in policies(), start in name()) {
        let chain = inheritance_chain(&start, &pols);
        let unique: BTreeSet<&String> = chain.iter().collect();
        prop_assert_eq!(unique.len(), chain.len());
        if pols.contains_key(&start) {
            prop_assert_eq!(chain.last(), Some(&start));
        } else {
            prop_assert!(chain.is_empty());
        }
        let mut set = BTreeSet::new();
        for member in &chain {
            let p = &pols[member];
            set.extend(p.add.iter().cloned());
            for r in &p.remove { set.remove(r); }
        }
        prop_assert_eq!(resolve_policy(&start, &pols, None).guardrails, set.into_iter().collect::<Vec<_>>());
    }

    /// Output is deterministic: the same inputs give the same answer (sorted guardrails).
    #[test]
    fn deterministic(pols in policies(), atts in prop::collection::vec(attachment(), 0..6), ctx in context()) {
        let a = resolve_request(&atts, &pols, &ctx);
        let b = resolve_request(&atts, &pols, &ctx);
        prop_assert_eq!(&a, &b);
        let mut sorted = a.effective_guardrails.clone();
        sorted.sort();
        prop_assert_eq!(a.effective_guardrails, sorted);
    }

    /// The production set is the same whatever order the versions arrive in, and never holds a
    /// cycle or a child whose parent is not in production.
    #[test]
    fn production_fixpoint_is_order_independent_and_acyclic(
        specs in prop::collection::vec((name(), 1i64..4, prop::option::of(name()), prop::sample::select(vec![Stage::Draft, Stage::Published, Stage::Production])), 1..10),
        shuffle in any::<u64>(),
    ) {
        let inputs: Vec<VersionInput> = specs.iter().enumerate().map(|(i, (p, v, inherit, stage))| VersionInput {
            name: format!("{p}-v{v}-{i}"),
            created: format!("2026-01-01T00:00:{i:02}Z"),
            policy: p.clone(),
            version: *v,
            desired: *stage,
            previous: None,
            content: Ok(PolicyContent { inherit: inherit.clone(), add: vec!["g1".into()], ..Default::default() }),
            tests: Ok(()),
        }).collect();
        let all: BTreeSet<String> = NAMES.iter().map(|s| s.to_string()).collect();
        let d1 = decide(&inputs, &all, None);
        let mut shuffled = inputs.clone();
        let n = shuffled.len();
        for i in 0..n {
            let j = ((shuffle >> (i % 60)) as usize + i * 7) % n;
            shuffled.swap(i, j);
        }
        let d2 = decide(&shuffled, &all, None);
        let prod = |d: &guardrail_operator::engine::lifecycle::Decisions| -> BTreeMap<String, String> {
            d.production.iter().map(|(p, &i)| (p.clone(), d.versions[i].name.clone())).collect()
        };
        prop_assert_eq!(prod(&d1), prod(&d2));
        // Every production version's parent is in production, and following parents ends.
        let parent_of: BTreeMap<String, Option<String>> = d1.production.iter()
            .map(|(p, &i)| (p.clone(), inputs[i].content.as_ref().ok().and_then(|c| c.inherit.clone())))
            .collect();
        for start in parent_of.keys() {
            let mut seen = BTreeSet::new();
            let mut cur = Some(start.clone());
            while let Some(c) = cur {
                prop_assert!(seen.insert(c.clone()), "cycle through {}", c);
                prop_assert!(parent_of.contains_key(&c), "{} in production without its parent", c);
                cur = parent_of[&c].clone();
            }
        }
    }

    /// A pattern without regex metacharacters matches exactly itself.
    #[test]
    fn plain_patterns_are_exact(s in "[a-z0-9-]{0,12}", t in "[a-z0-9-]{0,12}") {
        let p = ModelPattern::new(&s);
        prop_assert!(p.matches(&s));
        prop_assert_eq!(p.matches(&t), s == t);
    }
}

/// Policies for `plan`: conditions include one with look-ahead, which has no exact automaton.
fn plan_policies() -> impl Strategy<Value = PolicyMap> {
    prop::collection::btree_map(
        name(),
        (
            content(),
            prop::option::of(prop::option::of(
                prop::sample::select(vec!["m1", "m.*", "t-9", "m(?!1).*", "[a-z]+-\\d"])
                    .prop_map(str::to_string),
            )),
        )
            .prop_map(|(mut c, cond)| {
                c.condition = cond.map(|m| {
                    m.map(|p| {
                        guardrail_operator::engine::model::ModelCondition::One(ModelPattern::new(
                            &p,
                        ))
                    })
                });
                c
            }),
        0..6,
    )
}

fn plan_context() -> impl Strategy<Value = MatchContext> {
    let v = || {
        prop::option::of(
            prop::sample::select(vec!["", "t1", "t-9", "t-", "k1", "m1", "m2", "x", "zz-1"])
                .prop_map(str::to_string),
        )
    };
    (
        v(),
        v(),
        v(),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["", "x", "t1", "t-2", "k1"]).prop_map(str::to_string),
            0..3,
        )),
    )
        .prop_map(|(team_alias, key_alias, model, tags)| MatchContext {
            team_alias,
            key_alias,
            model,
            tags,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `plan`'s request classes are exact: for random repositories and random edits, a request
    /// whose guardrails differ between the states falls in a changed (or unwitnessed) class
    /// that adds and removes exactly what it gains and loses, a request whose guardrails stay
    /// the same falls in no changed class, and every example resolves to its class's before
    /// and after.
    #[test]
    fn plan_classes_say_exactly_how_each_request_changes(
        base_pols in plan_policies(),
        base_atts in prop::collection::vec(attachment(), 0..8),
        over in plan_policies(),
        removed in prop::collection::vec(name(), 0..3),
        keep in prop::collection::vec(any::<bool>(), 8),
        extra in prop::collection::vec(attachment(), 0..4),
        ctxs in prop::collection::vec(plan_context(), 1..24),
    ) {
        use guardrail_operator::engine::plan::classes::{Limits, Located, Side, partition};
        let mut new_pols = base_pols.clone();
        new_pols.extend(over);
        for r in &removed {
            new_pols.remove(r);
        }
        let mut new_atts: Vec<Attachment> = base_atts
            .iter()
            .zip(keep.iter().cycle())
            .filter(|(_, k)| **k)
            .map(|(a, _)| a.clone())
            .collect();
        new_atts.extend(extra);
        let base = Side { attachments: &base_atts, production: &base_pols };
        let new = Side { attachments: &new_atts, production: &new_pols };
        let part = partition(base, new, Limits::default()).unwrap();
        for c in &part.changed {
            let ex = c.example.as_ref().unwrap();
            prop_assert_eq!(&resolve_request(&base_atts, &base_pols, ex).effective_guardrails, &c.before);
            prop_assert_eq!(&resolve_request(&new_atts, &new_pols, ex).effective_guardrails, &c.after);
            prop_assert!(c.before != c.after);
        }
        let diff = |b: &[String], a: &[String]| -> (Vec<String>, Vec<String>) {
            (
                a.iter().filter(|g| !b.contains(g)).cloned().collect(),
                b.iter().filter(|g| !a.contains(g)).cloned().collect(),
            )
        };
        for ctx in &ctxs {
            let before = resolve_request(&base_atts, &base_pols, ctx).effective_guardrails;
            let after = resolve_request(&new_atts, &new_pols, ctx).effective_guardrails;
            match part.locate(base, new, ctx) {
                Located::Changed(i) => {
                    let c = &part.changed[i];
                    prop_assert_eq!(diff(&before, &after), diff(&c.before, &c.after), "{:?} in {}", ctx, c.description);
                }
                Located::Unwitnessed(i) => {
                    let c = &part.unwitnessed[i];
                    prop_assert_eq!(diff(&before, &after), diff(&c.before, &c.after), "{:?} in {}", ctx, c.description);
                }
                Located::Unchanged => prop_assert_eq!(&before, &after, "{:?} changes but plan says it does not", ctx),
            }
        }
    }
}
