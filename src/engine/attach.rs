//! Attachment matching, defaults, ordering, de-duplication and `matched_via`
//! (`attachment_registry.py`, `policy_matcher.py`; reference §4).

use std::collections::HashSet;

use serde::Serialize;

use super::inherit::policy_applies;
#[cfg(test)]
use super::model::PolicyMap;
use super::model::{Attachment, MatchContext, Policies};

/// One matched policy with the reason of its first attachment in sorted order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchedPolicy {
    pub policy_name: String,
    pub matched_via: String,
}

/// LiteLLM's wildcard rule (`route_matches_wildcard_pattern`): a pattern ending in `*` matches
/// values starting with everything before that final `*`; anything else is exact.
pub fn wildcard_matches(value: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

/// `PolicyMatcher.matches_pattern`: a null value matches only a literal `"*"` in the list.
pub fn matches_any(value: Option<&str>, patterns: &[String]) -> bool {
    match value {
        None => patterns.iter().any(|p| p == "*"),
        Some(v) => patterns.iter().any(|p| wildcard_matches(v, p)),
    }
}

fn or_star(list: &Option<Vec<String>>) -> Option<&[String]> {
    list.as_deref().filter(|l| !l.is_empty())
}

impl Attachment {
    /// Only the exact string `"*"` makes an attachment global.
    pub fn is_global(&self) -> bool {
        self.scope.as_deref() == Some("*")
    }

    /// `PolicyMatcher.scope_matches` on `to_policy_scope()`. An absent or empty teams, keys or
    /// models list is `["*"]`, which matches every value, null included.
    pub fn scope_matches(&self, ctx: &MatchContext) -> bool {
        let (team, key, model) = (
            ctx.team_alias.as_deref(),
            ctx.key_alias.as_deref(),
            ctx.model.as_deref(),
        );
        self.scope_matches_by(
            |patterns| matches_any(team, patterns),
            |patterns| matches_any(key, patterns),
            |patterns| matches_any(model, patterns),
            |patterns| {
                ctx.tags
                    .as_deref()
                    .is_some_and(|tags| tags.iter().any(|t| matches_any(Some(t), patterns)))
            },
        )
    }

    /// The scope rule with each dimension's test given: `team`, `key` and `model` answer
    /// whether the request's value matches one of the (non-empty) pattern list, `tags` whether
    /// one of its tags does (false without tags). A global attachment matches everything; an
    /// absent or empty list leaves its dimension unconstrained.
    pub fn scope_matches_by(
        &self,
        team: impl Fn(&[String]) -> bool,
        key: impl Fn(&[String]) -> bool,
        model: impl Fn(&[String]) -> bool,
        tags: impl Fn(&[String]) -> bool,
    ) -> bool {
        if self.is_global() {
            return true;
        }
        or_star(&self.teams).is_none_or(team)
            && or_star(&self.keys).is_none_or(key)
            && or_star(&self.models).is_none_or(model)
            && or_star(&self.tags).is_none_or(tags)
    }

    /// `(max rank of the dimensions present, number present)`; teams=1, keys=2, tags=3, models=4.
    /// Global attachments and attachments without dimensions are `(0, 0)`.
    pub fn specificity(&self) -> (u8, u8) {
        if self.is_global() {
            return (0, 0);
        }
        let present = [
            (&self.teams, 1u8),
            (&self.keys, 2),
            (&self.tags, 3),
            (&self.models, 4),
        ]
        .into_iter()
        .filter(|(l, _)| or_star(l).is_some())
        .map(|(_, rank)| rank);
        let (mut max, mut count) = (0u8, 0u8);
        for rank in present {
            max = max.max(rank);
            count += 1;
        }
        (max, count)
    }

    /// Sort key: prioritised first (ascending), then broadest first.
    fn sort_key(&self) -> (u8, i64, u8, u8) {
        let (rank, count) = self.specificity();
        match self.priority {
            Some(p) => (0, i64::from(p), rank, count),
            None => (1, 0, rank, count),
        }
    }

    /// `_describe_match_reason`.
    pub fn matched_via(&self, ctx: &MatchContext) -> String {
        let reason = if self.is_global() {
            "scope:*".to_string()
        } else {
            let mut parts: Vec<String> = Vec::new();
            if let (Some(tags), Some(ctx_tags)) = (or_star(&self.tags), ctx.tags.as_deref())
                && let Some(first) = ctx_tags.iter().find(|t| matches_any(Some(t), tags))
            {
                parts.push(format!("tag:{first}"));
            }
            let truthy =
                |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
            if or_star(&self.teams).is_some()
                && let Some(t) = truthy(&ctx.team_alias)
            {
                parts.push(format!("team:{t}"));
            }
            if or_star(&self.keys).is_some()
                && let Some(k) = truthy(&ctx.key_alias)
            {
                parts.push(format!("key:{k}"));
            }
            if or_star(&self.models).is_some()
                && let Some(m) = truthy(&ctx.model)
            {
                parts.push(format!("model:{m}"));
            }
            if parts.is_empty() {
                "scope:default".to_string()
            } else {
                parts.join("+")
            }
        };
        if self.default {
            format!("default:{reason}")
        } else {
            reason
        }
    }
}

/// `get_attached_policies_with_reasons` with the chain-condition predicate: attachments in
/// registry order (the slice order) whose scope matches and whose policy applies; defaults
/// only when no non-default matched; stable sort by priority then specificity; one entry per
/// policy, from its first attachment.
pub fn matched_policies(
    attachments: &[Attachment],
    policies: &impl Policies,
    ctx: &MatchContext,
) -> Vec<MatchedPolicy> {
    let in_scope: Vec<&Attachment> = attachments
        .iter()
        .filter(|a| a.scope_matches(ctx) && policy_applies(&a.policy, policies, ctx))
        .collect();
    choose(in_scope, ctx)
}

/// From the attachments in scope (registry order): defaults only when no non-default matched;
/// stable sort by priority then specificity; one entry per policy, from its first attachment.
pub(crate) fn choose(in_scope: Vec<&Attachment>, ctx: &MatchContext) -> Vec<MatchedPolicy> {
    chosen(in_scope)
        .into_iter()
        .map(|a| MatchedPolicy {
            policy_name: a.policy.clone(),
            matched_via: a.matched_via(ctx),
        })
        .collect()
}

/// The attachments [`choose`] keeps, in match order (no reasons: `plan` uses it for classes
/// of requests, which have no single value to name).
pub(crate) fn chosen(in_scope: Vec<&Attachment>) -> Vec<&Attachment> {
    let non_default: Vec<&Attachment> = in_scope.iter().copied().filter(|a| !a.default).collect();
    let mut chosen = if non_default.is_empty() {
        in_scope.into_iter().filter(|a| a.default).collect()
    } else {
        non_default
    };
    chosen.sort_by_cached_key(|a| a.sort_key());
    // One entry per policy: a linear check while few matched (most requests), a hash set after.
    let mut seen: Vec<&str> = Vec::new();
    let mut many: HashSet<&str> = HashSet::new();
    chosen.retain(|a| {
        let p = a.policy.as_str();
        if seen.len() < 32 {
            if seen.contains(&p) {
                return false;
            }
            seen.push(p);
            if seen.len() == 32 {
                many.extend(seen.iter().copied());
            }
            true
        } else {
            many.insert(p)
        }
    });
    chosen
}

/// One matched policy in a resolve answer (`PolicyMatchDetail`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchDetail {
    pub policy_name: String,
    pub matched_via: String,
    /// Sorted.
    pub guardrails_added: Vec<String>,
}

/// The answer of `/policies/resolve` (api.md §7 `resolve -o json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    /// Sorted union of the matched policies' guardrails.
    pub effective_guardrails: Vec<String>,
    /// In LiteLLM's match order.
    pub matched_policies: Vec<MatchDetail>,
}

/// What applies to a request: matched policies in order, each resolved with the context, and
/// the sorted union.
pub fn resolve_request(
    attachments: &[Attachment],
    policies: &impl Policies,
    ctx: &MatchContext,
) -> Resolution {
    resolution(matched_policies(attachments, policies, ctx), |name, out| {
        out.extend(super::inherit::resolved_guardrails(
            name,
            policies,
            Some(ctx),
        ));
    })
}

/// The answer for `matched` policies (in order): `guardrails_of` appends a policy's sorted
/// guardrails to the buffer it is given.
pub(crate) fn resolution<'a>(
    matched: Vec<MatchedPolicy>,
    mut guardrails_of: impl FnMut(&str, &mut Vec<&'a str>),
) -> Resolution {
    let mut effective: Vec<&'a str> = Vec::new();
    let mut added: Vec<&'a str> = Vec::new();
    let matched_policies = matched
        .into_iter()
        .map(|m| {
            added.clear();
            guardrails_of(&m.policy_name, &mut added);
            effective.extend_from_slice(&added);
            MatchDetail {
                guardrails_added: added.iter().map(|g| g.to_string()).collect(),
                policy_name: m.policy_name,
                matched_via: m.matched_via,
            }
        })
        .collect();
    effective.sort_unstable();
    effective.dedup();
    Resolution {
        effective_guardrails: effective.into_iter().map(str::to_string).collect(),
        matched_policies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::PolicyContent;

    fn s(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|x| x.to_string()).collect())
    }

    fn att(policy: &str) -> Attachment {
        Attachment {
            policy: policy.into(),
            ..Default::default()
        }
    }

    fn ctx(
        team: Option<&str>,
        key: Option<&str>,
        model: Option<&str>,
        tags: Option<&[&str]>,
    ) -> MatchContext {
        MatchContext {
            team_alias: team.map(Into::into),
            key_alias: key.map(Into::into),
            model: model.map(Into::into),
            tags: tags.map(|t| t.iter().map(|x| x.to_string()).collect()),
        }
    }

    fn policies(names: &[&str]) -> PolicyMap {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    PolicyContent {
                        add: vec![format!("g-{n}")],
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_matches("", "*"));
        assert!(wildcard_matches("gpt-", "gpt-*"));
        assert!(!wildcard_matches("gpt", "gpt-*"));
        assert!(wildcard_matches("a*x", "a**"));
        assert!(!wildcard_matches("xgpt", "*gpt"));
        assert!(wildcard_matches("*gpt", "*gpt"));
        assert!(wildcard_matches("a*b", "a*b"));
        assert!(!wildcard_matches("GPT-4", "gpt-*"));
        assert!(!matches_any(None, &["gpt-*".to_string()]));
        assert!(matches_any(None, &["*".to_string()]));
    }

    #[test]
    fn only_exact_star_is_global() {
        for scope in ["all", "", " * "] {
            let a = Attachment {
                scope: Some(scope.into()),
                teams: s(&["t"]),
                ..att("p")
            };
            assert!(!a.is_global());
            assert!(!a.scope_matches(&ctx(Some("u"), None, None, None)));
        }
        let g = Attachment {
            scope: Some("*".into()),
            teams: s(&["t"]),
            tags: s(&["x"]),
            ..att("p")
        };
        assert!(g.scope_matches(&ctx(Some("u"), None, None, None)));
        assert_eq!(g.matched_via(&ctx(Some("u"), None, None, None)), "scope:*");
    }

    #[test]
    fn tags_rules() {
        let a = Attachment {
            tags: s(&["*"]),
            ..att("p")
        };
        assert!(!a.scope_matches(&ctx(None, None, None, None)));
        assert!(!a.scope_matches(&ctx(None, None, None, Some(&[]))));
        assert!(a.scope_matches(&ctx(None, None, None, Some(&[""]))));
        assert_eq!(a.matched_via(&ctx(None, None, None, Some(&[""]))), "tag:");
        let empty = Attachment {
            tags: Some(vec![]),
            teams: Some(vec![]),
            ..att("p")
        };
        assert!(empty.scope_matches(&ctx(None, None, None, None)));
        assert_eq!(
            empty.matched_via(&ctx(Some("t"), None, None, None)),
            "scope:default"
        );
    }

    #[test]
    fn order_priority_then_specificity_then_registry() {
        let atts = vec![
            Attachment {
                models: s(&["*"]),
                ..att("models")
            },
            Attachment {
                tags: s(&["*"]),
                ..att("tags")
            },
            Attachment {
                teams: s(&["*"]),
                keys: s(&["*"]),
                ..att("teamkey")
            },
            Attachment {
                keys: s(&["*"]),
                ..att("keys")
            },
            Attachment {
                teams: s(&["*"]),
                ..att("teams")
            },
            Attachment {
                scope: Some("*".into()),
                ..att("global")
            },
            Attachment {
                models: s(&["*"]),
                priority: Some(5),
                ..att("p5")
            },
            Attachment {
                teams: s(&["*"]),
                priority: Some(-1),
                ..att("pneg")
            },
        ];
        let names = [
            "models", "tags", "teamkey", "keys", "teams", "global", "p5", "pneg",
        ];
        let m = matched_policies(
            &atts,
            &policies(&names),
            &ctx(Some("t"), Some("k"), Some("m"), Some(&["x"])),
        );
        let order: Vec<_> = m.iter().map(|x| x.policy_name.as_str()).collect();
        assert_eq!(
            order,
            vec![
                "pneg", "p5", "global", "teams", "keys", "teamkey", "tags", "models"
            ]
        );
        assert_eq!(m[5].matched_via, "team:t+key:k");
        assert_eq!(m[7].matched_via, "model:m");
    }

    #[test]
    fn defaults_only_when_no_non_default_and_dedupe_first() {
        let atts = vec![
            Attachment {
                default: true,
                ..att("fallback")
            },
            Attachment {
                teams: s(&["a-*"]),
                ..att("p")
            },
            Attachment {
                scope: Some("*".into()),
                ..att("p")
            },
            Attachment {
                teams: s(&["missing-*"]),
                ..att("nope")
            },
        ];
        let pol = policies(&["fallback", "p"]);
        let m = matched_policies(&atts, &pol, &ctx(Some("a-1"), None, None, None));
        assert_eq!(
            m,
            vec![MatchedPolicy {
                policy_name: "p".into(),
                matched_via: "scope:*".into()
            }]
        );
        let m = matched_policies(&atts[..1], &pol, &ctx(Some("z"), None, None, None));
        assert_eq!(m[0].matched_via, "default:scope:default");
        // An attachment to a missing policy is dropped before defaults are considered.
        let m = matched_policies(
            &[atts[0].clone(), atts[3].clone()],
            &pol,
            &ctx(Some("missing-1"), None, None, None),
        );
        assert_eq!(m[0].policy_name, "fallback");
    }
}
