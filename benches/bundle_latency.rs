//! Time from applying a production PolicyVersion to the gateway bundle ConfigMap carrying it,
//! against the real test control plane with the operator running as a process.
//!
//! With `PRELOAD=10000`, that many PolicyVersions (with their Policies and attachments, 1,000
//! per namespace) are created first and converged, and the operator watches every namespace:
//! the latency with a full cluster. With `BENCH_OLD_BIN=<older guardrail-operator>`, the same
//! rounds run with that binary too, side by side.
//!
//! Reproduce: `eval "$(scripts/testcp-up.sh)"; PRELOAD=10000 cargo bench --bench bundle_latency; scripts/testcp-down.sh`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

const ROUNDS: i64 = 20;

/// Start `binary`, wait until the preloaded namespaces have converged, then time `ROUNDS`
/// production versions in a fresh namespace, each until the bundle carries it.
async fn rounds(
    client: &Client,
    kubeconfig: &str,
    binary: &str,
    preloaded: &[String],
    per: usize,
) -> Vec<Duration> {
    let ns = format!("bench-latency-{:06x}", rand::random::<u32>() & 0xffffff);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = vec![
        "run".to_string(),
        "--http-addr".into(),
        format!("127.0.0.1:{port}"),
    ];
    if preloaded.is_empty() {
        args.extend(["--namespace".to_string(), ns.clone()]);
    }
    let mut op = tokio::process::Command::new(binary)
        .args(&args)
        .env("KUBECONFIG", kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let start = Instant::now();
    for p in preloaded {
        while !cluster::converged(client, p, per).await {
            assert!(
                start.elapsed() < Duration::from_secs(1200),
                "{binary}: {p} did not converge"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if !preloaded.is_empty() {
        eprintln!(
            "{binary}: {} preloaded namespaces converged in {:?}",
            preloaded.len(),
            start.elapsed()
        );
    }
    let pp = PatchParams::apply("bench").force();
    let dynapi = |kind: &str| -> Api<kube::core::DynamicObject> {
        let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "guardrails.dev",
            "v1alpha1",
            kind,
        ));
        Api::namespaced_with(client.clone(), &ns, &ar)
    };
    dynapi("Policy")
        .patch("p", &pp, &Patch::Apply(serde_json::json!({"apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy", "metadata": {"name": "p"}, "spec": {}})))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let version_in_bundle = |cm: Option<ConfigMap>| -> Option<i64> {
        let data = cm?.data?;
        let v: serde_json::Value = serde_json::from_str(data.get("resolved.json")?).ok()?;
        v["policies"]["p"]["version"].as_i64()
    };
    tokio::time::sleep(Duration::from_secs(2)).await; // operator caches synced
    let mut samples = Vec::new();
    for i in 1..=ROUNDS {
        let body = serde_json::json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion", "metadata": {"name": format!("p-v{i}")},
            "spec": {"policy": "p", "version": i, "stage": "Production", "guardrails": {"add": [format!("g{i}")]}},
        });
        let start = Instant::now();
        dynapi("PolicyVersion")
            .patch(&format!("p-v{i}"), &pp, &Patch::Apply(body))
            .await
            .unwrap();
        loop {
            if version_in_bundle(cms.get_opt("guardrail-gateway-config").await.unwrap()) == Some(i)
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "round {i} did not converge"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(start.elapsed());
    }
    let _ = op.start_kill();
    let _ = op.wait().await;
    let _ = nss.delete(&ns, &Default::default()).await;
    samples.sort();
    samples
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let path = std::env::var("TESTCP_KUBECONFIG")
        .expect("TESTCP_KUBECONFIG: run `eval \"$(scripts/testcp-up.sh)\"` first");
    let preload: usize = std::env::var("PRELOAD")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let binaries = cluster::binaries("BENCH_OLD_BIN");
    let client = cluster::connect(&path).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let (preloaded, per) = if preload > 0 {
        let spaces = preload.div_ceil(1000);
        let per = preload / spaces;
        let tag = rand::random::<u32>() & 0xffffff;
        let names = cluster::namespaces(&nss, &format!("bench-preload-{tag:06x}"), spaces).await;
        let objs = cluster::objects(per);
        for ns in &names {
            cluster::create_all(&client, ns, &objs).await;
        }
        (names, per)
    } else {
        (Vec::new(), 0)
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| operator | objects already present | rounds | median | p90 | min | max |");
    println!("|---|---|---|---|---|---|---|");
    for (which, binary) in &binaries {
        let samples = rounds(&client, &path, binary, &preloaded, per).await;
        println!(
            "| {which} | {} | {ROUNDS} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            3 * preload,
            ms(samples[samples.len() / 2]),
            ms(samples[samples.len() * 9 / 10]),
            ms(samples[0]),
            ms(samples[samples.len() - 1])
        );
    }
    cluster::delete_namespaces(&nss, &preloaded).await;
}
