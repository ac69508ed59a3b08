//! The lifecycle verbs (`kubectl guardrails new-version | publish | promote | rollback | status`,
//! `resolve --live`, `diff --live`) against the real API server with the operator running, and a
//! check that a verb leaves the same state as the same step done with `kubectl apply`.

use std::time::Duration;

use guardrail_operator::api::{Policy, PolicyVersion, Stage};
use kube::Api;

use crate::common::{TestNamespace, await_condition, eventually, kubeconfig_path};
use crate::controller::{Operator, apply, attachment, policy, version};

const T: Duration = Duration::from_secs(60);

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn verb(ns: &str, args: &[&str]) -> Out {
    let kc = kubeconfig_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["-n", ns, "--kubeconfig", kc.to_str().unwrap()]);
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args(&all)
        .output()
        .await
        .unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

async fn ok(ns: &str, args: &[&str]) -> String {
    let o = verb(ns, args).await;
    assert_eq!(o.code, Some(0), "{args:?}: {}{}", o.stdout, o.stderr);
    o.stdout
}

async fn refused(ns: &str, args: &[&str]) -> String {
    let o = verb(ns, args).await;
    assert_eq!(
        o.code,
        Some(1),
        "{args:?} should be refused: {}{}",
        o.stdout,
        o.stderr
    );
    o.stderr
}

async fn stages(ns: &TestNamespace) -> Vec<(i64, Option<Stage>, Option<Stage>, Option<i64>)> {
    let api: Api<PolicyVersion> = ns.api();
    let mut v: Vec<_> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|v| {
            (
                v.spec.version,
                v.spec.stage,
                v.status.as_ref().and_then(|s| s.stage),
                v.status.as_ref().and_then(|s| s.superseded_by),
            )
        })
        .collect();
    v.sort_by_key(|x| x.0);
    v
}

async fn production(ns: &TestNamespace, p: &str, want: i64) {
    let api: Api<Policy> = ns.api();
    await_condition(&api, p, &format!("production version {want}"), T, |x| {
        x.and_then(|x| x.status.as_ref())
            .and_then(|s| s.production_version)
            == Some(want)
    })
    .await;
}

const V1: &str = "  guardrails: {add: [a, b]}\n  description: first\n";

#[tokio::test]
async fn every_verb_end_to_end_with_refusals() {
    let ns = TestNamespace::new("verbs").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &[]).await;
    apply(
        &(policy(n, "p")
            + &version(n, "p", 1, "Production", V1)
            + &attachment(n, "all", "p", "  scope: \"*\"\n")),
    )
    .await;
    production(&ns, "p", 1).await;

    // new-version: a Draft copy of production; -o yaml --dry-run only prints it.
    let yaml = ok(n, &["new-version", "p", "-o", "yaml", "--dry-run"]).await;
    assert!(
        yaml.contains("name: p-v2")
            && yaml.contains("stage: Draft")
            && yaml.contains("description: first"),
        "{yaml}"
    );
    let versions: Api<PolicyVersion> = ns.api();
    assert!(
        versions.get_opt("p-v2").await.unwrap().is_none(),
        "dry run created nothing"
    );
    let out = ok(n, &["new-version", "p"]).await;
    assert!(
        out.contains("policyversion.guardrails.dev/p-v2 created (Draft copy of version 1)"),
        "{out}"
    );
    let v2 = versions.get("p-v2").await.unwrap();
    assert_eq!(
        v2.spec.guardrails.as_ref().unwrap().add.as_deref(),
        Some(&["a".to_string(), "b".to_string()][..])
    );

    // publish, then promote: v1 is superseded.
    let out = ok(n, &["publish", "p", "2"]).await;
    assert!(
        out.contains("PolicyVersion p-v2 (policy 'p' version 2) is Published"),
        "{out}"
    );
    let err = refused(n, &["publish", "p", "2"]).await;
    assert!(
        err.contains("is already Published (desired); only a Draft can be published"),
        "{err}"
    );
    let out = ok(n, &["promote", "p", "2"]).await;
    assert!(
        out.contains("is Production") && out.contains("version 1 is superseded (now Published)"),
        "{out}"
    );

    // status shows it all.
    let out = ok(n, &["status", "p"]).await;
    assert!(
        out.contains("POLICY p  production: v2  ready: True"),
        "{out}"
    );
    assert!(
        out.contains("guardrails: a, b") && out.contains("attachment all ready: True"),
        "{out}"
    );

    // diff --live: LiteLLM's compare of the two.
    let out = ok(n, &["diff", "p", "1", "2", "--live"]).await;
    assert!(out.contains("have the same content"), "{out}");

    // rollback: v1 takes production back, v2 is Published.
    let out = ok(n, &["rollback", "p"]).await;
    assert!(
        out.contains("rolled back policy 'p'") && out.contains("version 2 is Published"),
        "{out}"
    );
    production(&ns, "p", 1).await;

    // A version whose tests fail cannot be promoted; the verb says what to do.
    apply(&version(n, "p", 3, "Published", "  guardrails: {add: [a]}\n  tests:\n    - name: t\n      messages: [{role: user, content: hi}]\n      mocks: {a: pass}\n      expect: {action: block}\n")).await;
    await_condition(&versions, "p-v3", "Tested=False", T, |v| {
        v.and_then(|v| v.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Tested" && c.status == "False")
        })
    })
    .await;
    let err = refused(n, &["promote", "p", "3"]).await;
    assert!(
        err.contains("failed its tests")
            && err.contains("kubectl guardrails new-version p --from 3"),
        "{err}"
    );
    let err = refused(n, &["promote", "p", "9"]).await;
    assert!(
        err.contains("policy 'p' has no version 9; versions: 1, 2, 3"),
        "{err}"
    );

    // resolve --live answers like the offline resolve.
    let live = ok(n, &["resolve", "--live", "--team", "t", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&live).unwrap();
    assert_eq!(v["matchedPolicies"][0]["policyName"], "p");
    assert_eq!(v["effectiveGuardrails"], serde_json::json!(["a", "b"]));
}

#[tokio::test]
async fn a_verb_leaves_the_same_state_as_kubectl_apply() {
    let by_verb = TestNamespace::new("verb-a").await;
    let by_apply = TestNamespace::new("verb-b").await;
    let (a, b) = (by_verb.name.clone(), by_apply.name.clone());
    let _opa = Operator::start(&a, &[]).await;
    let _opb = Operator::start(&b, &[]).await;
    for n in [&a, &b] {
        apply(
            &(policy(n, "p")
                + &version(n, "p", 1, "Production", V1)
                + &version(n, "p", 2, "Draft", "  guardrails: {add: [c]}\n")),
        )
        .await;
    }
    production(&by_verb, "p", 1).await;
    production(&by_apply, "p", 1).await;

    ok(&a, &["promote", "p", "2"]).await;
    apply(&version(
        &b,
        "p",
        2,
        "Production",
        "  guardrails: {add: [c]}\n",
    ))
    .await;
    production(&by_verb, "p", 2).await;
    production(&by_apply, "p", 2).await;
    eventually("the same stages by verb and by apply", T, || async {
        let (v, a) = (stages(&by_verb).await, stages(&by_apply).await);
        if v == a {
            Ok(())
        } else {
            Err(format!("{v:?} vs {a:?}"))
        }
    })
    .await;

    ok(&a, &["rollback", "p"]).await;
    apply(&(version(&b, "p", 2, "Published", "  guardrails: {add: [c]}\n"))).await;
    production(&by_verb, "p", 1).await;
    production(&by_apply, "p", 1).await;
    eventually("the same stages by verb and by apply", T, || async {
        let (v, a) = (stages(&by_verb).await, stages(&by_apply).await);
        if v == a {
            Ok(())
        } else {
            Err(format!("{v:?} vs {a:?}"))
        }
    })
    .await;
}

/// `kubectl guardrails plan --live` (the binary as a kubectl plugin): the cluster's namespace
/// is the base. The repository as applied plans no change (exit 0 with --detailed-exitcode);
/// promoting research v2 and adding a team's guardrail plans exactly that (exit 2).
#[tokio::test]
async fn plan_live_compares_the_cluster_with_the_files() {
    let ns = TestNamespace::new("plan-live").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &["--catalog-configmap", "guardrail-catalog"]).await;
    let repo = crate::common::repo_root().join("examples/policy-repo");
    let dir = std::env::temp_dir().join(format!("plan-live-{n}"));
    let (same, changed) = (dir.join("same"), dir.join("changed"));
    for d in [&same, &changed] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut all = String::new();
    for f in crate::common::yaml_files(&repo) {
        let text = std::fs::read_to_string(&f)
            .unwrap()
            .replace("namespace: llm-gateway", &format!("namespace: {n}"));
        let name = f.file_name().unwrap();
        std::fs::write(same.join(name), &text).unwrap();
        let edited = if text.contains("name: research-v2,") {
            let at = text.find("name: research-v2,").unwrap();
            format!(
                "{}{}",
                &text[..at],
                text[at..].replacen("stage: Draft", "stage: Production", 1)
            )
        } else {
            text.clone()
        };
        std::fs::write(changed.join(name), &edited).unwrap();
        all.push_str(&text);
        all.push_str("\n---\n");
    }
    std::fs::write(
        changed.join("50-nlp-audit.yaml"),
        format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: nlp-audit, namespace: {n}}}\nspec: {{}}\n---\napiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {{name: nlp-audit-v1, namespace: {n}}}\nspec:\n  policy: nlp-audit\n  version: 1\n  stage: Production\n  guardrails: {{add: [toxicity-filter]}}\n---\napiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {{name: nlp-audit, namespace: {n}}}\nspec:\n  policy: nlp-audit\n  teams: [ops]\n"
        ),
    )
    .unwrap();
    apply(&all).await;
    let policies: Api<Policy> = ns.api();
    for (p, v) in [
        ("research", 1),
        ("org-baseline", 1),
        ("gated", 1),
        ("claude-audit", 1),
    ] {
        await_condition(&policies, p, "in production", T, |x| {
            x.and_then(|x| x.status.as_ref())
                .and_then(|s| s.production_version)
                == Some(v)
        })
        .await;
    }

    // As a kubectl plugin.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let plugin = bin.join("kubectl-guardrails");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_guardrail-operator"), &plugin).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = crate::common::kubectl_program();
    let plan = |files: std::path::PathBuf| {
        let (path, kubectl) = (path.clone(), kubectl.clone());
        let catalog = files.join("00-catalog.yaml");
        async move {
            tokio::process::Command::new(&kubectl)
                .args(["guardrails", "plan", "--live", "-n", n, "-f"])
                .arg(&files)
                .arg("--catalog")
                .arg(&catalog)
                .args(["-o", "json", "--detailed-exitcode"])
                .env("PATH", path)
                .env("KUBECONFIG", kubeconfig_path())
                .output()
                .await
                .unwrap()
        }
    };
    let o = plan(same.clone()).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "the applied repository plans no change: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = plan(changed.clone()).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["namespace"], n);
    assert_eq!(
        p["production"]["entering"],
        serde_json::json!([{"policy": "nlp-audit", "version": 1}])
    );
    assert_eq!(p["production"]["replacing"][0]["policy"], "research");
    assert_eq!(p["production"]["replacing"][0]["to"], 2);
    let changed_classes = p["requests"]["changed"].as_array().unwrap();
    assert!(
        changed_classes
            .iter()
            .any(|c| c["added"] == serde_json::json!(["toxicity-filter"])
                && c["example"]["team"] == "ops"),
        "{changed_classes:?}"
    );
    assert!(
        changed_classes
            .iter()
            .any(|c| c["added"] == serde_json::json!(["audit-logger"])
                && c["example"]["team"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("research-"))),
        "{changed_classes:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
