//! Inheritance chains and guardrail resolution (`policy_resolver.py`).

use std::collections::{BTreeSet, HashSet};

use super::condition::condition_holds;
use super::model::{MatchContext, PolicyMap};

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
pub fn inheritance_chain(name: &str, policies: &PolicyMap) -> Vec<String> {
    let mut chain = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut current = Some(name);
    while let Some(n) = current {
        if !seen.insert(n) {
            break;
        }
        let Some((key, policy)) = policies.get_key_value(n) else {
            break;
        };
        chain.push(key.clone());
        current = policy.parent();
    }
    chain.reverse();
    chain
}

/// LiteLLM's `resolve_policy_guardrails`: walk the chain root first; with a context, skip
/// members whose own condition fails; add then remove each member's names.
pub fn resolve_policy(
    name: &str,
    policies: &PolicyMap,
    ctx: Option<&MatchContext>,
) -> ResolvedPolicy {
    let chain = inheritance_chain(name, policies);
    let mut set: BTreeSet<&str> = BTreeSet::new();
    for member in &chain {
        let Some(policy) = policies.get(member) else {
            continue;
        };
        if let Some(ctx) = ctx
            && !condition_holds(policy, ctx)
        {
            continue;
        }
        set.extend(policy.add.iter().map(String::as_str));
        for r in &policy.remove {
            set.remove(r.as_str());
        }
    }
    ResolvedPolicy {
        guardrails: set.into_iter().map(str::to_string).collect(),
        inheritance_chain: chain,
    }
}

/// True when any member of the policy's chain has no condition or a matching one
/// (`PolicyMatcher.policy_applies`). A missing policy never applies.
pub fn policy_applies(name: &str, policies: &PolicyMap, ctx: &MatchContext) -> bool {
    inheritance_chain(name, policies)
        .iter()
        .filter_map(|n| policies.get(n))
        .any(|p| condition_holds(p, ctx))
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
