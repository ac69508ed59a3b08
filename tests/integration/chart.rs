//! The Helm chart: lint, golden `helm template` output for the main value combinations, and
//! install / upgrade / uninstall against the real API server with the operator running as a
//! local process under the chart's own ServiceAccount (so the chart's RBAC is what it gets).

use std::path::PathBuf;
use std::time::Duration;

use guardrail_operator::api::{PolicyVersion, Stage};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::common::{
    TestNamespace, await_condition, eventually, helm, kubectl, kubectl_output, repo_root,
};
use crate::controller::{Operator, apply, attachment, policy, version};

const T: Duration = Duration::from_secs(90);

fn chart() -> String {
    repo_root()
        .join("charts/guardrail-operator")
        .to_string_lossy()
        .into_owned()
}

fn helm_home(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("helm-home-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn chart_lints_clean() {
    let out = helm(&helm_home("lint"), &["lint", "--strict", &chart()]).await;
    assert!(out.success, "helm lint:\n{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("0 chart(s) failed"), "{}", out.stdout);
}

#[tokio::test]
async fn golden_templates_for_the_main_value_combinations() {
    let values = repo_root().join("tests/chart/values");
    let golden = repo_root().join("tests/chart/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&values)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 3);
    for v in names {
        let stem = v.file_stem().unwrap().to_string_lossy().into_owned();
        let out = helm(
            &helm_home("tpl"),
            &[
                "template",
                "guardrails",
                &chart(),
                "-n",
                "guardrail-system",
                "-f",
                v.to_str().unwrap(),
            ],
        )
        .await;
        assert!(out.success, "helm template {stem}: {}", out.stderr);
        let path = golden.join(format!("{stem}.yaml"));
        if update {
            std::fs::write(&path, &out.stdout).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == out.stdout,
            "helm template with {stem}.yaml differs from tests/chart/golden/{stem}.yaml; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff"
        );
    }
}

#[tokio::test]
async fn schema_rejects_unknown_and_invalid_values() {
    let out = helm(
        &helm_home("schema"),
        &[
            "template",
            "g",
            &chart(),
            "--set",
            "webhook.certMode=selfmade",
        ],
    )
    .await;
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("at '/webhook/certMode': value must be one of 'operator', 'cert-manager'"),
        "{}",
        out.stderr
    );
    let out = helm(
        &helm_home("schema"),
        &["template", "g", &chart(), "--set", "replicas=3"],
    )
    .await;
    assert!(
        out.stderr
            .contains("additional properties 'replicas' not allowed"),
        "{}",
        out.stderr
    );
}

/// A kubeconfig for a ServiceAccount token, against the test control plane.
pub fn token_kubeconfig(dir: &std::path::Path, token: &str) -> PathBuf {
    let admin = std::fs::read_to_string(crate::common::kubeconfig_path()).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&admin).unwrap();
    let cluster = &v["clusters"][0]["cluster"];
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testcp\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: testcp, user: sa}}\ncurrent-context: sa\n",
        cluster["server"].as_str().unwrap(),
        cluster["certificate-authority-data"].as_str().unwrap()
    );
    let path = dir.join("sa-kubeconfig");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test]
async fn helm_install_upgrade_uninstall_with_the_charts_rbac() {
    let ns = TestNamespace::new("helm").await;
    let n = ns.name.as_str();
    let release = format!("g{}", &n[n.len() - 6..]);
    let home = helm_home(&release);
    let port = crate::common::operator::free_port();
    let selector =
        format!("webhook.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={n}");
    let common = [
        "--set",
        "replicaCount=1",
        "--set",
        &format!("webhook.url=https://127.0.0.1:{port}"),
        "--set",
        &selector,
        "--set",
        &format!("operator.watchNamespace={n}"),
    ];
    let chart_dir = chart();
    let mut args = vec![
        "install",
        &release,
        &chart_dir[..],
        "-n",
        n,
        "--no-hooks",
        "--take-ownership",
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(&common);
    let out = helm(&home, &args).await;
    assert!(out.success, "helm install:\n{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("guardrail-operator 0.1.0 is installed"),
        "NOTES: {}",
        out.stdout
    );
    for crd in [
        "policies.guardrails.dev",
        "policyversions.guardrails.dev",
        "policyattachments.guardrails.dev",
    ] {
        kubectl(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=60s",
        ])
        .await;
    }
    let fullname = format!("{release}-guardrail-operator");
    let deployments: Api<Deployment> = ns.api();
    let dep = deployments.get(&fullname).await.expect("the Deployment");
    let pod = dep.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop.unwrap(), vec!["ALL"]);
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    kubectl(&["get", "serviceaccount", &fullname, "-n", n]).await;
    kubectl(&[
        "get",
        "validatingwebhookconfiguration",
        &format!("{fullname}.guardrails.dev"),
    ])
    .await;

    // Run the operator locally with the chart's ServiceAccount and the chart's arguments.
    let token = kubectl(&["create", "token", &fullname, "-n", n, "--duration=1h"]).await;
    let kc = token_kubeconfig(&home, token.trim());
    let args: Vec<String> = c.args.clone().unwrap();
    let mut local: Vec<String> = args
        .into_iter()
        .skip(1) // "run"
        .filter(|a| {
            ![
                "--http-addr",
                "--webhook-addr",
                "--namespace",
                "--debounce-ms",
            ]
            .iter()
            .any(|f| a.starts_with(f))
        })
        .collect();
    local.extend([
        format!("--webhook-addr=127.0.0.1:{port}"),
        "--webhook-ip=127.0.0.1".into(),
        format!("--lease-namespace={n}"),
        format!("--webhook-secret-namespace={n}"),
    ]);
    let local_refs: Vec<&str> = local.iter().map(String::as_str).collect();
    let _op = Operator::start_with_kubeconfig(n, &local_refs, &kc).await;

    // The webhook answers through the chart's configuration (caBundle filled by the operator).
    let bad = version(
        n,
        "probe",
        1,
        "Draft",
        "  guardrails: {add: [a]}\n  pipeline:\n    steps: [{guardrail: b}]\n",
    );
    let path = home.join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    eventually("the chart's webhook denies bad content", T, || async {
        let o = kubectl_output(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]).await;
        if !o.success
            && o.stderr
                .contains("is not in the policy's guardrails.add list")
        {
            Ok(())
        } else {
            Err(format!("{}{}", o.stdout, o.stderr))
        }
    })
    .await;
    // The controller converges with the chart's RBAC.
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
    kubectl(&["get", "configmap", "guardrail-gateway-config", "-n", n]).await;

    // Upgrade: two replicas bring a PodDisruptionBudget.
    let mut args = vec![
        "upgrade",
        &release,
        &chart_dir[..],
        "-n",
        n,
        "--no-hooks",
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--set", "replicaCount=2"]);
    let out = helm(&home, &args).await;
    assert!(out.success, "helm upgrade:\n{}{}", out.stdout, out.stderr);
    kubectl(&["get", "poddisruptionbudget", &fullname, "-n", n]).await;

    // Uninstall keeps the CRDs (and so every policy).
    let out = helm(
        &home,
        &[
            "uninstall",
            &release,
            "-n",
            n,
            "--no-hooks",
            "--timeout",
            "60s",
        ],
    )
    .await;
    assert!(out.success, "helm uninstall:\n{}{}", out.stdout, out.stderr);
    assert!(
        kubectl_output(&["get", "deployment", &fullname, "-n", n])
            .await
            .stderr
            .contains("NotFound")
    );
    kubectl(&["get", "crd", "policyversions.guardrails.dev"]).await;
    kubectl(&["get", "policyversion", "p-v1", "-n", n]).await;
}
