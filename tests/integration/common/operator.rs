//! The operator as a local process, and manifest helpers for the tests that drive it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::{Output, eventually, kubeconfig_path, kubectl_output, repo_root, run};

const T: Duration = Duration::from_secs(60);

/// The operator as a local process, killed when dropped.
pub struct Operator {
    child: tokio::process::Child,
    pub port: u16,
    pub log: PathBuf,
}

/// A port no other listener in this run will be handed.
///
/// Ports come from 20000..32000, below the kernel's ephemeral range (32768..), so no
/// `bind(":0")` listener and no outgoing connection can take one between the moment it is
/// handed out and the moment the operator binds it. Each port is handed out once per
/// process (an atomic cursor, started at a pid-dependent offset so that concurrent test
/// binaries start apart), and skipped when something already listens on it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        (std::process::id() % 40) * (SPAN / 40),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + CURSOR.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}

/// GET a path on 127.0.0.1:port; returns (status, body).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

impl Operator {
    pub async fn start(ns: &str, extra: &[&str]) -> Operator {
        Self::start_with_kubeconfig(ns, extra, &kubeconfig_path()).await
    }

    /// Start with another identity (e.g. a ServiceAccount token).
    pub async fn start_with_kubeconfig(
        ns: &str,
        extra: &[&str],
        kubeconfig: &std::path::Path,
    ) -> Operator {
        Self::start_under(&[], ns, extra, kubeconfig).await
    }

    /// Start pinned to one CPU (`taskset -c <cpu>`): the process, its threads and the blocking
    /// pool share that one core.
    pub async fn start_on_cpu(cpu: usize, ns: &str, extra: &[&str]) -> Operator {
        let cpu = cpu.to_string();
        Self::start_under(&["taskset", "-c", &cpu], ns, extra, &kubeconfig_path()).await
    }

    /// Start as the arguments of `wrapper` (none: directly).
    async fn start_under(
        wrapper: &[&str],
        ns: &str,
        extra: &[&str],
        kubeconfig: &std::path::Path,
    ) -> Operator {
        let port = free_port();
        let log = repo_root()
            .join("target")
            .join(format!("operator-{ns}-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let binary = env!("CARGO_BIN_EXE_guardrail-operator");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => tokio::process::Command::new(binary),
        };
        cmd.args([
            "run",
            "--namespace",
            ns,
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--debounce-ms",
            "50",
        ])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,guardrail_operator=debug")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .kill_on_drop(true);
        let child = cmd.spawn().expect("start guardrail-operator run");
        let op = Operator { child, port, log };
        eventually("the operator's /readyz", T, || async {
            match http_get(port, "/readyz").await {
                Some((200, _)) => Ok(()),
                other => Err(format!(
                    "{other:?}; log:\n{}",
                    std::fs::read_to_string(&op.log).unwrap_or_default()
                )),
            }
        })
        .await;
        op
    }

    /// Stop with SIGTERM and wait (graceful shutdown).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }

    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGKILL (no shutdown of any kind) and wait until the process is gone.
    pub async fn kill_and_wait(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// `kubectl apply -f` of YAML text.
pub async fn apply(yaml: &str) {
    let o = apply_output(yaml, &[]).await;
    assert!(o.success, "kubectl apply: {}{}", o.stdout, o.stderr);
}

/// `kubectl apply -f <yaml> <extra>`, whatever the outcome.
pub async fn apply_output(yaml: &str, extra: &[&str]) -> Output {
    let path = std::env::temp_dir().join(format!(
        "apply-{}-{}.yaml",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&path, yaml).expect("write manifest");
    let mut args = vec!["apply", "-f", path.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    let o = kubectl_output(&args).await;
    let _ = std::fs::remove_file(path);
    o
}

pub fn policy(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{}}\n---\n"
    )
}

pub fn version(ns: &str, policy: &str, v: i64, stage: &str, extra: &str) -> String {
    format!(
        "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {{name: {policy}-v{v}, namespace: {ns}}}\nspec:\n  policy: {policy}\n  version: {v}\n  stage: {stage}\n{extra}---\n"
    )
}

pub fn attachment(ns: &str, name: &str, policy: &str, extra: &str) -> String {
    format!(
        "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  policy: {policy}\n{extra}---\n"
    )
}

/// `examples/policy-repo` copied into `dir` with its namespace replaced by `ns`.
pub fn repo_in_namespace(dir: &Path, ns: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for f in super::yaml_files(&repo_root().join("examples/policy-repo")) {
        let text = std::fs::read_to_string(&f)
            .unwrap()
            .replace("namespace: llm-gateway", &format!("namespace: {ns}"));
        std::fs::write(dir.join(f.file_name().unwrap()), text).unwrap();
    }
    dir.to_path_buf()
}

/// Runs the operator's CLI (the debug build cargo made for this test binary).
pub async fn cli(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_guardrail-operator"), args, &[]).await
}

/// `guardrail-operator render` of a repository directory (its catalog file included).
pub async fn render(dir: &Path) -> Value {
    let d = dir.to_str().unwrap();
    let catalog = dir.join("00-catalog.yaml");
    let out = cli(&[
        "render",
        "-f",
        d,
        "--catalog",
        catalog.to_str().unwrap(),
        "-o",
        "json",
    ])
    .await;
    assert!(out.success, "render -f {d}: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}
