//! Smoke tests proving the test control plane is a real Kubernetes API:
//! kubectl, status subresources, server-side dry-run and apply, CEL rules,
//! validating admission webhooks over HTTPS, garbage collection of
//! ownerReferences, namespace deletion and a Helm install.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::{CustomResource, Resource, ResourceExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::{
    self, TestNamespace, api_status, await_condition, await_gone, eventually, fixture, kubectl,
    kubectl_output,
};

/// The smoke CRD from fixtures/smoke-crd.yaml, typed (the schema comes from
/// the YAML file, not from this struct).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default)]
#[kube(
    group = "smoke.guardrail.test",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    pub replicas: i64,
    pub max_replicas: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_replicas: Option<i64>,
}

const CEL_MESSAGE: &str = "widget replicas must not exceed maxReplicas";
const T30: Duration = Duration::from_secs(30);

fn widget(name: &str, replicas: i64, max_replicas: i64) -> Widget {
    let mut w = Widget::new(
        name,
        WidgetSpec {
            replicas,
            max_replicas,
            color: Some("green".into()),
        },
    );
    w.metadata.labels = Some(labels(&[("app.kubernetes.io/part-of", "guardrail-smoke")]));
    w
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn config_map(name: &str, lbls: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(lbls)),
            ..Default::default()
        },
        data: Some(labels(&[("k", "v")])),
        ..Default::default()
    }
}

async fn smoke_ns(test: &str) -> TestNamespace {
    let ns = TestNamespace::new(test).await;
    common::install_smoke_crd(&ns.client).await;
    ns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_reports_its_real_version() {
    let client = common::client().await;
    let info = client.apiserver_version().await.expect("GET /version");
    assert_eq!(
        (info.major.as_str(), info.minor.as_str()),
        ("1", "37"),
        "unexpected /version: {info:?}"
    );
    assert!(
        info.git_version.starts_with("v1.37."),
        "gitVersion not stamped (testcp-build.sh ldflags?): {info:?}"
    );
    let out = kubectl(&["version", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).expect("kubectl version -o json");
    assert_eq!(
        v["serverVersion"]["gitVersion"],
        json!(info.git_version),
        "{out}"
    );
}

/// Everything the project uses kubectl for: apply (client-side, server-side,
/// server dry-run), get, patch (also the status subresource), wait, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crd_and_object() {
    let ns = smoke_ns("kubectl").await;
    let n = ns.name.as_str();
    let obj = fixture("smoke-widget.yaml");
    let obj = obj.to_str().expect("utf-8 path");

    let out = kubectl(&["apply", "-n", n, "-f", obj]).await;
    assert!(
        out.contains("widget.smoke.guardrail.test/kubectl-widget created"),
        "{out}"
    );
    let out = kubectl(&["apply", "-n", n, "-f", obj]).await;
    assert!(
        out.contains("unchanged"),
        "second apply should be a no-op: {out}"
    );

    let out = kubectl(&["apply", "-n", n, "--dry-run=server", "-f", obj]).await;
    assert!(out.contains("server dry run"), "{out}");
    let out = kubectl(&[
        "apply",
        "-n",
        n,
        "--server-side",
        "--force-conflicts",
        "--field-manager=it-kubectl",
        "-f",
        obj,
    ])
    .await;
    assert!(out.contains("serverside-applied"), "{out}");

    let out = kubectl(&["get", "widgets", "-n", n, "-o", "wide"]).await;
    assert!(
        out.contains("kubectl-widget") && out.contains("REPLICAS"),
        "printer columns: {out}"
    );

    kubectl(&[
        "patch",
        "widget",
        "kubectl-widget",
        "-n",
        n,
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"red"}}"#,
    ])
    .await;
    kubectl(&[
        "patch",
        "widget",
        "kubectl-widget",
        "-n",
        n,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready"}}"#,
    ])
    .await;
    kubectl(&[
        "wait",
        "-n",
        n,
        "widget/kubectl-widget",
        "--for=jsonpath={.status.phase}=Ready",
        "--timeout=30s",
    ])
    .await;

    let api: Api<Widget> = ns.api();
    let w = api.get("kubectl-widget").await.expect("get widget");
    assert_eq!(w.spec.color.as_deref(), Some("red"));
    assert_eq!(w.status.and_then(|s| s.phase).as_deref(), Some("Ready"));
    assert!(
        w.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref() == Some("it-kubectl")),
        "server-side apply should record its field manager"
    );

    let out = kubectl(&[
        "delete",
        "widget",
        "kubectl-widget",
        "-n",
        n,
        "--wait=true",
        "--timeout=30s",
    ])
    .await;
    assert!(out.contains("deleted"), "{out}");
    await_gone(&api, "kubectl-widget", T30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_is_separate_from_spec() {
    let ns = smoke_ns("status").await;
    let api: Api<Widget> = ns.api();
    let created = api
        .create(&PostParams::default(), &widget("w", 1, 3))
        .await
        .expect("create widget");
    let generation = created.metadata.generation;

    let patched = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready", "observedReplicas": 1}, "spec": {"replicas": 2}})),
        )
        .await
        .expect("patch status");
    assert_eq!(
        patched.status,
        Some(WidgetStatus {
            phase: Some("Ready".into()),
            observed_replicas: Some(1)
        })
    );
    assert_eq!(
        patched.spec.replicas, 1,
        "a status write must ignore spec changes"
    );
    assert_eq!(
        patched.metadata.generation, generation,
        "a status write must not bump generation"
    );

    let patched = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}, "status": {"phase": "Hacked"}})),
        )
        .await
        .expect("patch spec");
    assert_eq!(patched.spec.replicas, 2);
    assert_eq!(
        patched.status.and_then(|s| s.phase).as_deref(),
        Some("Ready"),
        "a main-resource write must ignore status changes"
    );
    assert!(
        patched.metadata.generation > generation,
        "a spec change must bump generation"
    );

    // Server-side apply on the status subresource, as an operator does it.
    let ssa = json!({
        "apiVersion": "smoke.guardrail.test/v1", "kind": "Widget",
        "metadata": {"name": "w"},
        "status": {"phase": "Degraded"}
    });
    let applied = api
        .patch_status(
            "w",
            &PatchParams::apply("it-status").force(),
            &Patch::Apply(&ssa),
        )
        .await
        .expect("server-side apply of status");
    assert_eq!(
        applied.status.and_then(|s| s.phase).as_deref(),
        Some("Degraded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_dry_run_persists_nothing() {
    let ns = smoke_ns("dryrun").await;
    let api: Api<Widget> = ns.api();

    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let dry = api
        .create(&pp, &widget("dry", 1, 2))
        .await
        .expect("dry-run create");
    assert!(
        dry.metadata.uid.is_some(),
        "the server fills metadata even in a dry run"
    );
    assert!(
        api.get_opt("dry").await.expect("get").is_none(),
        "a dry-run create must not persist"
    );

    let ssa = serde_json::to_value(widget("dry-ssa", 1, 2)).expect("json");
    let applied = api
        .patch(
            "dry-ssa",
            &PatchParams::apply("it-dryrun").dry_run(),
            &Patch::Apply(&ssa),
        )
        .await
        .expect("dry-run server-side apply");
    assert_eq!(applied.spec.max_replicas, 2);
    assert!(
        api.get_opt("dry-ssa").await.expect("get").is_none(),
        "a dry-run apply must not persist"
    );

    // Validation still runs in a dry run.
    let err = api
        .create(&pp, &widget("dry-bad", 5, 2))
        .await
        .expect_err("the CEL rule applies to dry runs too");
    assert!(err.to_string().contains(CEL_MESSAGE), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_rule_rejects_with_its_message() {
    let ns = smoke_ns("cel").await;
    let api: Api<Widget> = ns.api();

    let err = api
        .create(&PostParams::default(), &widget("bad", 5, 3))
        .await
        .expect_err("replicas > maxReplicas must be rejected");
    let status = api_status(&err).unwrap_or_else(|| panic!("not an API error: {err}"));
    assert_eq!(status.code, 422, "{status:?}");
    assert_eq!(status.reason, "Invalid", "{status:?}");
    assert!(status.message.contains(CEL_MESSAGE), "{status:?}");

    // Updates are checked too.
    api.create(&PostParams::default(), &widget("good", 1, 3))
        .await
        .expect("create");
    let err = api
        .patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect_err("an update breaking the rule must be rejected");
    assert!(err.to_string().contains(CEL_MESSAGE), "{err}");

    // kubectl shows the rule's message as well.
    let bad = ns.name.clone();
    let manifest = format!(
        "apiVersion: smoke.guardrail.test/v1\nkind: Widget\nmetadata:\n  name: bad-kubectl\n  namespace: {bad}\nspec:\n  replicas: 9\n  maxReplicas: 1\n"
    );
    let file = common::testcp_dir().join(format!("{bad}-bad-widget.yaml"));
    std::fs::write(&file, manifest).expect("write manifest");
    let out = kubectl_output(&["apply", "-f", file.to_str().expect("utf-8")]).await;
    let _ = std::fs::remove_file(&file);
    assert!(!out.success, "kubectl apply must fail: {}", out.stdout);
    assert!(
        out.stderr.contains(CEL_MESSAGE),
        "kubectl stderr: {}",
        out.stderr
    );
}

/// A validating webhook served by this test over HTTPS on 127.0.0.1, with
/// testcp's pki/webhook.{crt,key}; it denies ConfigMaps labelled
/// `guardrail.test/deny=true`.
struct Webhook {
    addr: SocketAddr,
    reviews: Arc<Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

const DENY_LABEL: &str = "guardrail.test/deny";
const DENY_MESSAGE: &str = "denied by the guardrail smoke webhook";

impl Webhook {
    async fn start() -> Self {
        common::install_crypto_provider();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(common::pki_file("webhook.crt"))
                .expect("open webhook.crt")
                .collect::<Result<_, _>>()
                .expect("parse webhook.crt");
        let key =
            PrivateKeyDer::from_pem_file(common::pki_file("webhook.key")).expect("webhook.key");
        let mut cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS config");
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let seen = reviews.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc =
                        hyper::service::service_fn(move |req| handle_review(req, seen.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            reviews,
            task,
        }
    }

    fn reviews(&self) -> Vec<serde_json::Value> {
        self.reviews.lock().expect("lock").clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle_review(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |code: StatusCode, body: Vec<u8>| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(r)
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
    };
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    seen.lock().expect("lock").push(raw);
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
    };
    let deny = request
        .object
        .as_ref()
        .and_then(|o| o.labels().get(DENY_LABEL).cloned())
        .is_some_and(|v| v == "true");
    let mut resp = AdmissionResponse::from(&request);
    if deny {
        resp = resp.deny(format!(
            "{DENY_MESSAGE}: {} (dryRun={})",
            request.name, request.dry_run
        ));
    }
    let out = serde_json::to_vec(&resp.into_review()).unwrap_or_default();
    reply(StatusCode::OK, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validating_webhook_receives_admission_review() {
    let ns = TestNamespace::new("webhook").await;
    let hook = Webhook::start().await;
    let ca = std::fs::read(common::pki_file("ca.crt")).expect("ca.crt");
    let vwc_name = format!("{}.smoke.guardrail.test", ns.name);
    let vwc = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(vwc_name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "validate.smoke.guardrail.test".into(),
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{}/validate", hook.addr.port())),
                ca_bundle: Some(ByteString(ca)),
                service: None,
            },
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            timeout_seconds: Some(5),
            failure_policy: Some("Fail".into()),
            // Only this test's namespace: a stuck webhook cannot block others.
            namespace_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("kubernetes.io/metadata.name", &ns.name)])),
                ..Default::default()
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["".into()]),
                api_versions: Some(vec!["v1".into()]),
                operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                resources: Some(vec!["configmaps".into()]),
                scope: Some("Namespaced".into()),
            }]),
            ..Default::default()
        }]),
    };
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(ns.client.clone());
    vwcs.create(&PostParams::default(), &vwc)
        .await
        .expect("create webhook configuration");

    let cms: Api<ConfigMap> = ns.api();
    let bad = config_map("bad", &[(DENY_LABEL, "true")]);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    // The apiserver picks the configuration up through an informer: probe
    // with dry-run creates until the webhook's own denial comes back.
    eventually("the webhook to deny a dry-run create", T30, || {
        let cms = cms.clone();
        let bad = bad.clone();
        let dry = dry.clone();
        async move {
            match cms.create(&dry, &bad).await {
                Ok(_) => Err("dry-run create was allowed (webhook not active yet)".to_string()),
                Err(e) if e.to_string().contains(DENY_MESSAGE) => Ok(()),
                Err(e) => Err(format!("unexpected error: {e}")),
            }
        }
    })
    .await;

    let err = cms
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("the webhook must deny the labelled ConfigMap");
    let status = api_status(&err).unwrap_or_else(|| panic!("not an API error: {err}"));
    assert!(status.message.contains(DENY_MESSAGE), "{status:?}");
    assert!(
        status.message.contains("validate.smoke.guardrail.test"),
        "names the webhook: {status:?}"
    );
    assert!(cms.get_opt("bad").await.expect("get").is_none());

    cms.create(&PostParams::default(), &config_map("good", &[]))
        .await
        .expect("an unlabelled ConfigMap is allowed");

    let reviews = hook.reviews();
    let real = reviews
        .iter()
        .find(|r| r["request"]["name"] == "bad" && r["request"]["dryRun"] == json!(false))
        .unwrap_or_else(|| panic!("no AdmissionReview for the real create; got {reviews:#?}"));
    assert_eq!(real["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(real["kind"], "AdmissionReview");
    assert_eq!(real["request"]["operation"], "CREATE");
    assert_eq!(real["request"]["namespace"], json!(ns.name));
    assert_eq!(real["request"]["kind"]["kind"], "ConfigMap");
    assert_eq!(real["request"]["userInfo"]["username"], "testcp-admin");
    assert!(
        reviews.iter().any(|r| r["request"]["name"] == "good"),
        "the allowed create went through the webhook too"
    );

    vwcs.delete(&vwc_name, &DeleteParams::default())
        .await
        .expect("delete webhook configuration");
}

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    owner
        .controller_owner_ref(&())
        .expect("owner has name and uid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_cascades_owner_references() {
    let ns = TestNamespace::new("gc").await;
    let cms: Api<ConfigMap> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .expect("create owner");

    let mut child = config_map("child", &[]);
    child.metadata.owner_references = Some(vec![owner_ref(&owner)]);
    cms.create(&PostParams::default(), &child)
        .await
        .expect("create child");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("child-secret".into()),
            owner_references: Some(vec![owner_ref(&owner)]),
            ..Default::default()
        },
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create child secret");
    let mut orphan = config_map("unowned", &[]);
    orphan.metadata.owner_references = None;
    cms.create(&PostParams::default(), &orphan)
        .await
        .expect("create unowned");

    cms.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    await_gone(&cms, "child", Duration::from_secs(60)).await;
    await_gone(&secrets, "child-secret", Duration::from_secs(60)).await;
    assert!(
        cms.get_opt("unowned").await.expect("get").is_some(),
        "GC must not touch unowned objects"
    );

    // Foreground deletion: the owner waits for its dependents.
    let owner = cms
        .create(&PostParams::default(), &config_map("fg-owner", &[]))
        .await
        .expect("create owner");
    let mut child = config_map("fg-child", &[]);
    child.metadata.owner_references = Some(vec![owner_ref(&owner)]);
    cms.create(&PostParams::default(), &child)
        .await
        .expect("create child");
    cms.delete("fg-owner", &DeleteParams::foreground())
        .await
        .expect("delete owner");
    await_gone(&cms, "fg-child", Duration::from_secs(60)).await;
    await_gone(&cms, "fg-owner", Duration::from_secs(60)).await;
}

/// GC for objects owned by a custom resource. GC discovers new resource
/// types about every 30 s, so this allows for a fresh CRD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_cascades_from_custom_resource_owner() {
    let ns = smoke_ns("gc-cr").await;
    let widgets: Api<Widget> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let owner = widgets
        .create(&PostParams::default(), &widget("owner", 1, 1))
        .await
        .expect("create widget");
    let mut child = config_map("widget-child", &[]);
    child.metadata.owner_references = Some(vec![owner_ref(&owner)]);
    cms.create(&PostParams::default(), &child)
        .await
        .expect("create child");

    widgets
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete widget");
    await_gone(&cms, "widget-child", Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_controllers_run() {
    let client = common::client().await;
    let name = common::namespace_name("ns-lifecycle");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("create namespace");

    // serviceaccount and root-ca publisher controllers fill a new namespace.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    await_condition(
        &sas,
        "default",
        "created by the serviceaccount controller",
        T30,
        |o| o.is_some(),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    await_condition(
        &cms,
        "kube-root-ca.crt",
        "published by the root-ca controller",
        T30,
        |o| o.is_some(),
    )
    .await;
    cms.create(&PostParams::default(), &config_map("content", &[]))
        .await
        .expect("create");

    // The namespace controller empties and removes a deleted namespace.
    nss.delete(&name, &DeleteParams::default())
        .await
        .expect("delete namespace");
    await_gone(&nss, &name, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_and_uninstalls_a_chart() {
    let ns = TestNamespace::new("helm").await;
    let n = ns.name.as_str();
    let home = common::testcp_dir().join(format!("helm-{n}"));
    std::fs::create_dir_all(&home).expect("helm home");
    let chart = fixture("smoke-chart");
    let chart = chart.to_str().expect("utf-8 path");

    let out = common::helm(&home, &["version", "--short"]).await;
    assert!(
        out.success && out.stdout.starts_with("v4."),
        "helm version: {} {}",
        out.stdout,
        out.stderr
    );

    let out = common::helm(
        &home,
        &[
            "install",
            "smoke",
            chart,
            "-n",
            n,
            "--no-hooks",
            "--timeout",
            "60s",
            "--set",
            "message=hello from the test",
        ],
    )
    .await;
    assert!(
        out.success,
        "helm install failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("STATUS: deployed"), "{}", out.stdout);

    let cms: Api<ConfigMap> = ns.api();
    let cm = cms.get("smoke-smoke").await.expect("the chart's ConfigMap");
    let data = cm.data.unwrap_or_default();
    assert_eq!(
        data.get("message").map(String::as_str),
        Some("hello from the test")
    );
    assert!(
        data.get("kubeVersion")
            .is_some_and(|v| v.starts_with("v1.37.")),
        "chart saw kubeVersion {:?}",
        data.get("kubeVersion")
    );
    let jobs = kubectl(&["get", "jobs", "-n", n, "-o", "name"]).await;
    assert!(
        jobs.trim().is_empty(),
        "--no-hooks must skip the hook Job: {jobs}"
    );

    let out = common::helm(&home, &["list", "-n", n, "-o", "json"]).await;
    assert!(
        out.success && out.stdout.contains("\"smoke\""),
        "helm list: {} {}",
        out.stdout,
        out.stderr
    );

    let out = common::helm(
        &home,
        &[
            "uninstall",
            "smoke",
            "-n",
            n,
            "--no-hooks",
            "--timeout",
            "60s",
        ],
    )
    .await;
    assert!(
        out.success,
        "helm uninstall failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    await_gone(&cms, "smoke-smoke", T30).await;
    let _ = std::fs::remove_dir_all(&home);
}
