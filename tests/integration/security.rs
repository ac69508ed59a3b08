//! Security on the real API server: the operator works with exactly the documented RBAC rules and
//! refuses to start, naming the rule, when any one of them is missing; the webhook's TLS
//! (versions, key material, rotation); no key material or tokens in logs or events.

use std::time::Duration;

use guardrail_operator::api::{PolicyVersion, Stage};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::chart::token_kubeconfig;
use crate::common::{
    TestNamespace, await_condition, eventually, kubectl, kubectl_output, repo_root,
};
use crate::controller::{Operator, apply, attachment, policy, version};

const T: Duration = Duration::from_secs(60);

/// One RBAC permission of the documented list: (apiGroup, resource, verb, resourceName).
type Rule = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// The documented rules (README "Least-privilege RBAC", the chart's ClusterRole and Role) for
/// `run --namespace N --leader-elect --gateway-deployment gw --webhook-secret tls`.
fn documented_rules() -> Vec<Rule> {
    let mut r: Vec<Rule> = Vec::new();
    let g = "guardrails.dev";
    for res in ["policies", "policyattachments"] {
        for v in ["get", "list", "watch"] {
            r.push((g, res, v, None));
        }
    }
    for v in ["get", "list", "watch", "patch", "delete"] {
        r.push((g, "policyversions", v, None));
    }
    for res in [
        "policies/status",
        "policyversions/status",
        "policyattachments/status",
    ] {
        for v in ["get", "patch"] {
            r.push((g, res, v, None));
        }
    }
    for v in ["get", "list", "watch", "create", "patch", "delete"] {
        r.push(("", "configmaps", v, None));
    }
    for v in ["create", "patch"] {
        r.push(("events.k8s.io", "events", v, None));
    }
    for v in ["get", "create", "update", "patch"] {
        r.push(("coordination.k8s.io", "leases", v, None));
    }
    for v in ["get", "list", "watch", "patch"] {
        r.push(("apps", "deployments", v, None));
    }
    r.push(("", "secrets", "create", None));
    for v in ["get", "update"] {
        r.push(("", "secrets", v, Some("webhook-tls")));
    }
    r
}

fn role_yaml(ns: &str, name: &str, rules: &[Rule]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: {ns}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: {ns}}}\nrules:\n"
    );
    for (group, res, verb, rn) in rules {
        y.push_str(&format!(
            "- apiGroups: [\"{group}\"]\n  resources: [\"{res}\"]\n  verbs: [\"{verb}\"]\n"
        ));
        if let Some(n) = rn {
            y.push_str(&format!("  resourceNames: [\"{n}\"]\n"));
        }
    }
    y.push_str(&format!(
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}\nsubjects:\n- {{kind: ServiceAccount, name: {name}, namespace: {ns}}}\n"
    ));
    y
}

/// What the operator prints for a missing rule.
fn missing_line(ns: &str, (group, res, verb, rn): &Rule) -> String {
    let group = if group.is_empty() { "core" } else { group };
    let named = rn.map(|n| format!(" named {n}")).unwrap_or_default();
    format!("  - {verb} {res} (apiGroup {group}){named} in namespace {ns}")
}

fn run_args(ns: &str, webhook_port: u16) -> Vec<String> {
    [
        "--leader-elect",
        "--lease-seconds=4",
        "--gateway-deployment=gw",
        "--webhook-secret=webhook-tls",
        "--webhook-ip=127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--lease-namespace={ns}"),
        format!("--webhook-secret-namespace={ns}"),
        format!("--webhook-addr=127.0.0.1:{webhook_port}"),
    ])
    .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn sa_kubeconfig(ns: &str, sa: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let token = kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]).await;
    let d = dir.join(sa);
    std::fs::create_dir_all(&d).unwrap();
    token_kubeconfig(&d, token.trim())
}

#[tokio::test]
async fn rbac_exactly_the_documented_rules_work_and_each_missing_rule_is_named() {
    let ns = TestNamespace::new("rbac").await;
    let n = ns.name.as_str();
    let rules = documented_rules();
    let dir = repo_root().join("target").join(format!("rbac-{n}"));
    std::fs::create_dir_all(&dir).unwrap();

    // One ServiceAccount with all the rules, and one per rule with that rule left out.
    let mut manifests = role_yaml(n, "all", &rules);
    for i in 0..rules.len() {
        let mut fewer = rules.clone();
        fewer.remove(i);
        manifests.push_str("---\n");
        manifests.push_str(&role_yaml(n, &format!("without-{i}"), &fewer));
    }
    apply(&manifests).await;
    // RBAC is served from an informer cache: wait until the last binding is effective.
    let last = format!("system:serviceaccount:{n}:without-{}", rules.len() - 1);
    eventually("the RBAC bindings to take effect", T, || async {
        let o = kubectl_output(&[
            "auth",
            "can-i",
            "list",
            "policies.guardrails.dev",
            "-n",
            n,
            "--as",
            &last,
        ])
        .await;
        if o.stdout.trim() == "yes" {
            Ok(())
        } else {
            Err(o.stdout + &o.stderr)
        }
    })
    .await;

    // Each rule left out: the operator refuses to start and names exactly that rule.
    let binary = env!("CARGO_BIN_EXE_guardrail-operator");
    for (i, rule) in rules.iter().enumerate() {
        let kc = sa_kubeconfig(n, &format!("without-{i}"), &dir).await;
        let mut args = vec![
            "run".to_string(),
            format!("--namespace={n}"),
            format!("--http-addr=127.0.0.1:{}", free_port()),
        ];
        args.extend(run_args(n, free_port()));
        let out = tokio::time::timeout(
            T,
            tokio::process::Command::new(binary)
                .args(&args)
                .env("KUBECONFIG", &kc)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("without {rule:?}: the operator did not exit"))
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "without {rule:?}:\n{stderr}");
        let want = missing_line(n, rule);
        assert!(
            stderr.contains(&format!(
                "user system:serviceaccount:{n}:without-{i} lacks 1 permission(s) the operator needs:\n{want}\n"
            )),
            "without {rule:?}, expected exactly\n{want}\nin:\n{stderr}"
        );
        assert!(stderr.contains("Least-privilege RBAC"), "{stderr}");
    }

    // All of them: it starts, leads, serves the webhook and converges.
    let kc = sa_kubeconfig(n, "all", &dir).await;
    let args = run_args(n, free_port());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = Operator::start_with_kubeconfig(n, &refs, &kc).await;
    apply(
        &(policy(n, "p")
            + &version(n, "p", 1, "Production", "  guardrails: {add: [g]}\n")
            + &attachment(n, "a", "p", "  scope: \"*\"\n")),
    )
    .await;
    let versions: Api<PolicyVersion> = ns.api();
    await_condition(&versions, "p-v1", "Production", T, |v| {
        v.and_then(|v| v.status.as_ref()).and_then(|s| s.stage) == Some(Stage::Production)
    })
    .await;
    let cms: Api<ConfigMap> = ns.api();
    await_condition(&cms, "guardrail-gateway-config", "the bundle", T, |c| {
        c.is_some()
    })
    .await;
    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(
        !log.contains("forbidden") && !log.contains("Forbidden"),
        "no permission errors with the documented rules:\n{log}"
    );
    op.stop().await;
}
