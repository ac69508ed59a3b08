//! Security on the real API server: the operator works with exactly the documented RBAC rules and
//! refuses to start, naming the rule, when any one of them is missing; the webhook's TLS
//! (versions, key material, rotation); no key material or tokens in logs or events.

use std::time::Duration;

use guardrail_operator::api::{PolicyVersion, Stage};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::chart::token_kubeconfig;
use crate::common::operator::free_port;
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

/// The certificate a TLS server presents, via `openssl s_client` (extra args pick versions and
/// ciphers); None if the handshake fails.
async fn served_cert(port: u16, extra: &[&str]) -> Option<String> {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        connect.as_str(),
        "-servername",
        "localhost",
    ];
    args.extend_from_slice(extra);
    let out = tokio::process::Command::new("openssl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl (the TLS checks use the openssl command line)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text.find("-----END CERTIFICATE-----")? + "-----END CERTIFICATE-----".len();
    out.status.success().then(|| text[start..end].to_string())
}

fn first_cert(pem: &str) -> String {
    guardrail_operator::webhook::certs::first_pem_block(pem)
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn secret_data(ns: &str, name: &str) -> std::collections::BTreeMap<String, String> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(crate::common::client().await, ns);
    api.get(name)
        .await
        .unwrap()
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

#[tokio::test]
async fn managed_certificates_modern_tls_rotation_without_a_gap_and_no_key_material_in_logs() {
    let ns = TestNamespace::new("tls-rotation").await;
    let n = ns.name.as_str();
    let vwc = format!("rot-{n}");
    let (pa, pb) = (free_port(), free_port());
    // Our configuration points at replica A; the operator fills the caBundle.
    apply(&format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: {vwc}}}\nwebhooks:\n- name: versions.guardrails.dev\n  clientConfig: {{url: \"https://127.0.0.1:{pa}/validate/policyversions\"}}\n  admissionReviewVersions: [v1]\n  sideEffects: None\n  timeoutSeconds: 5\n  failurePolicy: Fail\n  namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {n}}}}}\n  rules:\n  - apiGroups: [guardrails.dev]\n    apiVersions: [v1alpha1]\n    resources: [policyversions]\n    operations: [CREATE, UPDATE]\n"
    ))
    .await;
    let args = |port: u16| -> Vec<String> {
        vec![
            format!("--webhook-addr=127.0.0.1:{port}"),
            "--webhook-secret=webhook-tls".into(),
            format!("--webhook-secret-namespace={n}"),
            "--webhook-ip=127.0.0.1".into(),
            format!("--webhook-config={vwc}"),
            "--webhook-cert-check-seconds=1".into(),
        ]
    };
    let (aa, ab) = (args(pa), args(pb));
    let aa: Vec<&str> = aa.iter().map(String::as_str).collect();
    let ab: Vec<&str> = ab.iter().map(String::as_str).collect();
    let (a, b) = tokio::join!(Operator::start(n, &aa), Operator::start(n, &ab));

    // A version the webhook denies: proves the webhook answered (not the failure policy).
    let bad = version(
        n,
        "probe",
        1,
        "Draft",
        "  guardrails: {add: [a]}\n  pipeline:\n    steps: [{guardrail: b}]\n",
    );
    let bad_file = repo_root().join("target").join(format!("bad-{n}.yaml"));
    std::fs::write(&bad_file, &bad).unwrap();
    let bad_path = bad_file.to_str().unwrap().to_string();
    let webhook_answers = move || {
        let p = bad_path.clone();
        async move {
            let o = kubectl_output(&["apply", "--dry-run=server", "-f", &p]).await;
            if !o.success
                && o.stderr
                    .contains("is not in the policy's guardrails.add list")
            {
                Ok(())
            } else {
                Err(o.stdout + &o.stderr)
            }
        }
    };
    eventually(
        "the webhook answers through the API server",
        T,
        &webhook_answers,
    )
    .await;

    // The Secret: kubernetes.io/tls; both replicas serve its certificate, TLS 1.2+ AEAD only.
    let s1 = secret_data(n, "webhook-tls").await;
    let cert1 = first_cert(&s1["tls.crt"]);
    for port in [pa, pb] {
        let served = served_cert(port, &["-tls1_3"])
            .await
            .expect("TLS 1.3 handshake");
        assert_eq!(
            served.trim(),
            cert1,
            "replica on {port} serves the Secret's certificate"
        );
    }
    assert!(
        served_cert(pa, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
            .await
            .is_some(),
        "TLS 1.2 with an AEAD suite is accepted"
    );
    assert!(
        served_cert(pa, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"])
            .await
            .is_none(),
        "a CBC suite must be refused"
    );
    assert!(
        served_cert(pa, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
            .await
            .is_none(),
        "TLS 1.1 must be refused"
    );

    // Rotation: the certificate is near its end (a third of its life left is the trigger).
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let probes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let prober = {
        let (probing, failures, probes) = (probing.clone(), failures.clone(), probes.clone());
        let check = webhook_answers.clone();
        tokio::spawn(async move {
            while probing.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = check().await {
                    failures.lock().unwrap().push(e);
                }
                probes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    kubectl(&[
        "annotate",
        "secret",
        "webhook-tls",
        "-n",
        n,
        &format!("guardrails.dev/not-after={soon}"),
        "--overwrite",
    ])
    .await;
    let cert2 = eventually("a renewed certificate in the Secret", T, || async {
        let s = secret_data(n, "webhook-tls").await;
        let c = first_cert(&s["tls.crt"]);
        if c != cert1 {
            Ok((c, s))
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    let (cert2, s2) = cert2;
    let cas = s2["ca.crt"].matches("-----BEGIN CERTIFICATE-----").count();
    assert_eq!(
        cas, 2,
        "the new CA and the previous one are both trusted during rotation"
    );
    assert!(s2["ca.crt"].contains(&first_cert(&s1["ca.crt"])));
    for port in [pa, pb] {
        eventually(
            &format!("replica on {port} serves the renewed certificate"),
            T,
            || async {
                match served_cert(port, &["-tls1_3"]).await {
                    Some(c) if c.trim() == cert2 => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }
    let bundle = kubectl(&[
        "get",
        "validatingwebhookconfiguration",
        &vwc,
        "-o",
        "jsonpath={.webhooks[0].clientConfig.caBundle}",
    ])
    .await;
    use base64::Engine;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(bundle.trim())
        .unwrap();
    assert_eq!(String::from_utf8(bundle).unwrap(), s2["ca.crt"]);
    // Keep probing a little after both replicas switched, then look at every probe.
    tokio::time::sleep(Duration::from_secs(2)).await;
    probing.store(false, std::sync::atomic::Ordering::SeqCst);
    prober.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "admission failed during rotation ({} of {} probes): {failures:#?}",
        failures.len(),
        probes.load(std::sync::atomic::Ordering::SeqCst)
    );
    eprintln!(
        "rotation: {} admission probes through the API server, 0 failed",
        probes.load(std::sync::atomic::Ordering::SeqCst)
    );

    // No key material or credentials in logs or events.
    let kubeconfig = std::fs::read_to_string(crate::common::kubeconfig_path()).unwrap();
    let client_key = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data:"))
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let key_lines: Vec<String> = [&s1["tls.key"], &s2["tls.key"]]
        .iter()
        .flat_map(|k| {
            k.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_string)
        })
        .collect();
    assert!(!key_lines.is_empty());
    let events = kubectl(&["get", "events", "-n", n, "-o", "json"]).await;
    for (what, text) in [
        ("operator A's log", std::fs::read_to_string(&a.log).unwrap()),
        ("operator B's log", std::fs::read_to_string(&b.log).unwrap()),
        ("the namespace's events", events),
    ] {
        assert!(!text.contains("PRIVATE KEY"), "{what} holds a private key");
        for l in &key_lines {
            assert!(!text.contains(l.as_str()), "{what} holds key material");
        }
        assert!(
            client_key.len() < 20 || !text.contains(&client_key[..40.min(client_key.len())]),
            "{what} holds the client credentials"
        );
    }
    a.stop().await;
    b.stop().await;
    kubectl(&["delete", "validatingwebhookconfiguration", &vwc]).await;
}
