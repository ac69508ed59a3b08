//! The Argo CD health checks shipped in `examples/gitops/argocd-cm-health.yaml`, run with a
//! real Lua interpreter on the fixtures in `tests/gitops/fixtures/`, against the expectations
//! in `tests/gitops/health_test.yaml` (argo-cd's `health_test.yaml` shape). The same scripts
//! run on live objects in `tests/integration/gitops.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gitops/lua.rs"]
mod lua;

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use lua::{KINDS, health, health_of, health_scripts, repo_root};

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    health_status: Expected,
    input_path: String,
}

#[derive(Deserialize)]
struct Expected {
    status: String,
    message: String,
}

fn read_yaml(rel: &str) -> Value {
    let path = repo_root().join("tests/gitops").join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn one_entry_per_kind_and_one_script() {
    let scripts = health_scripts();
    assert_eq!(
        scripts.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        KINDS.into_iter().collect::<BTreeSet<_>>(),
        "argocd-cm-health.yaml has a health entry for each kind and no other"
    );
    let distinct: BTreeSet<&String> = scripts.values().collect();
    assert_eq!(
        distinct.len(),
        1,
        "all kinds share the one script (YAML anchor)"
    );
}

#[test]
fn fixtures_get_the_expected_health() {
    let scripts = health_scripts();
    let cases: HealthTests = {
        let path = repo_root().join("tests/gitops/health_test.yaml");
        serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    // Every fixture is listed, so none is silently left out.
    let listed: BTreeSet<String> = cases.tests.iter().map(|t| t.input_path.clone()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_root().join("tests/gitops/fixtures"))
        .unwrap()
        .map(|e| format!("fixtures/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(listed, on_disk, "health_test.yaml lists every fixture");

    let mut failures = Vec::new();
    for case in &cases.tests {
        let obj = read_yaml(&case.input_path);
        let got = health_of(&scripts, &obj);
        if got.status != case.health_status.status || got.message != case.health_status.message {
            failures.push(format!(
                "{}: expected {} {:?}, got {} {:?}",
                case.input_path,
                case.health_status.status,
                case.health_status.message,
                got.status,
                got.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn checks_run_in_the_checklist_order() {
    // The order matters: a stale generation wins over Stalled, Stalled over Reconciling,
    // Reconciling over Ready=True.
    let script = health_scripts().remove("Policy").unwrap();
    let cond = |t: &str, s: &str, m: &str| json!({"type": t, "status": s, "reason": "R", "message": m, "observedGeneration": 2});
    let obj = |og: i64, conds: Vec<Value>| {
        json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy",
            "metadata": {"name": "p", "namespace": "n", "generation": 2},
            "spec": {},
            "status": {"observedGeneration": og, "conditions": conds}
        })
    };
    let stalled = cond("Stalled", "True", "stuck");
    let reconciling = cond("Reconciling", "True", "working");
    let ready = cond("Ready", "True", "fine");
    let not_ready = cond("Ready", "False", "not fine");

    let h = health(&script, &obj(1, vec![stalled.clone(), ready.clone()]));
    assert_eq!(h.status, "Progressing", "stale generation first: {h:?}");
    let h = health(
        &script,
        &obj(2, vec![stalled.clone(), reconciling.clone(), ready.clone()]),
    );
    assert_eq!(
        (h.status.as_str(), h.message.as_str()),
        ("Degraded", "stuck")
    );
    let h = health(&script, &obj(2, vec![reconciling.clone(), ready.clone()]));
    assert_eq!(h.status, "Progressing", "Reconciling before Ready=True");
    let h = health(&script, &obj(2, vec![reconciling, not_ready.clone()]));
    assert_eq!(
        (h.status.as_str(), h.message.as_str()),
        ("Progressing", "not fine"),
        "transient error, retrying: Progressing with Ready's message"
    );
    let h = health(&script, &obj(2, vec![ready]));
    assert_eq!((h.status.as_str(), h.message.as_str()), ("Healthy", "fine"));
    let h = health(&script, &obj(2, vec![]));
    assert_eq!(h.status, "Progressing", "no Ready yet counts as Unknown");
    let h = health(&script, &obj(2, vec![not_ready]));
    assert_eq!(
        (h.status.as_str(), h.message.as_str()),
        ("Degraded", "not fine")
    );
    let h = health(
        &script,
        &obj(
            2,
            vec![cond("Stalled", "False", "x"), cond("Ready", "True", "ok")],
        ),
    );
    assert_eq!(h.status, "Healthy", "Stalled=False is ignored");
}

#[test]
fn the_flux_and_argo_examples_parse_and_say_what_the_readme_says() {
    let dir = repo_root().join("examples/gitops");
    let docs = |f: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let apps = docs("argocd-application.yaml");
    assert!(apps.iter().all(|a| a["kind"] == "Application"));
    for app in &apps {
        let opts: Vec<&str> = app["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(opts.contains(&"ServerSideApply=true"), "{opts:?}");
        assert!(opts.contains(&"ServerSideDiff=true"), "{opts:?}");
    }
    let ks = docs("flux-kustomization.yaml");
    let k = ks.iter().find(|d| d["kind"] == "Kustomization").unwrap();
    assert_eq!(k["spec"]["wait"], true);
    let exprs = k["spec"]["healthCheckExprs"].as_array().unwrap();
    let kinds: BTreeSet<&str> = exprs.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, KINDS.into_iter().collect());
    for e in exprs {
        for field in ["inProgress", "failed", "current"] {
            let x = e[field].as_str().unwrap();
            assert!(
                x.contains("status.?"),
                "{field} uses safe navigation on status: {x}"
            );
        }
    }
    let hr = docs("flux-helmrelease.yaml");
    let release = hr.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
    assert_eq!(
        release["spec"]["chart"]["spec"]["chart"],
        "./charts/guardrail-operator"
    );
    assert!(
        repo_root()
            .join("charts/guardrail-operator/Chart.yaml")
            .is_file()
    );
}
