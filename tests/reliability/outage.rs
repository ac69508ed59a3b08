//! The API server going away under a running operator: the network cut (every connection reset,
//! new ones refused) while it reconciles, and a real kube-apiserver restart (its own testcp on
//! fixed ports, same etcd data and PKI). The operator must recover by itself — same process, no
//! restart — and converge on what changed while it could not see the cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use guardrail_operator::api::{PolicyVersion, Stage};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

use crate::common::operator::{Operator, free_port, policy, version};
use crate::common::{TestNamespace, eventually, kubeconfig_path, repo_root, run};

const T: Duration = Duration::from_secs(90);

/// A TCP proxy in front of the API server that can cut the network.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (d, c) = (down.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(inbound); // refused: closed at once
                    continue;
                }
                let up = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(up).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut c = c.lock().await;
                c.retain(|h| !h.is_finished());
                c.push(task.abort_handle());
            }
        });
        Proxy { port, down, conns }
    }

    /// Reset every open connection and refuse new ones.
    async fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for h in self.conns.lock().await.drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The API server's host:port in a kubeconfig.
fn server_of(kubeconfig: &Path) -> String {
    let v: Value = serde_saphyr::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    v["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_string()
}

/// A copy of a kubeconfig that talks to 127.0.0.1:`port` instead.
fn kubeconfig_via(kubeconfig: &Path, port: u16, out: &Path) {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = format!("https://{}", server_of(kubeconfig));
    std::fs::write(
        out,
        text.replace(&server, &format!("https://127.0.0.1:{port}")),
    )
    .unwrap();
}

async fn kubectl_with(kubeconfig: &Path, args: &[&str]) -> String {
    let mut full = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    full.extend_from_slice(args);
    let o = run(&crate::common::kubectl_program(), &full, &[]).await;
    assert!(o.success, "kubectl {args:?}: {}", o.stderr);
    o.stdout
}

async fn apply_with(kubeconfig: &Path, yaml: &str) {
    let f = std::env::temp_dir().join(format!("outage-{}.yaml", rand::random::<u32>()));
    std::fs::write(&f, yaml).unwrap();
    kubectl_with(kubeconfig, &["apply", "-f", f.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(f);
}

async fn await_production(client: &Client, ns: &str, name: &str) {
    let api: Api<PolicyVersion> = Api::namespaced(client.clone(), ns);
    eventually(&format!("{name} in production"), T, || async {
        let v = api.get(name).await.map_err(|e| e.to_string())?;
        let s = v.status.as_ref();
        if s.and_then(|s| s.stage) == Some(Stage::Production)
            && s.and_then(|s| s.observed_generation) == v.metadata.generation
        {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
}

async fn await_bundle_has(client: &Client, ns: &str, needle: &str) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    eventually(&format!("the bundle to contain {needle}"), T, || async {
        let cm = cms
            .get("guardrail-gateway-config")
            .await
            .map_err(|e| e.to_string())?;
        let data = cm.data.unwrap_or_default();
        match data.get("policies.yaml") {
            Some(p) if p.contains(needle) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn network_cut_during_reconcile_heals_without_a_restart() {
    let ns = TestNamespace::new("netcut").await;
    let n = ns.name.as_str();
    let admin = kubeconfig_path();
    let dir = repo_root().join("target").join(format!("netcut-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let via = dir.join("kubeconfig");
    let proxy = Proxy::start(server_of(&admin)).await;
    kubeconfig_via(&admin, proxy.port, &via);
    let mut op = Operator::start_with_kubeconfig(n, &[], &via).await;
    let client = ns.client.clone();

    apply_with(
        &admin,
        &(policy(n, "p") + &version(n, "p", 1, "Production", "  guardrails: {add: [g1]}\n")),
    )
    .await;
    await_production(&client, n, "p-v1").await;

    let mut recoveries = Vec::new();
    for round in 2..=4 {
        // A burst of work, then the network goes while the operator is on it.
        let mut burst = version(
            n,
            "p",
            round,
            "Production",
            &format!("  guardrails: {{add: [g{round}]}}\n"),
        );
        for i in 0..40 {
            burst.push_str(&policy(n, &format!("q{round}-{i}")));
            burst.push_str(&version(
                n,
                &format!("q{round}-{i}"),
                1,
                "Production",
                &format!("  guardrails: {{add: [h{round}-{i}]}}\n"),
            ));
        }
        apply_with(&admin, &burst).await;
        tokio::time::sleep(Duration::from_millis(60 + 40 * round as u64)).await;
        proxy.cut().await;
        // While cut: more changes the operator cannot see yet.
        apply_with(
            &admin,
            &(policy(n, &format!("late{round}"))
                + &version(
                    n,
                    &format!("late{round}"),
                    1,
                    "Production",
                    &format!("  guardrails: {{add: [late-{round}]}}\n"),
                )),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(op.is_running(), "the operator exited during the outage");
        let back = Instant::now();
        proxy.restore();
        await_production(&client, n, &format!("p-v{round}")).await;
        await_production(&client, n, &format!("late{round}-v1")).await;
        await_production(&client, n, &format!("q{round}-39-v1")).await;
        await_bundle_has(&client, n, &format!("late-{round}")).await;
        recoveries.push(back.elapsed().as_secs_f64());
    }
    assert!(op.is_running());
    eprintln!("network cut: recovered after {recoveries:?} s");
    op.stop().await;
}

/// A testcp of our own on fixed ports, restartable on the same directory.
struct OwnControlPlane {
    dir: PathBuf,
    api_port: u16,
    etcd_port: u16,
    child: Option<tokio::process::Child>,
}

fn testcp_bin() -> String {
    if let Ok(b) = std::env::var("TESTCP_BIN")
        && !b.is_empty()
    {
        return b;
    }
    let o = std::process::Command::new(repo_root().join("scripts/testcp-build.sh"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

impl OwnControlPlane {
    async fn start(&mut self) {
        let ready = self.dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::File::create(self.dir.join("serve.out")).unwrap();
        let child = tokio::process::Command::new(testcp_bin())
            .args([
                "serve",
                "--dir",
                self.dir.to_str().unwrap(),
                "--controllers=none",
                "--keep-dir",
                "--ready-file",
                ready.to_str().unwrap(),
                &format!("--apiserver-port={}", self.api_port),
                &format!("--etcd-port={}", self.etcd_port),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while !ready.exists() {
            assert!(
                start.elapsed() < T,
                "own testcp not ready: {}",
                std::fs::read_to_string(self.dir.join("serve.out")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(60), c.wait()).await;
        }
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn api_server_restart_heals_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("testcp-restart-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cp = OwnControlPlane {
        dir: dir.clone(),
        api_port: free_port(),
        etcd_port: free_port(),
        child: None,
    };
    cp.start().await;
    let kc = dir.join("kubeconfig");
    let crds = repo_root().join("crds");
    kubectl_with(
        &kc,
        &["apply", "--server-side", "-f", crds.to_str().unwrap()],
    )
    .await;
    kubectl_with(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
    )
    .await;
    let n = "restart";
    kubectl_with(&kc, &["create", "namespace", n]).await;
    let client = crate::common::client_for(&kc).await;
    let mut op = Operator::start_with_kubeconfig(n, &[], &kc).await;
    apply_with(
        &kc,
        &(policy(n, "p") + &version(n, "p", 1, "Production", "  guardrails: {add: [g1]}\n")),
    )
    .await;
    await_production(&client, n, "p-v1").await;

    let mut recoveries = Vec::new();
    for round in 2..=3 {
        // Work in flight, then the API server stops; the operator keeps running without it.
        let mut burst = String::new();
        for i in 0..30 {
            burst.push_str(&policy(n, &format!("q{round}-{i}")));
            burst.push_str(&version(
                n,
                &format!("q{round}-{i}"),
                1,
                "Production",
                "  guardrails: {add: [h]}\n",
            ));
        }
        apply_with(&kc, &burst).await;
        cp.stop().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            op.is_running(),
            "the operator exited while the API server was down"
        );
        cp.start().await;
        let back = Instant::now();
        let client = crate::common::client_for(&kc).await;
        apply_with(
            &kc,
            &version(
                n,
                "p",
                round,
                "Production",
                &format!("  guardrails: {{add: [after-restart-{round}]}}\n"),
            ),
        )
        .await;
        await_production(&client, n, &format!("p-v{round}")).await;
        await_production(&client, n, &format!("q{round}-29-v1")).await;
        await_bundle_has(&client, n, &format!("after-restart-{round}")).await;
        recoveries.push(back.elapsed().as_secs_f64());
    }
    assert!(op.is_running());
    eprintln!("API server restart: recovered after {recoveries:?} s");
    op.stop().await;
    cp.stop().await;
}
