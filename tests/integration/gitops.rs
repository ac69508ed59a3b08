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
