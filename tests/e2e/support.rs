//! Helpers shared by the end-to-end tests: podman, the repository copied into a test namespace,
//! `guardrail-operator render` of it, the bundle in the cluster, and a TCP "Service".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

use crate::common::{Output, eventually, run};

/// The image scripts/image-build.sh built (`$GUARDRAIL_IMAGE`, which scripts/test-all.sh sets
/// from it), else the reference it builds for this crate version.
pub fn local_image() -> String {
    std::env::var("GUARDRAIL_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| format!("localhost/guardrail-operator:{}", env!("CARGO_PKG_VERSION")))
}

/// The global podman options of every call: crun refuses this kernel's hybrid cgroups.
const PODMAN: &[&str] = &["--runtime", "runc"];

/// Resource limits for `podman run`, inside the host's hard limits (podman's defaults are
/// above them and fail with `setrlimit ... Operation not permitted`).
pub fn ulimits() -> Vec<String> {
    let hard = |flag: &str, cap: u64| -> u64 {
        std::process::Command::new("sh")
            .args(["-c", &format!("ulimit -H{flag}")])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(cap)
            .min(cap)
    };
    let nofile = hard("n", 65536);
    let nproc = hard("u", 8192);
    vec![
        format!("--ulimit=nofile={nofile}:{nofile}"),
        format!("--ulimit=nproc={nproc}:{nproc}"),
    ]
}

pub async fn podman_output(args: &[&str]) -> Output {
    let mut all: Vec<&str> = PODMAN.to_vec();
    all.extend_from_slice(args);
    run("podman", &all, &[]).await
}

/// `podman <args>`; panics with what it printed when it fails.
pub async fn podman(args: &[&str]) -> String {
    crate::common::succeeded("podman", args, podman_output(args).await)
}

/// Removes containers when dropped (also when a test panics).
#[derive(Default)]
pub struct Containers(pub Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::process::Command::new("podman")
                .args(PODMAN)
                .args(["rm", "--force", "--time", "0", name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Deletes cluster-scoped objects when dropped (`kind/name` for kubectl).
#[derive(Default)]
pub struct ClusterObjects(pub Vec<String>);

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        let Some(kc) = std::env::var_os("TESTCP_KUBECONFIG") else {
            return;
        };
        for o in &self.0 {
            let _ = std::process::Command::new(crate::common::kubectl_program())
                .arg("--kubeconfig")
                .arg(&kc)
                .args(["delete", o, "--ignore-not-found", "--wait=false"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Waits until the namespace's bundle ConfigMap holds exactly `rendered`'s data (the contract:
/// the bundle equals `render` of the objects in the cluster) and returns it.
pub async fn await_bundle(cms: &Api<ConfigMap>, rendered: &Value, timeout: Duration) -> ConfigMap {
    let name = rendered["metadata"]["name"].as_str().unwrap().to_string();
    eventually(
        "the bundle to equal `render` of the repository",
        timeout,
        || async {
            let cm = cms.get(&name).await.map_err(|e| e.to_string())?;
            let data = cm.data.clone().unwrap_or_default();
            for key in ["policies.yaml", "resolved.json"] {
                if Some(data.get(key).map(String::as_str).unwrap_or(""))
                    != rendered["data"][key].as_str()
                {
                    return Err(format!(
                        "{key} differs; in the cluster:\n{}",
                        data.get(key).cloned().unwrap_or_default()
                    ));
                }
            }
            Ok(cm)
        },
    )
    .await
}

/// A stand-in for a Kubernetes Service: a TCP listener on 127.0.0.1 that forwards each
/// connection to the first backend (rotating) that accepts it, as kube-proxy spreads a
/// Service's connections over ready endpoints.
pub struct Service {
    pub port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    pub async fn start() -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backends: Arc<Mutex<Vec<u16>>> = Arc::default();
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let ports = shared.lock().unwrap().clone();
                next = next.wrapping_add(1);
                tokio::spawn(async move {
                    for i in 0..ports.len() {
                        let port = ports[(next + i) % ports.len()];
                        if let Ok(mut out) =
                            tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            return;
                        }
                    }
                });
            }
        });
        Service {
            port,
            backends,
            task,
        }
    }

    pub fn set_backends(&self, ports: &[u16]) {
        *self.backends.lock().unwrap() = ports.to_vec();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The API server's port, from the test control plane's kubeconfig.
pub fn apiserver_port() -> u16 {
    let text = std::fs::read_to_string(crate::common::kubeconfig_path()).unwrap();
    let kc: Value = serde_saphyr::from_str(&text).unwrap();
    let server = kc["clusters"][0]["cluster"]["server"].as_str().unwrap();
    server.rsplit(':').next().unwrap().parse().unwrap()
}

/// Multi-document YAML split into documents (text and parsed), empty ones left out.
pub fn documents(yaml: &str) -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut flush = |cur: &mut String| {
        let v: Value = serde_saphyr::from_str(cur).unwrap_or(Value::Null);
        if v.is_object() {
            docs.push((std::mem::take(cur), v));
        } else {
            cur.clear();
        }
    };
    for line in yaml.lines() {
        if line.starts_with("---") {
            flush(&mut cur);
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    flush(&mut cur);
    docs
}
