//! Differential conformance against litellm 1.110.2.
//!
//! `tests/conformance/oracle.py` generates seeded cases and records LiteLLM's answers; this
//! test feeds the same inputs to our engine and fails on any disagreement, printing each case
//! as a minimal reproducer (its seed regenerates it). Run through `scripts/conformance.sh`,
//! which builds the oracle and sets `CONFORMANCE_CASES`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use guardrail_operator::engine::attach::{MatchedPolicy, matched_policies, resolve_request};
use guardrail_operator::engine::inherit::resolve_policy;
use guardrail_operator::engine::litellm::{
    parse_attachment, parse_pipeline, parse_policy, pipeline_to_json,
};
use guardrail_operator::engine::model::{Attachment, MatchContext, PipelineMode, PolicyMap};
use guardrail_operator::engine::pipeline::{
    Clock, Guardrail, GuardrailSet, Message, Request, Rewrite, Verdict, execute,
};
use guardrail_operator::engine::plan::classes::{Limits, Located, Side, partition};
use guardrail_operator::engine::plan::traffic::{Weighted, replay};
use guardrail_operator::engine::validate::{ErrorType, Issue, validate_policies};
use serde_json::{Value, json};

fn cases_path() -> String {
    std::env::var("CONFORMANCE_CASES").unwrap_or_else(|_| {
        panic!("CONFORMANCE_CASES is not set: run scripts/conformance.sh (it builds the litellm 1.110.2 oracle and generates the cases)")
    })
}

struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, id: &str, what: &str, ours: Value, theirs: Value, repro: &Value) {
        if ours != theirs {
            self.0.push(format!(
                "{id}: {what} differs\n  ours:    {ours}\n  litellm: {theirs}\n  case:    {repro}"
            ));
        }
    }
}

fn issue_json(i: &Issue) -> Value {
    json!({"policy_name": i.policy_name, "error_type": i.error_type.as_str(), "field": i.field,
           "value": i.value, "message": i.message})
}

/// Circular-inheritance messages join a Python set, so their text is compared without it.
fn normalise_issue(mut v: Value) -> Value {
    if v["error_type"] == "circular_inheritance"
        && v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Circular"))
    {
        v["message"] = json!("Circular inheritance detected: <path>");
    }
    v
}

fn ctx_from(v: &Value) -> MatchContext {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    MatchContext {
        team_alias: s("team_alias"),
        key_alias: s("key_alias"),
        model: s("model"),
        tags: v["tags"].as_array().map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        }),
    }
}

fn sorted(v: &Value) -> Value {
    let mut items: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    items.sort();
    json!(items)
}

fn check_policy_case(case: &Value, f: &mut Failures) {
    let id = case["id"].as_str().unwrap_or("?");
    let raw = case["policies"].as_object().expect("policies is an object");
    let mut order = Vec::new();
    let mut map = PolicyMap::new();
    let mut syntax = Vec::new();
    for (name, body) in raw {
        order.push(name.clone());
        match parse_policy(body) {
            Ok(p) => {
                map.insert(name.clone(), p);
            }
            Err(_) => syntax.push(json!({"policy_name": name, "error_type": "invalid_syntax"})),
        }
    }
    let expected = &case["validation"];
    let expected_errors: Vec<Value> = expected["errors"].as_array().cloned().unwrap_or_default();
    if !syntax.is_empty()
        || expected_errors
            .iter()
            .any(|e| e["error_type"] == "invalid_syntax")
    {
        let theirs: Vec<Value> = expected_errors
            .iter()
            .map(|e| json!({"policy_name": e["policy_name"], "error_type": e["error_type"]}))
            .collect();
        f.check(id, "syntax errors", json!(syntax), json!(theirs), case);
    } else {
        let available: BTreeSet<String> = case["available_guardrails"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect();
        let report = validate_policies(&order, &map, &available);
        let ours: Vec<Value> = report
            .errors
            .iter()
            .map(issue_json)
            .map(normalise_issue)
            .collect();
        let theirs: Vec<Value> = expected_errors.into_iter().map(normalise_issue).collect();
        f.check(id, "validation errors", json!(ours), json!(theirs), case);
        let ours: Vec<Value> = report.warnings.iter().map(issue_json).collect();
        f.check(
            id,
            "validation warnings",
            json!(ours),
            expected["warnings"].clone(),
            case,
        );
        f.check(
            id,
            "valid",
            json!(report.valid()),
            expected["valid"].clone(),
            case,
        );
    }

    let attachments: Result<Vec<Attachment>, String> = case["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(parse_attachment)
        .collect();
    let load_failed = !syntax.is_empty() || attachments.is_err();
    f.check(
        id,
        "load error",
        json!(load_failed),
        json!(!case["load_error"].is_null()),
        case,
    );
    let Ok(attachments) = attachments else { return };
    if load_failed || !case["load_error"].is_null() {
        return;
    }

    let mut no_ctx = serde_json::Map::new();
    for name in &order {
        let r = resolve_policy(name, &map, None);
        no_ctx.insert(
            name.clone(),
            json!({"guardrails": r.guardrails, "inheritance_chain": r.inheritance_chain}),
        );
    }
    let theirs_no_ctx: serde_json::Map<String, Value> = case["no_context"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), json!({"guardrails": sorted(&v["guardrails"]), "inheritance_chain": v["inheritance_chain"]})))
        .collect();
    f.check(
        id,
        "resolution without context",
        Value::Object(no_ctx),
        Value::Object(theirs_no_ctx),
        case,
    );

    for (i, c) in case["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ctx = ctx_from(&c["context"]);
        let what = |s: &str| format!("context #{i} {}: {s}", c["context"]);
        let matched = matched_policies(&attachments, &map, &ctx);
        let ours: Vec<Value> = matched
            .iter()
            .map(|m| json!({"policy_name": m.policy_name, "matched_via": m.matched_via}))
            .collect();
        f.check(
            id,
            &what("matched policies"),
            json!(ours),
            c["matched"].clone(),
            case,
        );

        let mut effective = BTreeSet::new();
        for MatchedPolicy { policy_name, .. } in &matched {
            effective.extend(resolve_policy(policy_name, &map, Some(&ctx)).guardrails);
        }
        f.check(
            id,
            &what("effective guardrails"),
            json!(effective),
            sorted(&c["effective_guardrails"]),
            case,
        );

        let mut per = serde_json::Map::new();
        for name in &order {
            let r = resolve_policy(name, &map, Some(&ctx));
            per.insert(
                name.clone(),
                json!({"guardrails": r.guardrails, "inheritance_chain": r.inheritance_chain}),
            );
        }
        let theirs: serde_json::Map<String, Value> = c["policies"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), json!({"guardrails": sorted(&v["guardrails"]), "inheritance_chain": v["inheritance_chain"]})))
            .collect();
        f.check(
            id,
            &what("per-policy resolution"),
            Value::Object(per),
            Value::Object(theirs),
            case,
        );

        // Pipelines: each matched policy's own pipeline when its own condition holds.
        let ours: Vec<Value> = matched
            .iter()
            .filter_map(|m| {
                let p = map.get(&m.policy_name)?;
                if !guardrail_operator::engine::condition::condition_holds(p, &ctx) {
                    return None;
                }
                let pl = p.pipeline.as_ref()?;
                Some(json!({"policy": m.policy_name, "pipeline": pipeline_to_json(pl)}))
            })
            .collect();
        let theirs: Vec<Value> = c["pipelines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let parsed = parse_pipeline(&json!({"mode": p["mode"], "steps": p["steps"]}))
                    .map(|pl| pipeline_to_json(&pl))
                    .unwrap_or_else(|e| json!({"unparseable": e}));
                json!({"policy": p["policy"], "pipeline": parsed})
            })
            .collect();
        f.check(id, &what("pipelines"), json!(ours), json!(theirs), case);
    }
}

struct Stub {
    outcome: String,
    detail: Option<String>,
    rewrite: Option<String>,
    fail_if_contains: Option<String>,
}

impl Guardrail for Stub {
    fn check(&self, _mode: PipelineMode, request: &Request) -> Verdict {
        let text = request
            .messages
            .last()
            .map(|m| m.content.as_str())
            .unwrap_or("");
        let triggered = self
            .fail_if_contains
            .as_deref()
            .is_none_or(|needle| text.contains(needle));
        let outcome = if triggered {
            self.outcome.as_str()
        } else {
            "pass"
        };
        let detail = self.detail.clone().unwrap_or_default();
        match outcome {
            "fail" => Verdict::Fail(detail),
            "error" => Verdict::Error(detail),
            _ => match &self.rewrite {
                None => Verdict::Pass(Rewrite::None),
                Some(r) => {
                    let mut new = request.clone();
                    if let Some(last) = new.messages.last_mut() {
                        last.content.push_str(r);
                    }
                    Verdict::Pass(Rewrite::Returned(new))
                }
            },
        }
    }
}

struct Stubs(HashMap<String, Stub>);

impl GuardrailSet for Stubs {
    fn find(&self, name: &str) -> Option<&dyn Guardrail> {
        self.0.get(name).map(|s| s as &dyn Guardrail)
    }
}

struct NoClock;
impl Clock for NoClock {
    fn seconds(&self) -> f64 {
        0.0
    }
}

fn check_pipeline_case(case: &Value, f: &mut Failures) {
    let id = case["id"].as_str().unwrap_or("?");
    let pipeline = match parse_pipeline(&json!({"mode": case["mode"], "steps": case["steps"]})) {
        Ok(p) => p,
        Err(e) => {
            f.0.push(format!(
                "{id}: our parser refused the pipeline: {e}\n  case: {case}"
            ));
            return;
        }
    };
    let s = |v: &Value| v.as_str().map(str::to_string);
    let stubs = Stubs(
        case["guardrails"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, g)| {
                (
                    name.clone(),
                    Stub {
                        outcome: s(&g["outcome"]).unwrap_or_default(),
                        detail: s(&g["detail"]),
                        rewrite: s(&g["rewrite"]),
                        fail_if_contains: s(&g["fail_if_contains"]),
                    },
                )
            })
            .collect(),
    );
    let messages: Vec<Message> =
        serde_json::from_value(case["messages"].clone()).expect("messages");
    let request = Request {
        model: Some("gpt-4o".into()),
        messages,
        response: None,
    };
    let result = execute(&pipeline, &request, &stubs, &NoClock);
    let exp = &case["expected"];
    let ours = json!({
        "terminal_action": result.terminal_action.as_str(),
        "error_message": result.error_message,
        "modify_response_message": result.modify_response_message,
        "step_results": result.steps.iter().map(|st| json!({
            "guardrail_name": st.guardrail, "outcome": st.outcome.as_str(),
            "action_taken": st.action.as_str(), "error_detail": st.detail})).collect::<Vec<_>>(),
        "final_messages": result.request.messages,
    });
    f.check(id, "pipeline result", ours, exp.clone(), case);
}

/// One state of a plan case, converted as the policy cases convert theirs: `parse_policy` per
/// policy and `parse_attachment` per attachment, in file order.
fn state_from(v: &Value) -> Result<(PolicyMap, Vec<Attachment>), String> {
    let mut map = PolicyMap::new();
    let raw = v["policies"].as_object().ok_or("no policies")?;
    for (name, body) in raw {
        let p = parse_policy(body).map_err(|e| format!("{name}: {e}"))?;
        map.insert(name.clone(), p);
    }
    let attachments = v["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(parse_attachment)
        .collect::<Result<Vec<Attachment>, String>>()?;
    Ok((map, attachments))
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).expect("strings")
}

/// What a request gains and loses from `before` to `after`.
fn gained_lost(before: &[String], after: &[String]) -> Value {
    let gained: Vec<&String> = after.iter().filter(|g| !before.contains(g)).collect();
    let lost: Vec<&String> = before.iter().filter(|g| !after.contains(g)).collect();
    json!({"gained": gained, "lost": lost})
}

/// A plan case: the traffic figures of `plan` (api.md §8) against LiteLLM's, each context's
/// effective guardrails in both states, and the request class each context falls in.
fn check_plan_case(case: &Value, f: &mut Failures) {
    let id = case["id"].as_str().unwrap_or("?");
    let repro = json!({"id": id, "seed": case["seed"], "base": case["base"], "new": case["new"]});
    let (base, new) = match (state_from(&case["base"]), state_from(&case["new"])) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            f.0.push(format!(
                "{id}: our parser refused a state LiteLLM loaded: {e}\n  case: {repro}"
            ));
            return;
        }
    };
    let contexts = case["contexts"].as_array().expect("contexts");
    let weighted: Vec<Weighted> = contexts
        .iter()
        .map(|c| Weighted {
            context: ctx_from(&c["context"]),
            count: c["count"].as_u64().expect("count"),
        })
        .collect();

    let traffic = replay((&base.1, &base.0), (&new.1, &new.0), &weighted, None);
    f.check(
        id,
        "traffic (requests, changed, guardrails)",
        json!(traffic),
        case["traffic"].clone(),
        &repro,
    );

    let bs = Side {
        attachments: &base.1,
        production: &base.0,
    };
    let ns = Side {
        attachments: &new.1,
        production: &new.0,
    };
    let part = match partition(bs, ns, Limits::default()) {
        Ok(p) => Some(p),
        Err(e) => {
            f.0.push(format!("{id}: no partition: {e}\n  case: {repro}"));
            None
        }
    };
    for (i, (w, c)) in weighted.iter().zip(contexts).enumerate() {
        let what = |s: &str| format!("context #{i} {}: {s}", c["context"]);
        let b = resolve_request(&base.1, &base.0, &w.context);
        let a = resolve_request(&new.1, &new.0, &w.context);
        f.check(
            id,
            &what("effective guardrails in the base state"),
            json!(b.effective_guardrails),
            c["before"].clone(),
            &repro,
        );
        f.check(
            id,
            &what("effective guardrails in the new state"),
            json!(a.effective_guardrails),
            c["after"].clone(),
            &repro,
        );

        // Its class: unchanged exactly when LiteLLM's two sets are equal, else a class that
        // gains and loses what it does (classes are by difference, so only that is shared).
        let Some(p) = &part else { continue };
        let located = p.locate(bs, ns, &w.context);
        let class = match located {
            Located::Changed(k) => Some(&p.changed[k]),
            Located::Unwitnessed(k) => Some(&p.unwitnessed[k]),
            Located::Unchanged => None,
        };
        let ours = match class {
            Some(r) => gained_lost(&r.before, &r.after),
            None => json!("unchanged"),
        };
        let (before, after) = (strings(&c["before"]), strings(&c["after"]));
        let theirs = if before == after {
            json!("unchanged")
        } else {
            gained_lost(&before, &after)
        };
        f.check(
            id,
            &what(&format!("request class ({located:?})")),
            ours,
            theirs,
            &repro,
        );
    }
}

#[test]
fn engine_agrees_with_litellm_1_110_2() {
    let path = cases_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("cases file is JSON");
    assert_eq!(
        doc["litellm_version"], "1.110.2",
        "the oracle must be litellm 1.110.2"
    );
    let cases = doc["cases"].as_array().expect("cases");
    let pipes = doc["pipeline_cases"].as_array().expect("pipeline_cases");
    let plans = doc["plan_cases"].as_array().expect("plan_cases");
    assert!(
        cases.len() >= 1000,
        "at least 1,000 cases are required, got {}",
        cases.len()
    );
    assert!(
        !plans.is_empty(),
        "no plan cases: regenerate the cases with the current oracle.py"
    );
    let mut f = Failures(Vec::new());
    for c in cases {
        check_policy_case(c, &mut f);
    }
    for c in pipes {
        check_pipeline_case(c, &mut f);
    }
    for c in plans {
        check_plan_case(c, &mut f);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    counts.insert("policy cases", cases.len());
    counts.insert("pipeline cases", pipes.len());
    counts.insert(
        "contexts",
        cases
            .iter()
            .map(|c| c["contexts"].as_array().map_or(0, Vec::len))
            .sum(),
    );
    counts.insert("plan cases", plans.len());
    counts.insert(
        "plan contexts",
        plans
            .iter()
            .map(|c| c["contexts"].as_array().map_or(0, Vec::len))
            .sum(),
    );
    counts.insert(
        "plan contexts changed",
        plans
            .iter()
            .flat_map(|c| c["contexts"].as_array().into_iter().flatten())
            .filter(|c| c["before"] != c["after"])
            .count(),
    );
    eprintln!(
        "conformance: {counts:?}, seeds from {} (count {}), {} disagreement(s)",
        doc["seed_start"],
        doc["count"],
        f.0.len()
    );
    let _ = ErrorType::InvalidSyntax;
    if !f.0.is_empty() {
        let shown: Vec<&String> = f.0.iter().take(15).collect();
        panic!(
            "{} disagreement(s) with litellm 1.110.2 (first {} shown; regenerate a case with `oracle.py --seed-start <seed> --count 1`):\n\n{}",
            f.0.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}
