//! GitOps health on live objects: the operator reconciles objects in the states GitOps tools
//! care about, then the objects as the API server returns them go through
//! - kstatus, the real library (`sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute`, built by
//!   `scripts/kstatus-build.sh` into `$KSTATUS_BIN`), which is what Flux's `wait: true` and kpt
//!   use, and
//! - the Argo CD Lua health checks of `examples/gitops/argocd-cm-health.yaml` (mlua),
//!
//! and both must give the documented answer (README "GitOps", ecosystem checklist §1 table).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::common::{TestNamespace, eventually, kubectl};
use crate::controller::{Operator, apply, attachment, policy, version};

#[path = "../gitops/lua.rs"]
mod lua;

const T: Duration = Duration::from_secs(60);

/// The kstatus checker from `$KSTATUS_BIN`; panics with how to get it.
fn kstatus_bin() -> PathBuf {
    match std::env::var_os("KSTATUS_BIN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "KSTATUS_BIN={} does not exist; rebuild it with scripts/kstatus-build.sh",
                p.display()
            );
            p
        }
        _ => panic!(
            "KSTATUS_BIN is not set: run scripts/test-all.sh, or \
             `export KSTATUS_BIN=$(scripts/kstatus-build.sh)` first"
        ),
    }
}

/// One kstatus verdict.
#[derive(Debug, serde::Deserialize)]
struct Kstatus {
    name: String,
    status: String,
    message: String,
}

/// Pipes the objects through the kstatus checker; one verdict per object, in order.
async fn kstatus(objects: &[Value]) -> Vec<Kstatus> {
    let bin = kstatus_bin();
    let mut child = tokio::process::Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let input = serde_json::to_vec(objects).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Kstatus> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(verdicts.len(), objects.len(), "one verdict per object");
    verdicts
}

fn key(o: &Value) -> (String, String) {
    (
        o["kind"].as_str().unwrap_or_default().to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn condition<'a>(o: &'a Value, type_: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Every object of our three kinds in the namespace, as `kubectl get -o json` returns them.
async fn live_objects(ns: &str) -> Vec<Value> {
    let list = kubectl(&[
        "get",
        "policies.guardrails.dev,policyversions.guardrails.dev,policyattachments.guardrails.dev",
        "-n",
        ns,
        "-o",
        "json",
    ])
    .await;
    let list: Value = serde_json::from_str(&list).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn kstatus_and_argo_health_of_live_objects() {
    let ns = TestNamespace::new("gitops").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &[]).await;

    let failing = "  guardrails: {add: [pii-blocker, prompt-injection]}\n  pipeline:\n    steps:\n      - {guardrail: pii-blocker, onPass: next, onFail: next}\n      - {guardrail: prompt-injection}\n  tests:\n    - name: ssn-must-be-blocked\n      messages: [{role: user, content: \"my ssn is 123-45-6789\"}]\n      mocks: {pii-blocker: fail, prompt-injection: pass}\n      expect: {action: block, blockedBy: pii-blocker}\n    - name: unmocked-guardrail\n      messages: [{role: user, content: hello}]\n      mocks: {pii-blocker: pass}\n      expect: {action: allow}\n";
    apply(
        &(policy(n, "prod")
            + &version(n, "prod", 1, "Production", "  guardrails: {add: [g]}\n")
            + &version(n, "prod", 2, "Draft", "  guardrails: {add: [g, h]}\n")
            // Its Policy object does not exist.
            + &version(n, "orphan", 1, "Production", "  guardrails: {add: [g]}\n")
            // Its parent does not exist.
            + &policy(n, "child")
            + &version(
                n,
                "child",
                1,
                "Production",
                "  inherit: parent\n  guardrails: {add: [c]}\n",
            )
            + &policy(n, "leaky")
            + &version(n, "leaky", 1, "Production", failing)
            + &attachment(n, "dangling", "missing", "  scope: \"*\"\n")
            + &attachment(n, "live", "prod", "  scope: \"*\"\n")),
    )
    .await;

    // (kind, name) -> (Ready status, Ready reason, kstatus, Argo CD health)
    let expected: BTreeMap<(&str, &str), (&str, &str, &str, &str)> = [
        (
            ("Policy", "prod"),
            ("True", "Reconciled", "Current", "Healthy"),
        ),
        (
            ("PolicyVersion", "prod-v1"),
            ("True", "Reconciled", "Current", "Healthy"),
        ),
        (
            ("PolicyVersion", "prod-v2"),
            ("True", "Reconciled", "Current", "Healthy"),
        ),
        (
            ("PolicyVersion", "orphan-v1"),
            ("False", "WaitingForReferences", "InProgress", "Progressing"),
        ),
        (
            ("PolicyVersion", "child-v1"),
            ("False", "WaitingForReferences", "InProgress", "Progressing"),
        ),
        (
            ("PolicyVersion", "leaky-v1"),
            ("False", "TestsFailed", "Failed", "Degraded"),
        ),
        (
            ("PolicyAttachment", "dangling"),
            ("False", "PolicyNotFound", "Failed", "Degraded"),
        ),
        (
            ("PolicyAttachment", "live"),
            ("True", "Reconciled", "Current", "Healthy"),
        ),
    ]
    .into_iter()
    .collect();

    // Wait until the operator has reconciled the current generation of each into its state.
    let objects = eventually("every object in its expected state", T, || async {
        let objects = live_objects(n).await;
        let mut waiting = Vec::new();
        for ((kind, name), (status, reason, _, _)) in &expected {
            let o = objects
                .iter()
                .find(|o| key(o) == (kind.to_string(), name.to_string()));
            let ok = o.is_some_and(|o| {
                o["status"]["observedGeneration"] == o["metadata"]["generation"]
                    && condition(o, "Ready").is_some_and(|c| {
                        c["status"] == *status
                            && c["reason"] == *reason
                            && c["observedGeneration"] == o["metadata"]["generation"]
                    })
            });
            if !ok {
                waiting.push(format!(
                    "{kind}/{name} (want Ready={status} {reason}): {}",
                    o.map(|o| o["status"].to_string())
                        .unwrap_or_else(|| "missing".into())
                ));
            }
        }
        if waiting.is_empty() {
            Ok(objects)
        } else {
            Err(waiting.join("\n"))
        }
    })
    .await;

    let verdicts = kstatus(&objects).await;
    let scripts = lua::health_scripts();
    let mut failures = Vec::new();
    for (o, ks) in objects.iter().zip(&verdicts) {
        let (kind, name) = key(o);
        assert_eq!(ks.name, format!("{n}/{name}"), "verdicts come in order");
        let argo = lua::health_of(&scripts, o);
        // The two tools always agree (the checklist's table).
        let agree = matches!(
            (ks.status.as_str(), argo.status.as_str()),
            ("Current", "Healthy") | ("InProgress", "Progressing") | ("Failed", "Degraded")
        );
        if !agree {
            failures.push(format!(
                "{kind}/{name}: kstatus {} ({}) but Argo CD {} ({})",
                ks.status, ks.message, argo.status, argo.message
            ));
        }
        let Some((_, _, want_ks, want_argo)) = expected.get(&(kind.as_str(), name.as_str())) else {
            continue;
        };
        if ks.status != *want_ks || argo.status != *want_argo {
            failures.push(format!(
                "{kind}/{name}: want kstatus {want_ks} and Argo CD {want_argo}, got kstatus {} ({}) and Argo CD {} ({})",
                ks.status, ks.message, argo.status, argo.message
            ));
        }
        // Failed / Degraded carry the Stalled message, so users see what to fix.
        if *want_ks == "Failed" {
            let stalled = condition(o, "Stalled")
                .and_then(|c| c["message"].as_str())
                .unwrap_or_default();
            assert!(!stalled.is_empty(), "{kind}/{name} has a Stalled message");
            assert_eq!(ks.message, stalled, "{kind}/{name}: kstatus message");
            assert_eq!(argo.message, stalled, "{kind}/{name}: Argo CD message");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let msg = |kind: &str, name: &str| {
        let o = objects
            .iter()
            .find(|o| key(o) == (kind.to_string(), name.to_string()))
            .unwrap();
        condition(o, "Stalled").unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        msg("PolicyAttachment", "dangling").contains("Policy 'missing' does not exist"),
        "{}",
        msg("PolicyAttachment", "dangling")
    );
    assert!(
        msg("PolicyVersion", "leaky-v1").contains("test(s) failed"),
        "{}",
        msg("PolicyVersion", "leaky-v1")
    );
    // InProgress objects are waiting with Reconciling=True (not merely unobserved), and Argo
    // shows why through Ready's message.
    for name in ["orphan-v1", "child-v1"] {
        let o = objects
            .iter()
            .find(|o| key(o) == ("PolicyVersion".to_string(), name.to_string()))
            .unwrap();
        assert_eq!(condition(o, "Reconciling").unwrap()["status"], "True");
        let argo = lua::health_of(&scripts, o);
        assert!(
            argo.message.contains("does not exist"),
            "{name}: {}",
            argo.message
        );
    }

    // A spec change the operator has not seen yet is InProgress / Progressing for both: take
    // the live object, bump its generation as the API server would, and ask again.
    let mut stale = objects
        .iter()
        .find(|o| key(o) == ("PolicyAttachment".to_string(), "live".to_string()))
        .unwrap()
        .clone();
    let g = stale["metadata"]["generation"].as_i64().unwrap();
    stale["metadata"]["generation"] = Value::from(g + 1);
    let ks = kstatus(std::slice::from_ref(&stale)).await;
    assert_eq!(ks[0].status, "InProgress", "{ks:?}");
    assert_eq!(lua::health_of(&scripts, &stale).status, "Progressing");
}

/// The Argo CD prune checker from `$ARGOCD_PRUNE_CHECK_BIN` (tools/argocd-prune-check).
fn prune_check_bin() -> PathBuf {
    match std::env::var_os("ARGOCD_PRUNE_CHECK_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "ARGOCD_PRUNE_CHECK_BIN is not set: run scripts/test-all.sh, or \
             `export ARGOCD_PRUNE_CHECK_BIN=$(scripts/argocd-prune-check-build.sh)` first"
        ),
    }
}

/// What gitops-engine's cluster cache (`GetManagedLiveObjs`, what Argo CD diffs and prunes)
/// makes of the namespace's PolicyVersions: name → (managed, ownerReferences).
async fn argo_managed_versions(ns: &str, app: &str) -> BTreeMap<String, (bool, u64)> {
    let bin = prune_check_bin();
    let kubeconfig = crate::common::kubeconfig_path();
    let out = tokio::process::Command::new(&bin)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--namespace",
            ns,
            "--app",
            app,
        ])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                (
                    x["managed"].as_bool().unwrap(),
                    x["ownerReferences"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Argo CD can prune every PolicyVersion: after the operator reconciled them, gitops-engine's own
/// cluster cache counts each one as a managed object of the app (no ownerReference), including
/// one an earlier release had given an ownerReference (the operator removes it).
#[tokio::test]
async fn argo_cd_counts_every_reconciled_version_as_managed_and_prunable() {
    let ns = TestNamespace::new("argo-prune").await;
    let n = ns.name.as_str();
    let app = "policies";
    // Plain documents in block style so the label slots in under metadata.
    let block = |kind: &str, name: &str, spec: &str| {
        format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {n}\n  labels: {{app.kubernetes.io/instance: {app}}}\nspec:\n{spec}---\n"
        )
    };
    let repo = block("Policy", "base", "  description: base\n")
        + &block("Policy", "leaf", "  description: leaf\n")
        + &block(
            "PolicyVersion",
            "base-v1",
            "  policy: base\n  version: 1\n  stage: Production\n  guardrails: {add: [g1]}\n",
        )
        + &block(
            "PolicyVersion",
            "leaf-v1",
            "  policy: leaf\n  version: 1\n  stage: Production\n  inherit: base\n  guardrails: {add: [g2]}\n",
        )
        + &block(
            "PolicyVersion",
            "leaf-v2",
            "  policy: leaf\n  version: 2\n  stage: Draft\n  guardrails: {add: [g3]}\n",
        )
        + &block("PolicyAttachment", "all", "  policy: leaf\n  scope: '*'\n");
    apply(&repo).await;

    // What an earlier release wrote on leaf-v2: an ownerReference to its Policy and the policy
    // label, by server-side apply as the operator's field manager.
    let policies: kube::Api<guardrail_operator::api::Policy> = ns.api();
    let leaf_uid = eventually("the Policy exists", T, || async {
        policies
            .get_opt("leaf")
            .await
            .ok()
            .flatten()
            .and_then(|p| p.metadata.uid)
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    let versions: kube::Api<guardrail_operator::api::PolicyVersion> = ns.api();
    let old_write = serde_json::json!({
        "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion",
        "metadata": {"name": "leaf-v2", "namespace": n,
            "labels": {"guardrails.dev/policy": "leaf"},
            "ownerReferences": [{"apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy", "name": "leaf", "uid": leaf_uid}]},
    });
    versions
        .patch(
            "leaf-v2",
            &kube::api::PatchParams::apply("guardrail-operator"),
            &kube::api::Patch::Apply(&old_write),
        )
        .await
        .unwrap();
    let before = argo_managed_versions(n, app).await;
    assert_eq!(
        before.get("leaf-v2"),
        Some(&(false, 1)),
        "the checker must see what Argo CD sees: an owned version is not prunable ({before:?})"
    );

    let _op = Operator::start(n, &[]).await;
    eventually(
        "the operator releases the old ownerReference",
        T,
        || async {
            let v = versions.get("leaf-v2").await.map_err(|e| e.to_string())?;
            let owners = v.metadata.owner_references.clone().unwrap_or_default();
            let labels = v.metadata.labels.clone().unwrap_or_default();
            if owners.is_empty() && !labels.contains_key("guardrails.dev/policy") {
                Ok(())
            } else {
                Err(format!("owners {owners:?}, labels {labels:?}"))
            }
        },
    )
    .await;
    eventually("leaf-v1 in production", T, || async {
        let v = versions.get("leaf-v1").await.map_err(|e| e.to_string())?;
        match v.status.and_then(|s| s.stage) {
            Some(guardrail_operator::api::Stage::Production) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let after = argo_managed_versions(n, app).await;
    let want: BTreeMap<String, (bool, u64)> = ["base-v1", "leaf-v1", "leaf-v2"]
        .iter()
        .map(|v| (v.to_string(), (true, 0)))
        .collect();
    assert_eq!(
        after, want,
        "every version is managed by the app and prunable"
    );
    // The user's tracking label survives the operator's writes.
    for v in versions.list(&Default::default()).await.unwrap() {
        assert_eq!(
            v.metadata
                .labels
                .unwrap_or_default()
                .get("app.kubernetes.io/instance")
                .map(String::as_str),
            Some(app)
        );
    }
}
