//! What the benchmarks against the test control plane share: the generated repository, a
//! plain client's creates, convergence, and the operator's memory and CPU.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Config};
use serde_json::json;

pub const CONCURRENCY: usize = 32;

pub fn objects(n: usize) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::with_capacity(3 * n);
    for i in 0..n {
        let p = format!("p{i:05}");
        out.push(("Policy", json!({"metadata": {"name": p}, "spec": {}})));
        let mut spec = json!({"policy": p, "version": 1, "stage": "Production", "guardrails": {"add": [format!("g{}", i % 40)]}});
        if i % 5 != 0 {
            spec["inherit"] = json!(format!("p{:05}", i - 1));
        }
        out.push((
            "PolicyVersion",
            json!({"metadata": {"name": format!("{p}-v1")}, "spec": spec}),
        ));
        out.push(("PolicyAttachment", json!({"metadata": {"name": format!("a{i:05}")}, "spec": {"policy": p, "teams": [format!("team-{}-*", i % 50)]}})));
    }
    out
}

/// `write` for every object of `objs` in `ns`, `CONCURRENCY` at a time, each with the API of its
/// kind; how long they all took.
async fn for_each_object<F, Fut>(
    client: &Client,
    ns: &str,
    objs: &[(&'static str, serde_json::Value)],
    write: F,
) -> Duration
where
    F: Fn(Api<DynamicObject>, &'static str, serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures::stream::iter(objs.iter().cloned())
        .map(|(kind, body)| {
            let ar =
                ApiResource::from_gvk(&GroupVersionKind::gvk("guardrails.dev", "v1alpha1", kind));
            write(Api::namespaced_with(client.clone(), ns, &ar), kind, body)
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    start.elapsed()
}

pub async fn create_all(
    client: &Client,
    ns: &str,
    objs: &[(&'static str, serde_json::Value)],
) -> Duration {
    for_each_object(client, ns, objs, |api, kind, mut body| async move {
        body["apiVersion"] = json!("guardrails.dev/v1alpha1");
        body["kind"] = json!(kind);
        let obj: DynamicObject = serde_json::from_value(body).unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    })
    .await
}

/// The status a converged object of `kind` carries (the fields the operator sets, with
/// realistic values), as a server-side apply body.
pub fn converged_status(kind: &str, body: &serde_json::Value) -> serde_json::Value {
    let now = "2026-12-06T00:00:00Z";
    let condition = |ty: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": if ty == "Ready" { "True" } else { "False" },
               "reason": reason, "message": message, "lastTransitionTime": now,
               "observedGeneration": 1})
    };
    let conditions = json!([
        condition("Ready", "Reconciled", "reconciled"),
        condition("Reconciling", "Reconciled", "reconciled"),
        condition("Stalled", "Reconciled", "reconciled"),
    ]);
    let name = body["metadata"]["name"].as_str().unwrap_or_default();
    let status = match kind {
        "Policy" => json!({"observedGeneration": 1, "productionVersion": 1, "latestVersion": 1,
            "versions": [{"name": format!("{name}-v1"), "version": 1, "stage": "Production"}],
            "resolvedGuardrails": ["g0", "g1"], "inheritanceChain": [name],
            "conditions": conditions}),
        "PolicyVersion" => json!({"observedGeneration": 1, "stage": "Production",
            "contentHash": format!("sha256:{}", "0".repeat(64)), "publishedAt": now,
            "productionAt": now, "conditions": conditions,
            "tests": {"passed": 0, "failed": 0, "summary": "0/0"}}),
        _ => json!({"observedGeneration": 1, "productionVersion": 1,
            "resolvedGuardrails": ["g0", "g1"], "conditions": conditions}),
    };
    json!({"apiVersion": "guardrails.dev/v1alpha1", "kind": kind,
           "metadata": {"name": name}, "status": status})
}

/// A plain client's server-side apply of [`converged_status`] to every object of `objs` in
/// `ns` (created before), at the creates' concurrency: the API server's cost of one status
/// write per object, with no operator.
pub async fn status_all(
    client: &Client,
    ns: &str,
    objs: &[(&'static str, serde_json::Value)],
) -> Duration {
    for_each_object(client, ns, objs, |api, kind, body| async move {
        let name = body["metadata"]["name"].as_str().unwrap_or_default();
        api.patch_status(
            name,
            &kube::api::PatchParams::apply("scale-bench").force(),
            &kube::api::Patch::Apply(&converged_status(kind, &body)),
        )
        .await
        .unwrap();
    })
    .await
}

/// Every version in production, every attachment Ready, the bundle holding every policy. The
/// bundle is checked first: one GET while it is incomplete, so polling does not load the API
/// server the operator is writing to (two lists of every object per poll did).
pub async fn converged(client: &Client, ns: &str, n: usize) -> bool {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let Some(cm) = cms.get_opt("guardrail-gateway-config").await.unwrap() else {
        return false;
    };
    let data = cm.data.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(
        data.get("resolved.json")
            .map(String::as_str)
            .unwrap_or("{}"),
    )
    .unwrap_or_default();
    if v["policies"].as_object().is_none_or(|p| p.len() != n) {
        return false;
    }
    let list = |kind: &str| {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("guardrails.dev", "v1alpha1", kind));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        async move { api.list(&ListParams::default()).await.unwrap().items }
    };
    let ready = list("PolicyAttachment")
        .await
        .iter()
        .filter(|a| {
            a.data["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .count();
    if ready < n {
        return false;
    }
    let done = list("PolicyVersion")
        .await
        .iter()
        .filter(|v| v.data["status"]["stage"] == "Production")
        .count();
    done >= n
}

/// (peak RSS in KiB, user+system CPU seconds) of a process.
pub fn proc_stat(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0);
    (hwm, ticks / 100.0)
}

/// Create `n` namespaces named `prefix-i`.
pub async fn namespaces(nss: &Api<Namespace>, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for ns in &names {
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    }
    names
}

/// Delete `names` and wait until they are gone (the operator watches every namespace).
pub async fn delete_namespaces(nss: &Api<Namespace>, names: &[String]) {
    for ns in names {
        let _ = nss.delete(ns, &Default::default()).await;
    }
    for ns in names {
        while nss.get_opt(ns).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// A client for the test control plane's kubeconfig, with the repository's CRDs applied.
pub async fn connect(kubeconfig: &str) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    cfg.read_timeout = Some(Duration::from_secs(120));
    let client = Client::try_from(cfg).unwrap();
    let crds = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            kubeconfig,
            "apply",
            "-f",
            concat!(env!("CARGO_MANIFEST_DIR"), "/crds"),
        ])
        .output()
        .unwrap();
    assert!(crds.status.success());
    client
}

/// The binaries to measure: this build ("new"), after those `var` names: a comma-separated list
/// of `path` (labelled "old") or `label=path` items.
pub fn binaries(var: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::env::var(var)
        .ok()
        .into_iter()
        .flat_map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|item| match item.split_once('=') {
                    Some((label, path)) => (label.to_string(), path.to_string()),
                    None => ("old".to_string(), item.to_string()),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.push((
        "new".to_string(),
        env!("CARGO_BIN_EXE_guardrail-operator").to_string(),
    ));
    out
}
