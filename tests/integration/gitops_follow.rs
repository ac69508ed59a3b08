//! A GitOps scenario on the control plane: seeded, generated policy repositories are applied one
//! document at a time in shuffled order with `kubectl apply --server-side` (as Flux and Argo CD
//! with server-side apply do), then a team's changes land as Git commits would: a promotion, a
//! rollback whose fallback waits for a parent that never reaches production, a promotion and its
//! revert, the deletion of a parent Policy, and a re-sync of the unchanged repository.
//!
//! After every step, once the operator has converged:
//! - (a) the bundle ConfigMap's data is byte-equal to `guardrail-operator render` of a dump
//!   (`kubectl get policies,policyversions,policyattachments -o yaml`) of what is in the cluster;
//! - (b) every Policy's `status.productionVersion` is the version render's `resolved.json` gives it;
//! - (c) litellm 1.110.2 loads the bundle's `policies.yaml` (tests/conformance/load_bundle.py, with
//!   `fail_on_error`), the policies it loaded are exactly the Policies with a production version,
//!   and for generated request contexts its matched policies (with `matched_via`) and effective
//!   guardrails equal `guardrail-operator resolve` on the same dump.
//!
//! api.md §4: the bundle always follows §3, so a rollback or a deletion that takes a policy out
//! of production reaches the gateway; the re-sync of an unchanged repository rewrites nothing.
//! Knobs: GITOPS_FOLLOW_SEED, GITOPS_FOLLOW_NAMESPACES, GITOPS_FOLLOW_CONTEXTS (random contexts
//! per step, on top of one sweep of each dimension). Files of every step are kept under
//! target/gitops-follow/<namespace>/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::operator::{Operator, apply_output};
use crate::common::{TestNamespace, kubectl, kubectl_output, repo_root, run};

const API_VERSION: &str = "guardrails.dev/v1alpha1";
/// How long the operator may take to converge after a step.
const CONVERGE: Duration = Duration::from_secs(90);
/// The operator runs with `--debounce-ms 50`; the re-sync must rewrite nothing for this long.
const SETTLE: Duration = Duration::from_secs(3);

type Data = BTreeMap<String, String>;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bundle's name: the operator's default, unless the environment configures another one
/// (the operator reads `GATEWAY_BUNDLE_NAME` and inherits the test's environment).
fn bundle_name() -> String {
    std::env::var("GATEWAY_BUNDLE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "guardrail-gateway-config".to_string())
}

fn operator_bin() -> &'static str {
    env!("CARGO_BIN_EXE_guardrail-operator")
}

fn oracle_python() -> String {
    match std::env::var("ORACLE_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "ORACLE_PYTHON is not set: run scripts/test-all.sh (it prepares the litellm 1.110.2 venv), \
             or `export ORACLE_PYTHON=$(tests/conformance/setup-oracle.sh)`"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The generated repository
// ---------------------------------------------------------------------------------------------

/// Guardrail names only (no catalog): the operator and LiteLLM then skip existence checks.
const GUARDRAILS: &[&str] = &[
    "pii-masking",
    "prompt-injection",
    "toxicity-filter",
    "secret-detection",
    "jailbreak-guard",
    "competitor-block",
    "profanity-filter",
    "hallucination-check",
    "url-filter",
    "code-scanner",
];

/// Model conditions (exact, then full-match regex; a list = any).
fn condition(rng: &mut StdRng) -> Value {
    let all = [
        json!("gpt-4.*"),
        json!("claude-.*"),
        json!("mistral-large"),
        json!(["gpt-4o", "claude-3-opus"]),
        json!(["gpt-4o-mini", "claude-3-.*"]),
    ];
    all.choose(rng).cloned().unwrap_or(Value::Null)
}

// Attachment patterns (trailing * = prefix) and the request values that exercise them: each
// prefix with and without a suffix, the prefix without its last character, exact names, an
// unrelated value, the empty string and null.
const TEAM_PATTERNS: &[&[&str]] = &[
    &["research-*"],
    &["fin-*", "ops"],
    &["sales"],
    &["research-nlp"],
];
const KEY_PATTERNS: &[&[&str]] = &[&["partner-*"], &["svc-batch", "svc-etl"]];
const MODEL_PATTERNS: &[&[&str]] = &[&["gpt-*"], &["claude-3-opus", "mistral-*"], &["gpt-4o"]];
const TAG_PATTERNS: &[&[&str]] = &[&["external"], &["pii-*", "beta"]];

const TEAMS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("research-nlp"),
    Some("research-"),
    Some("research"),
    Some("fin-eu"),
    Some("ops"),
    Some("sales"),
    Some("marketing"),
];
const KEYS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("partner-acme"),
    Some("partner-"),
    Some("svc-batch"),
    Some("svc-etl"),
    Some("dev-key"),
];
const MODELS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("gpt-4o"),
    Some("gpt-4o-mini"),
    Some("gpt-4.1"),
    Some("gpt-"),
    Some("claude-3-opus"),
    Some("claude-3-haiku"),
    Some("mistral-large"),
    Some("mistral-"),
    Some("llama-3"),
];
const TAGS: &[Option<&[&str]>] = &[
    None,
    Some(&["external"]),
    Some(&["beta"]),
    Some(&["pii-high"]),
    Some(&["internal"]),
    Some(&["internal", "external"]),
    Some(&["pii-", "beta"]),
];

/// A leaf policy's version: inherits `inherit`, else (70 %) one of `bases`, else nothing.
fn leaf_version(
    rng: &mut StdRng,
    bases: &[String],
    stage: &'static str,
    inherit: Option<String>,
) -> Ver {
    let inherit = match inherit {
        Some(i) => Some(i),
        None if rng.random_bool(0.7) => bases.choose(rng).cloned(),
        None => None,
    };
    let remove = if inherit.is_some() && rng.random_bool(0.35) {
        guardrails(rng, 1, 1)
    } else {
        vec![]
    };
    Ver {
        stage,
        inherit,
        add: guardrails(rng, 1, 2),
        remove,
        condition: rng.random_bool(0.15).then(|| condition(rng)),
    }
}

fn guardrails(rng: &mut StdRng, lo: usize, hi: usize) -> Vec<String> {
    let n = rng.random_range(lo..=hi);
    let mut v: Vec<String> = GUARDRAILS
        .choose_multiple(rng, n)
        .map(|g| g.to_string())
        .collect();
    v.sort();
    v
}

#[derive(Clone, Debug)]
struct Ver {
    stage: &'static str,
    inherit: Option<String>,
    add: Vec<String>,
    remove: Vec<String>,
    condition: Option<Value>,
}

/// One namespace's policy repository, kept as a model so every state can be written out.
#[derive(Clone, Debug, Default)]
struct Repo {
    /// Policy name → description.
    policies: BTreeMap<String, Option<String>>,
    versions: BTreeMap<(String, i64), Ver>,
    /// Attachment name → spec.
    attachments: BTreeMap<String, Value>,
    bases: Vec<String>,
    /// Step 1: a Published version raised to Production.
    promote: (String, i64),
    /// Step 2: the policy whose production version is lowered while its newer version waits.
    fallback: (String, i64),
    /// Step 3: a Published base version promoted and then reverted.
    revert: (String, i64),
}

const PENDING_PARENT: &str = "pending-parent";
const FALLBACK: &str = "fallback";

impl Repo {
    fn generate(rng: &mut StdRng) -> Repo {
        let mut r = Repo::default();
        let nb = rng.random_range(2..=3usize);
        r.bases = (0..nb).map(|i| format!("base-{i}")).collect();
        // One or two bases carry a model condition.
        let mut order: Vec<usize> = (0..nb).collect();
        order.shuffle(rng);
        let conditioned: BTreeSet<usize> = order[..rng.random_range(1..=2usize)]
            .iter()
            .copied()
            .collect();
        for (i, b) in r.bases.clone().iter().enumerate() {
            r.policies
                .insert(b.clone(), Some(format!("baseline {i} for every team")));
            let cond = conditioned.contains(&i).then(|| condition(rng));
            let v1 = Ver {
                stage: "Production",
                inherit: None,
                add: guardrails(rng, 2, 3),
                remove: vec![],
                condition: cond.clone(),
            };
            // base-0's v2 is promoted and reverted in step 3.
            let v2_stage = if i == 0 {
                Some("Published")
            } else {
                *[None, Some("Draft"), Some("Published"), Some("Production")]
                    .choose(rng)
                    .unwrap_or(&None)
            };
            if let Some(stage) = v2_stage {
                let mut add = guardrails(rng, 2, 3);
                if add == v1.add {
                    add.pop();
                }
                let condition = match &cond {
                    Some(_) if rng.random_bool(0.5) => Some(condition(rng)),
                    other => other.clone(),
                };
                r.versions.insert(
                    (b.clone(), 2),
                    Ver {
                        stage,
                        inherit: None,
                        add,
                        remove: vec![],
                        condition,
                    },
                );
            }
            r.versions.insert((b.clone(), 1), v1);
        }
        r.revert = ("base-0".to_string(), 2);

        let stages = ["Production", "Production", "Published", "Draft"];
        let nl = rng.random_range(3..=5usize);
        for i in 0..nl {
            let name = format!("leaf-{i}");
            r.policies.insert(name.clone(), None);
            let nv = match i {
                0 => rng.random_range(2..=3),
                _ => rng.random_range(1..=3),
            };
            for v in 1..=nv {
                let stage = match (i, v) {
                    // leaf-0: production v1, its newest version Published (step 1 raises it).
                    (0, 1) => "Production",
                    (0, v) if v == nv => "Published",
                    // leaf-1 reaches production only through base-0 (deleted in step 4).
                    (1, 1) => "Production",
                    _ => stages.choose(rng).copied().unwrap_or("Draft"),
                };
                let inherit = (i == 1).then(|| "base-0".to_string());
                let bases = r.bases.clone();
                r.versions
                    .insert((name.clone(), v), leaf_version(rng, &bases, stage, inherit));
            }
            if i == 0 {
                r.promote = (name.clone(), nv);
            }
        }
        // Step 2's pair: fallback v1 is in production; v2 asks for production but inherits a
        // policy that only has a draft, so it waits.
        r.policies.insert(
            PENDING_PARENT.to_string(),
            Some("never reaches production".to_string()),
        );
        let pending = leaf_version(rng, &[], "Draft", None);
        r.versions.insert((PENDING_PARENT.to_string(), 1), pending);
        r.policies.insert(FALLBACK.to_string(), None);
        let bases: Vec<String> = r.bases[1..].to_vec();
        let v1 = leaf_version(rng, &bases, "Production", None);
        r.versions.insert((FALLBACK.to_string(), 1), v1);
        let v2 = leaf_version(rng, &[], "Production", Some(PENDING_PARENT.to_string()));
        r.versions.insert((FALLBACK.to_string(), 2), v2);
        r.fallback = (FALLBACK.to_string(), 1);

        // Attachments: every kind at least once, then some more; the policies the steps change
        // are attached, the rest at random (a few to a policy without production, or missing).
        // The five basic kinds go to policies in production at the first sync (each policy a
        // step changes among them), the extra ones to any policy, a policy without production
        // or a missing one.
        let mut required = vec!["global", "teams", "keys", "models", "tags"];
        required.shuffle(rng);
        let live = r.bases.choose(rng).cloned().unwrap_or_default();
        let mut required_targets: Vec<String> = vec![
            "leaf-0".into(),
            "leaf-1".into(),
            FALLBACK.into(),
            "base-0".into(),
            live,
        ];
        required_targets.shuffle(rng);
        let mut kinds = required;
        let mut targets = required_targets;
        let names: Vec<String> = r.policies.keys().cloned().collect();
        for _ in 0..rng.random_range(3..=5) {
            let k = *[
                "global",
                "teams",
                "keys",
                "models",
                "tags",
                "teams-models",
                "keys-tags",
                "teams-keys",
                "none",
            ]
            .choose(rng)
            .unwrap_or(&"none");
            kinds.push(k);
            targets.push(if rng.random_bool(0.15) {
                "ghost".to_string()
            } else {
                names.choose(rng).cloned().unwrap_or_default()
            });
        }
        let n_att = kinds.len();
        let forced_default = rng.random_range(0..n_att);
        let forced_priority = rng.random_range(0..n_att);
        for (i, (kind, policy)) in kinds.iter().zip(targets).enumerate() {
            let mut spec = serde_json::Map::new();
            spec.insert("policy".into(), json!(policy));
            if *kind == "global" {
                spec.insert("scope".into(), json!("*"));
            }
            let mut pick = |rng: &mut StdRng, field: &str, from: &[&[&str]]| {
                let p = from.choose(rng).copied().unwrap_or(&[]);
                spec.insert(field.into(), json!(p));
            };
            if kind.contains("teams") {
                pick(rng, "teams", TEAM_PATTERNS);
            }
            if kind.contains("keys") {
                pick(rng, "keys", KEY_PATTERNS);
            }
            if kind.contains("models") {
                pick(rng, "models", MODEL_PATTERNS);
            }
            if kind.contains("tags") {
                pick(rng, "tags", TAG_PATTERNS);
            }
            if i == forced_priority || rng.random_bool(0.3) {
                spec.insert("priority".into(), json!(rng.random_range(-3..=20)));
            }
            if i == forced_default || rng.random_bool(0.15) {
                spec.insert("default".into(), json!(true));
            }
            // Names set the registry order (tie-breaks): random, unique.
            let name = loop {
                let n = format!("a{:02}-{kind}", rng.random_range(0..100));
                if !r.attachments.contains_key(&n) {
                    break n;
                }
            };
            r.attachments.insert(name, Value::Object(spec));
        }
        r
    }

    fn policy_doc(&self, ns: &str, name: &str) -> Value {
        let mut spec = serde_json::Map::new();
        if let Some(Some(d)) = self.policies.get(name) {
            spec.insert("description".into(), json!(d));
        }
        json!({"apiVersion": API_VERSION, "kind": "Policy",
               "metadata": {"name": name, "namespace": ns}, "spec": spec})
    }

    fn version_doc(&self, ns: &str, policy: &str, v: i64) -> Value {
        let ver = &self.versions[&(policy.to_string(), v)];
        let mut spec = serde_json::Map::new();
        spec.insert("policy".into(), json!(policy));
        spec.insert("version".into(), json!(v));
        spec.insert("stage".into(), json!(ver.stage));
        if let Some(i) = &ver.inherit {
            spec.insert("inherit".into(), json!(i));
        }
        let mut g = serde_json::Map::new();
        g.insert("add".into(), json!(ver.add));
        if !ver.remove.is_empty() {
            g.insert("remove".into(), json!(ver.remove));
        }
        spec.insert("guardrails".into(), Value::Object(g));
        if let Some(c) = &ver.condition {
            spec.insert("condition".into(), json!({"model": c}));
        }
        json!({"apiVersion": API_VERSION, "kind": "PolicyVersion",
               "metadata": {"name": format!("{policy}-v{v}"), "namespace": ns}, "spec": spec})
    }

    fn attachment_doc(&self, ns: &str, name: &str) -> Value {
        json!({"apiVersion": API_VERSION, "kind": "PolicyAttachment",
               "metadata": {"name": name, "namespace": ns}, "spec": self.attachments[name]})
    }

    /// Every document of the repository, as (`kind/name`, YAML).
    fn docs(&self, ns: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in self.policies.keys() {
            out.push((format!("Policy/{p}"), yaml(&self.policy_doc(ns, p))));
        }
        for (p, v) in self.versions.keys() {
            out.push((
                format!("PolicyVersion/{p}-v{v}"),
                yaml(&self.version_doc(ns, p, *v)),
            ));
        }
        for a in self.attachments.keys() {
            out.push((
                format!("PolicyAttachment/{a}"),
                yaml(&self.attachment_doc(ns, a)),
            ));
        }
        out
    }

    fn set_stage(&mut self, (policy, v): &(String, i64), stage: &'static str) {
        let ver = self
            .versions
            .get_mut(&(policy.clone(), *v))
            .unwrap_or_else(|| panic!("no version {policy} v{v} in the model"));
        ver.stage = stage;
    }

    /// Policies all of whose Production-desired versions inherit `parent` (and that have one):
    /// once `parent` is gone, they have no version that can reach production.
    fn only_through(&self, parent: &str) -> BTreeSet<String> {
        let mut by_policy: BTreeMap<&str, Vec<&Ver>> = BTreeMap::new();
        for ((p, _), v) in &self.versions {
            if v.stage == "Production" {
                by_policy.entry(p.as_str()).or_default().push(v);
            }
        }
        by_policy
            .into_iter()
            .filter(|(p, vs)| {
                *p != parent && vs.iter().all(|v| v.inherit.as_deref() == Some(parent))
            })
            .map(|(p, _)| p.to_string())
            .collect()
    }
}

fn yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|e| panic!("cannot write YAML for {v}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// litellm 1.110.2, kept running: load_bundle.py's main() once per bundle
// ---------------------------------------------------------------------------------------------

/// Imports tests/conformance/load_bundle.py once, then runs its `main()` for every job read from
/// stdin (`main()` clears LiteLLM's registries itself) and also records the policies LiteLLM's
/// registry holds after loading. Results go to a file; a marker line on stdout says it is done.
const ORACLE_DRIVER: &str = r#"
import importlib.util, json, sys, traceback
spec = importlib.util.spec_from_file_location("load_bundle", sys.argv[1])
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)
print("@@gitops-follow-ready@@", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    sys.argv = ["load_bundle.py", job["policies"], job["contexts"], job["out"]]
    try:
        lb.main()
        reg = lb.get_policy_registry().get_all_policies()
        names = list(reg.keys()) if hasattr(reg, "keys") else [getattr(p, "name", p) for p in reg]
        res = {"ok": True, "loaded": sorted(names)}
    except BaseException:
        res = {"ok": False, "error": traceback.format_exc()}
    with open(job["result"], "w") as f:
        json.dump(res, f)
    print("@@gitops-follow-done@@", flush=True)
"#;

struct Oracle {
    /// Kept so the process lives as long as this (killed on drop).
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    log: PathBuf,
}

impl Oracle {
    async fn start(dir: &Path) -> Oracle {
        let log = dir.join("litellm.log");
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let script = repo_root().join("tests/conformance/load_bundle.py");
        let mut child = tokio::process::Command::new(oracle_python())
            .arg("-c")
            .arg(ORACLE_DRIVER)
            .arg(&script)
            .env("PYTHONHASHSEED", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the litellm oracle ({}): {e}", oracle_python())
            });
        let stdin = child.stdin.take().expect("oracle stdin");
        let stdout = BufReader::new(child.stdout.take().expect("oracle stdout")).lines();
        Oracle {
            _child: child,
            stdin,
            stdout,
            log,
        }
    }

    async fn wait_for(&mut self, marker: &str) {
        let log = self.log.clone();
        let wait = async {
            loop {
                match self.stdout.next_line().await {
                    Ok(Some(l)) if l.contains(marker) => return,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => panic!(
                        "the litellm oracle exited; its log ({}):\n{}",
                        log.display(),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ),
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .is_err()
        {
            panic!(
                "the litellm oracle did not answer in 120 s; its log ({}):\n{}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    /// Load `policies` and resolve `contexts`; (loaded policies, per-context answers) or the
    /// Python error (a bundle LiteLLM refuses to start with).
    async fn load(
        &mut self,
        dir: &Path,
        policies: &Path,
        contexts: &Value,
    ) -> Result<(Vec<String>, Vec<Value>), String> {
        let ctx_file = dir.join("contexts.json");
        let out = dir.join("litellm-out.json");
        let result = dir.join("litellm-result.json");
        std::fs::write(&ctx_file, contexts.to_string()).expect("write contexts");
        let job = json!({"policies": policies, "contexts": ctx_file, "out": out, "result": result});
        self.stdin
            .write_all(format!("{job}\n").as_bytes())
            .await
            .expect("write to the oracle");
        self.stdin.flush().await.expect("flush the oracle");
        self.wait_for("@@gitops-follow-done@@").await;
        let res: Value =
            serde_json::from_str(&std::fs::read_to_string(&result).expect("oracle result"))
                .expect("oracle result JSON");
        if res["ok"] != true {
            return Err(res["error"].as_str().unwrap_or_default().to_string());
        }
        let loaded = serde_json::from_value(res["loaded"].clone()).expect("loaded names");
        let answers: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("oracle out"))
                .expect("oracle out JSON");
        Ok((loaded, answers))
    }
}

// ---------------------------------------------------------------------------------------------
// One namespace's scenario
// ---------------------------------------------------------------------------------------------

/// What the cluster holds at one moment, and what render says about it.
struct Snapshot {
    dump: PathBuf,
    objects: Vec<Value>,
    /// The bundle ConfigMap's data (empty when there is none).
    have: Data,
    /// `render` of the dump.
    want: Data,
    /// `want`'s resolved.json.
    resolved: Value,
}

impl Snapshot {
    fn production(&self) -> BTreeMap<String, i64> {
        self.resolved["policies"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(p, r)| (p.clone(), r["version"].as_i64().unwrap_or(-1)))
            .collect()
    }

    fn chain(&self, policy: &str) -> Vec<String> {
        serde_json::from_value(self.resolved["policies"][policy]["inheritanceChain"].clone())
            .unwrap_or_default()
    }

    /// Policies whose status has a productionVersion.
    fn status_production(&self) -> BTreeMap<String, i64> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == "Policy")
            .filter_map(|o| {
                Some((
                    o["metadata"]["name"].as_str()?.to_string(),
                    o["status"]["productionVersion"].as_i64()?,
                ))
            })
            .collect()
    }
}

struct Scenario {
    ns: TestNamespace,
    dir: PathBuf,
    op: Operator,
    oracle: Oracle,
    rng: StdRng,
    repo: Repo,
    bundle: String,
    steps: usize,
    contexts: usize,
    bundles: usize,
    random_contexts: usize,
}

#[derive(Default, Debug)]
struct Counts {
    steps: usize,
    contexts: usize,
    bundles: usize,
}

impl Scenario {
    fn n(&self) -> &str {
        &self.ns.name
    }

    fn step_dir(&self, step: &str) -> PathBuf {
        let d = self.dir.join(format!("{:02}-{step}", self.steps));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        d
    }

    /// Apply one document of the model with `kubectl apply --server-side`.
    async fn apply_doc(&self, what: &str, doc: &str) {
        let o = apply_output(doc, &["--server-side"]).await;
        assert!(
            o.success,
            "namespace {}: kubectl apply --server-side of {what} failed:\n{}{}\ndocument:\n{doc}",
            self.n(),
            o.stdout,
            o.stderr
        );
    }

    async fn apply_version(&self, pv: &(String, i64)) {
        let doc = yaml(&self.repo.version_doc(self.n(), &pv.0, pv.1));
        self.apply_doc(&format!("PolicyVersion/{}-v{}", pv.0, pv.1), &doc)
            .await;
    }

    /// Everything the convergence test and the checks need, read once.
    async fn snapshot(&self, dir: &Path) -> Result<Snapshot, String> {
        let n = self.n();
        let out = kubectl_output(&[
            "get",
            "policies.guardrails.dev,policyversions.guardrails.dev,policyattachments.guardrails.dev",
            "-n",
            n,
            "-o",
            "yaml",
        ])
        .await;
        if !out.success {
            return Err(format!("kubectl get: {}", out.stderr));
        }
        let dump = dir.join("dump.yaml");
        std::fs::write(&dump, &out.stdout).map_err(|e| e.to_string())?;
        let list: Value = serde_saphyr::from_str(&out.stdout).map_err(|e| format!("dump: {e}"))?;
        let objects = list["items"].as_array().cloned().unwrap_or_default();
        let cms: Api<ConfigMap> = self.ns.api();
        let have = cms
            .get_opt(&self.bundle)
            .await
            .map_err(|e| format!("reading the bundle: {e}"))?
            .and_then(|c| c.data)
            .unwrap_or_default()
            .into_iter()
            .collect::<Data>();
        let r = run(
            operator_bin(),
            &[
                "render",
                "-f",
                path(&dump),
                "-n",
                n,
                "--bundle-name",
                &self.bundle,
                "-o",
                "json",
            ],
            &[],
        )
        .await;
        if !r.success {
            return Err(format!("render of {} failed: {}", dump.display(), r.stderr));
        }
        let rendered: Value =
            serde_json::from_str(&r.stdout).map_err(|e| format!("render output: {e}"))?;
        let want: Data =
            serde_json::from_value(rendered["data"].clone()).map_err(|e| e.to_string())?;
        let resolved: Value = want
            .get("resolved.json")
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or("render has no resolved.json")?;
        Ok(Snapshot {
            dump,
            objects,
            have,
            want,
            resolved,
        })
    }

    /// Why the snapshot is not converged (checks (a) and (b) included), or None.
    async fn problems(&self, s: &Snapshot, dir: &Path) -> Option<String> {
        let mut p = Vec::new();
        for o in &s.objects {
            let id = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            );
            if !o["metadata"]["deletionTimestamp"].is_null() {
                p.push(format!("{id} is being deleted"));
            } else if o["status"]["observedGeneration"] != o["metadata"]["generation"] {
                p.push(format!(
                    "{id}: status.observedGeneration {} for generation {}",
                    o["status"]["observedGeneration"], o["metadata"]["generation"]
                ));
            }
        }
        // (a) the bundle is render of the objects in the cluster.
        if s.have != s.want {
            p.push(format!(
                "(a) the bundle ConfigMap {} differs from `guardrail-operator render -f {} -n {}`:\n{}",
                self.bundle,
                s.dump.display(),
                self.n(),
                data_diff(dir, &s.have, &s.want).await
            ));
        }
        // (b) status.productionVersion is render's.
        let want = s.production();
        for o in s.objects.iter().filter(|o| o["kind"] == "Policy") {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let have = o["status"]["productionVersion"].as_i64();
            if have != want.get(name).copied() {
                p.push(format!(
                    "(b) Policy {name}: status.productionVersion {have:?}, render's resolved.json gives {:?}",
                    want.get(name)
                ));
            }
        }
        (!p.is_empty()).then(|| p.join("\n"))
    }

    /// Wait until the operator converged (bundle = render of the cluster, statuses current and
    /// agreeing with render), then check litellm against `resolve`. Counts one step.
    async fn checkpoint(&mut self, step: &str) -> Snapshot {
        self.steps += 1;
        let dir = self.step_dir(step);
        let start = Instant::now();
        let snap = loop {
            let last = match self.snapshot(&dir).await {
                Ok(s) => match self.problems(&s, &dir).await {
                    None => break s,
                    Some(p) => p,
                },
                Err(e) => e,
            };
            if start.elapsed() > CONVERGE {
                panic!(
                    "namespace {} step {} ({step}): not converged after {CONVERGE:?}:\n{last}\n(files in {}, operator log {})",
                    self.n(),
                    self.steps,
                    dir.display(),
                    self.op.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        self.bundles += 1;
        self.check_litellm(step, &dir, &snap).await;
        snap
    }

    fn contexts(&mut self) -> Vec<Value> {
        let ctx = |t: Option<&str>, k: Option<&str>, m: Option<&str>, g: Option<&[&str]>| json!({"team_alias": t, "key_alias": k, "model": m, "tags": g});
        let mut out = Vec::new();
        // One sweep of each dimension, the others null.
        out.extend(TEAMS.iter().map(|t| ctx(*t, None, None, None)));
        out.extend(KEYS.iter().skip(1).map(|k| ctx(None, *k, None, None)));
        out.extend(MODELS.iter().skip(1).map(|m| ctx(None, None, *m, None)));
        out.extend(TAGS.iter().skip(1).map(|g| ctx(None, None, None, *g)));
        // Random combinations of all four.
        for _ in 0..self.random_contexts {
            let rng = &mut self.rng;
            let t = *TEAMS.choose(rng).unwrap_or(&None);
            let k = *KEYS.choose(rng).unwrap_or(&None);
            let m = *MODELS.choose(rng).unwrap_or(&None);
            let g = *TAGS.choose(rng).unwrap_or(&None);
            out.push(ctx(t, k, m, g));
        }
        out
    }

    /// (c): litellm loads the bundle, loads exactly the Policies with a productionVersion, and
    /// resolves every context like `guardrail-operator resolve` on the same dump.
    async fn check_litellm(&mut self, step: &str, dir: &Path, s: &Snapshot) {
        let n = self.n().to_string();
        let policies_yaml = dir.join("policies.yaml");
        let live = s.have.get("policies.yaml").cloned().unwrap_or_else(|| {
            panic!(
                "namespace {n} step {step}: the bundle has no policies.yaml ({})",
                dir.display()
            )
        });
        std::fs::write(&policies_yaml, live).expect("write policies.yaml");
        let contexts = self.contexts();
        let (loaded, theirs) = match self
            .oracle
            .load(dir, &policies_yaml, &Value::Array(contexts.clone()))
            .await
        {
            Ok(r) => r,
            Err(e) => panic!(
                "namespace {n} step {step}: litellm 1.110.2 refused the bundle {}:\n{e}",
                policies_yaml.display()
            ),
        };
        let with_production: Vec<String> = s.status_production().into_keys().collect();
        assert_eq!(
            loaded,
            with_production,
            "namespace {n} step {step}: the policies litellm loaded from {} are not the Policies with a status.productionVersion",
            policies_yaml.display()
        );
        assert_eq!(
            theirs.len(),
            contexts.len(),
            "one litellm answer per context"
        );
        let dump = s.dump.clone();
        let ours: Vec<Result<Value, String>> = futures::stream::iter(contexts.iter().cloned())
            .map(|c| {
                let (dump, n) = (dump.clone(), n.clone());
                async move { resolve(&dump, &n, &c).await }
            })
            .buffered(4)
            .collect()
            .await;
        let mut mismatches = Vec::new();
        for ((c, ours), theirs) in contexts.iter().zip(ours).zip(&theirs) {
            let ours = match ours {
                Ok(o) => o,
                Err(e) => panic!("namespace {n} step {step}: {e}"),
            };
            let our_matched: Vec<Value> = ours["matchedPolicies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| json!({"policy_name": m["policyName"], "matched_via": m["matchedVia"]}))
                .collect();
            if Value::Array(our_matched.clone()) != theirs["matched"]
                || ours["effectiveGuardrails"] != theirs["effective_guardrails"]
            {
                mismatches.push(format!(
                    "  context {c}\n    resolve: matched {} effective {}\n    litellm: matched {} effective {}",
                    Value::Array(our_matched),
                    ours["effectiveGuardrails"],
                    theirs["matched"],
                    theirs["effective_guardrails"]
                ));
            }
        }
        self.contexts += contexts.len();
        assert!(
            mismatches.is_empty(),
            "namespace {n} step {step}: `guardrail-operator resolve -f {}` and litellm 1.110.2 (bundle {}) disagree on {} of {} contexts:\n{}",
            s.dump.display(),
            policies_yaml.display(),
            mismatches.len(),
            contexts.len(),
            mismatches
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// resourceVersions of the bundle and of every Policy, PolicyVersion and PolicyAttachment.
    async fn resource_versions(&self) -> BTreeMap<String, String> {
        let n = self.n();
        let list = kubectl(&[
            "get",
            "policies.guardrails.dev,policyversions.guardrails.dev,policyattachments.guardrails.dev",
            "-n",
            n,
            "-o",
            "json",
        ])
        .await;
        let list: Value = serde_json::from_str(&list).expect("kubectl get -o json");
        let mut out: BTreeMap<String, String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                (
                    format!(
                        "{}/{}",
                        o["kind"].as_str().unwrap_or("?"),
                        o["metadata"]["name"].as_str().unwrap_or("?")
                    ),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        let cms: Api<ConfigMap> = self.ns.api();
        let rv = cms
            .get_opt(&self.bundle)
            .await
            .expect("read the bundle")
            .and_then(|c| c.metadata.resource_version)
            .unwrap_or_default();
        out.insert(format!("ConfigMap/{}", self.bundle), rv);
        out
    }

    /// Waits until no resourceVersion moved for `quiet` (the operator finished writing).
    async fn quiesce(&self, quiet: Duration) -> BTreeMap<String, String> {
        let start = Instant::now();
        let mut last = self.resource_versions().await;
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.resource_versions().await;
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return last;
            }
            assert!(
                start.elapsed() < CONVERGE,
                "namespace {}: the operator keeps writing (resourceVersions still moving after {CONVERGE:?}); operator log {}",
                self.n(),
                self.op.log.display()
            );
        }
    }

    async fn run(mut self) -> Counts {
        let n = self.n().to_string();
        self.oracle.wait_for("@@gitops-follow-ready@@").await;

        // 0. The first sync: every document, shuffled, one at a time.
        let mut docs = self.repo.docs(&n);
        docs.shuffle(&mut self.rng);
        std::fs::write(
            self.dir.join("apply-order.txt"),
            docs.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .expect("write apply order");
        for (what, doc) in &docs {
            self.apply_doc(what, doc).await;
        }
        let s = self.checkpoint("initial-sync").await;
        let prod = s.production();
        let (fb, fb_v) = self.repo.fallback.clone();
        assert_eq!(
            prod.get(&fb),
            Some(&fb_v),
            "namespace {n}: {fb} v{fb_v} is in production while v{} waits for {PENDING_PARENT}",
            fb_v + 1
        );
        assert!(
            !prod.contains_key(PENDING_PARENT),
            "namespace {n}: {PENDING_PARENT} has only a draft"
        );

        // 1. Promote: raise a Published version to Production.
        let promote = self.repo.promote.clone();
        assert!(
            prod.get(&promote.0).is_some_and(|v| *v < promote.1),
            "namespace {n}: {} is in production below v{} before the promotion ({prod:?})",
            promote.0,
            promote.1
        );
        self.repo.set_stage(&promote, "Production");
        self.apply_version(&promote).await;
        let s = self.checkpoint("promote").await;
        assert_eq!(
            s.production().get(&promote.0),
            Some(&promote.1),
            "namespace {n}: {} v{} promoted",
            promote.0,
            promote.1
        );

        // 2. Roll back a version whose fallback waits: the policy leaves the gateway.
        let fallback = self.repo.fallback.clone();
        self.repo.set_stage(&fallback, "Published");
        self.apply_version(&fallback).await;
        let s = self.checkpoint("rollback-fallback-waits").await;
        assert!(
            !s.production().contains_key(&fallback.0),
            "namespace {n}: after the rollback of {} v{} its v{} still waits for {PENDING_PARENT}, so it must leave the bundle; resolved.json: {}",
            fallback.0,
            fallback.1,
            fallback.1 + 1,
            s.resolved
        );

        // 3. Promote and revert: the bundle returns to the earlier content.
        let before = s.have.clone();
        let revert = self.repo.revert.clone();
        self.repo.set_stage(&revert, "Production");
        self.apply_version(&revert).await;
        let s = self.checkpoint("promote-before-revert").await;
        assert_eq!(
            s.production().get(&revert.0),
            Some(&revert.1),
            "namespace {n}: {} v{} promoted",
            revert.0,
            revert.1
        );
        assert_ne!(
            s.have, before,
            "namespace {n}: promoting {} v{} changed the bundle",
            revert.0, revert.1
        );
        self.repo.set_stage(&revert, "Published");
        self.apply_version(&revert).await;
        let s = self.checkpoint("revert").await;
        if s.have != before {
            let dir = self.dir.join("revert-diff");
            std::fs::create_dir_all(&dir).expect("mkdir");
            panic!(
                "namespace {n}: after the revert of {} v{} the bundle is not the one before the promotion:\n{}",
                revert.0,
                revert.1,
                data_diff(&dir, &s.have, &before).await
            );
        }

        // 4. Delete a parent Policy: its children leave the gateway, the operator deletes the
        //    parent's versions.
        let candidates: Vec<String> = self
            .repo
            .bases
            .iter()
            .filter(|b| !self.repo.only_through(b).is_empty())
            .cloned()
            .collect();
        let parent = candidates
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_else(|| {
                panic!("namespace {n}: no base with a child only it brings to production")
            });
        let exclusive = self.repo.only_through(&parent);
        let prod = s.production();
        for c in &exclusive {
            assert!(
                prod.contains_key(c) && s.chain(c).contains(&parent),
                "namespace {n}: {c} is in production through {parent} before the deletion ({prod:?})"
            );
        }
        let unrelated: BTreeMap<String, Value> = prod
            .keys()
            .filter(|p| **p != parent && !s.chain(p).contains(&parent))
            .map(|p| (p.clone(), s.resolved["policies"][p].clone()))
            .collect();
        let parent_versions: Vec<String> = s
            .objects
            .iter()
            .filter(|o| o["kind"] == "PolicyVersion" && o["spec"]["policy"] == parent.as_str())
            .map(|o| {
                format!(
                    "{} (created {})",
                    o["metadata"]["name"].as_str().unwrap_or("?"),
                    o["metadata"]["creationTimestamp"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let parent_created = s
            .objects
            .iter()
            .find(|o| o["kind"] == "Policy" && o["metadata"]["name"] == parent.as_str())
            .and_then(|o| o["metadata"]["creationTimestamp"].as_str())
            .unwrap_or("?")
            .to_string();
        kubectl(&["delete", "policy", &parent, "-n", &n]).await;
        self.repo.policies.remove(&parent);
        self.repo.versions.retain(|(p, _), _| *p != parent);
        let start = Instant::now();
        loop {
            let list = kubectl(&[
                "get",
                "policyversions.guardrails.dev",
                "-n",
                &n,
                "-o",
                "json",
            ])
            .await;
            let list: Value = serde_json::from_str(&list).expect("kubectl get -o json");
            let left: Vec<String> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o["spec"]["policy"] == parent.as_str())
                .map(|o| o["metadata"]["name"].as_str().unwrap_or("?").to_string())
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < CONVERGE,
                "namespace {n}: {CONVERGE:?} after `kubectl delete policy {parent}` (created {parent_created}) its versions {left:?} still exist; \
                 all its versions before the deletion: {parent_versions:?}; operator log {}",
                self.op.log.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let s = self.checkpoint("delete-parent").await;
        let prod = s.production();
        assert!(
            !prod.contains_key(&parent),
            "namespace {n}: deleted {parent} is still in production"
        );
        for p in prod.keys() {
            assert!(
                !s.chain(p).contains(&parent),
                "namespace {n}: {p} still inherits the deleted {parent}: {}",
                s.resolved["policies"][p]
            );
        }
        for c in &exclusive {
            assert!(
                !prod.contains_key(c),
                "namespace {n}: {c} reached production only through {parent}; it must leave the gateway ({prod:?})"
            );
        }
        for (p, r) in &unrelated {
            assert_eq!(
                &s.resolved["policies"][p], r,
                "namespace {n}: {p} does not depend on {parent}; deleting {parent} must not change it"
            );
        }

        // 5. Re-sync the unchanged repository: nothing is rewritten.
        let before = self.quiesce(Duration::from_millis(1500)).await;
        let mut docs = self.repo.docs(&n);
        docs.shuffle(&mut self.rng);
        for (what, doc) in &docs {
            self.apply_doc(what, doc).await;
        }
        let start = Instant::now();
        while start.elapsed() < SETTLE {
            let now = self.resource_versions().await;
            if now != before {
                let changed: Vec<String> = before
                    .iter()
                    .filter(|(k, v)| now.get(*k) != Some(*v))
                    .map(|(k, v)| format!("{k}: {v} -> {:?}", now.get(k)))
                    .chain(
                        now.keys()
                            .filter(|k| !before.contains_key(*k))
                            .map(|k| format!("{k}: new")),
                    )
                    .collect();
                panic!(
                    "namespace {n}: re-applying the unchanged repository rewrote {changed:?}; operator log {}",
                    self.op.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.checkpoint("resync-unchanged").await;
        assert_eq!(
            self.resource_versions().await,
            before,
            "namespace {n}: the re-sync rewrote something"
        );

        Counts {
            steps: self.steps,
            contexts: self.contexts,
            bundles: self.bundles,
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display()))
}

/// `guardrail-operator resolve -f DUMP -n NS -o json` for one context (null = flag absent).
async fn resolve(dump: &Path, ns: &str, c: &Value) -> Result<Value, String> {
    let mut args: Vec<String> = vec![
        "resolve".into(),
        "-f".into(),
        path(dump).into(),
        "-n".into(),
        ns.into(),
        "-o".into(),
        "json".into(),
    ];
    for (flag, key) in [
        ("--team", "team_alias"),
        ("--key", "key_alias"),
        ("--model", "model"),
    ] {
        if let Some(v) = c[key].as_str() {
            args.push(flag.into());
            args.push(v.into());
        }
    }
    for t in c["tags"].as_array().into_iter().flatten() {
        args.push("--tag".into());
        args.push(t.as_str().unwrap_or_default().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(operator_bin(), &args, &[]).await;
    if !out.success {
        return Err(format!(
            "guardrail-operator {} failed: {}",
            args.join(" "),
            out.stderr
        ));
    }
    serde_json::from_str(&out.stdout).map_err(|e| format!("resolve output {e}: {}", out.stdout))
}

/// A readable diff of two bundles' data (`diff -u` per key), written under `dir`.
async fn data_diff(dir: &Path, have: &Data, want: &Data) -> String {
    let keys: BTreeSet<&String> = have.keys().chain(want.keys()).collect();
    let mut out = String::new();
    for k in keys {
        let (h, w) = (have.get(k), want.get(k));
        if h == w {
            continue;
        }
        let hp = dir.join(format!("bundle-{k}"));
        let wp = dir.join(format!("render-{k}"));
        let _ = std::fs::write(&hp, h.map(String::as_str).unwrap_or(""));
        let _ = std::fs::write(&wp, w.map(String::as_str).unwrap_or(""));
        let d = run("diff", &["-u", path(&hp), path(&wp)], &[]).await;
        let mut text: Vec<&str> = d.stdout.lines().take(120).collect();
        if d.stdout.lines().count() > 120 {
            text.push("  ... (truncated)");
        }
        if h.is_none() {
            out.push_str(&format!("--- {k}: missing from the bundle ConfigMap\n"));
        }
        if w.is_none() {
            out.push_str(&format!("--- {k}: not in render\n"));
        }
        out.push_str(&text.join("\n"));
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_repositories_and_git_changes_keep_the_bundle_equal_to_render_and_litellm() {
    let seed = knob("GITOPS_FOLLOW_SEED", 20_251_205);
    let namespaces = knob("GITOPS_FOLLOW_NAMESPACES", 3) as usize;
    let random_contexts = knob("GITOPS_FOLLOW_CONTEXTS", 40) as usize;
    let started = Instant::now();
    let mut scenarios = Vec::new();
    for i in 0..namespaces {
        let ns_seed = seed + i as u64;
        let ns = TestNamespace::new(&format!("follow-{i}")).await;
        let dir = repo_root()
            .join("target")
            .join("gitops-follow")
            .join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let oracle = Oracle::start(&dir).await;
        let op = Operator::start(&ns.name, &[]).await;
        let mut rng = StdRng::seed_from_u64(ns_seed);
        let repo = Repo::generate(&mut rng);
        std::fs::write(dir.join("seed.txt"), format!("{ns_seed}\n")).expect("write seed");
        scenarios.push(Scenario {
            ns,
            dir,
            op,
            oracle,
            rng,
            repo,
            bundle: bundle_name(),
            steps: 0,
            contexts: 0,
            bundles: 0,
            random_contexts,
        });
    }
    let counts = futures::future::join_all(scenarios.into_iter().map(Scenario::run)).await;
    let total = counts.iter().fold(Counts::default(), |t, c| Counts {
        steps: t.steps + c.steps,
        contexts: t.contexts + c.contexts,
        bundles: t.bundles + c.bundles,
    });
    eprintln!(
        "gitops-follow: {namespaces} namespaces, {} steps, {} contexts compared, {} bundles checked, seed {seed}, {:.1}s",
        total.steps,
        total.contexts,
        total.bundles,
        started.elapsed().as_secs_f64()
    );
}
