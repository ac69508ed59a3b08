//! Conflicts: two replicas (leader election) while a user edits specs and labels as fast as
//! kubectl goes, and the leader is SIGKILLed in the middle. Nothing the user wrote is lost or
//! overwritten, every status ends on the user's last word, and once things are quiet the
//! replicas — through another failover — write nothing at all (no flapping).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use guardrail_operator::api::{Policy, PolicyVersion};
use kube::Api;
use kube::runtime::watcher;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::operator::{Operator, apply_output, http_get, policy, version};
use crate::common::{TestNamespace, eventually, kubectl, settled};

const T: Duration = Duration::from_secs(90);

async fn apply_ssa(yaml: &str) {
    let o = apply_output(yaml, &["--server-side"]).await;
    assert!(o.success, "{}", o.stderr);
}

async fn is_leader(op: &Operator) -> bool {
    http_get(op.port, "/metrics")
        .await
        .map(|(_, m)| m.lines().any(|l| l == "guardrail_leader 1"))
        .unwrap_or(false)
}

fn v_yaml(ns: &str, p: &str, v: i64, stage: &str) -> String {
    version(
        ns,
        p,
        v,
        stage,
        &format!("  guardrails: {{add: [{p}-g{v}]}}\n"),
    )
}

#[tokio::test]
async fn two_replicas_and_a_busy_user_lose_nothing_and_do_not_flap() {
    let ns = TestNamespace::new("replicas-edit").await;
    let n = ns.name.clone();
    let n = n.as_str();
    let lease: Vec<String> = [
        "--leader-elect",
        "--lease-name=guardrail-operator",
        "--lease-seconds=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--lease-namespace={n}")])
    .collect();
    let lease: Vec<&str> = lease.iter().map(String::as_str).collect();
    let mut ops = vec![
        Operator::start(n, &lease).await,
        Operator::start(n, &lease).await,
    ];

    // The user's model: policy → version → stage; labels the user put on versions.
    let mut model: BTreeMap<String, BTreeMap<i64, &'static str>> = BTreeMap::new();
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut y = String::new();
    for i in 0..20 {
        let p = format!("p{i}");
        y.push_str(&policy(n, &p));
        y.push_str(&v_yaml(n, &p, 1, "Production"));
        model.insert(p, [(1, "Production")].into_iter().collect());
    }
    apply_ssa(&y).await;

    // Every status the replicas write, from here on.
    let writes: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = {
        let writes = writes.clone();
        let api: Api<PolicyVersion> = ns.api();
        let papi: Api<Policy> = ns.api();
        tokio::spawn(async move {
            let vs = watcher(api, watcher::Config::default()).map(|e| {
                e.ok().and_then(|e| match e {
                    watcher::Event::Apply(o) => Some(format!(
                        "{}@{}",
                        o.metadata.name.unwrap_or_default(),
                        serde_json::to_string(&o.status).unwrap_or_default()
                    )),
                    _ => None,
                })
            });
            let ps = watcher(papi, watcher::Config::default()).map(|e| {
                e.ok().and_then(|e| match e {
                    watcher::Event::Apply(o) => Some(format!(
                        "policy {}@{}",
                        o.metadata.name.unwrap_or_default(),
                        serde_json::to_string(&o.status).unwrap_or_default()
                    )),
                    _ => None,
                })
            });
            let mut all = futures::stream::select(vs.boxed(), ps.boxed());
            while let Some(e) = all.next().await {
                if let Some(e) = e {
                    writes.lock().unwrap().push(e);
                }
            }
        })
    };

    // The user at work; the leader dies half way.
    let mut rng = StdRng::seed_from_u64(7);
    for step in 0..40 {
        let p = format!("p{}", rng.random_range(0..20));
        let versions = model.get_mut(&p).unwrap();
        match rng.random_range(0..4) {
            0 | 1 => {
                let next = versions.keys().max().unwrap() + 1;
                let stage = if rng.random_bool(0.7) {
                    "Production"
                } else {
                    "Published"
                };
                versions.insert(next, stage);
                apply_ssa(&v_yaml(n, &p, next, stage)).await;
            }
            2 => {
                // Roll back the highest production version (keep at least one).
                let prod: Vec<i64> = versions
                    .iter()
                    .filter(|(_, s)| **s == "Production")
                    .map(|(k, _)| *k)
                    .collect();
                if prod.len() > 1 {
                    let k = *prod.last().unwrap();
                    versions.insert(k, "Published");
                    apply_ssa(&v_yaml(n, &p, k, "Published")).await;
                }
            }
            _ => {
                // A label of the user's on a version the operator also labels and owns.
                let k = *versions.keys().next().unwrap();
                let name = format!("{p}-v{k}");
                let value = format!("step-{step}");
                kubectl(&[
                    "label",
                    "policyversion",
                    &name,
                    "-n",
                    n,
                    &format!("team.example/reviewed={value}"),
                    "--overwrite",
                ])
                .await;
                labels.insert(name, value);
            }
        }
        if step == 20 {
            let leader = if is_leader(&ops[0]).await { 0 } else { 1 };
            ops[leader].kill_and_wait().await;
            ops.remove(leader);
            ops.push(Operator::start(n, &lease).await);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
    }

    // Everything ends on the user's last word.
    let versions: Api<PolicyVersion> = ns.api();
    let policies: Api<Policy> = ns.api();
    let want_production: BTreeMap<String, i64> = model
        .iter()
        .map(|(p, vs)| {
            let k = vs
                .iter()
                .filter(|(_, s)| **s == "Production")
                .map(|(k, _)| *k)
                .max()
                .unwrap();
            (p.clone(), k)
        })
        .collect();
    eventually("every policy on the user's last word", T, || async {
        for (p, want) in &want_production {
            let got = policies.get(p).await.map_err(|e| e.to_string())?;
            let s = got.status.as_ref();
            if s.and_then(|s| s.production_version) != Some(*want)
                || s.and_then(|s| s.observed_generation) != got.metadata.generation
            {
                return Err(format!("{p}: want production {want}, status {s:?}"));
            }
        }
        for v in versions
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?
        {
            let s = v.status.as_ref().and_then(|s| s.observed_generation);
            if s != v.metadata.generation {
                return Err(format!("{:?} not observed", v.metadata.name));
            }
        }
        Ok(())
    })
    .await;
    for (p, vs) in &model {
        for (k, stage) in vs {
            let v = versions.get(&format!("{p}-v{k}")).await.unwrap();
            assert_eq!(
                v.spec.stage.map(|s| s.to_string()).as_deref(),
                Some(*stage),
                "{p}-v{k}: the user's spec.stage was overwritten"
            );
            let l = v.metadata.labels.clone().unwrap_or_default();
            if let Some(want) = labels.get(&format!("{p}-v{k}")) {
                assert_eq!(
                    l.get("team.example/reviewed"),
                    Some(want),
                    "{p}-v{k}: the user's label was lost"
                );
            }
            assert_eq!(
                l.get("guardrails.dev/policy"),
                None,
                "{p}-v{k}: the operator writes no label on objects users manage"
            );
            assert!(
                v.metadata
                    .owner_references
                    .clone()
                    .unwrap_or_default()
                    .is_empty(),
                "{p}-v{k}: the operator writes no ownerReference on objects users manage"
            );
        }
    }

    // Quiet: once the writes have stopped (none for 2 s), another failover, and not a single
    // status write.
    let before = settled("the status writes", Duration::from_secs(2), T, || async {
        writes.lock().unwrap().len()
    })
    .await;
    let leader = if is_leader(&ops[0]).await { 0 } else { 1 };
    ops[leader].kill_and_wait().await;
    let survivor = &ops[1 - leader];
    eventually("the survivor takes the lease", T, || async {
        if is_leader(survivor).await {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = writes.lock().unwrap().clone();
    assert_eq!(
        after.len(),
        before,
        "status writes while nothing changed (flapping): {:#?}",
        &after[before..]
    );
    recorder.abort();
}
