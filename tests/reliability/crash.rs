//! Crash safety: the operator is SIGKILLed at seeded random points while it converges a
//! repository of ~1,000 objects and a stream of changes; after every kill it is restarted and
//! must converge to exactly what an undisturbed operator (another namespace, same changes)
//! converges to. Every version of the bundle ConfigMap ever written (watched from the start)
//! must be byte-equal to `guardrail-operator render` of a repository state the operator was
//! given, in order: never partial, never a policy that was not in production.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use guardrail_operator::api::{Policy, PolicyAttachment, PolicyVersion};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher;
use kube::{Api, Client};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::common::operator::Operator;
use crate::common::{TestNamespace, eventually, kubectl, kubectl_output, repo_root};
use crate::repo::{Change, Repo};

const BUNDLE: &str = "guardrail-gateway-config";
const CONVERGE: Duration = Duration::from_secs(180);

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Data = BTreeMap<String, String>;

/// `guardrail-operator render` of a repository state.
fn render(dir: &Path, repo: &Repo, ns: &str) -> Data {
    let file = dir.join("state.yaml");
    std::fs::write(&file, repo.yaml(ns)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args([
            "render",
            "-f",
            file.to_str().unwrap(),
            "-n",
            ns,
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(v["data"].clone()).unwrap()
}

/// `guardrail-operator render` of the objects now in the cluster (as the API server returns
/// them): what the bundle must equal once the operator converged (api.md §4).
async fn render_live(dir: &Path, client: &Client, ns: &str) -> Data {
    let mut docs = String::new();
    for (_, items) in objects(client, ns).await.unwrap() {
        for o in items {
            docs.push_str(&serde_json::to_string(&o).unwrap());
            docs.push_str("\n---\n");
        }
    }
    let file = dir.join(format!("live-{ns}.yaml"));
    std::fs::write(&file, docs).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args([
            "render",
            "-f",
            file.to_str().unwrap(),
            "-n",
            ns,
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "render of the live objects: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(v["data"].clone()).unwrap()
}

async fn apply_change(dir: &Path, repo: &Repo, change: &Change, ns: &str) {
    for d in &change.delete {
        kubectl(&["delete", d, "-n", ns, "--ignore-not-found", "--wait=false"]).await;
    }
    let y = repo.change_yaml(change, ns);
    if !y.is_empty() {
        let f = dir.join(format!("change-{ns}.yaml"));
        std::fs::write(&f, y).unwrap();
        let o = kubectl_output(&["apply", "--server-side", "-f", f.to_str().unwrap()]).await;
        assert!(o.success, "kubectl apply in {ns}: {}", o.stderr);
    }
}

/// Everything the operator decides about the objects of a namespace, comparable across
/// namespaces: statuses without times/generations, its labels, owner references by name.
async fn decided(client: &Client, ns: &str) -> BTreeMap<String, Value> {
    fn strip(v: &mut Value, ns: &str) {
        match v {
            Value::Object(m) => {
                for k in [
                    "lastTransitionTime",
                    "observedGeneration",
                    "publishedAt",
                    "productionAt",
                    "supersededAt",
                    "uid",
                ] {
                    m.remove(k);
                }
                m.values_mut().for_each(|x| strip(x, ns));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| strip(x, ns)),
            Value::String(s) if s.contains(ns) => *s = s.replace(ns, "NS"),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    let mut add = |kind: &str, items: Vec<Value>| {
        for mut o in items {
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut d = serde_json::json!({
                "status": o["status"].take(),
                "labels": o["metadata"]["labels"].take(),
                "owners": o["metadata"]["ownerReferences"].take(),
            });
            strip(&mut d, ns);
            out.insert(format!("{kind}/{name}"), d);
        }
    };
    for (kind, items) in objects(client, ns).await.unwrap() {
        add(kind, items);
    }
    out
}

/// The Policies, PolicyVersions and PolicyAttachments of a namespace, as JSON, by kind.
async fn objects(client: &Client, ns: &str) -> Result<Vec<(&'static str, Vec<Value>)>, String> {
    async fn list<K>(client: &Client, ns: &str) -> Result<Vec<Value>, String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        let items = api
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items;
        Ok(items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect())
    }
    Ok(vec![
        ("policy", list::<Policy>(client, ns).await?),
        ("policyversion", list::<PolicyVersion>(client, ns).await?),
        (
            "policyattachment",
            list::<PolicyAttachment>(client, ns).await?,
        ),
    ])
}

/// Converged: the bundle is `want`, and every object's status saw its current generation.
async fn converged(client: &Client, ns: &str, want: &Data) -> Result<(), String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let data = cms
        .get_opt(BUNDLE)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|c| c.data)
        .unwrap_or_default();
    if &data != want {
        let dump = repo_root()
            .join("target")
            .join(format!("crash-{ns}-unequal"));
        let _ = std::fs::create_dir_all(&dump);
        for (k, v) in &data {
            let _ = std::fs::write(dump.join(format!("have-{k}")), v);
        }
        for (k, v) in want {
            let _ = std::fs::write(dump.join(format!("want-{k}")), v);
        }
        return Err(format!(
            "the bundle is not the rendered one yet (see {})",
            dump.display()
        ));
    }
    for (kind, items) in objects(client, ns).await? {
        for o in items {
            if o["status"]["observedGeneration"] != o["metadata"]["generation"] {
                return Err(format!("{kind} {} not observed", o["metadata"]["name"]));
            }
        }
    }
    Ok(())
}

fn first_difference(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Option<String> {
    for (k, va) in a {
        match b.get(k) {
            None => return Some(format!("{k} only in the disturbed namespace")),
            Some(vb) if vb != va => return Some(format!("{k}:\n disturbed {va}\n calm      {vb}")),
            _ => {}
        }
    }
    b.keys()
        .find(|k| !a.contains_key(*k))
        .map(|k| format!("{k} only in the calm namespace"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_converges_like_an_undisturbed_run_and_no_bundle_is_partial() {
    let seed = knob("CRASH_SEED", 20261129);
    let kills = knob("CRASH_KILLS", 50) as usize;
    let objects = knob("CRASH_OBJECTS", 1000) as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let disturbed = TestNamespace::new("crash").await;
    let calm = TestNamespace::new("calm").await;
    let (a, b) = (disturbed.name.clone(), calm.name.clone());
    let client = disturbed.client.clone();
    let dir = repo_root().join("target").join(format!("crash-{a}"));
    std::fs::create_dir_all(&dir).unwrap();

    // Every version of the disturbed bundle, from before the first write.
    let seen: Arc<Mutex<Vec<(u64, Data)>>> = Arc::default();
    let relists = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watch = {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &a);
        let cfg = watcher::Config::default().fields(&format!("metadata.name={BUNDLE}"));
        let (seen, relists) = (seen.clone(), relists.clone());
        tokio::spawn(async move {
            let mut s = watcher(cms, cfg).boxed();
            let mut inits = 0;
            while let Some(ev) = s.next().await {
                match ev {
                    Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                        let rv: u64 = cm
                            .metadata
                            .resource_version
                            .as_deref()
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(0);
                        let mut seen = seen.lock().unwrap();
                        if !seen.iter().any(|(r, _)| *r == rv) {
                            seen.push((rv, cm.data.unwrap_or_default()));
                        }
                    }
                    Ok(watcher::Event::Init) => {
                        inits += 1;
                        if inits > 1 {
                            relists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    _ => {}
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut repo = Repo::generate(&mut rng, objects);
    let total_objects = repo.object_count();
    let mut renders: Vec<Data> = Vec::new();
    let mut interrupted = 0;
    let mut changes_applied = 0;
    let started = Instant::now();
    for round in 0..kills {
        let change = if round == 0 {
            None
        } else {
            let n = rng.random_range(20..70);
            let c = repo.mutate(&mut rng, n);
            changes_applied += c.apply.len() + c.delete.len();
            Some(c)
        };
        let want = render(&dir, &repo, &a);
        renders.push(want.clone());
        // Kill points span the reconcile of a change: 20-70 changed objects keep the
        // operator writing for longer than the kill window after /readyz, so most kills land
        // mid-work (with 5-40 objects, a CI run landed only 20 of 50 mid-work).
        let delay = Duration::from_millis(if round == 0 {
            rng.random_range(0..3000)
        } else {
            rng.random_range(0..60)
        });
        match &change {
            None => {
                let f = dir.join("initial.yaml");
                for ns in [&a, &b] {
                    std::fs::write(&f, repo.yaml(ns)).unwrap();
                    let o = kubectl_output(&["apply", "--server-side", "-f", f.to_str().unwrap()])
                        .await;
                    assert!(o.success, "initial apply: {}", o.stderr);
                }
            }
            Some(c) => {
                tokio::join!(
                    apply_change(&dir, &repo, c, &a),
                    apply_change(&dir, &repo, c, &b)
                );
            }
        }
        // Changes land while both operators are down (kubectl apply is not atomic, and a
        // half-applied change is a state of its own); then the calm one runs undisturbed and
        // the other is killed at a random point of its work and restarted.
        let calm_op = Operator::start(&b, &[]).await;
        let mut op = Operator::start(&a, &[]).await;
        tokio::time::sleep(delay).await;
        op.kill_and_wait().await;
        if converged(&client, &a, &want).await.is_err() {
            interrupted += 1;
        }
        let op = Operator::start(&a, &[]).await;

        // Both converge, to the same decisions.
        eventually(
            &format!("round {round}: the calm namespace converges"),
            CONVERGE,
            || async { converged(&client, &b, &want).await },
        )
        .await;
        eventually(
            &format!("round {round}: the disturbed namespace converges like the calm one"),
            CONVERGE,
            || async {
                converged(&client, &a, &want).await?;
                let (x, y) = (decided(&client, &a).await, decided(&client, &b).await);
                match first_difference(&x, &y) {
                    None => Ok(()),
                    Some(d) => Err(d),
                }
            },
        )
        .await;
        op.stop().await;
        calm_op.stop().await;
    }
    let elapsed = started.elapsed();
    // The final bundle is `render` of the objects in the cluster now, in both namespaces.
    for ns in [&a, &b] {
        let live = render_live(&dir, &client, ns).await;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let data = cms.get(BUNDLE).await.unwrap().data.unwrap_or_default();
        assert!(
            data == live,
            "{ns}: the final bundle is not `render` of the objects in the cluster"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.abort();

    // Every bundle ever written is the render of a state, in order.
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(rv, _)| *rv);
    let mut at = 0;
    for (rv, data) in &seen {
        match (at..renders.len()).find(|j| &renders[*j] == data) {
            Some(j) => at = j,
            None => {
                let policies = data.get("policies.yaml").map(|s| s.len()).unwrap_or(0);
                panic!(
                    "bundle resourceVersion {rv} ({policies} bytes of policies.yaml) is not the render of any state from round {at} on: a partial or wrong bundle"
                );
            }
        }
    }
    assert_eq!(
        at,
        renders.len() - 1,
        "the last bundle is the final state's"
    );
    let report = serde_json::json!({
        "seed": seed,
        "objects": total_objects,
        "kills": kills,
        "kills_with_work_pending": interrupted,
        "changes": changes_applied,
        "bundle_versions_checked": seen.len(),
        "bundle_watch_relists": relists.load(std::sync::atomic::Ordering::Relaxed),
        "seconds": elapsed.as_secs_f64(),
        "lost_or_partial": 0,
    });
    std::fs::write(
        repo_root().join("target").join("crash-report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    eprintln!("crash safety: {report}");
    assert!(
        interrupted * 2 >= kills,
        "most kills must land while work is pending ({interrupted} of {kills}); the test would prove little"
    );
}
