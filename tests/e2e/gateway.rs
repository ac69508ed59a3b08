//! The gateway, for real: a LiteLLM 1.110.2 proxy process (from the cached venv, no database)
//! started the way `examples/gateway/litellm.yaml` runs it (its args, env and probes, and its
//! config directory built from the Deployment's projected volume, file by file, from the
//! ConfigMaps in the cluster, as the kubelet projects them), enforcing the bundle the operator
//! wrote for `examples/policy-repo`.
//!
//! Chat requests varying team, key, model and tags are checked against `guardrail-operator
//! resolve`: the proxy's `x-litellm-applied-policies` (in order), `x-litellm-policy-sources` and
//! `x-litellm-applied-guardrails` headers, and its refusals naming the guardrail. Then a version
//! is promoted with kubectl, the proxy restarts on the new bundle (as the Deployment's roll does),
//! and the new version is what it enforces.
//!
//! Test-only addition to the example's config: `general_settings.custom_auth`
//! (`tests/e2e/custom_auth.py`), which reads the team and key alias from the bearer token, since
//! there is no database of keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value, json};

use crate::common::operator::{Operator, cli, free_port, http_get, render, repo_in_namespace};
use crate::common::{TestNamespace, eventually, kubectl, repo_root, run};
use crate::support::{await_bundle, documents};

const T: Duration = Duration::from_secs(90);
/// The proxy imports a large part of litellm at start; on a loaded 2-core machine that is slow.
const START: Duration = Duration::from_secs(240);

fn python() -> String {
    match std::env::var("ORACLE_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "ORACLE_PYTHON is not set: run scripts/test-all.sh, or export ORACLE_PYTHON=$(tests/conformance/setup-oracle.sh)"
        ),
    }
}

/// A LiteLLM proxy process, killed when dropped.
struct Gateway {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl Gateway {
    /// Starts the proxy of `deployment` (the example's Deployment) in namespace `ns`.
    async fn start(deployment: &Value, ns: &TestNamespace, dir: &Path) -> Gateway {
        let pod = &deployment["spec"]["template"]["spec"];
        let c = &pod["containers"][0];

        // The config directory: the projected volume, each source as the kubelet writes it.
        let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
        let volume_name = c["volumeMounts"][0]["name"].as_str().unwrap();
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == volume_name)
            .unwrap();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let cms: Api<ConfigMap> = ns.api();
        for source in volume["projected"]["sources"].as_array().unwrap() {
            let name = source["configMap"]["name"]
                .as_str()
                .expect("configMap sources only");
            let data = cms.get(name).await.unwrap().data.unwrap_or_default();
            match source["configMap"]["items"].as_array() {
                Some(items) => {
                    for item in items {
                        let key = item["key"].as_str().unwrap();
                        let path = item["path"].as_str().unwrap();
                        std::fs::write(dir.join(path), &data[key]).unwrap();
                    }
                }
                None => {
                    for (key, value) in &data {
                        std::fs::write(dir.join(key), value).unwrap();
                    }
                }
            }
        }
        // Test-only: custom auth instead of a key database.
        let config_path = dir.join("config.yaml");
        let mut config: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        config["general_settings"]["custom_auth"] = json!("custom_auth.user_api_key_auth");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        std::fs::copy(
            repo_root().join("tests/e2e/custom_auth.py"),
            dir.join("custom_auth.py"),
        )
        .unwrap();

        // Args with the mount mapped to the directory and the port to a free one.
        let port = free_port();
        let mut args: Vec<String> = vec!["-m".into(), "litellm.proxy.proxy_cli".into()];
        let mut given = c["args"].as_array().unwrap().iter();
        while let Some(a) = given.next() {
            let a = a.as_str().unwrap();
            args.push(a.to_string());
            if a == "--port" {
                given.next();
                args.push(port.to_string());
            } else if a == "--config" {
                let path = given.next().unwrap().as_str().unwrap();
                let rel = path.strip_prefix(mount).unwrap().trim_start_matches('/');
                args.push(dir.join(rel).to_str().unwrap().to_string());
            }
        }
        args.extend(["--host".into(), "127.0.0.1".into()]);

        let log = repo_root()
            .join("target")
            .join(format!("litellm-{}-{port}.log", ns.name));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = tokio::process::Command::new(python());
        cmd.args(&args)
            .current_dir(dir)
            .env("LITELLM_LOG", "INFO")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true);
        let secrets: Api<Secret> = ns.api();
        for e in c["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    let s = secrets.get(r["name"].as_str().unwrap()).await.unwrap();
                    let bytes = &s.data.unwrap()[r["key"].as_str().unwrap()];
                    String::from_utf8(bytes.0.clone()).unwrap()
                }
            };
            cmd.env(name, value);
        }
        let child = cmd.spawn().expect("start the LiteLLM proxy");
        let gw = Gateway { child, port, log };

        // The Deployment's probes, by port name.
        let started = std::time::Instant::now();
        for probe in ["readinessProbe", "livenessProbe"] {
            let path = c[probe]["httpGet"]["path"].as_str().unwrap();
            assert_eq!(c[probe]["httpGet"]["port"], c["ports"][0]["name"]);
            eventually(&format!("the proxy's {probe} {path}"), START, || async {
                match http_get(port, path).await {
                    Some((200, _)) => Ok(()),
                    other => Err(format!("{other:?}\n{}", gw.log_tail())),
                }
            })
            .await;
        }
        eprintln!(
            "LiteLLM proxy ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        gw
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// What the proxy answered.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

/// A request context: team alias, key alias, model, tags.
#[derive(Clone, Debug)]
struct Context {
    team: Option<&'static str>,
    key: Option<&'static str>,
    model: &'static str,
    tags: Vec<&'static str>,
}

async fn chat(port: u16, ctx: &Context, text: &str) -> Reply {
    let mut auth = Vec::new();
    if let Some(t) = ctx.team {
        auth.push(format!("team={t}"));
    }
    if let Some(k) = ctx.key {
        auth.push(format!("key={k}"));
    }
    if auth.is_empty() {
        auth.push("anonymous".into());
    }
    let body = json!({
        "model": ctx.model,
        "messages": [{"role": "user", "content": text}],
        "metadata": {"tags": ctx.tags},
    });
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let header = format!("Authorization: Bearer {}", auth.join(","));
    let data = body.to_string();
    let out = run(
        "curl",
        &[
            "-s",
            "-i",
            "--max-time",
            "60",
            &url,
            "-H",
            &header,
            "-H",
            "Content-Type: application/json",
            "-d",
            &data,
        ],
        &[],
    )
    .await;
    assert!(out.success, "curl: {}", out.stderr);
    let (head, body) = out.stdout.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    }
}

/// `guardrail-operator resolve` for a context, on the repository directory.
async fn resolve(repo: &Path, ctx: &Context) -> Value {
    let mut args = vec!["resolve", "-f", repo.to_str().unwrap(), "-o", "json"];
    if let Some(t) = ctx.team {
        args.extend(["--team", t]);
    }
    if let Some(k) = ctx.key {
        args.extend(["--key", k]);
    }
    args.extend(["--model", ctx.model]);
    for t in &ctx.tags {
        args.extend(["--tag", t]);
    }
    let out = cli(&args).await;
    assert!(out.success, "resolve: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn contexts() -> Vec<Context> {
    let mut all = Vec::new();
    for team in [Some("research-nlp"), Some("sales"), None] {
        for key in [Some("partner-acme"), None] {
            for model in ["gpt-4o", "claude-3-opus"] {
                for tags in [vec![], vec!["external"]] {
                    all.push(Context {
                        team,
                        key,
                        model,
                        tags,
                    });
                }
            }
        }
    }
    all
}

/// The guardrail a refusal names.
fn refused_by(reply: &Reply) -> Option<String> {
    reply.body["error"]["provider_specific_fields"]["guardrail_name"]
        .as_str()
        .map(str::to_string)
}

/// Sends every context a clean and an insulting request and asserts that what the proxy
/// enforces equals `resolve` (`when` names the moment in the failure message). Returns the
/// number of requests checked.
async fn assert_enforced(gw: &Gateway, repo: &Path, when: &str) -> usize {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for ctx in contexts() {
        let want = resolve(repo, &ctx).await;
        let matched = want["matchedPolicies"].as_array().unwrap();
        let names: Vec<&str> = matched
            .iter()
            .map(|m| m["policyName"].as_str().unwrap())
            .collect();
        let sources: Vec<String> = matched
            .iter()
            .map(|m| {
                format!(
                    "{}={}",
                    m["policyName"].as_str().unwrap(),
                    m["matchedVia"].as_str().unwrap()
                )
            })
            .collect();
        let guardrails: BTreeSet<&str> = want["effectiveGuardrails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();

        let clean = chat(gw.port, &ctx, "What is the capital of France?").await;
        checked += 1;
        let got_policies = clean
            .headers
            .get("x-litellm-applied-policies")
            .cloned()
            .unwrap_or_default();
        let got_sources = clean
            .headers
            .get("x-litellm-policy-sources")
            .cloned()
            .unwrap_or_default();
        let got_guardrails: BTreeSet<&str> = clean
            .headers
            .get("x-litellm-applied-guardrails")
            .map(|h| h.split(',').map(str::trim).collect())
            .unwrap_or_default();
        if clean.status != 200
            || got_policies != names.join(",")
            || got_sources != sources.join("; ")
            || got_guardrails != guardrails
        {
            wrong.push(format!(
                "{ctx:?}: proxy {} policies {got_policies:?} sources {got_sources:?} guardrails {got_guardrails:?}; resolve policies {names:?} sources {sources:?} guardrails {guardrails:?}",
                clean.status
            ));
        }

        // toxicity-filter refuses an insult exactly where resolve says it applies.
        let insult = chat(gw.port, &ctx, "you idiot").await;
        checked += 1;
        let expected = guardrails
            .contains("toxicity-filter")
            .then(|| "toxicity-filter".to_string());
        let got = (insult.status == 400)
            .then(|| refused_by(&insult))
            .flatten();
        if got != expected || (expected.is_none() && insult.status != 200) {
            wrong.push(format!(
                "{ctx:?}: insult answered {} {:?}, resolve expects refusal by {expected:?}",
                insult.status, insult.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{when}, the proxy disagrees with resolve on {} of {checked} requests:\n{}\nproxy log:\n{}",
        wrong.len(),
        wrong.join("\n"),
        gw.log_tail()
    );
    checked
}

#[tokio::test]
async fn a_litellm_proxy_enforces_the_bundle_and_follows_a_promotion() {
    let ns = TestNamespace::new("e2e-gateway").await;
    let n = ns.name.clone();
    let _op = Operator::start(&n, &["--catalog-configmap", "guardrail-catalog"]).await;
    let work = std::env::temp_dir().join(format!("e2e-gateway-{n}"));
    let repo = repo_in_namespace(&work.join("repo"), &n);
    kubectl(&["apply", "-f", repo.to_str().unwrap()]).await;
    let cms: Api<ConfigMap> = ns.api();
    await_bundle(&cms, &render(&repo).await, T).await;

    // The example gateway, in this namespace, with its master key Secret.
    let example = std::fs::read_to_string(repo_root().join("examples/gateway/litellm.yaml"))
        .unwrap()
        .replace("namespace: llm-gateway", &format!("namespace: {n}"));
    let file = work.join("litellm.yaml");
    std::fs::write(&file, &example).unwrap();
    kubectl(&[
        "create",
        "secret",
        "generic",
        "litellm-master-key",
        "-n",
        &n,
        &format!(
            "--from-literal=master-key=sk-e2e-{:08x}",
            rand::random::<u32>()
        ),
    ])
    .await;
    kubectl(&["apply", "-f", file.to_str().unwrap()]).await;
    let deployment = documents(&example)
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == "Deployment")
        .unwrap();

    let gw = Gateway::start(&deployment, &ns, &work.join("etc-litellm")).await;
    let checked = assert_enforced(&gw, &repo, "before the promotion").await;
    // A social security number is refused by pii-blocker, which org-baseline gives everyone.
    let sales = Context {
        team: Some("sales"),
        key: None,
        model: "gpt-4o",
        tags: vec![],
    };
    let ssn = chat(gw.port, &sales, "my ssn is 123-45-6789").await;
    assert_eq!(
        (ssn.status, refused_by(&ssn).as_deref()),
        (400, Some("pii-blocker")),
        "{ssn:?}"
    );
    let research = Context {
        team: Some("research-nlp"),
        ..sales.clone()
    };
    let before = chat(gw.port, &research, "hello").await;
    assert!(
        !before.headers["x-litellm-applied-guardrails"].contains("audit-logger"),
        "{before:?}"
    );

    // Promote research v2 (adds audit-logger) with kubectl; the bundle follows; the proxy
    // restarts on it, as the Deployment's roll does.
    let research_file = repo.join("20-research-team.yaml");
    let text = std::fs::read_to_string(&research_file).unwrap();
    let v2 = text.find("name: research-v2").unwrap();
    let stage = v2 + text[v2..].find("stage: Draft").unwrap();
    let promoted = format!(
        "{}stage: Production{}",
        &text[..stage],
        &text[stage + "stage: Draft".len()..]
    );
    std::fs::write(&research_file, promoted).unwrap();
    kubectl(&["apply", "-f", research_file.to_str().unwrap()]).await;
    let bundle = await_bundle(&cms, &render(&repo).await, T).await;
    assert!(
        bundle.data.unwrap()["policies.yaml"].contains("audit-logger"),
        "the promoted version is in the bundle"
    );
    gw.stop().await;
    let gw = Gateway::start(&deployment, &ns, &work.join("etc-litellm")).await;
    let checked_after = assert_enforced(&gw, &repo, "after the promotion").await;
    let after = chat(gw.port, &research, "hello").await;
    assert!(
        after.headers["x-litellm-applied-guardrails"].contains("audit-logger"),
        "research v2 is enforced: {after:?}"
    );
    eprintln!(
        "gateway enforcement: {} requests checked against resolve, {} agreeing",
        checked + checked_after,
        checked + checked_after
    );
    gw.stop().await;
}
