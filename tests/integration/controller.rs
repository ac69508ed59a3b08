//! The controller end to end against the real API server: objects applied with `kubectl apply`
//! as a user would, the operator running as a local process (`guardrail-operator run`), and
//! assertions on statuses, events and the gateway ConfigMaps.

use std::time::Duration;

use guardrail_operator::api::{Policy, PolicyAttachment, PolicyVersion, Stage};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

use crate::common::{
    TestNamespace, await_condition, await_gone, eventually, kubectl, kubectl_output, metric,
    repo_root, settled,
};

const T: Duration = Duration::from_secs(60);

pub use crate::common::operator::{
    Operator, apply, apply_output, attachment, http_get, policy, render, repo_in_namespace, version,
};

fn stage_of(v: Option<&PolicyVersion>) -> Option<Stage> {
    v.and_then(|v| v.status.as_ref()).and_then(|s| s.stage)
}

fn ready(conds: &[guardrail_operator::api::conditions::Condition]) -> Option<(&str, &str)> {
    conds
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

async fn await_stage(api: &Api<PolicyVersion>, name: &str, stage: Stage) -> PolicyVersion {
    await_condition(api, name, &format!("status.stage {stage}"), T, |v| {
        stage_of(v) == Some(stage)
            && v.is_some_and(|v| {
                v.status.as_ref().and_then(|s| s.observed_generation) == v.metadata.generation
            })
    })
    .await
    .expect("exists")
}

/// The bundle's resolved.json.
async fn bundle(ns: &TestNamespace) -> Option<Value> {
    let cms: Api<ConfigMap> = ns.api();
    let cm = cms.get_opt("guardrail-gateway-config").await.ok()??;
    serde_json::from_str(cm.data?.get("resolved.json")?).ok()
}

async fn await_bundle(ns: &TestNamespace, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(what, T, || async {
        match bundle(ns).await {
            Some(b) if pred(&b) => Ok(b),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn draft_publish_production_supersede_rollback_and_delete() {
    let ns = TestNamespace::new("lifecycle").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &["--policy-configmaps"]).await;
    let versions: Api<PolicyVersion> = ns.api();
    let policies: Api<Policy> = ns.api();

    let add = |g: &str| format!("  guardrails: {{add: [{g}]}}\n");
    apply(
        &(policy(n, "pii")
            + &version(n, "pii", 1, "Draft", &add("a"))
            + &attachment(n, "all", "pii", "  scope: \"*\"\n")),
    )
    .await;
    let v1 = await_stage(&versions, "pii-v1", Stage::Draft).await;
    assert_eq!(
        ready(&v1.status.as_ref().unwrap().conditions),
        Some(("True", "Reconciled")),
        "a draft is Ready"
    );

    apply(&version(n, "pii", 1, "Published", &add("a"))).await;
    let v1 = await_stage(&versions, "pii-v1", Stage::Published).await;
    assert!(v1.status.as_ref().unwrap().published_at.is_some());
    assert!(
        bundle(&ns)
            .await
            .is_none_or(|b| b["policies"].get("pii").is_none()),
        "published is not in the gateway"
    );

    apply(&version(n, "pii", 1, "Production", &add("a"))).await;
    await_stage(&versions, "pii-v1", Stage::Production).await;
    await_bundle(&ns, "pii v1 in the bundle", |b| {
        b["policies"]["pii"]["version"] == 1
    })
    .await;
    let p = await_condition(&policies, "pii", "productionVersion 1", T, |p| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.production_version)
            == Some(1)
    })
    .await
    .unwrap();
    assert_eq!(p.status.unwrap().resolved_guardrails, vec!["a"]);
    let cms: Api<ConfigMap> = ns.api();
    let per_policy = cms
        .get("pii-guardrails")
        .await
        .expect("per-policy ConfigMap");
    assert!(per_policy.data.unwrap()["resolved.json"].contains("\"version\": 1"));

    // Promote v2: v1 is superseded.
    apply(&version(n, "pii", 2, "Production", &add("b"))).await;
    await_stage(&versions, "pii-v2", Stage::Production).await;
    let v1 = await_stage(&versions, "pii-v1", Stage::Published).await;
    assert_eq!(v1.status.as_ref().unwrap().superseded_by, Some(2));
    assert!(v1.status.as_ref().unwrap().superseded_at.is_some());
    let b = await_bundle(&ns, "pii v2 in the bundle", |b| {
        b["policies"]["pii"]["version"] == 2
    })
    .await;
    assert_eq!(b["policies"]["pii"]["guardrails"], serde_json::json!(["b"]));
    let events = kubectl(&["get", "events", "-n", n, "-o", "json"]).await;
    assert!(
        events.contains("left production: version 2 of policy 'pii' took over"),
        "supersession event: {events}"
    );

    // Roll back by lowering v2's desired stage.
    apply(&version(n, "pii", 2, "Published", &add("b"))).await;
    await_stage(&versions, "pii-v1", Stage::Production).await;
    let v2 = await_stage(&versions, "pii-v2", Stage::Published).await;
    assert_eq!(v2.status.as_ref().unwrap().superseded_by, Some(1));
    await_bundle(&ns, "pii v1 back in the bundle", |b| {
        b["policies"]["pii"]["version"] == 1
    })
    .await;

    // Delete the production version: nothing else asks for production.
    kubectl(&["delete", "policyversion", "pii-v1", "-n", n]).await;
    await_condition(&policies, "pii", "no production version", T, |p| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.production_version.is_none())
    })
    .await;
    let atts: Api<PolicyAttachment> = ns.api();
    await_condition(&atts, "all", "Ready=False NoProductionVersion", T, |a| {
        a.and_then(|a| a.status.as_ref())
            .and_then(|s| ready(&s.conditions))
            == Some(("False", "NoProductionVersion"))
    })
    .await;
    await_bundle(&ns, "pii gone from the bundle", |b| {
        b["policies"].get("pii").is_none()
            && b["attachments"].as_array().is_some_and(|a| a.is_empty())
    })
    .await;
    let events = kubectl(&["get", "events", "-n", n, "-o", "json"]).await;
    assert!(
        events.contains("has no production version any more"),
        "warning event: {events}"
    );
    await_gone(&cms, "pii-guardrails", T).await;
}

/// Per-policy ConfigMaps are opt-in (`--policy-configmaps`): without the flag only the bundle is
/// written; with it `<policy>-guardrails` appears; turned off again, the operator deletes the
/// ones it wrote (an upgrade from a release that always wrote them leaves none behind).
#[tokio::test]
async fn per_policy_configmaps_are_opt_in_and_removed_when_turned_off() {
    let ns = TestNamespace::new("policy-cms").await;
    let n = ns.name.as_str();
    apply(&policy(n, "pii")).await;
    apply(&version(
        n,
        "pii",
        1,
        "Production",
        "  guardrails: {add: [a]}\n",
    ))
    .await;
    let cms: Api<ConfigMap> = ns.api();

    let op = Operator::start(n, &[]).await;
    await_bundle(&ns, "pii v1 in the bundle", |b| {
        b["policies"]["pii"]["version"] == 1
    })
    .await;
    let written = settled(
        "the operator's writes",
        Duration::from_secs(1),
        T,
        || async { kubectl(&["get", "configmaps", "-n", n, "-o", "name"]).await },
    )
    .await;
    assert!(
        !written.contains("pii-guardrails"),
        "a per-policy ConfigMap without --policy-configmaps: {written}"
    );
    op.stop().await;

    let op = Operator::start(n, &["--policy-configmaps"]).await;
    eventually("pii-guardrails written", T, || async {
        let cm = cms.get("pii-guardrails").await.map_err(|e| e.to_string())?;
        match cm.data.unwrap_or_default().get("resolved.json") {
            Some(d) if d.contains("\"version\": 1") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    op.stop().await;

    let _op = Operator::start(n, &[]).await;
    await_gone(&cms, "pii-guardrails", T).await;
    assert!(
        cms.get_opt("guardrail-gateway-config")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn deleting_a_policy_deletes_its_versions_and_unresolves_attachments() {
    let ns = TestNamespace::new("delete-policy").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &[]).await;
    let versions: Api<PolicyVersion> = ns.api();
    apply(
        &(policy(n, "p")
            + &version(n, "p", 1, "Production", "  guardrails: {add: [g]}\n")
            + &version(n, "p", 2, "Draft", "")
            + &attachment(n, "att", "p", "")),
    )
    .await;
    let v1 = await_stage(&versions, "p-v1", Stage::Production).await;
    // No ownerReference and no label written on a version users manage (Argo CD never prunes
    // an object with an ownerReference); `spec.policy` is a selectable field instead.
    assert!(
        v1.metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .is_empty(),
        "{:?}",
        v1.metadata.owner_references
    );
    assert!(
        !v1.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .contains_key("guardrails.dev/policy")
    );
    let selected = kubectl_output(&[
        "get",
        "grpv",
        "-n",
        n,
        "--field-selector",
        "spec.policy=p",
        "-o",
        "name",
    ])
    .await;
    assert!(selected.success, "{}", selected.stderr);
    assert_eq!(
        selected.stdout.lines().collect::<Vec<_>>(),
        vec![
            "policyversion.guardrails.dev/p-v1",
            "policyversion.guardrails.dev/p-v2"
        ]
    );
    // A version applied before its Policy exists is never deleted by the cascade.
    apply(&version(
        n,
        "later",
        1,
        "Production",
        "  guardrails: {add: [g]}\n",
    ))
    .await;
    await_bundle(&ns, "p in the bundle", |b| b["policies"].get("p").is_some()).await;

    kubectl(&["delete", "policy", "p", "-n", n]).await;
    await_gone(&versions, "p-v1", T).await;
    await_gone(&versions, "p-v2", T).await;
    assert!(versions.get_opt("later-v1").await.unwrap().is_some());
    let atts: Api<PolicyAttachment> = ns.api();
    await_condition(&atts, "att", "Ready=False PolicyNotFound", T, |a| {
        a.and_then(|a| a.status.as_ref())
            .and_then(|s| ready(&s.conditions))
            == Some(("False", "PolicyNotFound"))
    })
    .await;
    await_bundle(&ns, "p gone from the bundle", |b| {
        b["policies"].get("p").is_none()
    })
    .await;
}

#[tokio::test]
async fn attachment_before_its_policy_resolves_later_and_children_follow_parents() {
    let ns = TestNamespace::new("ordering").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &["--policy-configmaps"]).await;
    let atts: Api<PolicyAttachment> = ns.api();
    let policies: Api<Policy> = ns.api();
    let versions: Api<PolicyVersion> = ns.api();

    apply(&attachment(n, "team-a", "child", "  teams: [\"a-*\"]\n")).await;
    await_condition(&atts, "team-a", "Ready=False PolicyNotFound", T, |a| {
        a.and_then(|a| a.status.as_ref())
            .and_then(|s| ready(&s.conditions))
            == Some(("False", "PolicyNotFound"))
    })
    .await;
    // The child arrives before its parent: it waits at Published.
    apply(
        &(policy(n, "child")
            + &version(
                n,
                "child",
                1,
                "Production",
                "  inherit: parent\n  guardrails: {add: [b]}\n",
            )),
    )
    .await;
    let c1 = await_stage(&versions, "child-v1", Stage::Published).await;
    let promoted = c1
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Promoted")
        .unwrap();
    assert_eq!(promoted.reason, "WaitingForReferences");
    assert!(
        promoted.message.contains("policy 'parent' does not exist"),
        "{}",
        promoted.message
    );
    await_condition(&atts, "team-a", "Ready=False NoProductionVersion", T, |a| {
        a.and_then(|a| a.status.as_ref())
            .and_then(|s| ready(&s.conditions))
            == Some(("False", "NoProductionVersion"))
    })
    .await;

    apply(
        &(policy(n, "parent")
            + &version(n, "parent", 1, "Production", "  guardrails: {add: [a]}\n")),
    )
    .await;
    await_stage(&versions, "child-v1", Stage::Production).await;
    let a = await_condition(&atts, "team-a", "Ready=True", T, |a| {
        a.and_then(|a| a.status.as_ref())
            .and_then(|s| ready(&s.conditions))
            == Some(("True", "Reconciled"))
    })
    .await
    .unwrap();
    assert_eq!(a.status.unwrap().resolved_guardrails, vec!["a", "b"]);
    let b = await_bundle(&ns, "child resolved in the bundle", |b| {
        b["policies"]["child"]["guardrails"] == serde_json::json!(["a", "b"])
    })
    .await;
    assert_eq!(
        b["policies"]["child"]["inheritanceChain"],
        serde_json::json!(["parent", "child"])
    );

    // A new parent version re-resolves the child everywhere.
    apply(&version(
        n,
        "parent",
        2,
        "Production",
        "  guardrails: {add: [c]}\n",
    ))
    .await;
    await_condition(&policies, "child", "child re-resolved", T, |p| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.resolved_guardrails == vec!["b", "c"])
    })
    .await;
    await_bundle(&ns, "child re-resolved in the bundle", |b| {
        b["policies"]["child"]["guardrails"] == serde_json::json!(["b", "c"])
    })
    .await;
    let cms: Api<ConfigMap> = ns.api();
    eventually("child-guardrails re-resolved", T, || async {
        let cm = cms
            .get("child-guardrails")
            .await
            .map_err(|e| e.to_string())?;
        let data = cm.data.unwrap_or_default();
        if data
            .get("resolved.json")
            .is_some_and(|d| d.contains("\"c\""))
        {
            Ok(())
        } else {
            Err(format!("{data:?}"))
        }
    })
    .await;
}

fn resource_versions(json: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                format!(
                    "{}/{}",
                    i["kind"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap()
                ),
                i["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn restarting_the_operator_rewrites_nothing() {
    let ns = TestNamespace::new("restart").await;
    let n = ns.name.as_str();
    let op = Operator::start(n, &[]).await;
    let versions: Api<PolicyVersion> = ns.api();
    apply(
        &(policy(n, "p")
            + &version(n, "p", 1, "Production", "  guardrails: {add: [g]}\n")
            + &version(n, "p", 2, "Published", "  guardrails: {add: [h]}\n")
            + &attachment(n, "a", "p", "")),
    )
    .await;
    await_stage(&versions, "p-v1", Stage::Production).await;
    await_stage(&versions, "p-v2", Stage::Published).await;
    await_bundle(&ns, "bundle written", |b| b["policies"].get("p").is_some()).await;
    let snapshot = || async {
        resource_versions(
            &kubectl(&[
                "get",
                "policies,policyversions,policyattachments,configmaps",
                "-n",
                n,
                "-o",
                "json",
            ])
            .await,
        )
    };
    // The last status writes have landed when nothing moves for 2 s.
    let before = settled(
        "the first operator's writes",
        Duration::from_secs(2),
        T,
        snapshot,
    )
    .await;
    op.stop().await;
    let op2 = Operator::start(n, &[]).await;
    // The new operator has finished at least one reconcile of the namespace (a completed
    // reconcile is a duration sample; the runs counter alone exists from the start).
    eventually("a completed reconcile after the restart", T, || async {
        let (_, m) = http_get(op2.port, "/metrics").await.ok_or("no /metrics")?;
        match metric(&m, "guardrail_reconcile_duration_seconds_count") {
            Some(c) if c >= 1.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let after = settled("after the restart", Duration::from_secs(2), T, snapshot).await;
    assert_eq!(before, after, "a restart must not rewrite anything");
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_fail_over() {
    let ns = TestNamespace::new("replicas").await;
    let n = ns.name.as_str();
    let lease = [
        "--leader-elect",
        "--lease-name",
        "guardrail-operator",
        "--lease-namespace",
        n,
        "--lease-seconds",
        "4",
    ];
    let mut a = Operator::start(n, &lease).await;
    let b = Operator::start(n, &lease).await;
    let versions: Api<PolicyVersion> = ns.api();
    apply(&(policy(n, "p") + &version(n, "p", 1, "Production", "  guardrails: {add: [g]}\n")))
        .await;
    await_stage(&versions, "p-v1", Stage::Production).await;
    let leader_of = |port: u16| async move {
        http_get(port, "/metrics")
            .await
            .map(|(_, m)| m.lines().any(|l| l == "guardrail_leader 1"))
            .unwrap_or(false)
    };
    let (la, lb) = (leader_of(a.port).await, leader_of(b.port).await);
    assert!(la ^ lb, "exactly one leader (a: {la}, b: {lb})");
    // Kill the leader without a graceful release; the other takes over after the lease expires.
    let survivor = if la {
        a.kill();
        b.port
    } else {
        drop(b);
        a.port
    };
    apply(&version(
        n,
        "p",
        2,
        "Production",
        "  guardrails: {add: [h]}\n",
    ))
    .await;
    await_stage(&versions, "p-v2", Stage::Production).await;
    assert!(leader_of(survivor).await, "the survivor leads");
}

#[tokio::test]
async fn litellm_loads_the_bundle_and_resolves_like_we_do() {
    let python = match std::env::var("ORACLE_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "ORACLE_PYTHON is not set: run scripts/test-all.sh (it prepares the litellm 1.110.2 venv)"
        ),
    };
    let ns = TestNamespace::new("litellm-bundle").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &["--catalog-configmap", "guardrail-catalog"]).await;
    let repo = repo_root().join("examples/policy-repo");
    let mut all = String::new();
    for f in crate::common::yaml_files(&repo) {
        all.push_str(
            &std::fs::read_to_string(f)
                .unwrap()
                .replace("namespace: llm-gateway", &format!("namespace: {n}")),
        );
        all.push_str("\n---\n");
    }
    apply(&all).await;
    let policies: Api<Policy> = ns.api();
    for p in ["org-baseline", "research", "claude-audit", "gated"] {
        await_condition(&policies, p, "in production", T, |p| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.production_version)
                .is_some()
        })
        .await;
    }
    let cms: Api<ConfigMap> = ns.api();
    let cm = eventually("bundle with four policies", T, || async {
        let cm = cms
            .get("guardrail-gateway-config")
            .await
            .map_err(|e| e.to_string())?;
        let data = cm.data.clone().unwrap_or_default();
        if ["org-baseline:", "research:", "claude-audit:", "gated:"]
            .iter()
            .all(|p| data["policies.yaml"].contains(p))
        {
            Ok(cm)
        } else {
            Err(format!("{data:?}"))
        }
    })
    .await;
    let dir = std::env::temp_dir().join(format!("bundle-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("policies.yaml"),
        &cm.data.unwrap()["policies.yaml"],
    )
    .unwrap();
    let contexts = serde_json::json!([
        {"team_alias": "research-nlp", "model": "claude-3-opus", "tags": ["external"]},
        {"key_alias": "partner-acme", "model": "gpt-4o"},
        {"team_alias": "sales"},
        {"model": "gpt-4o", "tags": ["partner-x"]},
    ]);
    std::fs::write(dir.join("contexts.json"), contexts.to_string()).unwrap();
    let out = crate::common::run(
        &python,
        &[
            repo_root()
                .join("tests/conformance/load_bundle.py")
                .to_str()
                .unwrap(),
            dir.join("policies.yaml").to_str().unwrap(),
            dir.join("contexts.json").to_str().unwrap(),
            dir.join("out.json").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(
        out.success,
        "litellm 1.110.2 refused the bundle:\n{}\n{}",
        out.stdout, out.stderr
    );
    let theirs: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    for (i, c) in contexts.as_array().unwrap().iter().enumerate() {
        let mut args = vec![
            "resolve".to_string(),
            "-f".into(),
            repo.to_str().unwrap().into(),
            "-o".into(),
            "json".into(),
        ];
        for (flag, key) in [
            ("--team", "team_alias"),
            ("--key", "key_alias"),
            ("--model", "model"),
        ] {
            if let Some(v) = c[key].as_str() {
                args.push(flag.into());
                args.push(v.into());
            }
        }
        for t in c["tags"].as_array().into_iter().flatten() {
            args.push("--tag".into());
            args.push(t.as_str().unwrap().into());
        }
        let ours = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
            .args(&args)
            .output()
            .unwrap();
        let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();
        let our_matched: Vec<Value> = ours["matchedPolicies"].as_array().unwrap().iter().map(|m| serde_json::json!({"policy_name": m["policyName"], "matched_via": m["matchedVia"]})).collect();
        assert_eq!(
            Value::Array(our_matched),
            theirs[i]["matched"],
            "context {c}"
        );
        assert_eq!(
            ours["effectiveGuardrails"], theirs[i]["effective_guardrails"],
            "context {c}"
        );
    }
    let _ = kubectl_output(&["get", "ns", n]).await;
}

#[tokio::test]
async fn bundle_changes_roll_the_gateway_deployment() {
    use k8s_openapi::api::apps::v1::Deployment;
    let ns = TestNamespace::new("gateway-roll").await;
    let n = ns.name.as_str();
    apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: litellm, namespace: {n}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: litellm}}}}\n  template:\n    metadata: {{labels: {{app: litellm}}}}\n    spec: {{containers: [{{name: litellm, image: litellm/litellm:v1.110.2}}]}}\n"
    ))
    .await;
    let _op = Operator::start(n, &["--gateway-deployment", "litellm"]).await;
    apply(&(policy(n, "p") + &version(n, "p", 1, "Production", "  guardrails: {add: [g]}\n")))
        .await;
    let deployments: Api<Deployment> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    await_bundle(&ns, "p in the bundle", |b| b["policies"].get("p").is_some()).await;
    let hash = eventually("the bundle hash on the pod template", T, || async {
        let cm = cms
            .get("guardrail-gateway-config")
            .await
            .map_err(|e| e.to_string())?;
        let hash = cm
            .metadata
            .annotations
            .unwrap_or_default()
            .get("guardrails.dev/content-hash")
            .cloned()
            .ok_or("no hash")?;
        let d = deployments
            .get("litellm")
            .await
            .map_err(|e| e.to_string())?;
        let on_template = d
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("guardrails.dev/config-hash").cloned());
        if on_template.as_deref() == Some(hash.as_str()) {
            Ok(hash)
        } else {
            Err(format!("template {on_template:?}, bundle {hash}"))
        }
    })
    .await;
    let policies: Api<Policy> = ns.api();
    let gateway = |p: Option<&Policy>| {
        p.and_then(|p| p.status.as_ref()).and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "GatewaySynced")
                .map(|c| (c.status.clone(), c.reason.clone()))
        })
    };
    await_condition(&policies, "p", "GatewaySynced=False Rolling", T, |p| {
        gateway(p) == Some(("False".into(), "Rolling".into()))
    })
    .await;
    // No kubelet here: play the Deployment controller and report the rollout finished.
    let d = deployments.get("litellm").await.unwrap();
    let generation = d.metadata.generation.unwrap();
    kubectl(&[
        "patch", "deployment", "litellm", "-n", n, "--subresource=status", "--type=merge", "-p",
        &format!("{{\"status\":{{\"observedGeneration\":{generation},\"replicas\":1,\"updatedReplicas\":1,\"readyReplicas\":1,\"availableReplicas\":1}}}}"),
    ])
    .await;
    let p = await_condition(&policies, "p", "GatewaySynced=True", T, |p| {
        gateway(p) == Some(("True".into(), "GatewaySynced".into()))
    })
    .await
    .unwrap();
    let msg = p
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "GatewaySynced")
        .unwrap()
        .message;
    assert!(msg.contains(&hash), "{msg} should name {hash}");
}

#[tokio::test]
async fn render_prints_exactly_what_the_controller_writes() {
    let ns = TestNamespace::new("render").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &["--catalog-configmap", "guardrail-catalog"]).await;
    let dir = repo_in_namespace(&std::env::temp_dir().join(format!("render-{n}")), n);
    kubectl(&["apply", "-f", dir.to_str().unwrap()]).await;
    let policies: Api<Policy> = ns.api();
    for p in ["org-baseline", "research", "claude-audit", "gated"] {
        await_condition(&policies, p, "in production", T, |p| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.production_version)
                .is_some()
        })
        .await;
    }
    let rendered = render(&dir).await;
    let cms: Api<ConfigMap> = ns.api();
    let cm = eventually("the bundle with all four policies", T, || async {
        let cm = cms
            .get("guardrail-gateway-config")
            .await
            .map_err(|e| e.to_string())?;
        let hash = cm
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .get("guardrails.dev/content-hash")
            .cloned();
        if hash.as_deref()
            == rendered["metadata"]["annotations"]["guardrails.dev/content-hash"].as_str()
        {
            Ok(cm)
        } else {
            Err(format!("{hash:?}"))
        }
    })
    .await;
    let data = cm.data.unwrap();
    for key in ["policies.yaml", "resolved.json"] {
        assert_eq!(
            data[key].as_str(),
            rendered["data"][key].as_str().unwrap(),
            "{key} differs between render and the controller"
        );
    }
}

/// An object the operator's types cannot read (stored through an older, looser CRD: a
/// `condition.model` nested 300 deep) never stops the others: the watch of its kind goes on,
/// the rest of the namespace converges, and the bad object is reported by name with the field.
#[tokio::test]
async fn an_undecodable_object_is_reported_by_name_and_the_namespace_still_converges() {
    let ns = TestNamespace::new("undecodable").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &[]).await;
    apply(
        &(policy(n, "p")
            + &version(n, "p", 1, "Production", "  guardrails: {add: [g1]}\n")
            + &attachment(n, "all", "p", "  scope: \"*\"\n")),
    )
    .await;
    await_bundle(&ns, "p in the bundle", |b| b["policies"].get("p").is_some()).await;

    // An older CRD that let condition.model be anything; restored right after.
    let crd_file = repo_root().join("crds/policyversions.yaml");
    let strict = std::fs::read_to_string(&crd_file).unwrap();
    let loose: String = {
        let mut out = Vec::new();
        let mut skip_indent: Option<usize> = None;
        let mut in_model = false;
        for line in strict.lines() {
            let indent = line.len() - line.trim_start().len();
            if let Some(i) = skip_indent {
                if indent > i {
                    continue;
                }
                skip_indent = None;
            }
            let t = line.trim_start();
            if line == format!("{}model:", " ".repeat(18)) {
                in_model = true;
            } else if in_model && indent <= 18 {
                in_model = false;
            }
            if in_model
                && (t.starts_with("items:")
                    || t.starts_with("maxProperties:")
                    || t.starts_with("maxItems:"))
            {
                if t == "items:" {
                    skip_indent = Some(indent);
                }
                continue;
            }
            out.push(line.to_string());
        }
        out.join("\n") + "\n"
    };
    assert_ne!(loose, strict, "the loose CRD must differ");
    let dir = std::env::temp_dir().join(format!("undecodable-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("loose.yaml"), &loose).unwrap();
    let deep = format!("{}\"x\"{}", "[".repeat(300), "]".repeat(300));
    let bad = format!(
        r#"{{"apiVersion":"guardrails.dev/v1alpha1","kind":"PolicyVersion","metadata":{{"name":"bad-v1","namespace":"{n}"}},"spec":{{"policy":"bad","version":1,"stage":"Production","condition":{{"model":{deep}}}}}}}"#
    );
    std::fs::write(dir.join("bad.json"), &bad).unwrap();
    let loose_applied = kubectl_output(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "older-crd",
        "-f",
        dir.join("loose.yaml").to_str().unwrap(),
    ])
    .await;
    assert!(loose_applied.success, "{}", loose_applied.stderr);
    eventually("the older CRD takes the bad object", T, || async {
        let o = kubectl_output(&["create", "-f", dir.join("bad.json").to_str().unwrap()]).await;
        if o.success { Ok(()) } else { Err(o.stderr) }
    })
    .await;
    let restored = kubectl_output(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "older-crd",
        "-f",
        crd_file.to_str().unwrap(),
    ])
    .await;
    assert!(restored.success, "{}", restored.stderr);

    // The rest of the namespace still converges: a new policy after the bad object.
    apply(
        &(policy(n, "q")
            + &version(n, "q", 1, "Production", "  guardrails: {add: [g2]}\n")
            + &attachment(n, "q-all", "q", "  scope: \"*\"\n")),
    )
    .await;
    await_bundle(&ns, "p and q in the bundle", |b| {
        b["policies"].get("p").is_some() && b["policies"].get("q").is_some()
    })
    .await;
    let versions: Api<PolicyVersion> = ns.api();
    await_stage(&versions, "q-v1", Stage::Production).await;
    let events = eventually(
        "an Undecodable event names the object and the field",
        T,
        || async {
            let e = kubectl(&[
                "get",
                "events.events.k8s.io",
                "-n",
                n,
                "--field-selector",
                "regarding.name=bad-v1",
                "-o",
                "jsonpath={range .items[*]}{.reason}: {.note}{\"\\n\"}{end}",
            ])
            .await;
            if e.contains("Undecodable: PolicyVersion") && e.contains("spec.condition.model") {
                Ok(e)
            } else {
                Err(e)
            }
        },
    )
    .await;
    assert!(events.contains("bad-v1"), "{events}");
    // It gets no status (the operator cannot decide about what it cannot read).
    let raw = kubectl(&[
        "get",
        "policyversion",
        "bad-v1",
        "-n",
        n,
        "-o",
        "jsonpath={.status}",
    ])
    .await;
    assert!(raw.trim().is_empty(), "{raw}");
    kubectl(&["delete", "policyversion", "bad-v1", "-n", n]).await;
}
