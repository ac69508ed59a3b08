//! Time from applying a production PolicyVersion to the gateway bundle ConfigMap carrying it,
//! against the real test control plane with the operator running as a process.
//!
//! Reproduce: `eval "$(scripts/testcp-up.sh)"; cargo bench --bench bundle_latency; scripts/testcp-down.sh`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

const ROUNDS: i64 = 20;

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let path = std::env::var("TESTCP_KUBECONFIG")
        .expect("TESTCP_KUBECONFIG: run `eval \"$(scripts/testcp-up.sh)\"` first");
    let kc = Kubeconfig::read_from(&path).unwrap();
    let client = Client::try_from(
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let ns = format!("bench-latency-{:06x}", rand::random::<u32>() & 0xffffff);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .unwrap();
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut op = tokio::process::Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args([
            "run",
            "--namespace",
            &ns,
            "--http-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("KUBECONFIG", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
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
    let _ = nss.delete(&ns, &Default::default()).await;
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "apply production version -> bundle ConfigMap updated, {ROUNDS} rounds: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms (operator debounce 100 ms)",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}
