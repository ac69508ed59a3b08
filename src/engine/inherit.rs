//! Inheritance chains and guardrail resolution (`policy_resolver.py`).

use std::collections::HashSet;

use super::condition::{ModelFacts, condition_holds};
#[cfg(test)]
use super::model::PolicyMap;
use super::model::{MatchContext, Policies};

/// A policy's resolved guardrails.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedPolicy {
    /// Sorted guardrail names.
    pub guardrails: Vec<String>,
    /// Root first, the policy itself last.
    pub inheritance_chain: Vec<String>,
}

/// LiteLLM's `resolve_inheritance_chain`: follow `inherit` upwards, stop silently at a missing
/// policy or at a name already visited (a cycle), root first. Empty for an unknown policy.
pub fn inheritance_chain(name: &str, policies: &impl Policies) -> Vec<String> {
    let mut chain = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut current = Some(name);
    while let Some(n) = current {
        if !seen.insert(n) {
            break;
        }
        let Some((key, policy)) = policies.lookup(n) else {
            break;
        };
        chain.push(key.to_string());
        current = policy.parent();
    }
    chain.reverse();
    chain
}

/// LiteLLM's `resolve_policy_guardrails`: walk the chain root first; with a context, skip
/// members whose own condition fails; add then remove each member's names.
pub fn resolve_policy(
    name: &str,
    policies: &impl Policies,
    ctx: Option<&MatchContext>,
) -> ResolvedPolicy {
    let chain = inheritance_chain(name, policies);
    let guardrails = resolved_guardrails(name, policies, ctx)
        .into_iter()
        .map(str::to_string)
        .collect();
    ResolvedPolicy {
        guardrails,
        inheritance_chain: chain,
    }
}

/// The guardrails of `resolve_policy`, sorted, borrowed from the policy map (no allocation per
/// name: this is the per-request hot path).
pub fn resolved_guardrails<'a, P: Policies, F: ModelFacts + ?Sized>(
    name: &str,
    policies: &'a P,
    ctx: Option<&F>,
) -> Vec<&'a str> {
    // The chain, leaf first, without cloning names.
    let mut chain: Vec<&'a crate::engine::model::PolicyContent> = Vec::with_capacity(8);
    let mut seen: Vec<&str> = Vec::with_capacity(8);
    let mut current = Some(name);
    while let Some(n) = current {
        if seen.contains(&n) {
            break;
        }
        let Some((key, policy)) = policies.lookup(n) else {
            break;
        };
        seen.push(key);
        chain.push(policy);
        current = policy.parent();
    }
    let mut set: Vec<&'a str> = Vec::new();
    for policy in chain.into_iter().rev() {
        if let Some(ctx) = ctx
            && !condition_holds(policy, ctx)
        {
            continue;
        }
        for a in &policy.add {
            if !set.contains(&a.as_str()) {
                set.push(a.as_str());
            }
        }
        for r in &policy.remove {
            set.retain(|x| *x != r.as_str());
        }
    }
    set.sort_unstable();
    set
}

/// True when any member of the policy's chain has no condition or a matching one
/// (`PolicyMatcher.policy_applies`). A missing policy never applies. The walk follows parents
/// without allocating; on a cycle it may revisit members, which cannot change an "any" answer,
/// so it stops after as many steps as there are policies.
pub fn policy_applies(
    name: &str,
    policies: &impl Policies,
    ctx: &(impl ModelFacts + ?Sized),
) -> bool {
    let mut current = Some(name);
    let mut steps = 0usize;
    while let Some(n) = current {
        let Some((_, policy)) = policies.lookup(n) else {
            return false;
        };
        if condition_holds(policy, ctx) {
            return true;
        }
        steps += 1;
        if steps > policies.count() {
            return false;
        }
        current = policy.parent();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{ModelCondition, PolicyContent};
    use crate::engine::pyregex::ModelPattern;

    fn p(inherit: Option<&str>, add: &[&str], remove: &[&str]) -> PolicyContent {
        PolicyContent {
            inherit: inherit.map(str::to_string),
            add: add.iter().map(|s| s.to_string()).collect(),
            remove: remove.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn map(entries: Vec<(&str, PolicyContent)>) -> PolicyMap {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn chain_is_root_first_and_stops_at_missing_parent() {
        let m = map(vec![
            ("a", p(None, &[], &[])),
            ("b", p(Some("a"), &[], &[])),
            ("o", p(Some("missing"), &[], &[])),
        ]);
        assert_eq!(inheritance_chain("b", &m), vec!["a", "b"]);
        assert_eq!(inheritance_chain("o", &m), vec!["o"]);
        assert!(inheritance_chain("zzz", &m).is_empty());
    }

    #[test]
    fn cycles_truncate() {
        let m = map(vec![
            ("a", p(Some("b"), &["x"], &[])),
            ("b", p(Some("a"), &["y"], &[])),
            ("s", p(Some("s"), &[], &[])),
        ]);
        assert_eq!(inheritance_chain("a", &m), vec!["b", "a"]);
        assert_eq!(inheritance_chain("b", &m), vec!["a", "b"]);
        assert_eq!(inheritance_chain("s", &m), vec!["s"]);
        assert_eq!(resolve_policy("a", &m, None).guardrails, vec!["x", "y"]);
    }

    #[test]
    fn add_remove_order_along_the_chain() {
        let m = map(vec![
            ("base", p(None, &["a", "b", "c"], &[])),
            ("child", p(Some("base"), &["d"], &["a"])),
            ("grand", p(Some("child"), &["a"], &["d"])),
            ("same", p(None, &["x"], &["x"])),
        ]);
        assert_eq!(
            resolve_policy("grand", &m, None).guardrails,
            vec!["a", "b", "c"]
        );
        assert_eq!(
            resolve_policy("child", &m, None).guardrails,
            vec!["b", "c", "d"]
        );
        assert!(resolve_policy("same", &m, None).guardrails.is_empty());
    }

    #[test]
    fn failed_condition_skips_only_that_member() {
        let mut parent = p(None, &["a", "b"], &[]);
        parent.condition = Some(Some(ModelCondition::One(ModelPattern::new("gpt-4o"))));
        let m = map(vec![
            ("parent", parent),
            ("child", p(Some("parent"), &["c"], &["a"])),
        ]);
        let ctx = MatchContext {
            model: Some("claude".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve_policy("child", &m, Some(&ctx)).guardrails,
            vec!["c"]
        );
        assert!(policy_applies("child", &m, &ctx));
        assert!(!policy_applies("parent", &m, &ctx));
        assert_eq!(resolve_policy("child", &m, None).guardrails, vec!["b", "c"]);
    }
}
