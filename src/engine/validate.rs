//! Validation: LiteLLM's rules, error types, fields and messages (`policy_validator.py`,
//! reference §6), plus the operator's own structural rules (api.md §2).

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use super::model::{ModelCondition, PolicyContent, PolicyMap};
use super::pyregex::PatternKind;

/// LiteLLM's `PolicyValidationErrorType`, plus `invalid_condition` for the operator's own
/// regex rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidGuardrail,
    InvalidTeam,
    InvalidKey,
    InvalidModel,
    InvalidInheritance,
    CircularInheritance,
    InvalidScope,
    InvalidSyntax,
    /// Not LiteLLM's: a condition pattern the operator cannot evaluate exactly like Python.
    InvalidCondition,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidGuardrail => "invalid_guardrail",
            ErrorType::InvalidTeam => "invalid_team",
            ErrorType::InvalidKey => "invalid_key",
            ErrorType::InvalidModel => "invalid_model",
            ErrorType::InvalidInheritance => "invalid_inheritance",
            ErrorType::CircularInheritance => "circular_inheritance",
            ErrorType::InvalidScope => "invalid_scope",
            ErrorType::InvalidSyntax => "invalid_syntax",
            ErrorType::InvalidCondition => "invalid_condition",
        }
    }
}

/// One validation error or warning (`PolicyValidationError`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Issue {
    pub policy_name: String,
    pub error_type: ErrorType,
    pub message: String,
    pub field: Option<String>,
    pub value: Option<String>,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.policy_name, self.message)
    }
}

/// `PolicyValidationResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl Report {
    pub fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Maximum inheritance depth LiteLLM's validator allows.
pub const MAX_INHERITANCE_DEPTH: i32 = 100;

/// LiteLLM's `validate_policies`, in the given policy order. `available` is the guardrail
/// registry; an empty set skips every existence check, as LiteLLM does.
pub fn validate_policies(
    order: &[String],
    policies: &PolicyMap,
    available: &BTreeSet<String>,
) -> Report {
    let mut report = Report::default();
    for name in order {
        let Some(policy) = policies.get(name) else {
            continue;
        };
        for g in &policy.add {
            if !available.is_empty() && !available.contains(g) {
                report.errors.push(issue(
                    name,
                    ErrorType::InvalidGuardrail,
                    format!("Guardrail '{g}' not found in guardrail registry"),
                    "guardrails.add",
                    Some(g),
                ));
            }
        }
        for g in &policy.remove {
            if !available.is_empty() && !available.contains(g) {
                report.warnings.push(issue(
                    name,
                    ErrorType::InvalidGuardrail,
                    format!("Guardrail '{g}' in remove list not found in guardrail registry"),
                    "guardrails.remove",
                    Some(g),
                ));
            }
        }
        if let Some(pipeline) = &policy.pipeline {
            let own: HashSet<&str> = policy.add.iter().map(String::as_str).collect();
            for (i, step) in pipeline.steps.iter().enumerate() {
                let g = &step.guardrail;
                if !own.contains(g.as_str()) {
                    report.errors.push(step_not_in_add(name, i, g));
                }
                if !available.is_empty() && !available.contains(g) {
                    report.errors.push(issue(
                        name,
                        ErrorType::InvalidGuardrail,
                        format!(
                            "Pipeline step {i} guardrail '{g}' not found in guardrail registry"
                        ),
                        "pipeline.steps",
                        Some(g),
                    ));
                }
            }
        }
        report.errors.extend(inheritance_issues(name, policies));
    }
    report
}

/// `_validate_inheritance_chain` from one policy: a walk with a visited set and a depth
/// budget of 100. Errors are attributed as LiteLLM does: a missing parent to the policy naming
/// it, a cycle to the revisited name, "too deep" to the policy where the budget ran out.
pub fn inheritance_issues(start: &str, policies: &PolicyMap) -> Vec<Issue> {
    let mut visited: Vec<&str> = Vec::new();
    let mut budget = MAX_INHERITANCE_DEPTH;
    let mut current = start;
    loop {
        if budget <= 0 {
            return vec![issue(
                current,
                ErrorType::CircularInheritance,
                format!(
                    "Inheritance chain too deep (exceeded max depth of {MAX_INHERITANCE_DEPTH})"
                ),
                "inherit",
                None,
            )];
        }
        if visited.contains(&current) {
            // LiteLLM joins a Python set here, so the order of the path is arbitrary; ours is
            // the walk order.
            return vec![issue(
                current,
                ErrorType::CircularInheritance,
                format!(
                    "Circular inheritance detected: {} -> {current}",
                    visited.join(" -> ")
                ),
                "inherit",
                None,
            )];
        }
        let Some(policy) = policies.get(current) else {
            return Vec::new();
        };
        let Some(parent) = policy.parent() else {
            return Vec::new();
        };
        if !policies.contains_key(parent) {
            return vec![issue(
                current,
                ErrorType::InvalidInheritance,
                format!("Parent policy '{parent}' not found"),
                "inherit",
                Some(parent),
            )];
        }
        visited.push(current);
        current = parent;
        budget -= 1;
    }
}

fn step_not_in_add(name: &str, i: usize, g: &str) -> Issue {
    issue(
        name,
        ErrorType::InvalidGuardrail,
        format!("Pipeline step {i} guardrail '{g}' is not in the policy's guardrails.add list"),
        "pipeline.steps",
        Some(g),
    )
}

/// Problems of a version's own content, independent of other objects: LiteLLM's rule that
/// pipeline steps are in the policy's own `guardrails.add`, and the operator's regex rule.
/// These keep a version in Draft; references to other objects only make promotion wait.
pub fn content_issues(name: &str, policy: &PolicyContent) -> Vec<Issue> {
    let mut out = Vec::new();
    if let Some(pipeline) = &policy.pipeline {
        let own: HashSet<&str> = policy.add.iter().map(String::as_str).collect();
        for (i, step) in pipeline.steps.iter().enumerate() {
            if !own.contains(step.guardrail.as_str()) {
                out.push(step_not_in_add(name, i, &step.guardrail));
            }
        }
    }
    out.extend(structural_issues(name, policy));
    out
}

/// The operator's own rules on top of LiteLLM's (api.md §2): condition patterns must be
/// evaluable exactly like Python's `re`.
pub fn structural_issues(name: &str, policy: &PolicyContent) -> Vec<Issue> {
    let mut out = Vec::new();
    if let Some(parent) = policy.parent()
        && let Some(why) = super::names::dns_subdomain_problem(parent)
    {
        out.push(issue(
            name,
            ErrorType::InvalidInheritance,
            format!("{why}; name the parent Policy's metadata.name"),
            "inherit",
            Some(&elide(parent)),
        ));
    }
    if let Some(Some(cond)) = &policy.condition {
        let patterns = match cond {
            ModelCondition::One(p) => std::slice::from_ref(p),
            ModelCondition::Many(ps) => ps.as_slice(),
        };
        for p in patterns {
            if let PatternKind::Unsupported(why) = p.kind() {
                out.push(issue(
                    name,
                    ErrorType::InvalidCondition,
                    format!(
                        "condition.model pattern '{}' uses {why}, which the operator does not evaluate exactly like Python's re (the rest of Python's re, lookaround, \\b and inline flags included, it does); rewrite it without that construct, or list the model names",
                        elide(p.raw())
                    ),
                    "condition.model",
                    Some(&elide(p.raw())),
                ));
            }
        }
    }
    out
}

fn issue(
    policy: &str,
    error_type: ErrorType,
    message: String,
    field: &str,
    value: Option<&str>,
) -> Issue {
    Issue {
        policy_name: policy.to_string(),
        error_type,
        message,
        field: Some(field.to_string()),
        value: value.map(str::to_string),
    }
}

/// Render issues like LiteLLM's start-up failure (`init_policies` with `fail_on_error`).
pub fn startup_error(errors: &[Issue]) -> String {
    let mut s = format!("Policy validation failed with {} error(s):", errors.len());
    for e in errors {
        s.push('\n');
        s.push_str(&e.to_string());
    }
    s
}

/// A user value quoted in a message, shortened when huge (a 200 KB pattern must not make a
/// 200 KB denial): the first 100 characters and the length.
fn elide(s: &str) -> String {
    const KEEP: usize = 100;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) if s.chars().count() > KEEP + 20 => {
            format!("{}… ({} characters)", &s[..cut], s.chars().count())
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{Pipeline, PipelineAction, PipelineMode, Step};

    #[test]
    fn huge_values_are_elided_in_messages() {
        assert_eq!(elide("gpt(?=-4)"), "gpt(?=-4)");
        let short = "é".repeat(120);
        assert_eq!(elide(&short), short);
        let long = format!("{}(?=x)", "é".repeat(200_000));
        let e = elide(&long);
        assert!(e.starts_with(&"é".repeat(100)));
        assert!(e.ends_with("… (200005 characters)"), "{e}");
        assert!(e.len() < 300);
    }

    fn p(inherit: Option<&str>) -> PolicyContent {
        PolicyContent {
            inherit: inherit.map(str::to_string),
            ..Default::default()
        }
    }

    fn run(entries: Vec<(&str, PolicyContent)>, available: &[&str]) -> Report {
        let order: Vec<String> = entries.iter().map(|(n, _)| n.to_string()).collect();
        let map: PolicyMap = entries
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect();
        let avail = available.iter().map(|s| s.to_string()).collect();
        validate_policies(&order, &map, &avail)
    }

    #[test]
    fn missing_parent_is_reported_on_every_walk_reaching_it() {
        let r = run(vec![("c", p(Some("b"))), ("b", p(Some("missing")))], &[]);
        assert_eq!(r.errors.len(), 2);
        for e in &r.errors {
            assert_eq!(e.policy_name, "b");
            assert_eq!(e.error_type, ErrorType::InvalidInheritance);
            assert_eq!(e.message, "Parent policy 'missing' not found");
            assert_eq!(e.value.as_deref(), Some("missing"));
        }
    }

    #[test]
    fn cycles_are_attributed_to_the_revisited_name() {
        let r = run(
            vec![
                ("a", p(Some("b"))),
                ("b", p(Some("a"))),
                ("c", p(Some("a"))),
            ],
            &[],
        );
        let names: Vec<_> = r.errors.iter().map(|e| e.policy_name.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "a"]);
        assert!(
            r.errors
                .iter()
                .all(|e| e.error_type == ErrorType::CircularInheritance)
        );
        let r = run(vec![("s", p(Some("s")))], &[]);
        assert_eq!(r.errors[0].message, "Circular inheritance detected: s -> s");
    }

    #[test]
    fn depth_100_passes_and_101_fails_on_the_bottom_only() {
        for (len, fails) in [(100usize, false), (101, true)] {
            let entries: Vec<(String, PolicyContent)> = (0..len)
                .map(|i| {
                    let parent = (i + 1 < len).then(|| format!("p{}", i + 1));
                    (
                        format!("p{i}"),
                        PolicyContent {
                            inherit: parent,
                            ..Default::default()
                        },
                    )
                })
                .collect();
            let order: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
            let map: PolicyMap = entries.into_iter().collect();
            let r = validate_policies(&order, &map, &BTreeSet::new());
            assert_eq!(!r.valid(), fails, "len {len}");
            if fails {
                assert_eq!(r.errors.len(), 1);
                assert_eq!(r.errors[0].policy_name, "p100");
                assert!(r.errors[0].message.contains("too deep"));
            }
        }
    }

    #[test]
    fn guardrail_existence_and_pipeline_membership() {
        let mut pol = PolicyContent {
            add: vec!["a".into(), "x".into()],
            remove: vec!["y".into()],
            ..Default::default()
        };
        pol.pipeline = Some(Pipeline {
            mode: PipelineMode::PreCall,
            steps: vec![Step {
                guardrail: "inherited".into(),
                on_pass: PipelineAction::Allow,
                on_fail: PipelineAction::Block,
                on_error: None,
                pass_data: false,
                modify_response_message: None,
            }],
        });
        let r = run(vec![("p", pol.clone())], &["a"]);
        let msgs: Vec<_> = r.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "Guardrail 'x' not found in guardrail registry",
                "Pipeline step 0 guardrail 'inherited' is not in the policy's guardrails.add list",
                "Pipeline step 0 guardrail 'inherited' not found in guardrail registry",
            ]
        );
        assert_eq!(
            r.warnings[0].message,
            "Guardrail 'y' in remove list not found in guardrail registry"
        );
        // No registry: existence checks skipped; membership still checked.
        let r = run(vec![("p", pol)], &[]);
        assert_eq!(r.errors.len(), 1);
        assert!(r.warnings.is_empty());
    }
}
