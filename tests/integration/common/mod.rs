//! Test support for the integration tests that run against the real test
//! control plane (`tools/testcp`: kube-apiserver + etcd + garbage collector).
//!
//! Start it with `scripts/test-all.sh`, or by hand:
//!
//! ```text
//! eval "$(scripts/testcp-up.sh)"
//! cargo test --features testcp --test integration
//! scripts/testcp-down.sh
//! ```
//!
//! These tests never skip: without `TESTCP_KUBECONFIG` they fail with a message
//! that says how to start the control plane.

#![allow(dead_code)] // not every test binary uses every helper

pub mod operator;

use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

/// Field manager used by the test support for server-side apply.
pub const FIELD_MANAGER: &str = "guardrail-integration-tests";

const HOW_TO_START: &str = "the test control plane is not running: run `scripts/test-all.sh`, \
     or start it by hand with `eval \"$(scripts/testcp-up.sh)\"` and run \
     `cargo test --features testcp` in the same shell (stop it with `scripts/testcp-down.sh`)";

/// Installs aws-lc-rs as the process-wide rustls crypto provider, once.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first; that one is fine too.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Path of the testcp kubeconfig, from `TESTCP_KUBECONFIG`. Panics (the test
/// fails, it is never skipped) when the control plane is not running.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("TESTCP_KUBECONFIG") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "TESTCP_KUBECONFIG={} does not exist; {HOW_TO_START}",
                p.display()
            );
            p
        }
        _ => panic!("TESTCP_KUBECONFIG is not set; {HOW_TO_START}"),
    }
}

/// The testcp work directory (`TESTCP_DIR`, else the kubeconfig's folder).
pub fn testcp_dir() -> PathBuf {
    match std::env::var_os("TESTCP_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => kubeconfig_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| panic!("TESTCP_DIR is not set; {HOW_TO_START}")),
    }
}

/// A file under the testcp work directory's `pki/` (ca.crt, webhook.crt, ...).
pub fn pki_file(name: &str) -> PathBuf {
    let p = testcp_dir().join("pki").join(name);
    assert!(
        p.is_file(),
        "{} is missing; is TESTCP_DIR right?",
        p.display()
    );
    p
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under tests/integration/fixtures/.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/integration/fixtures").join(rel)
}

/// A kube client for the test control plane (never any other cluster: it
/// reads only `TESTCP_KUBECONFIG`, not `KUBECONFIG`).
pub async fn client() -> Client {
    client_for(&kubeconfig_path()).await
}

/// A kube client for the cluster of a kubeconfig file.
pub async fn client_for(path: &Path) -> Client {
    install_crypto_provider();
    let kc = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", path.display()));
    Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a kube client: {e}"))
}

/// Installs every CustomResourceDefinition found in the repository's `crds/`
/// folder (once per test process) and waits until each is Established. A
/// missing or empty folder installs nothing.
pub async fn install_repo_crds(client: &Client) {
    static DONE: OnceCell<Vec<String>> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        let names = apply_crd_files(client, &yaml_files(&repo_root().join("crds"))).await;
        for n in &names {
            wait_crd_established(client, n, Duration::from_secs(60)).await;
        }
        names
    })
    .await;
}

/// Server-side applies the CRDs from `files` and returns their names. It does
/// not wait; see [`wait_crd_established`].
pub async fn apply_crd_files(client: &Client, files: &[PathBuf]) -> Vec<String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
        for doc in docs {
            if doc.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(doc)
                .unwrap_or_else(|e| panic!("{}: not a CRD: {e}", file.display()));
            let name = crd.name_any();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name} from {}: {e}", file.display()));
            names.push(name);
        }
    }
    names
}

/// `*.yaml`/`*.yml` files directly in `dir`, sorted; none if it is missing.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    files
}

/// Waits until the CRD's `Established` condition is `True`.
pub async fn wait_crd_established(client: &Client, name: &str, timeout: Duration) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    await_condition(&api, name, "condition Established=True", timeout, |crd| {
        crd.and_then(|c| c.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await;
}

/// Installs the smoke-test CRD (fixtures/smoke-crd.yaml) with `kubectl apply`,
/// once per test process, and waits until it is Established.
pub async fn install_smoke_crd(client: &Client) {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        let crd = fixture("smoke-crd.yaml");
        let out = kubectl(&["apply", "-f", path_str(&crd)]).await;
        assert!(
            out.contains("widgets.smoke.guardrail.test"),
            "unexpected kubectl apply output: {out}"
        );
        wait_crd_established(
            client,
            "widgets.smoke.guardrail.test",
            Duration::from_secs(60),
        )
        .await;
    })
    .await;
}

/// A namespace of its own for one test, `it-<test>-<random>`. Dropping it
/// fires the namespace's deletion (the namespace controller finishes it);
/// nothing waits for that.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    /// Creates the namespace and also installs the repository CRDs (once).
    pub async fn new(test: &str) -> Self {
        let client = client().await;
        install_repo_crds(&client).await;
        let name = namespace_name(test);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [("guardrail.test/integration".to_string(), "true".to_string())]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Self { name, client }
    }

    /// A namespaced API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down, so
        // the deletion goes through kubectl; --wait=false returns at once.
        let Some(kc) = std::env::var_os("TESTCP_KUBECONFIG") else {
            return;
        };
        let _ = std::process::Command::new(kubectl_program())
            .arg("--kubeconfig")
            .arg(kc)
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `it-<test>-<6 hex>`, a valid DNS label of at most 63 characters.
pub fn namespace_name(test: &str) -> String {
    let mut slug: String = test
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.truncate(48);
    let slug = slug.trim_matches('-');
    let suffix: u32 = rand::random::<u32>() & 0x00ff_ffff;
    format!("it-{slug}-{suffix:06x}")
}

/// Polls `api.get_opt(name)` until `pred` holds for what it sees (`None` =
/// the object does not exist). On timeout, panics with what was awaited and
/// the last object seen (as YAML-ish JSON), or the last error.
pub async fn await_condition<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(Option<&K>) -> bool,
) -> Option<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    <K as Resource>::DynamicType: Default,
{
    let start = Instant::now();
    loop {
        let last = match api.get_opt(name).await {
            Ok(obj) => {
                if pred(obj.as_ref()) {
                    return obj;
                }
                match &obj {
                    Some(o) => {
                        serde_json::to_string_pretty(o).unwrap_or_else(|e| format!("{o:?} ({e})"))
                    }
                    None => "the object does not exist (404)".to_string(),
                }
            }
            Err(e) => format!("error: {e}"),
        };
        if start.elapsed() > timeout {
            panic!(
                "timed out after {:?} waiting for {} {}/{name} ({what}); last seen:\n{last}",
                timeout,
                K::kind(&Default::default()),
                api.namespace().unwrap_or("<cluster>"),
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the object no longer exists.
pub async fn await_gone<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    <K as Resource>::DynamicType: Default,
{
    await_condition(api, name, "deleted", timeout, |o| o.is_none()).await;
}

/// Retries `probe` until it returns `Ok`, at most for `timeout`; on timeout
/// panics with `what` and the last `Err` it returned.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => {
                if start.elapsed() > timeout {
                    panic!("timed out after {timeout:?} waiting for {what}; last result: {last}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `snapshot` every 250 ms until it has not changed for `quiet`, at most for
/// `timeout` (then panics with `what`); returns the settled value. For "wait until the
/// writes have landed" without guessing a sleep.
pub async fn settled<T, F, Fut>(
    what: &str,
    quiet: Duration,
    timeout: Duration,
    mut snapshot: F,
) -> T
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let start = Instant::now();
    let mut last = snapshot().await;
    let mut since = Instant::now();
    loop {
        if since.elapsed() >= quiet {
            return last;
        }
        if start.elapsed() > timeout {
            panic!("{what}: still changing after {timeout:?}; last: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = snapshot().await;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// The value of an unlabelled Prometheus sample (`name value`), if present.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The kubectl to run: `$KUBECTL` if set, else `kubectl` on PATH.
pub fn kubectl_program() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display()))
}

/// Output of a finished command.
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program with arguments (async, so a webhook served by the same
/// runtime keeps answering) and returns what it printed.
pub async fn run(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).stdin(std::process::Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed / on PATH?)"));
    Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kubectl --kubeconfig $TESTCP_KUBECONFIG <args>`; returns stdout, panics
/// with stdout and stderr if it fails.
pub async fn kubectl(args: &[&str]) -> String {
    succeeded("kubectl", args, kubectl_output(args).await)
}

/// The stdout of a command that must have succeeded; panics with the command line and what it
/// printed otherwise.
pub fn succeeded(program: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.success,
        "{program} {} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// Like [`kubectl`] but returns the outcome instead of asserting success.
pub async fn kubectl_output(args: &[&str]) -> Output {
    let kc = kubeconfig_path();
    let mut all = vec!["--kubeconfig", path_str(&kc)];
    all.extend_from_slice(args);
    run(&kubectl_program(), &all, &[]).await
}

/// The helm binary from `$HELM` (scripts/test-all.sh sets it from
/// scripts/helm-build.sh). Panics with a hint when it is missing.
pub fn helm_program() -> PathBuf {
    match std::env::var_os("HELM") {
        Some(h) if !h.is_empty() => {
            let p = PathBuf::from(h);
            assert!(
                p.is_file(),
                "HELM={} does not exist; build it with scripts/helm-build.sh",
                p.display()
            );
            p
        }
        _ => panic!(
            "HELM is not set: run scripts/test-all.sh, or `export HELM=$(scripts/helm-build.sh)` first"
        ),
    }
}

/// `helm <args> --kubeconfig $TESTCP_KUBECONFIG`, with Helm's cache, config
/// and data folders inside `home` so nothing touches the developer's home.
pub async fn helm(home: &Path, args: &[&str]) -> Output {
    let helm = helm_program();
    let kc = kubeconfig_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--kubeconfig", path_str(&kc)]);
    let cache = home.join("cache");
    let config = home.join("config");
    let data = home.join("data");
    run(
        path_str(&helm),
        &all,
        &[
            ("HELM_CACHE_HOME", &cache),
            ("HELM_CONFIG_HOME", &config),
            ("HELM_DATA_HOME", &data),
        ],
    )
    .await
}

/// `helm template` of the repository's chart as release `release` in namespace `ns`, with the
/// webhook registered by URL at 127.0.0.1:`webhook_port` and limited to `ns`; `extra` are more
/// helm arguments. Returns Helm's home folder (for files the caller writes) and the rendered text.
pub async fn chart_template(
    release: &str,
    ns: &str,
    webhook_port: u16,
    extra: &[&str],
) -> (PathBuf, String) {
    let home = repo_root().join("target").join(format!("helm-{release}"));
    std::fs::create_dir_all(&home).unwrap();
    let chart = repo_root().join("charts/guardrail-operator");
    let selector = format!(
        "webhook.namespaceSelector={{\"matchLabels\":{{\"kubernetes.io/metadata.name\":\"{ns}\"}}}}"
    );
    let url = format!("webhook.url=https://127.0.0.1:{webhook_port}");
    let mut args = vec![
        "template",
        release,
        path_str(&chart),
        "--namespace",
        ns,
        "--set",
        &url,
        "--set-json",
        &selector,
    ];
    args.extend_from_slice(extra);
    let out = helm(&home, &args).await;
    assert!(out.success, "helm template: {}", out.stderr);
    (home, out.stdout)
}

/// The API error inside a kube error, if it is one.
pub fn api_status(err: &kube::Error) -> Option<&kube::core::Status> {
    match err {
        kube::Error::Api(s) => Some(s.as_ref()),
        _ => None,
    }
}
