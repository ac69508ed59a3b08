//! The validating admission webhook: HTTPS (rustls, TLS 1.3 and 1.2 only with modern suites)
//! in the operator binary. Each kind has its own route; every decision comes from
//! `engine::admission`, so the webhook, the controller and the CLI share one implementation.

pub mod certs;
pub mod tls;

pub use tls::{CertSource, WebhookOptions, server_config};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, Operation as KubeOp,
};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use crate::api::{Policy, PolicyAttachment, PolicyVersion};
use crate::engine::admission::{self, Decision, Env, Operation};
use crate::engine::catalog::Catalog;
use crate::engine::namespace::Objects;
use crate::engine::pipeline::MonotonicClock;
use crate::engine::testing::GuardrailProvider;
use crate::providers::ProviderFactory;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: &'static str,
    pub operation: &'static str,
    pub allowed: &'static str,
    pub dry_run: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub kind: &'static str,
    pub operation: &'static str,
}

/// Admission metrics.
#[derive(Clone)]
pub struct AdmissionMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<DurationLabels, Histogram>,
    pub test_runs: Counter,
    /// Reviews denied because no review slot freed up within the budget.
    pub saturated: Counter,
}

impl AdmissionMetrics {
    /// Register in a registry (prefix `guardrail_`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = AdmissionMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            test_runs: Counter::default(),
            saturated: Counter::default(),
        };
        registry.register(
            "admission_requests",
            "Admission reviews answered, by kind, operation, decision and dry run",
            m.requests.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission review",
            m.duration.clone(),
        );
        registry.register(
            "admission_saturated",
            "Admission reviews denied because the webhook was busy for the whole budget",
            m.saturated.clone(),
        );
        registry.register(
            "admission_test_runs",
            "Admission reviews that ran a version's test pipeline",
            m.test_runs.clone(),
        );
        m
    }
}

/// What the handlers read.
/// A namespace's parsed catalog and the guardrails built from it.
pub type CachedCatalog = (
    Option<Arc<Catalog>>,
    Arc<dyn GuardrailProvider + Send + Sync>,
);

pub struct WebhookState {
    pub policies: crate::cache::PolicyStore,
    pub versions: crate::cache::VersionStore,
    pub attachments: crate::cache::AttachmentStore,
    pub catalogs: Option<Store<ConfigMap>>,
    pub catalog_name: Option<String>,
    pub provider: ProviderFactory,
    pub metrics: AdmissionMetrics,
    pub budget_seconds: f64,
    /// Reviews decided at once (see [`WebhookState::review_slots`]).
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Per namespace: the catalog ConfigMap's resourceVersion, its catalog and guardrails.
    pub catalog_cache: std::sync::Mutex<std::collections::HashMap<String, (String, CachedCatalog)>>,
}

impl WebhookState {
    /// As many review slots as this process may use CPUs (its cgroup's quota included).
    pub fn review_slots() -> Arc<tokio::sync::Semaphore> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(tokio::sync::Semaphore::new(n))
    }

    fn objects(&self, ns: &str) -> Objects {
        crate::cache::objects(&self.policies, &self.versions, &self.attachments, ns)
    }

    /// The namespace's catalog and the guardrails built from it, cached by the catalog
    /// ConfigMap's resourceVersion: while it is unchanged a review parses and compiles nothing.
    fn catalog(&self, ns: &str) -> CachedCatalog {
        let (Some(store), Some(name)) = (self.catalogs.as_ref(), self.catalog_name.as_ref()) else {
            return (None, (self.provider)(None));
        };
        let rv = store
            .state()
            .into_iter()
            .find(|c| c.namespace().as_deref() == Some(ns) && &c.name_any() == name)
            .and_then(|c| c.metadata.resource_version.clone())
            .unwrap_or_default();
        if let Ok(cache) = self.catalog_cache.lock()
            && let Some((cached_rv, cached)) = cache.get(ns)
            && *cached_rv == rv
        {
            return cached.clone();
        }
        let catalog = crate::cache::catalog(store, name, ns)
            .ok()
            .flatten()
            .map(Arc::new);
        let provider = (self.provider)(catalog.as_deref());
        if let Ok(mut cache) = self.catalog_cache.lock() {
            cache.insert(ns.to_string(), (rv, (catalog.clone(), provider.clone())));
        }
        (catalog, provider)
    }
}

fn op(o: &KubeOp) -> Operation {
    match o {
        KubeOp::Create => Operation::Create,
        KubeOp::Update => Operation::Update,
        KubeOp::Delete => Operation::Delete,
        KubeOp::Connect => Operation::Connect,
    }
}

fn op_label(o: &KubeOp) -> &'static str {
    match o {
        KubeOp::Create => "CREATE",
        KubeOp::Update => "UPDATE",
        KubeOp::Delete => "DELETE",
        KubeOp::Connect => "CONNECT",
    }
}

fn typed<K: DeserializeOwned>(o: &Option<DynamicObject>) -> Result<Option<K>, String> {
    let Some(obj) = o else {
        return Ok(None);
    };
    let v = serde_json::to_value(obj).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(v).map(Some).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// Just enough of an AdmissionReview to answer it: read without recursion, so a review whose
/// object nests too deep to decode is still answered with its uid (the API server refuses an
/// answer without one, and then names no field).
#[derive(serde::Deserialize)]
struct Envelope {
    request: Option<EnvelopeRequest>,
}

#[derive(serde::Deserialize)]
struct EnvelopeRequest {
    uid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// The answer to a body that cannot be decoded: a denial with the request's uid when it has
/// one, naming the field that nests too deep when that is why.
fn undecodable(
    kind: &'static str,
    body: &[u8],
    error: &serde_json::Error,
) -> AdmissionReview<DynamicObject> {
    let text = String::from_utf8_lossy(body);
    let reason = match crate::engine::json_depth::too_deep_path(
        &text,
        crate::engine::json_depth::MAX_DEPTH - 2,
    ) {
        Some(path) => {
            let field = path
                .strip_prefix("request.object.")
                .or_else(|| path.strip_prefix("request.oldObject."))
                .unwrap_or(&path);
            format!(
                "{field}: nested more than {} levels deep; it cannot be read",
                crate::engine::json_depth::MAX_DEPTH - 2
            )
        }
        None => format!("malformed AdmissionReview: {error}"),
    };
    match serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.request)
    {
        Some(req) => {
            let mut resp = AdmissionResponse::invalid(format!(
                "{kind} {}/{}: {reason}",
                req.namespace.unwrap_or_default(),
                req.name
            ));
            resp.uid = req.uid;
            resp.into_review()
        }
        None => AdmissionResponse::invalid(reason).into_review(),
    }
}

/// Which kind a route serves.
#[derive(Clone, Copy)]
enum Kind {
    Policy,
    Version,
    Attachment,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Policy => "Policy",
            Kind::Version => "PolicyVersion",
            Kind::Attachment => "PolicyAttachment",
        }
    }
}

/// Decide one review (also used by tests and the load benchmark, without HTTP).
pub fn review(
    state: &WebhookState,
    review: AdmissionReview<DynamicObject>,
    kind_hint: Option<&'static str>,
) -> AdmissionReview<DynamicObject> {
    match review.try_into() {
        Ok(req) => decide(state, req, kind_hint, 0.0),
        Err(_) => no_request(),
    }
}

/// The answer to an AdmissionReview without a request.
fn no_request() -> AdmissionReview<DynamicObject> {
    AdmissionResponse::invalid("the AdmissionReview has no request").into_review()
}

/// Decide one request that already spent `spent_seconds` of its budget (waiting for a slot).
fn decide(
    state: &WebhookState,
    req: AdmissionRequest<DynamicObject>,
    kind_hint: Option<&'static str>,
    spent_seconds: f64,
) -> AdmissionReview<DynamicObject> {
    let kind = match kind_hint.unwrap_or(req.kind.kind.as_str()) {
        "Policy" => Kind::Policy,
        "PolicyVersion" => Kind::Version,
        "PolicyAttachment" => Kind::Attachment,
        other => {
            return AdmissionResponse::from(&req)
                .deny(format!("guardrail-operator does not validate kind {other}"))
                .into_review();
        }
    };
    // One span per review: every log line of it carries the object and the request.
    let span = tracing::info_span!(
        "review",
        kind = kind_hint.unwrap_or(req.kind.kind.as_str()),
        namespace = req.namespace.as_deref().unwrap_or_default(),
        object = %req.name,
        uid = %req.uid,
        operation = ?req.operation,
        dry_run = req.dry_run,
    );
    let _entered = span.enter();
    let started = Instant::now();
    let ns = req.namespace.clone().unwrap_or_default();
    let (catalog, provider) = state.catalog(&ns);
    let names = catalog.as_deref().map(Catalog::names);
    let clock = MonotonicClock::default();
    let load = || state.objects(&ns);
    let env = Env {
        load_objects: &load,
        objects: std::cell::OnceCell::new(),
        catalog: names.as_ref(),
        provider: provider.as_ref(),
        clock: &clock,
        budget_seconds: state.budget_seconds,
        spent_seconds,
    };
    let operation = op(&req.operation);
    let decided: Result<Decision, String> = match kind {
        Kind::Version => typed::<PolicyVersion>(&req.object)
            .and_then(|n| typed::<PolicyVersion>(&req.old_object).map(|o| (n, o)))
            .map(|(n, o)| admission::review_version(operation, n.as_ref(), o.as_ref(), &env)),
        Kind::Attachment => typed::<PolicyAttachment>(&req.object)
            .and_then(|n| typed::<PolicyAttachment>(&req.old_object).map(|o| (n, o)))
            .map(|(n, o)| admission::review_attachment(operation, n.as_ref(), o.as_ref(), &env)),
        Kind::Policy => typed::<Policy>(&req.old_object)
            .map(|o| admission::review_policy(operation, o.as_ref(), &env)),
    };
    let mut resp = AdmissionResponse::from(&req);
    let allowed = match decided {
        Ok(d) => {
            if d.ran_tests {
                state.metrics.test_runs.inc();
            }
            if !d.warnings.is_empty() {
                resp.warnings = Some(d.warnings);
            }
            if !d.allowed {
                resp = resp.deny(d.message.unwrap_or_default());
            }
            d.allowed
        }
        Err(e) => {
            resp = resp.deny(format!(
                "{} {ns}/{}: cannot be read: {e}",
                kind.label(),
                req.name
            ));
            false
        }
    };
    let labels = RequestLabels {
        kind: kind.label(),
        operation: op_label(&req.operation),
        allowed: if allowed { "true" } else { "false" },
        dry_run: if req.dry_run { "true" } else { "false" },
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .duration
        .get_or_create(&DurationLabels {
            kind: kind.label(),
            operation: op_label(&req.operation),
        })
        .observe(started.elapsed().as_secs_f64());
    if allowed {
        debug!(elapsed = ?started.elapsed(), "admission review allowed");
    } else {
        info!(elapsed = ?started.elapsed(), "admission review denied");
    }
    resp.into_review()
}

/// Decode a request body and decide it: exactly what a route answers for `kind` ("Policy",
/// "PolicyVersion" or "PolicyAttachment"), without HTTP. A body that is not an AdmissionReview
/// is answered as invalid. Also the entry point of the `admission_review` fuzz target.
pub fn review_body(
    state: &WebhookState,
    kind: &'static str,
    body: &[u8],
) -> AdmissionReview<DynamicObject> {
    match request_of(kind, body) {
        Ok(req) => decide(state, req, Some(kind), 0.0),
        Err(answer) => *answer,
    }
}

/// The request of a route's body, or the answer to a body without one (malformed, or a
/// review with no request).
fn request_of(
    kind: &'static str,
    body: &[u8],
) -> Result<AdmissionRequest<DynamicObject>, Box<AdmissionReview<DynamicObject>>> {
    match serde_json::from_slice::<AdmissionReview<DynamicObject>>(body) {
        Ok(r) => r.try_into().map_err(|_| Box::new(no_request())),
        Err(e) => {
            warn!(error = %e, "malformed AdmissionReview");
            Err(Box::new(undecodable(kind, body, &e)))
        }
    }
}

/// Answer one route's request. Deciding (validation, inheritance, test pipelines) is CPU work:
/// it runs on the blocking pool, at most [`WebhookState::slots`] at once, never on the async
/// workers that renew the lease, serve probes and keep the watches. Waiting for a slot counts
/// against the admission budget; a review that cannot start within it is denied, saying why,
/// before the API server's own timeout.
async fn handle(
    State(state): State<Arc<WebhookState>>,
    kind: &'static str,
    body: axum::body::Bytes,
) -> Json<AdmissionReview<DynamicObject>> {
    let arrived = Instant::now();
    let req = match request_of(kind, &body) {
        Ok(req) => req,
        Err(answer) => return Json(*answer),
    };
    let budget = std::time::Duration::from_secs_f64(state.budget_seconds.max(0.0));
    let who = format!(
        "{kind} {}/{}",
        req.namespace.as_deref().unwrap_or_default(),
        req.name
    );
    let base = AdmissionResponse::from(&req);
    let permit = match tokio::time::timeout(budget, state.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            state.metrics.saturated.inc();
            warn!(object = %who, waited = ?arrived.elapsed(), "admission review not started within the budget");
            return Json(
                base.deny(format!(
                    "{who}: not reviewed: the webhook was busy for the whole admission budget of {:.1}s (every one of its review slots was taken); apply it again in a moment, or give the operator more CPU",
                    state.budget_seconds
                ))
                .into_review(),
            );
        }
    };
    let waited = arrived.elapsed().as_secs_f64();
    let shared = state.clone();
    let decided = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        decide(&shared, req, Some(kind), waited)
    })
    .await;
    Json(decided.unwrap_or_else(|e| {
        warn!(object = %who, error = %e, "admission review failed");
        base.deny(format!(
            "{who}: the review failed inside the operator ({e}); this is a bug, please report it with the object"
        ))
        .into_review()
    }))
}

/// The webhook routes.
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/validate/policies", post(|s, b| handle(s, "Policy", b)))
        .route(
            "/validate/policyversions",
            post(|s, b| handle(s, "PolicyVersion", b)),
        )
        .route(
            "/validate/policyattachments",
            post(|s, b| handle(s, "PolicyAttachment", b)),
        )
        .with_state(state)
}

/// Serve the webhook until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    tls: RustlsConfig,
    state: Arc<WebhookState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    axum_server::bind_rustls(addr, tls)
        .handle(handle)
        .serve(router(state).into_make_service())
        .await
}
