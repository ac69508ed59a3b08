//! Scale against the real control plane: N PolicyVersions with their Policies and attachments,
//! written by a plain client with no operator (the raw write rate), then the same objects with
//! the operator running, timed until every status and every bundle have converged. Records the
//! operator's peak RSS and CPU time. Objects are spread 1,000 per namespace (a team's
//! namespace): one namespace's bundle must fit a ConfigMap (1 MiB), and 10,000 policies in
//! one bundle would not.
//!
//! Reproduce: `eval "$(scripts/testcp-up.sh)"; SCALE=1000,10000 cargo bench --bench scale; scripts/testcp-down.sh`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Config};
use serde_json::json;

const CONCURRENCY: usize = 32;

fn objects(n: usize) -> Vec<(&'static str, serde_json::Value)> {
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

async fn create_all(
    client: &Client,
    ns: &str,
    objs: &[(&'static str, serde_json::Value)],
) -> Duration {
    let start = Instant::now();
    futures::stream::iter(objs.iter().cloned())
        .map(|(kind, mut body)| {
            let client = client.clone();
            let ns = ns.to_string();
            async move {
                let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
                    "guardrails.dev",
                    "v1alpha1",
                    kind,
                ));
                body["apiVersion"] = json!("guardrails.dev/v1alpha1");
                body["kind"] = json!(kind);
                let obj: DynamicObject = serde_json::from_value(body).unwrap();
                let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ar);
                api.create(&PostParams::default(), &obj).await.unwrap();
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    start.elapsed()
}

async fn converged(client: &Client, ns: &str, n: usize) -> bool {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "guardrails.dev",
        "v1alpha1",
        "PolicyVersion",
    ));
    let versions: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let list = versions.list(&ListParams::default()).await.unwrap();
    let done = list
        .items
        .iter()
        .filter(|v| v.data["status"]["stage"] == "Production")
        .count();
    if done < n {
        return false;
    }
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "guardrails.dev",
        "v1alpha1",
        "PolicyAttachment",
    ));
    let atts: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let ready = atts
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
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
    v["policies"].as_object().is_some_and(|p| p.len() == n)
}

fn proc_stat(pid: u32) -> (u64, f64) {
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

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Ok(path) = std::env::var("TESTCP_KUBECONFIG") else {
        eprintln!("TESTCP_KUBECONFIG is not set: run `eval \"$(scripts/testcp-up.sh)\"` first");
        return;
    };
    let sizes: Vec<usize> = std::env::var("SCALE")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    cfg.read_timeout = Some(Duration::from_secs(120));
    let client = Client::try_from(cfg).unwrap();
    let crds = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            &path,
            "apply",
            "-f",
            concat!(env!("CARGO_MANIFEST_DIR"), "/crds"),
        ])
        .output()
        .unwrap();
    assert!(crds.status.success());
    let nss: Api<Namespace> = Api::all(client.clone());
    println!(
        "| PolicyVersions (+ Policies, attachments) | raw writes | raw objects/s | with operator: converged | converged objects/s | ratio | peak RSS | operator CPU | per-object cost |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let tag = rand::random::<u32>() & 0xffffff;
        let spaces = n.div_ceil(1000);
        let per = n / spaces;
        let raw_ns: Vec<String> = (0..spaces)
            .map(|i| format!("scale-raw-{n}-{tag:06x}-{i}"))
            .collect();
        let op_ns: Vec<String> = (0..spaces)
            .map(|i| format!("scale-op-{n}-{tag:06x}-{i}"))
            .collect();
        for ns in raw_ns.iter().chain(&op_ns) {
            nss.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
        }
        let objs = objects(per);
        let start = Instant::now();
        for ns in &raw_ns {
            create_all(&client, ns, &objs).await;
        }
        let raw = start.elapsed();
        // The operator watches every namespace: the raw copies must be gone before it starts.
        for ns in &raw_ns {
            let _ = nss.delete(ns, &Default::default()).await;
        }
        for ns in &raw_ns {
            while nss.get_opt(ns).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut op = tokio::process::Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
            .args(["run", "--http-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", &path)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = op.id().unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, cpu0) = proc_stat(pid);
        let start = Instant::now();
        for ns in &op_ns {
            create_all(&client, ns, &objs).await;
        }
        let deadline = Duration::from_secs(900);
        for ns in &op_ns {
            while !converged(&client, ns, per).await {
                assert!(
                    start.elapsed() < deadline,
                    "did not converge within {deadline:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let took = start.elapsed();
        let (hwm_kb, cpu1) = proc_stat(pid);
        let _ = op.start_kill();
        let objects_n = 3 * n;
        println!(
            "| {n} (+{n}, +{n}; {spaces} namespace(s)) | {:.1} s | {:.0} | {:.1} s | {:.0} | {:.0}% | {:.1} MiB | {:.1} s | {:.2} ms |",
            raw.as_secs_f64(),
            objects_n as f64 / raw.as_secs_f64(),
            took.as_secs_f64(),
            objects_n as f64 / took.as_secs_f64(),
            100.0 * raw.as_secs_f64() / took.as_secs_f64(),
            hwm_kb as f64 / 1024.0,
            cpu1 - cpu0,
            1000.0 * took.as_secs_f64() / objects_n as f64,
        );
        for ns in &op_ns {
            let _ = nss.delete(ns, &Default::default()).await;
        }
    }
}
