//! The edge-case table of the LiteLLM reference (§9), row by row, for the rows that apply to the
//! operator. Policies are written in LiteLLM's config shape and read with LiteLLM's parse rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use guardrail_operator::engine::attach::{matched_policies, resolve_request};
use guardrail_operator::engine::inherit::{inheritance_chain, resolve_policy};
use guardrail_operator::engine::litellm::{parse_attachment, parse_policy};
use guardrail_operator::engine::model::{Attachment, MatchContext, PipelineMode, PolicyMap};
use guardrail_operator::engine::model::{StepOutcome, TerminalAction};
use guardrail_operator::engine::pipeline::{
    Clock, Guardrail, GuardrailSet, Request, Rewrite, Verdict, execute,
};
use guardrail_operator::engine::validate::{ErrorType, validate_policies};
use serde_json::{Value, json};

fn policies(v: Value) -> (Vec<String>, PolicyMap) {
    let obj = v.as_object().unwrap();
    let order = obj.keys().cloned().collect();
    let map = obj
        .iter()
        .map(|(k, b)| (k.clone(), parse_policy(b).unwrap()))
        .collect();
    (order, map)
}

fn atts(v: Value) -> Vec<Attachment> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| parse_attachment(a).unwrap())
        .collect()
}

fn ctx(v: Value) -> MatchContext {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    MatchContext {
        team_alias: s("team"),
        key_alias: s("key"),
        model: s("model"),
        tags: v
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect()),
    }
}

fn names(a: &[Attachment], p: &PolicyMap, c: &MatchContext) -> Vec<(String, String)> {
    matched_policies(a, p, c)
        .into_iter()
        .map(|m| (m.policy_name, m.matched_via))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn syntax_rows() {
    for body in [
        json!(null),
        json!({"condition": "gpt-4"}),
        json!({"condition": {"model": 5}}),
        json!({"guardrails": "abc"}),
        json!({"inherit": 5}),
        json!({"pipeline": {"mode": "during_call", "steps": [{"guardrail": "a"}]}}),
        json!({"pipeline": {"steps": [{"guardrail": "a", "on_fail": "retry"}]}}),
        json!({"pipeline": {"steps": []}}),
        json!({"pipeline": {"steps": [{"guardrail": "a", "retries": 2}]}}),
    ] {
        assert!(
            parse_policy(&body).is_err(),
            "{body} must be a syntax error"
        );
    }
}

#[test]
fn condition_rows() {
    let (_, p) = policies(json!({
        "empty": {"condition": {}, "guardrails": {"add": ["e"]}},
        "null-model": {"condition": {"model": null}, "guardrails": {"add": ["n"]}},
        "team-ignored": {"condition": {"model": "gpt-4", "team": "x"}, "guardrails": {"add": ["t"]}},
        "glob": {"condition": {"model": "gpt-*"}, "guardrails": {"add": ["g"]}},
        "bad-regex": {"condition": {"model": "("}, "guardrails": {"add": ["b"]}},
        "base": {"guardrails": {"add": ["base"]}},
        "cond-child": {"inherit": "base", "condition": {"model": "gpt-4o"}, "guardrails": {"add": ["c"]}},
    }));
    let with = |m: Option<&str>| MatchContext {
        model: m.map(Into::into),
        ..Default::default()
    };
    let g = |n: &str, c: &MatchContext| resolve_policy(n, &p, Some(c)).guardrails;
    assert_eq!(
        g("empty", &with(None)),
        vec!["e"],
        "condition: {{}} is no condition"
    );
    assert_eq!(
        g("null-model", &with(None)),
        vec!["n"],
        "{{model: null}} always holds"
    );
    assert_eq!(
        g("team-ignored", &with(Some("gpt-4"))),
        vec!["t"],
        "team is ignored"
    );
    assert!(
        g("glob", &with(Some("gpt-4"))).is_empty(),
        "gpt-* is a regex, not a glob"
    );
    assert_eq!(g("glob", &with(Some("gpt--"))), vec!["g"]);
    assert_eq!(
        g("bad-regex", &with(Some("("))),
        vec!["b"],
        "invalid regex: exact match only"
    );
    assert!(g("bad-regex", &with(Some("x"))).is_empty());
    assert_eq!(
        g("cond-child", &with(None)),
        vec!["base"],
        "null model: only the unconditioned ancestor applies"
    );
}

#[test]
fn guardrail_list_rows() {
    let (order, p) = policies(json!({
        "legacy": {"guardrails": ["a", "b"]},
        "same": {"guardrails": {"add": ["x"], "remove": ["x"]}},
        "dup": {"guardrails": {"add": ["a", "a"], "remove": ["never-added"]}},
        "lenient": {"scope": "ignored", "statements": [], "guardrails": {"add": ["z"], "other": 1}},
    }));
    assert_eq!(
        resolve_policy("legacy", &p, None).guardrails,
        vec!["a", "b"]
    );
    assert!(resolve_policy("same", &p, None).guardrails.is_empty());
    assert_eq!(resolve_policy("dup", &p, None).guardrails, vec!["a"]);
    assert_eq!(resolve_policy("lenient", &p, None).guardrails, vec!["z"]);
    // Each duplicate in add is reported when the registry does not know it.
    let available: BTreeSet<String> = ["b".to_string()].into();
    let r = validate_policies(&order, &p, &available);
    assert_eq!(
        r.errors.iter().filter(|e| e.policy_name == "dup").count(),
        2
    );
    assert_eq!(
        r.warnings.iter().filter(|e| e.policy_name == "dup").count(),
        1
    );
}

#[test]
fn inheritance_rows() {
    let (order, p) = policies(json!({
        "orphan": {"inherit": "missing", "guardrails": {"add": ["o"]}},
        "self": {"inherit": "self", "guardrails": {"add": ["s"]}},
        "a": {"inherit": "b", "guardrails": {"add": ["x"]}},
        "b": {"inherit": "a", "guardrails": {"add": ["y"]}},
    }));
    assert_eq!(inheritance_chain("orphan", &p), vec!["orphan"]);
    assert_eq!(
        resolve_policy("self", &p, None).inheritance_chain,
        vec!["self"]
    );
    assert_eq!(resolve_policy("a", &p, None).guardrails, vec!["x", "y"]);
    let r = validate_policies(&order, &p, &BTreeSet::new());
    let kinds: Vec<(&str, ErrorType)> = r
        .errors
        .iter()
        .map(|e| (e.policy_name.as_str(), e.error_type))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("orphan", ErrorType::InvalidInheritance),
            ("self", ErrorType::CircularInheritance),
            ("a", ErrorType::CircularInheritance),
            ("b", ErrorType::CircularInheritance),
        ]
    );
}

#[test]
fn union_row_child_remove_does_not_beat_an_attached_parent() {
    let (_, p) = policies(json!({
        "global-baseline": {"guardrails": {"add": ["pii_masking", "prompt_injection"]}},
        "internal-team-policy": {"inherit": "global-baseline", "guardrails": {"remove": ["pii_masking"]}},
    }));
    let a = atts(
        json!([{"policy": "global-baseline", "scope": "*"}, {"policy": "internal-team-policy", "teams": ["T"]}]),
    );
    let r = resolve_request(&a, &p, &ctx(json!({"team": "T"})));
    assert_eq!(
        r.effective_guardrails,
        vec!["pii_masking", "prompt_injection"]
    );
}

#[test]
fn attachment_rows() {
    let (_, p) = policies(
        json!({"p": {"guardrails": {"add": ["g"]}}, "q": {"guardrails": {"add": ["h"]}},
        "gpt-only": {"condition": {"model": "gpt-.*"}, "guardrails": {"add": ["c"]}}}),
    );
    let none = ctx(json!({}));
    // Missing policy: dropped silently.
    assert!(names(&atts(json!([{"policy": "ghost", "scope": "*"}])), &p, &none).is_empty());
    // Only the exact "*" is global.
    for scope in ["all", "", " * "] {
        let a = atts(json!([{"policy": "p", "scope": scope, "teams": ["t"]}]));
        assert!(
            names(&a, &p, &ctx(json!({"team": "u"}))).is_empty(),
            "scope {scope:?}"
        );
    }
    // No dimensions: everything, scope:default.
    assert_eq!(
        names(&atts(json!([{"policy": "p"}])), &p, &none),
        pairs(&[("p", "scope:default")])
    );
    // Global ignores teams and tags.
    assert_eq!(
        names(
            &atts(json!([{"policy": "p", "scope": "*", "teams": ["x"], "tags": ["y"]}])),
            &p,
            &none
        ),
        pairs(&[("p", "scope:*")])
    );
    // teams as a string, priority out of range or a word: load errors.
    assert!(parse_attachment(&json!({"policy": "p", "teams": "finance"})).is_err());
    assert!(parse_attachment(&json!({"policy": "p", "priority": "high"})).is_err());
    assert!(parse_attachment(&json!({"policy": "p", "priority": 2147483648i64})).is_err());
    // Missing policy key: "" never matches when no policy is named "".
    assert!(names(&atts(json!([{"scope": "*"}])), &p, &none).is_empty());
    // Empty lists are absent.
    assert_eq!(
        names(
            &atts(json!([{"policy": "p", "tags": [], "teams": []}])),
            &p,
            &ctx(json!({"team": "t"}))
        ),
        pairs(&[("p", "scope:default")])
    );
    // Tag-scoped attachment and no request tags; "" tag with "*".
    let tagged = atts(json!([{"policy": "p", "tags": ["*"]}]));
    assert!(names(&tagged, &p, &ctx(json!({"tags": []}))).is_empty());
    assert!(names(&tagged, &p, &none).is_empty());
    assert_eq!(
        names(&tagged, &p, &ctx(json!({"tags": [""]}))),
        pairs(&[("p", "tag:")])
    );
    // Leading and middle * are literal; matching is case-sensitive.
    let lit = atts(json!([{"policy": "p", "models": ["*gpt", "a*b"]}]));
    assert!(names(&lit, &p, &ctx(json!({"model": "xgpt"}))).is_empty());
    assert_eq!(
        names(&lit, &p, &ctx(json!({"model": "*gpt"}))),
        pairs(&[("p", "model:*gpt")])
    );
    assert!(
        names(
            &atts(json!([{"policy": "p", "models": ["gpt-*"]}])),
            &p,
            &ctx(json!({"model": "GPT-4"}))
        )
        .is_empty()
    );
    // The same policy attached several times: once, from the first attachment in order.
    let twice = atts(json!([{"policy": "p", "teams": ["t"]}, {"policy": "p", "scope": "*"}]));
    assert_eq!(
        names(&twice, &p, &ctx(json!({"team": "t"}))),
        pairs(&[("p", "scope:*")])
    );
    // A matching non-default whose condition fails lets the defaults apply.
    let d = atts(json!([{"policy": "q", "default": true}, {"policy": "gpt-only", "scope": "*"}]));
    assert_eq!(
        names(&d, &p, &ctx(json!({"model": "claude"}))),
        pairs(&[("q", "default:scope:default")])
    );
    // Attachments but no policies: nothing matches.
    assert!(
        names(
            &atts(json!([{"policy": "p", "scope": "*"}])),
            &PolicyMap::new(),
            &none
        )
        .is_empty()
    );
}

struct Set(Vec<(&'static str, Verdict)>);
struct Fixed(Verdict);
impl Guardrail for Fixed {
    fn check(&self, _: PipelineMode, _: &Request) -> Verdict {
        self.0.clone()
    }
}
struct Holder(Vec<(&'static str, Fixed)>);
impl GuardrailSet for Holder {
    fn find(&self, name: &str) -> Option<&dyn Guardrail> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, g)| g as &dyn Guardrail)
    }
}
impl Set {
    fn holder(self) -> Holder {
        Holder(self.0.into_iter().map(|(n, v)| (n, Fixed(v))).collect())
    }
}
struct Zero;
impl Clock for Zero {
    fn seconds(&self) -> f64 {
        0.0
    }
}

fn pipeline(v: Value) -> guardrail_operator::engine::model::Pipeline {
    parse_policy(&json!({"pipeline": v}))
        .unwrap()
        .pipeline
        .unwrap()
}

#[test]
fn pipeline_rows() {
    let pass = || Verdict::Pass(Rewrite::None);
    // Mode missing: pre_call.
    assert_eq!(
        pipeline(json!({"steps": [{"guardrail": "a"}]})).mode,
        PipelineMode::PreCall
    );
    // Step guardrail not loaded: error, default on_fail block.
    let r = execute(
        &pipeline(json!({"steps": [{"guardrail": "x"}]})),
        &Request::default(),
        &Set(vec![]).holder(),
        &Zero,
    );
    assert_eq!(
        (r.steps[0].outcome, r.terminal_action),
        (StepOutcome::Error, TerminalAction::Block)
    );
    assert_eq!(r.error_message.as_deref(), Some("Guardrail 'x' not found"));
    // on_pass: block → block with no error message.
    let r = execute(
        &pipeline(json!({"steps": [{"guardrail": "a", "on_pass": "block"}]})),
        &Request::default(),
        &Set(vec![("a", pass())]).holder(),
        &Zero,
    );
    assert_eq!(
        (r.terminal_action, r.error_message),
        (TerminalAction::Block, None)
    );
    // modify_response on a passing step without a message: null message.
    let r = execute(
        &pipeline(json!({"steps": [{"guardrail": "a", "on_pass": "modify_response"}]})),
        &Request::default(),
        &Set(vec![("a", pass())]).holder(),
        &Zero,
    );
    assert_eq!(
        (r.terminal_action, r.modify_response_message),
        (TerminalAction::ModifyResponse, None)
    );
    // The last step says next: allow.
    let r = execute(
        &pipeline(json!({"steps": [{"guardrail": "a", "on_pass": "next"}]})),
        &Request::default(),
        &Set(vec![("a", pass())]).holder(),
        &Zero,
    );
    assert_eq!(r.terminal_action, TerminalAction::Allow);
    // on_error unset falls back to on_fail.
    let r = execute(
        &pipeline(json!({"steps": [{"guardrail": "a", "on_fail": "allow"}]})),
        &Request::default(),
        &Set(vec![("a", Verdict::Error("429: rate limited".into()))]).holder(),
        &Zero,
    );
    assert_eq!(r.terminal_action, TerminalAction::Allow);
}

#[test]
fn pipeline_membership_and_inheritance_rows() {
    // A step guardrail only inherited is not in the policy's own add: validator error.
    let (order, p) = policies(json!({
        "parent": {"guardrails": {"add": ["pii"]}, "pipeline": {"steps": [{"guardrail": "pii"}]}},
        "child": {"inherit": "parent", "pipeline": {"steps": [{"guardrail": "pii"}]}},
    }));
    let r = validate_policies(&order, &p, &BTreeSet::new());
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].policy_name, "child");
    assert_eq!(
        r.errors[0].message,
        "Pipeline step 0 guardrail 'pii' is not in the policy's guardrails.add list"
    );
}
