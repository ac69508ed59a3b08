//! Never starve the runtime: the operator pinned to one CPU (`taskset -c 0`), its webhook
//! flooded with reviews of a version whose 32 tests run twelve real content-filter guardrails
//! over ~24 KB each (about two seconds of CPU per review in the test build, three times the
//! admission budget; with four guardrails it was about 0.8 s, and a warm webhook sometimes
//! finished inside the 0.7 s budget). Meanwhile:
//!
//! * the leader keeps renewing its Lease: no gap between renewals reaches the lease duration;
//! * `/readyz` answers every poll, each within a second;
//! * every review is answered within the budget plus a margin, far inside the API server's
//!   timeout: allowed, or denied saying that the admission budget ran out (mid-tests, checked
//!   before every pipeline step) or that the webhook was busy for the whole budget;
//! * an apply through the API server in the middle of it gets such a denial, not a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::common::operator::{Operator, apply, apply_output, free_port, http_get, policy};
use crate::common::{TestNamespace, eventually, kubectl, pki_file};
use crate::webhook_down::{cert_dir, chart_webhook};

const BUDGET_MS: u64 = 700;
const LEASE_SECONDS: u64 = 6;
const FLOOD: Duration = Duration::from_secs(12);
const CLIENTS: usize = 12;
/// Content-filter guardrails in the catalog, each one step of the heavy version's pipeline.
const GUARDRAILS: usize = 12;

const WORDS: [&str; 12] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma",
    "omega", "tau",
];

/// A catalog of [`GUARDRAILS`] content-filter guardrails with four regexes each (none matches the
/// test messages, so every step runs).
fn catalog(ns: &str) -> String {
    let patterns = [
        r"\b\d{3}-\d{2}-\d{4}\b",
        r"(?i)ignore (all )?(previous|prior) instructions",
        r"[A-Z]{5,}\d+",
        r"(\w+\s){3}secret",
    ];
    let mut out = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guardrail-catalog\n  namespace: {ns}\ndata:\n  guardrails.yaml: |\n    guardrails:\n"
    );
    for g in 0..GUARDRAILS {
        out += &format!(
            "      - guardrail_name: scan-{g}\n        litellm_params:\n          guardrail: litellm_content_filter\n          mode: pre_call\n          default_on: false\n          patterns:\n"
        );
        for (k, p) in patterns.iter().enumerate() {
            out += &format!(
                "            - {{pattern_type: regex, name: p{g}{k}, pattern: '{p}', action: BLOCK}}\n"
            );
        }
    }
    out
}

/// The heavy version: [`GUARDRAILS`] pipeline steps, 32 tests of two ~12 KB messages.
fn heavy_version(ns: &str, name: &str, version: i64) -> Value {
    let text: String = (0..2300)
        .map(|i| WORDS[(i * 7 + i / 5) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ");
    let tests: Vec<Value> = (0..32)
        .map(|t| {
            json!({"name": format!("t{t}"),
                   "messages": [{"role": "user", "content": text}, {"role": "user", "content": text}],
                   "expect": {"action": "allow"}})
        })
        .collect();
    json!({
        "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "policy": "heavy", "version": version, "stage": "Production",
            "guardrails": {"add": (0..GUARDRAILS).map(|g| format!("scan-{g}")).collect::<Vec<_>>()},
            "pipeline": {"mode": "pre_call", "steps": (0..GUARDRAILS).map(|g| json!({"guardrail": format!("scan-{g}"), "onPass": "next", "onFail": "block"})).collect::<Vec<_>>()},
            "tests": tests
        }
    })
}

fn review_body(ns: &str, uid: &str, object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "guardrails.dev", "version": "v1alpha1", "kind": "PolicyVersion"},
            "resource": {"group": "guardrails.dev", "version": "v1alpha1", "resource": "policyversions"},
            "name": object["metadata"]["name"], "namespace": ns, "operation": "CREATE",
            "userInfo": {"username": "starvation-test"},
            "object": object, "dryRun": false
        }
    }))
    .unwrap()
}

/// One answered review: latency, allowed, message.
type Answer = (Duration, bool, String);

/// Post reviews over one keep-alive TLS connection until `until`.
async fn client(
    port: u16,
    connector: tokio_rustls::TlsConnector,
    body: Arc<Vec<u8>>,
    until: Instant,
) -> Vec<Answer> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    while Instant::now() < until {
        let req = hyper::Request::post("/validate/policyversions")
            .header("content-type", "application/json")
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::from(body.as_ref().clone())))
            .unwrap();
        let start = Instant::now();
        let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
            .await
            .expect("an answer within 30 s")
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let took = start.elapsed();
        let review: Value = serde_json::from_slice(&bytes).unwrap();
        let r = &review["response"];
        assert_eq!(r["uid"], "starve", "the answer carries the request's uid");
        out.push((
            took,
            r["allowed"] == true,
            r["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    out
}

#[tokio::test]
async fn heavy_reviews_on_one_core_never_delay_the_lease_the_probes_or_the_answers() {
    let ns = TestNamespace::new("starve").await;
    let n = ns.name.as_str();
    apply(&catalog(n)).await;
    apply(&policy(n, "heavy")).await;

    let port = free_port();
    let release = format!("st{}", &n[n.len() - 6..]);
    let (vwc_name, _) = chart_webhook(n, port, &release, &[]).await;
    let certs = cert_dir(n);
    let addr = format!("127.0.0.1:{port}");
    let lease_name = format!("starve-{}", &n[n.len() - 6..]);
    let budget = BUDGET_MS.to_string();
    let lease_seconds = LEASE_SECONDS.to_string();
    let op = Operator::start_on_cpu(
        0,
        n,
        &[
            "--webhook-addr",
            &addr,
            "--webhook-cert-dir",
            &certs,
            "--catalog-configmap",
            "guardrail-catalog",
            "--admission-budget-ms",
            &budget,
            "--leader-elect",
            "--lease-name",
            &lease_name,
            "--lease-namespace",
            n,
            "--lease-seconds",
            &lease_seconds,
        ],
    )
    .await;
    let leases: Api<Lease> = ns.api();
    let holder = eventually(
        "the operator holds its Lease",
        Duration::from_secs(30),
        || async {
            let l = leases
                .get_opt(&lease_name)
                .await
                .map_err(|e| e.to_string())?;
            l.and_then(|l| l.spec?.holder_identity)
                .ok_or_else(|| "no holder yet".to_string())
        },
    )
    .await;
    // The API server sees a new webhook configuration through a watch, which can lag by seconds
    // on a loaded machine (the other reliability tests run beside this one); until it does, it
    // admits without asking. Wait until a cheap version whose one test fails is refused by the
    // webhook (a server-side dry run: nothing is stored).
    let mut cheap = heavy_version(n, "cheap-v99", 99);
    cheap["spec"]["tests"] = json!([{"name": "must-block",
        "messages": [{"role": "user", "content": "hello"}], "expect": {"action": "block"}}]);
    let cheap = serde_json::to_string(&cheap).unwrap();
    eventually(
        "the API server asks the webhook",
        Duration::from_secs(30),
        || async {
            let o = apply_output(&cheap, &["--server-side", "--dry-run=server"]).await;
            if !o.success && o.stderr.contains("1 of 1 test(s) failed") {
                Ok(())
            } else {
                Err(format!("{}{}", o.stdout, o.stderr))
            }
        },
    )
    .await;

    // One version through the API server, before the flood: the budget denies it mid-tests.
    let object = heavy_version(n, "heavy-v1", 1);
    let one = apply_output(&serde_json::to_string(&object).unwrap(), &["--server-side"]).await;
    assert!(
        !one.success && one.stderr.contains("admission budget of 0.7s"),
        "the heavy version is denied for its budget, got: {}{}",
        one.stdout,
        one.stderr
    );

    // The flood.
    crate::common::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki_file("ca.crt")).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let body = Arc::new(review_body(n, "starve", &object));
    let until = Instant::now() + FLOOD;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(port, connector.clone(), body.clone(), until)))
        .collect();

    // Meanwhile: /readyz every 200 ms, the Lease every 250 ms, one apply through the API server.
    let renewals: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let watch_lease = {
        let (leases, lease_name, renewals) = (leases.clone(), lease_name.clone(), renewals.clone());
        tokio::spawn(async move {
            while Instant::now() < until {
                if let Ok(Some(l)) = leases.get_opt(&lease_name).await {
                    let spec = l.spec.unwrap_or_default();
                    let at = format!("{:?}", spec.renew_time);
                    let mut r = renewals.lock().await;
                    if r.last().is_none_or(|(_, last)| *last != at) {
                        r.push((Instant::now(), at));
                    }
                    assert_eq!(spec.holder_identity.as_deref(), Some(holder.as_str()));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let mut probes = Vec::new();
    let mut through_api = None;
    tokio::time::sleep(Duration::from_secs(2)).await;
    while Instant::now() < until {
        let start = Instant::now();
        let answer =
            tokio::time::timeout(Duration::from_secs(5), http_get(op.port, "/readyz")).await;
        probes.push((start.elapsed(), answer.ok().flatten().map(|(s, _)| s)));
        if through_api.is_none() && probes.len() == 10 {
            let v2 = heavy_version(n, "heavy-v2", 2);
            let start = Instant::now();
            let o = apply_output(&serde_json::to_string(&v2).unwrap(), &["--server-side"]).await;
            through_api = Some((start.elapsed(), o));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    watch_lease.await.unwrap();

    // Every review answered well inside the API server's timeout, and every denial says why.
    let slowest = answers.iter().map(|a| a.0).max().unwrap();
    let budget_runs = answers
        .iter()
        .filter(|a| a.2.contains("did not finish within the admission budget"))
        .count();
    let busy = answers
        .iter()
        .filter(|a| {
            a.2.contains("the webhook was busy for the whole admission budget")
        })
        .count();
    eprintln!(
        "{} reviews: {budget_runs} denied mid-tests, {busy} denied busy, slowest {slowest:?}; {} probes, slowest {:?}; {} Lease renewals seen",
        answers.len(),
        probes.len(),
        probes.iter().map(|p| p.0).max(),
        renewals.lock().await.len()
    );
    for (took, allowed, message) in &answers {
        assert!(!allowed, "the heavy version cannot pass within the budget");
        assert!(
            message.contains("admission budget of 0.7s"),
            "a denial says the budget ran out: {message}"
        );
        assert!(
            *took < Duration::from_millis(BUDGET_MS + 1300),
            "answered in {took:?}, past the budget"
        );
    }
    assert!(
        budget_runs > 0,
        "no review ran its tests until the budget ran out"
    );
    assert!(busy > 0, "the flood never filled every review slot");
    assert!(
        budget_runs + busy == answers.len(),
        "every answer is one of the two denials"
    );

    // The probes answered, each within a second.
    assert!(probes.len() >= 20, "{} probes", probes.len());
    for (took, status) in &probes {
        assert_eq!(*status, Some(200), "/readyz during the flood");
        assert!(*took < Duration::from_secs(1), "/readyz took {took:?}");
    }

    // The Lease was renewed throughout: no gap reached its duration.
    let renewals = renewals.lock().await;
    assert!(
        renewals.len() >= 3,
        "Lease renewals seen during {FLOOD:?}: {renewals:?}"
    );
    for pair in renewals.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap < Duration::from_secs(LEASE_SECONDS),
            "the Lease went {gap:?} without renewal (duration {LEASE_SECONDS} s)"
        );
    }

    // Through the API server: denied with the message, not a webhook timeout.
    let (took, o) = through_api.expect("the apply ran during the flood");
    assert!(!o.success, "{}", o.stdout);
    assert!(
        o.stderr.contains("admission budget of 0.7s") && !o.stderr.contains("timeout"),
        "{}",
        o.stderr
    );
    assert!(took < Duration::from_secs(5), "the apply took {took:?}");
    drop(op);
    kubectl(&[
        "delete",
        "validatingwebhookconfiguration",
        &vwc_name,
        "--ignore-not-found",
    ])
    .await;
}
