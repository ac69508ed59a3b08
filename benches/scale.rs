//! Scale against the real control plane: N PolicyVersions with their Policies and attachments,
//! written by a plain client with no operator (the raw write rate), then the same objects with
//! the operator running, timed until every status and every bundle have converged. Records the
//! operator's peak RSS and CPU time. Objects are spread 1,000 per namespace (a team's
//! namespace): one namespace's bundle must fit a ConfigMap (1 MiB), and 10,000 policies in
//! one bundle would not.
//!
//! The raw client then writes one converged status to each of its objects (server-side apply
//! on the status subresource, as the operator does): "raw creates + one status each" is the
//! fastest this API server can take a user's creates plus the status every object must get,
//! with no operator — the ceiling an operator's convergence can approach.
//!
//! Every write the API server served during the operator's run is counted from its own
//! `apiserver_request_total` (before and after, by resource, subresource and verb), so the
//! writes the operator adds per object a user creates are measured, not estimated.
//!
//! With `SCALE_OLD_BIN=<path to an older guardrail-operator>`, each size runs with that binary
//! too, in the same run and on fresh namespaces, so old and new are side by side. It takes a
//! comma-separated list, each item `path` (labelled "old") or `label=path`.
//!
//! `SCALE_CEILING=0` skips the ceiling (at 100,000 it alone takes about 12 minutes).
//!
//! Reproduce: `eval "$(scripts/testcp-up.sh)"; SCALE=1000,10000 cargo bench --bench scale; scripts/testcp-down.sh`
//! The 100,000 run needs a larger etcd quota: `TESTCP_ETCD_QUOTA_BYTES=8589934592` before
//! `scripts/testcp-up.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::{
    converged, create_all, delete_namespaces, namespaces, objects, proc_stat, status_all,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;

/// The API server's write counters: (resource, subresource, verb) → requests served.
type Writes = std::collections::BTreeMap<(String, String, String), f64>;

const WRITE_VERBS: [&str; 4] = ["POST", "CREATE", "APPLY", "PATCH"];

/// Writes served so far, from the API server's own `apiserver_request_total`. Deletes are
/// left out: they come from the previous size's namespace cleanup, not from convergence.
async fn writes(client: &Client) -> Writes {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let mut out = Writes::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |key: &str| {
            labels
                .split("\",")
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let verb = label("verb");
        if !WRITE_VERBS.contains(&verb.as_str()) {
            continue;
        }
        let verb = if verb == "POST" {
            "CREATE".into()
        } else {
            verb
        };
        *out.entry((label("resource"), label("subresource"), verb))
            .or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// `after - before`, the non-zero entries.
fn delta(before: &Writes, after: &Writes) -> Writes {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// One converged run with an operator binary.
struct Run {
    took: Duration,
    hwm_kb: u64,
    cpu: f64,
    /// Writes the API server served during the run, the user's creates included.
    writes: Writes,
}

/// CPU seconds used so far by the test control plane (kube-apiserver and etcd, one process:
/// `$TESTCP_PID`); 0 when unknown.
fn control_plane_cpu() -> f64 {
    std::env::var("TESTCP_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .map(|pid| proc_stat(pid).1)
        .unwrap_or(0.0)
}

/// `write` in each of `namespaces` in turn: how long it took, and the control plane's CPU for it.
async fn phase(namespaces: &[String], write: impl AsyncFn(&str)) -> (Duration, f64) {
    let cp = control_plane_cpu();
    let start = Instant::now();
    for ns in namespaces {
        write(ns).await;
    }
    (start.elapsed(), control_plane_cpu() - cp)
}

/// Create `objs` in each of `namespaces` with `binary` running, until everything converged.
async fn run_operator(
    client: &Client,
    kubeconfig: &str,
    binary: &str,
    namespaces: &[String],
    objs: &[(&'static str, serde_json::Value)],
) -> Run {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut op = tokio::process::Command::new(binary)
        .args(["run", "--http-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", kubeconfig)
        .env(
            "RUST_LOG",
            std::env::var("SCALE_OPERATOR_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(match std::env::var("SCALE_OPERATOR_LOG") {
            Ok(path) => std::fs::File::create(path).unwrap().into(),
            Err(_) => std::process::Stdio::null(),
        })
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = op.id().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, cpu0) = proc_stat(pid);
    let before = writes(client).await;
    let start = Instant::now();
    for ns in namespaces {
        create_all(client, ns, objs).await;
    }
    let deadline = Duration::from_secs(1800);
    for ns in namespaces {
        while !converged(client, ns, objs.len() / 3).await {
            assert!(
                start.elapsed() < deadline,
                "{binary} did not converge within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let took = start.elapsed();
    // Writes still in flight at convergence (events, a last status) belong to the run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = writes(client).await;
    let (hwm_kb, cpu1) = proc_stat(pid);
    let _ = op.start_kill();
    let _ = op.wait().await;
    Run {
        took,
        hwm_kb,
        cpu: cpu1 - cpu0,
        writes: delta(&before, &after),
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Ok(path) = std::env::var("TESTCP_KUBECONFIG") else {
        eprintln!("TESTCP_KUBECONFIG is not set: run `eval \"$(scripts/testcp-up.sh)\"` first");
        return;
    };
    let sizes: Vec<usize> = std::env::var("SCALE")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let binaries = cluster::binaries("SCALE_OLD_BIN");
    let client = cluster::connect(&path).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut rows = Vec::new();
    let mut details = Vec::new();
    for n in sizes {
        let tag = rand::random::<u32>() & 0xffffff;
        let spaces = n.div_ceil(1000);
        let per = n / spaces;
        let objs = objects(per);
        let raw_ns = namespaces(&nss, &format!("scale-raw-{n}-{tag:06x}"), spaces).await;
        let (raw, raw_cp) = phase(&raw_ns, async |ns| {
            create_all(&client, ns, &objs).await;
        })
        .await;
        // The same plain client then writes one converged status per object: what "one create
        // and one status per object" costs this API server with no operator at all.
        // `SCALE_CEILING=0` skips it (the 100,000 run, where it alone takes ~12 minutes).
        let ceiling = if std::env::var("SCALE_CEILING").as_deref() == Ok("0") {
            None
        } else {
            let (raw_status, raw_status_cp) = phase(&raw_ns, async |ns| {
                status_all(&client, ns, &objs).await;
            })
            .await;
            eprintln!(
                "raw {n}: creates {:.1} s ({raw_cp:.1} s control plane CPU), statuses {:.1} s ({raw_status_cp:.1} s)",
                raw.as_secs_f64(),
                raw_status.as_secs_f64()
            );
            Some(raw + raw_status)
        };
        let percent = |d: Duration, of: Duration| {
            format!("{:.0}%", 100.0 * d.as_secs_f64() / of.as_secs_f64())
        };
        let ceiling_cell = ceiling.map_or("—".to_string(), |c| {
            format!("{:.1} s ({})", c.as_secs_f64(), percent(raw, c))
        });
        delete_namespaces(&nss, &raw_ns).await;
        let objects_n = 3 * n;
        for (which, binary) in &binaries {
            let op_ns = namespaces(&nss, &format!("scale-{which}-{n}-{tag:06x}"), spaces).await;
            let cp = control_plane_cpu();
            let run = run_operator(&client, &path, binary, &op_ns, &objs).await;
            let op_cp = control_plane_cpu() - cp;
            eprintln!(
                "{which} {n}: control plane CPU {raw_cp:.1} s for the raw creates, {op_cp:.1} s with the operator (its own: {:.1} s)",
                run.cpu
            );
            delete_namespaces(&nss, &op_ns).await;
            let ours = |k: &(String, String, String)| {
                !(k.2 == "CREATE"
                    && k.1.is_empty()
                    && ["policies", "policyversions", "policyattachments"].contains(&k.0.as_str()))
            };
            let operator_writes: f64 = run
                .writes
                .iter()
                .filter(|(k, _)| ours(k))
                .map(|(_, v)| v)
                .sum();
            rows.push(format!(
                "| {which} | {n} (+{n}, +{n}; {spaces} namespace(s)) | {:.1} s | {:.0} | {ceiling_cell} | {:.1} s | {:.0} | {:.0}% | {} | {:.2} | {:.1} MiB | {:.2} KiB | {:.1} s | {:.2} ms |",
                raw.as_secs_f64(),
                objects_n as f64 / raw.as_secs_f64(),
                run.took.as_secs_f64(),
                objects_n as f64 / run.took.as_secs_f64(),
                100.0 * raw.as_secs_f64() / run.took.as_secs_f64(),
                ceiling.map_or("—".to_string(), |c| percent(c, run.took)),
                operator_writes / objects_n as f64,
                run.hwm_kb as f64 / 1024.0,
                run.hwm_kb as f64 / objects_n as f64,
                run.cpu,
                1000.0 * run.took.as_secs_f64() / objects_n as f64,
            ));
            for ((resource, sub, verb), count) in &run.writes {
                let what = if sub.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{sub}")
                };
                details.push(format!(
                    "| {which} | {n} | {what} | {verb} | {count:.0} | {:.3} |",
                    count / objects_n as f64
                ));
            }
            eprintln!("{}", rows.last().unwrap());
        }
    }
    println!(
        "| operator | PolicyVersions (+ Policies, attachments) | raw creates | raw objects/s | raw creates + one status each (ceiling ratio) | with operator: converged | converged objects/s | ratio | of the ceiling | operator writes per user object | peak RSS | RSS per object | operator CPU | per-object cost |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!();
    println!("| operator | PolicyVersions | resource | verb | requests | per user object |");
    println!("|---|---|---|---|---|---|");
    for d in details {
        println!("{d}");
    }
}
