//! Admission load: AdmissionReviews at 1, 10 and 100 concurrent requests against the real
//! webhook server and against a no-op HTTPS handler, in the same run, on 127.0.0.1.
//! The review is the CREATE of a PolicyVersion asking for Production with a 3-step pipeline and
//! five tests, so every request runs the five tests.
//!
//! Reproduce: `cargo bench --bench admission`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use guardrail_operator::providers;
use guardrail_operator::webhook::{self, AdmissionMetrics, WebhookState, certs};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::json;

const PER_LEVEL: usize = 3000;

fn review_body() -> Vec<u8> {
    let tests: Vec<_> = (0..5)
        .map(|i| {
            json!({"name": format!("t{i}"), "messages": [{"role": "user", "content": format!("message number {i} with some text")}],
                   "mocks": {"pii": "pass", "inj": if i % 2 == 0 { "fail" } else { "pass" }, "tox": "pass"},
                   "expect": {"action": if i % 2 == 0 { "modify_response" } else { "allow" }}})
        })
        .collect();
    let object = json!({
        "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion",
        "metadata": {"name": "bench-v1", "namespace": "bench"},
        "spec": {"policy": "bench", "version": 1, "stage": "Production",
                 "guardrails": {"add": ["pii", "inj", "tox"]},
                 "pipeline": {"steps": [{"guardrail": "pii", "onPass": "next"}, {"guardrail": "inj", "onPass": "next", "onFail": "modify_response", "modifyResponseMessage": "Refused"}, {"guardrail": "tox"}]},
                 "tests": tests}
    });
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "00000000-0000-0000-0000-000000000001",
                    "kind": {"group": "guardrails.dev", "version": "v1alpha1", "kind": "PolicyVersion"},
                    "resource": {"group": "guardrails.dev", "version": "v1alpha1", "resource": "policyversions"},
                    "name": "bench-v1", "namespace": "bench", "operation": "CREATE",
                    "userInfo": {"username": "bench"}, "object": object, "dryRun": false}
    }))
    .unwrap()
}

async fn start(router: Router, tls: RustlsConfig) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .serve(router.into_make_service())
            .await
            .unwrap();
    });
    addr
}

async fn worker(
    addr: SocketAddr,
    path: &'static str,
    connector: tokio_rustls::TlsConnector,
    body: Arc<Vec<u8>>,
    n: usize,
) -> Vec<Duration> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let req = hyper::Request::post(path)
            .header("content-type", "application/json")
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::from(body.as_ref().clone())))
            .unwrap();
        let start = Instant::now();
        let resp = sender.send_request(req).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        out.push(start.elapsed());
        assert!(bytes.starts_with(b"{"), "unexpected answer");
    }
    out
}

async fn level(
    addr: SocketAddr,
    path: &'static str,
    connector: &tokio_rustls::TlsConnector,
    body: &Arc<Vec<u8>>,
    concurrency: usize,
) -> (f64, f64) {
    let per = PER_LEVEL / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(addr, path, connector.clone(), body.clone(), per)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let q =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    (q(0.50), q(0.99))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (pem, _) = certs::generate(
        &[],
        &["127.0.0.1".parse().unwrap()],
        30,
        jiff::Timestamp::now(),
    )
    .unwrap();
    let cfg = webhook::server_config(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap();
    let (policies, versions, attachments) = Default::default();
    let metrics_check = AdmissionMetrics::register(&mut Default::default());
    let state = Arc::new(WebhookState {
        policies,
        versions,
        attachments,
        catalogs: None,
        catalog_name: None,
        provider: providers::mocks_only(),
        metrics: metrics_check.clone(),
        budget_seconds: 2.0,
        catalog_cache: Default::default(),
        slots: WebhookState::review_slots(),
    });
    let state_check = state.clone();
    let real = start(
        webhook::router(state),
        RustlsConfig::from_config(cfg.clone()),
    )
    .await;
    let fixed = serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": "00000000-0000-0000-0000-000000000001", "allowed": true}}),
    )
    .unwrap();
    let noop_router = Router::new().route(
        "/noop",
        post(move |_b: Bytes| {
            let f = fixed.clone();
            async move { ([("content-type", "application/json")], f) }
        }),
    );
    let noop = start(noop_router, RustlsConfig::from_config(cfg)).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.ca.as_bytes()).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let body = Arc::new(review_body());

    // The review really runs the five tests and is allowed.
    let review: kube::core::admission::AdmissionReview<kube::core::DynamicObject> =
        serde_json::from_slice(&body).unwrap();
    let answer = webhook::review(&state_check, review, Some("PolicyVersion"));
    let response = answer.response.unwrap();
    assert!(response.allowed, "{:?}", response.result);
    assert_eq!(metrics_check.test_runs.get(), 1);

    println!(
        "| concurrency | webhook p50 (ms) | webhook p99 (ms) | no-op p50 (ms) | no-op p99 (ms) | p99 ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for c in [1usize, 10, 100] {
        // warm-up
        let _ = level(real, "/validate/policyversions", &connector, &body, c).await;
        let (r50, r99) = level(real, "/validate/policyversions", &connector, &body, c).await;
        let (n50, n99) = level(noop, "/noop", &connector, &body, c).await;
        println!(
            "| {c} | {r50:.3} | {r99:.3} | {n50:.3} | {n99:.3} | {:.2} |",
            r99 / n99
        );
    }
    println!(
        "\n{PER_LEVEL} requests per level and server; a PolicyVersion CREATE with five tests through a 3-step pipeline."
    );
}
