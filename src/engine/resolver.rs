//! Resolving many requests against one policy set: the attachments indexed by the exact values
//! they name, and every policy's resolution that no request can change computed once.
//!
//! Answers are [`resolve_request`](super::attach::resolve_request)'s, exactly (a property test
//! compares them); only the work per request shrinks from every attachment to the ones a
//! request could match.
//!
//! Index rule: an attachment is a *candidate* for a request unless some dimension rules it out
//! cheaply. A non-global attachment with a dimension (teams, keys, models or tags) whose
//! patterns are all exact (no final `*`) can only match a request whose value for that
//! dimension (or one of whose tags) equals one of them, so it is filed under those values of
//! the first such dimension. Every other attachment (global, no dimension, or only
//! wildcard-bearing dimensions) is checked for every request. Candidates are then checked with
//! the full matching rules in registry order, as LiteLLM does.

use std::collections::HashMap;

use super::attach::{MatchedPolicy, Resolution};
use super::inherit::{policy_applies, resolved_guardrails};
use super::model::{Attachment, Fnv, MatchContext, Policies};

type Map<'a, V> = HashMap<&'a str, V, std::hash::BuildHasherDefault<Fnv>>;

/// Attachments by the exact values they require, and those to check for every request.
#[derive(Debug, Default)]
struct AttachmentIndex<'a> {
    always: Vec<u32>,
    teams: Map<'a, Vec<u32>>,
    keys: Map<'a, Vec<u32>>,
    models: Map<'a, Vec<u32>>,
    tags: Map<'a, Vec<u32>>,
}

fn exact(list: &Option<Vec<String>>) -> Option<&[String]> {
    list.as_deref()
        .filter(|l| !l.is_empty() && l.iter().all(|p| !p.ends_with('*')))
}

impl<'a> AttachmentIndex<'a> {
    fn new(attachments: &'a [Attachment]) -> Self {
        let mut index = AttachmentIndex::default();
        for (i, a) in attachments.iter().enumerate() {
            let i = i as u32;
            let filed = if a.is_global() {
                None
            } else {
                [
                    (exact(&a.teams), &mut index.teams),
                    (exact(&a.keys), &mut index.keys),
                    (exact(&a.models), &mut index.models),
                    (exact(&a.tags), &mut index.tags),
                ]
                .into_iter()
                .find_map(|(values, map)| values.map(|v| (v, map)))
            };
            match filed {
                Some((values, map)) => {
                    for v in values {
                        let list = map.entry(v.as_str()).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => index.always.push(i),
            }
        }
        index
    }

    /// Indices of the attachments that could match `ctx`, in registry order.
    fn candidates(&self, ctx: &MatchContext) -> Vec<u32> {
        let mut out = self.always.clone();
        let mut add = |map: &Map<'a, Vec<u32>>, value: Option<&str>| {
            if let Some(list) = value.and_then(|v| map.get(v)) {
                out.extend_from_slice(list);
            }
        };
        add(&self.teams, ctx.team_alias.as_deref());
        add(&self.keys, ctx.key_alias.as_deref());
        add(&self.models, ctx.model.as_deref());
        for t in ctx.tags.iter().flatten() {
            add(&self.tags, Some(t));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// What a policy resolves to when no request can change it (no member of its chain has a
/// model condition), and whether it applies to every request.
#[derive(Debug)]
struct Fixed<'a> {
    guardrails: Option<Vec<&'a str>>,
    always_applies: bool,
}

/// One policy set and its attachments, ready to resolve many requests.
pub struct Resolver<'a, P: Policies> {
    attachments: &'a [Attachment],
    policies: &'a P,
    index: AttachmentIndex<'a>,
    fixed: Map<'a, Fixed<'a>>,
}

/// Whether any member of `name`'s chain carries a model condition (walked as LiteLLM does,
/// stopping at a missing policy or a repeat).
fn chain_has_condition(name: &str, policies: &impl Policies) -> (bool, bool) {
    let (mut conditional, mut unconditional) = (false, false);
    let mut seen: Vec<&str> = Vec::new();
    let mut current = Some(name);
    while let Some(n) = current {
        let Some((key, p)) = policies.lookup(n) else {
            break;
        };
        if seen.contains(&key) {
            break;
        }
        seen.push(key);
        match &p.condition {
            Some(Some(_)) => conditional = true,
            None | Some(None) => unconditional = true,
        }
        current = p.parent();
    }
    (conditional, unconditional)
}

impl<'a, P: Policies> Resolver<'a, P> {
    pub fn new(attachments: &'a [Attachment], policies: &'a P) -> Self {
        let mut fixed: Map<'a, Fixed<'a>> = Map::default();
        for a in attachments {
            if fixed.contains_key(a.policy.as_str()) {
                continue;
            }
            let (conditional, unconditional) = chain_has_condition(&a.policy, policies);
            let exists = policies.lookup(&a.policy).is_some();
            fixed.insert(
                a.policy.as_str(),
                Fixed {
                    guardrails: (!conditional)
                        .then(|| resolved_guardrails(&a.policy, policies, None::<&MatchContext>)),
                    // `policy_applies`: some member without a condition makes it apply always.
                    always_applies: exists && unconditional,
                },
            );
        }
        Resolver {
            attachments,
            policies,
            index: AttachmentIndex::new(attachments),
            fixed,
        }
    }

    fn applies(&self, policy: &str, ctx: &MatchContext) -> bool {
        match self.fixed.get(policy) {
            Some(f) if f.always_applies => true,
            _ => policy_applies(policy, self.policies, ctx),
        }
    }

    /// [`matched_policies`](super::attach::matched_policies), from the candidates only.
    pub fn matched_policies(&self, ctx: &MatchContext) -> Vec<MatchedPolicy> {
        let in_scope: Vec<&Attachment> = self
            .index
            .candidates(ctx)
            .into_iter()
            .map(|i| &self.attachments[i as usize])
            .filter(|a| a.scope_matches(ctx) && self.applies(&a.policy, ctx))
            .collect();
        super::attach::choose(in_scope, ctx)
    }

    /// The effective guardrails alone (sorted, distinct): what [`Resolver::resolve`] answers
    /// in `effective_guardrails`, without building reasons (for replaying traffic).
    pub fn effective(&self, ctx: &MatchContext) -> Vec<&'a str> {
        let in_scope: Vec<&'a Attachment> = self
            .index
            .candidates(ctx)
            .into_iter()
            .map(|i| &self.attachments[i as usize])
            .filter(|a| a.scope_matches(ctx) && self.applies(&a.policy, ctx))
            .collect();
        let mut out: Vec<&'a str> = Vec::new();
        for a in super::attach::chosen(in_scope) {
            match self
                .fixed
                .get(a.policy.as_str())
                .and_then(|f| f.guardrails.as_deref())
            {
                Some(fixed) => out.extend_from_slice(fixed),
                None => out.extend(resolved_guardrails(&a.policy, self.policies, Some(ctx))),
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// [`resolve_request`](super::attach::resolve_request), with fixed resolutions reused.
    pub fn resolve(&self, ctx: &MatchContext) -> Resolution {
        super::attach::resolution(self.matched_policies(ctx), |name, out| {
            match self.fixed.get(name).and_then(|f| f.guardrails.as_deref()) {
                Some(fixed) => out.extend_from_slice(fixed),
                None => out.extend(resolved_guardrails(name, self.policies, Some(ctx))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::attach::resolve_request;
    use crate::engine::model::{PolicyContent, PolicyMap};

    fn list(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn exact_dimensions_are_indexed_and_the_rest_checked_always() {
        let atts = vec![
            Attachment {
                policy: "a".into(),
                teams: list(&["t1", "t2"]),
                ..Default::default()
            },
            Attachment {
                policy: "b".into(),
                teams: list(&["t-*"]),
                keys: list(&["k1"]),
                ..Default::default()
            },
            Attachment {
                policy: "c".into(),
                scope: Some("*".into()),
                ..Default::default()
            },
            Attachment {
                policy: "d".into(),
                tags: list(&["x", "*"]),
                ..Default::default()
            },
        ];
        let index = AttachmentIndex::new(&atts);
        assert_eq!(index.always, [2, 3]);
        assert_eq!(index.teams.get("t2"), Some(&vec![0]));
        assert_eq!(index.keys.get("k1"), Some(&vec![1]));
        let ctx = MatchContext {
            team_alias: Some("t1".into()),
            key_alias: Some("k1".into()),
            ..Default::default()
        };
        assert_eq!(index.candidates(&ctx), [0, 1, 2, 3]);
        let other = MatchContext {
            team_alias: Some("t9".into()),
            ..Default::default()
        };
        assert_eq!(index.candidates(&other), [2, 3]);
    }

    #[test]
    fn answers_equal_the_linear_scan_with_conditions_and_defaults() {
        let mut policies = PolicyMap::new();
        for (name, parent, cond) in [
            ("base", None, None),
            ("gpt", Some("base"), Some("gpt-.*")),
            ("leaf", Some("gpt"), None),
            ("solo", None, Some("claude-.*")),
        ] {
            let mut body = serde_json::json!({
                "guardrails": {"add": [format!("g-{name}")], "remove": if name == "leaf" { vec!["g-base"] } else { vec![] }},
            });
            if let Some(p) = parent {
                body["inherit"] = serde_json::json!(p);
            }
            if let Some(c) = cond {
                body["condition"] = serde_json::json!({"model": c});
            }
            let content: PolicyContent =
                crate::engine::litellm::parse_policy(&body).unwrap_or_else(|e| panic!("{e:?}"));
            policies.insert(name.into(), content);
        }
        let atts = vec![
            Attachment {
                policy: "leaf".into(),
                teams: list(&["t1"]),
                ..Default::default()
            },
            Attachment {
                policy: "solo".into(),
                models: list(&["claude-3"]),
                ..Default::default()
            },
            Attachment {
                policy: "base".into(),
                default: true,
                ..Default::default()
            },
        ];
        let r = Resolver::new(&atts, &policies);
        for team in [None, Some("t1"), Some("t2")] {
            for model in [None, Some("gpt-4o"), Some("claude-3")] {
                let ctx = MatchContext {
                    team_alias: team.map(Into::into),
                    model: model.map(Into::into),
                    ..Default::default()
                };
                assert_eq!(
                    r.resolve(&ctx),
                    resolve_request(&atts, &policies, &ctx),
                    "{ctx:?}"
                );
            }
        }
    }
}
