//! Every admission rule, deny and warn, with its message.

use super::*;
use crate::engine::pipeline::{MonotonicClock, SteppingClock};
use crate::engine::testing::MocksOnly;
use serde_json::json;

fn policy(name: &str) -> Policy {
    serde_json::from_value(json!({
        "apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy",
        "metadata": {"name": name, "namespace": "ns"}, "spec": {}
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn version(policy: &str, v: i64, stage: &str, inherit: Option<&str>) -> PolicyVersion {
    let mut spec = json!({"policy": policy, "version": v, "stage": stage,
                          "guardrails": {"add": [format!("g-{policy}")]}});
    if let Some(p) = inherit {
        spec["inherit"] = json!(p);
    }
    serde_json::from_value(json!({
        "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion",
        "metadata": {"name": format!("{policy}-v{v}"), "namespace": "ns"},
        "spec": spec,
        "status": {"stage": if stage == "Production" { "Production" } else { stage }}
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn review<T>(objects: Objects, f: impl FnOnce(&Env<'_>) -> T) -> T {
    let load = move || objects.clone();
    let env = Env {
        load_objects: &load,
        objects: std::cell::OnceCell::new(),
        catalog: None,
        provider: &MocksOnly,
        clock: &MonotonicClock::default(),
        budget_seconds: 5.0,
        spent_seconds: 0.0,
    };
    f(&env)
}

fn org() -> Objects {
    Objects {
        policies: ["org-baseline", "research", "claims", "other"]
            .map(|n| Arc::new(policy(n)))
            .to_vec(),
        versions: [
            version("org-baseline", 1, "Production", None),
            version("research", 1, "Production", Some("org-baseline")),
            version("claims", 2, "Production", Some("research")),
            version("other", 1, "Production", None),
        ]
        .map(Arc::new)
        .to_vec(),
        attachments: Vec::new(),
    }
}

/// What a review must answer: denied with a message containing `deny`, or allowed with
/// exactly these warnings (each given by a fragment it contains).
enum Expect {
    Deny(&'static str),
    Allow(&'static [&'static str]),
}

fn check(case: &str, d: &Decision, expect: &Expect) {
    match expect {
        Expect::Deny(fragment) => {
            assert!(
                !d.allowed,
                "{case}: allowed, expected a denial with {fragment:?}"
            );
            let m = d.message.as_deref().unwrap_or_default();
            assert!(m.contains(fragment), "{case}: {m:?} lacks {fragment:?}");
            assert!(
                m.starts_with("PolicyVersion ns/") || m.starts_with("PolicyAttachment ns/"),
                "{case}: the message names the object: {m:?}"
            );
        }
        Expect::Allow(fragments) => {
            assert!(d.allowed, "{case}: denied: {:?}", d.message);
            assert_eq!(
                d.warnings.len(),
                fragments.len(),
                "{case}: {:?}",
                d.warnings
            );
            for (w, f) in d.warnings.iter().zip(fragments.iter()) {
                assert!(w.contains(f), "{case}: {w:?} lacks {f:?}");
            }
        }
    }
}

/// A version from YAML-ish JSON overrides of `version("app", 1, "Draft", None)`.
fn v(patch: serde_json::Value) -> PolicyVersion {
    let mut o =
        serde_json::to_value(version("app", 1, "Draft", None)).unwrap_or_else(|e| panic!("{e}"));
    for (k, val) in patch.as_object().into_iter().flatten() {
        o["spec"][k] = val.clone();
    }
    if let Some(name) = patch.get("name") {
        o["metadata"]["name"] = name.clone();
        o["spec"].as_object_mut().map(|m| m.remove("name"));
    }
    serde_json::from_value(o).unwrap_or_else(|e| panic!("{e}"))
}

/// Two tests against a one-step pipeline: the second expects `allow` while its mock fails.
fn with_tests(second_passes: bool) -> serde_json::Value {
    json!({
        "guardrails": {"add": ["g"]},
        "pipeline": {"mode": "pre_call", "steps": [{"guardrail": "g", "onFail": "block"}]},
        "tests": [
            {"name": "clean", "messages": [{"role": "user", "content": "hi"}],
             "mocks": {"g": "pass"}, "expect": {"action": "allow"}},
            {"name": "second", "messages": [{"role": "user", "content": "hi"}],
             "mocks": {"g": if second_passes { "pass" } else { "fail" }},
             "expect": {"action": "allow"}}
        ]
    })
}

/// The namespace of the version table: `app` (no production), `base` in production at
/// v3, `app` v4 published.
fn namespace() -> Objects {
    let mut base = policy("base");
    base.status = Some(crate::api::PolicyStatus {
        production_version: Some(3),
        ..Default::default()
    });
    Objects {
        policies: [policy("app"), base, policy("idle")].map(Arc::new).to_vec(),
        versions: [
            version("base", 3, "Production", None),
            v(json!({"version": 4, "stage": "Published", "name": "app-v4"})),
        ]
        .map(Arc::new)
        .to_vec(),
        attachments: Vec::new(),
    }
}

/// A clock where every reading is ten seconds after the last.

#[test]
fn every_version_rule_denies_or_warns_with_its_message() {
    let published = v(json!({"stage": "Published"}));
    let catalog: BTreeSet<String> = ["g", "g-app"].map(String::from).into();
    type Case = (
        &'static str,
        Operation,
        Option<PolicyVersion>,
        Option<PolicyVersion>,
        Expect,
    );
    let cases: Vec<Case> = vec![
        // Denials (api.md §5).
        (
            "policy is immutable",
            Operation::Update,
            Some(v(json!({"policy": "other"}))),
            Some(v(json!({}))),
            Expect::Deny("spec.policy is immutable ('app' -> 'other'); create a new PolicyVersion"),
        ),
        (
            "version is immutable",
            Operation::Update,
            Some(v(json!({"version": 2}))),
            Some(v(json!({}))),
            Expect::Deny("spec.version is immutable (1 -> 2)"),
        ),
        (
            "no way back to Draft",
            Operation::Update,
            Some(v(json!({}))),
            Some(published.clone()),
            Expect::Deny(
                "spec.stage cannot go back to Draft (it is Published). Lower Production to Published to roll back",
            ),
        ),
        (
            "only drafts are editable",
            Operation::Update,
            Some(v(json!({"stage": "Published", "description": "new"}))),
            Some(published.clone()),
            Expect::Deny(
                "Only draft versions can be updated. Create a new version to change published/production.",
            ),
        ),
        (
            "content: inherit is a DNS name",
            Operation::Create,
            Some(v(json!({"inherit": "base..eu"}))),
            None,
            Expect::Deny("spec.inherit"),
        ),
        (
            "content: a pipeline step's guardrail is the policy's",
            Operation::Create,
            Some(v(
                json!({"pipeline": {"mode": "pre_call", "steps": [{"guardrail": "nope"}]}}),
            )),
            None,
            Expect::Deny("nope"),
        ),
        (
            "version numbers are unique per policy",
            Operation::Create,
            Some(v(json!({"version": 4, "name": "app-v4-copy"}))),
            None,
            Expect::Deny(
                "version 4 of policy 'app' already exists (PolicyVersion app-v4); version numbers are unique per policy: use spec.version 5",
            ),
        ),
        (
            "failing tests keep it out of Published",
            Operation::Create,
            Some(v({
                let mut t = with_tests(false);
                t["stage"] = json!("Published");
                t
            })),
            None,
            Expect::Deny(
                "1 of 2 test(s) failed; it cannot become Published until they pass:\n  test \"second\"",
            ),
        ),
        // Warnings: references that may arrive later.
        (
            "its Policy does not exist yet",
            Operation::Create,
            Some(v(json!({"policy": "later"}))),
            None,
            Expect::Allow(&[
                "Policy 'later' does not exist yet; this version cannot reach production until it does",
            ]),
        ),
        (
            "parent not found",
            Operation::Create,
            Some(v(json!({"inherit": "ghost"}))),
            None,
            Expect::Allow(&[
                "spec.inherit: Parent policy 'ghost' not found; promotion waits until it exists with a production version",
            ]),
        ),
        (
            "parent without production",
            Operation::Create,
            Some(v(json!({"inherit": "idle"}))),
            None,
            Expect::Allow(&[
                "spec.inherit: policy 'idle' has no production version yet; promotion waits for it",
            ]),
        ),
        (
            "parent in production: no warning",
            Operation::Create,
            Some(v(json!({"inherit": "base"}))),
            None,
            Expect::Allow(&[]),
        ),
        (
            "guardrails missing from the catalog",
            Operation::Create,
            Some(v(json!({"guardrails": {"add": ["g", "h", "i"]}}))),
            None,
            Expect::Allow(&[
                "guardrails not in the guardrail catalog: h, i; promotion waits until they are added",
            ]),
        ),
        // Allowed quietly.
        (
            "an unchanged spec costs nothing",
            Operation::Update,
            Some(published.clone()),
            Some(published.clone()),
            Expect::Allow(&[]),
        ),
        (
            "a draft may change",
            Operation::Update,
            Some(v(json!({"description": "x"}))),
            Some(v(json!({}))),
            Expect::Allow(&[]),
        ),
        (
            "promotion is a stage change only",
            Operation::Update,
            Some(v(json!({"stage": "Production"}))),
            Some(published.clone()),
            Expect::Allow(&[]),
        ),
        (
            "passing tests",
            Operation::Create,
            Some(v({
                let mut t = with_tests(true);
                t["stage"] = json!("Production");
                t
            })),
            None,
            Expect::Allow(&[]),
        ),
        (
            "drafts run no tests",
            Operation::Create,
            Some(v(with_tests(false))),
            None,
            Expect::Allow(&[]),
        ),
        (
            "deleting a draft",
            Operation::Delete,
            None,
            Some(v(json!({}))),
            Expect::Allow(&[]),
        ),
    ];
    for (case, op, new, old, expect) in &cases {
        let load = namespace;
        let env = Env {
            load_objects: &load,
            objects: std::cell::OnceCell::new(),
            catalog: Some(&catalog),
            provider: &MocksOnly,
            clock: &MonotonicClock::default(),
            budget_seconds: 5.0,
            spent_seconds: 0.0,
        };
        let d = review_version(*op, new.as_ref(), old.as_ref(), &env);
        check(case, &d, expect);
    }
}

#[test]
fn tests_over_the_budget_deny_and_tested_content_is_not_run_again() {
    let mut new = v(with_tests(true));
    new.spec.stage = Some(Stage::Production);
    let load = namespace;
    let slow = SteppingClock::new(10.0);
    let env = Env {
        load_objects: &load,
        objects: std::cell::OnceCell::new(),
        catalog: None,
        provider: &MocksOnly,
        clock: &slow,
        budget_seconds: 5.0,
        spent_seconds: 0.0,
    };
    let d = review_version(Operation::Create, Some(&new), None, &env);
    check(
        "budget",
        &d,
        &Expect::Deny(
            "its tests did not finish within the admission budget of 5.0s: it ran out in test 1 of 2 ('clean')",
        ),
    );
    assert!(d.ran_tests);
    // The same content with a passing record in status: no run, even on a slow clock.
    new.status = Some(crate::api::PolicyVersionStatus {
        tests: Some(crate::api::TestsSummary {
            content_hash: Some(content_hash(&new.spec)),
            passed: 2,
            failed: 0,
            ..Default::default()
        }),
        ..Default::default()
    });
    let d = review_version(Operation::Create, Some(&new), None, &env);
    check("recorded", &d, &Expect::Allow(&[]));
    assert!(!d.ran_tests);
}

#[test]
fn every_attachment_and_policy_rule_with_its_message() {
    let att = |policy: &str| -> PolicyAttachment {
        serde_json::from_value(json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyAttachment",
            "metadata": {"name": "a", "namespace": "ns"}, "spec": {"policy": policy, "scope": "*"}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    };
    type Case = (
        &'static str,
        Operation,
        Option<PolicyAttachment>,
        Option<PolicyAttachment>,
        Expect,
    );
    let cases: Vec<Case> = vec![
        (
            "not a DNS name",
            Operation::Create,
            Some(att("App")),
            None,
            Expect::Deny("PolicyAttachment ns/a: spec.policy: \"App\" is not a DNS-1123 subdomain"),
        ),
        (
            "no such policy",
            Operation::Create,
            Some(att("ghost")),
            None,
            Expect::Allow(&[
                "Policy 'ghost' does not exist; the attachment stays unresolved (not in the gateway) until it exists with a production version",
            ]),
        ),
        (
            "no production version",
            Operation::Create,
            Some(att("idle")),
            None,
            Expect::Allow(&[
                "Policy 'idle' has no production version; the attachment stays unresolved",
            ]),
        ),
        (
            "in production",
            Operation::Update,
            Some(att("base")),
            Some(att("idle")),
            Expect::Allow(&[]),
        ),
        (
            "unchanged",
            Operation::Update,
            Some(att("ghost")),
            Some(att("ghost")),
            Expect::Allow(&[]),
        ),
        (
            "deleting",
            Operation::Delete,
            None,
            Some(att("ghost")),
            Expect::Allow(&[]),
        ),
    ];
    for (case, op, new, old, expect) in &cases {
        let d = review(namespace(), |env| {
            review_attachment(*op, new.as_ref(), old.as_ref(), env)
        });
        check(case, &d, expect);
    }
    let d = review(namespace(), |env| {
        review_policy(Operation::Delete, Some(&policy("app")), env)
    });
    check(
        "delete policy",
        &d,
        &Expect::Allow(&[
            "deleting Policy 'app' deletes its 1 version(s) (LiteLLM's delete all versions); 0 attachment(s) to it become unresolved",
        ]),
    );
    let d = review(namespace(), |env| {
        review_policy(Operation::Update, Some(&policy("app")), env)
    });
    check("update policy", &d, &Expect::Allow(&[]));
}

#[test]
fn deleting_a_production_version_says_who_takes_over() {
    let mut objects = namespace();
    objects
        .versions
        .push(Arc::new(version("base", 5, "Production", None)));
    let old = objects.versions[0].clone();
    let d = review(objects, |env| {
        review_version(Operation::Delete, None, Some(&old), env)
    });
    check(
        "next",
        &d,
        &Expect::Allow(&[
            "PolicyVersion ns/base-v3 is the production version of policy 'base'; version 5 takes over if it is eligible",
        ]),
    );
    let d = review(namespace(), |env| {
        review_version(Operation::Delete, None, Some(&old), env)
    });
    check(
        "last",
        &d,
        &Expect::Allow(&[
            "PolicyVersion ns/base-v3 is the production version of policy 'base' and no other version asks for production: the policy leaves the gateway and its attachments become unresolved",
        ]),
    );
}

#[test]
fn deleting_a_parent_names_every_policy_that_leaves_the_gateway() {
    let d = review(org(), |env| {
        review_policy(Operation::Delete, Some(&policy("org-baseline")), env)
    });
    assert!(d.allowed);
    let w = d.warnings.join("\n");
    assert!(
        w.contains("Deleting Policy 'org-baseline' takes 'claims' and 'research' out of the gateway (they inherit from it)"),
        "{w}"
    );
    assert!(
        w.contains("inherit: policy 'org-baseline' does not exist"),
        "{w}"
    );
    assert!(!w.contains("'other'"), "{w}");
    // A policy nobody inherits from: only the usual warning.
    let d = review(org(), |env| {
        review_policy(Operation::Delete, Some(&policy("other")), env)
    });
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
}

#[test]
fn a_rollback_whose_fallback_waits_warns_that_the_policy_leaves() {
    let mut objects = Objects {
        policies: ["airline", "hub"].map(|n| Arc::new(policy(n))).to_vec(),
        versions: [
            version("airline", 5, "Production", None),
            version("airline", 9, "Production", Some("hub")),
            version("hub", 1, "Draft", None),
        ]
        .map(Arc::new)
        .to_vec(),
        attachments: Vec::new(),
    };
    Arc::make_mut(&mut objects.versions[1]).status = None;
    let old = objects.versions[0].clone();
    let mut new = (*old).clone();
    new.spec.stage = Some(Stage::Published);
    let d = review(objects.clone(), |env| {
        review_version(Operation::Update, Some(&new), Some(&old), env)
    });
    assert!(d.allowed, "{:?}", d.message);
    let w = d.warnings.join("\n");
    assert!(
        w.contains("Changing spec.stage of PolicyVersion ns/airline-v5 from Production to Published takes 'airline' out of the gateway: 'airline': version 9 waits: inherit: policy 'hub' has no production version yet"),
        "{w}"
    );
    // Deleting it says the same; raising hub's version first would keep airline in.
    let d = review(objects.clone(), |env| {
        review_version(Operation::Delete, None, Some(&old), env)
    });
    let w = d.warnings.join("\n");
    assert!(w.contains("version 9 takes over if it is eligible"), "{w}");
    assert!(
        w.contains("Deleting PolicyVersion ns/airline-v5 takes 'airline' out of the gateway"),
        "{w}"
    );
    objects.versions[2] = Arc::new(version("hub", 1, "Production", None));
    let d = review(objects, |env| {
        review_version(Operation::Update, Some(&new), Some(&old), env)
    });
    assert!(
        d.warnings.iter().all(|w| !w.contains("out of the gateway")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn an_attachment_to_a_name_with_an_empty_label_is_denied() {
    let a: PolicyAttachment = serde_json::from_value(json!({
        "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyAttachment",
        "metadata": {"name": "a", "namespace": "ns"}, "spec": {"policy": "app..eu", "scope": "*"}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let d = review(org(), |env| {
        review_attachment(Operation::Create, Some(&a), None, env)
    });
    assert!(!d.allowed);
    let m = d.message.unwrap_or_default();
    assert!(
        m.contains("spec.policy: \"app..eu\" is not a DNS-1123 subdomain"),
        "{m}"
    );
    assert!(m.contains("empty label"), "{m}");
}

#[test]
fn time_spent_waiting_counts_against_the_budget() {
    let mut new = v(with_tests(true));
    new.spec.stage = Some(Stage::Production);
    let load = namespace;
    let clock = MonotonicClock::default();
    let env = |spent_seconds| Env {
        load_objects: &load,
        objects: std::cell::OnceCell::new(),
        catalog: None,
        provider: &MocksOnly,
        clock: &clock,
        budget_seconds: 5.0,
        spent_seconds,
    };
    // The same review on a fast clock: allowed with 1 s spent, denied with the budget spent.
    let d = review_version(Operation::Create, Some(&new), None, &env(1.0));
    check("1 s spent", &d, &Expect::Allow(&[]));
    let d = review_version(Operation::Create, Some(&new), None, &env(5.0));
    check(
        "budget spent",
        &d,
        &Expect::Deny(
            "its tests did not finish within the admission budget of 5.0s: it ran out in test 1 of 2 ('clean')",
        ),
    );
}
