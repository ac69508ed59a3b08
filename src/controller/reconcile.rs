//! One namespace reconcile: read the caches, ask the engine, write only what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use super::Error;
use super::events::Gathered;
use super::metrics::{Metrics, ResultLabels, StageLabels};
use super::written::{Written, fingerprint};
use crate::api::labels::*;
use crate::api::{Policy, PolicyVersion, Stage};
use crate::engine::bundle::{self, Bundle, Rejected};
use crate::engine::catalog::Catalog;
use crate::engine::namespace::{Evaluation, Objects, Options, evaluate};
use crate::engine::pipeline::MonotonicClock;
use crate::engine::status::{self, Event};

/// The operator's configuration (flags of `run`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Name of the gateway bundle ConfigMap in each namespace.
    pub bundle_name: String,
    /// Name of the guardrail catalog ConfigMap in each namespace (none: no existence checks).
    pub catalog_name: Option<String>,
    /// Deployment to roll when the bundle changes (same namespace).
    pub gateway_deployment: Option<String>,
    /// Also write a `<policy>-guardrails` ConfigMap per policy in production (opt-in: a write
    /// per policy change; off, the ones written earlier are deleted).
    pub policy_configmaps: bool,
}

/// What a reconcile reads and writes with.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub policies: crate::cache::PolicyStore,
    pub versions: crate::cache::VersionStore,
    pub attachments: crate::cache::AttachmentStore,
    /// ConfigMaps the operator wrote (label-selected).
    pub configmaps: Store<ConfigMap>,
    /// Guardrail catalog ConfigMaps (selected by name).
    pub catalogs: Store<ConfigMap>,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub provider: crate::providers::ProviderFactory,
    /// The Policies each namespace had at its last reconcile (for the delete cascade).
    pub seen_policies: SeenPolicies,
    /// Objects reported as undecodable (uid, resourceVersion), so each is reported once.
    pub reported_undecodable: std::sync::Mutex<BTreeSet<(String, String)>>,
    /// Writes the caches may not show yet (see [`Written`]).
    pub written: Written,
}

/// One pending write of a reconcile.
type Write<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>>;

/// Status writes in flight at once during a reconcile.
const WRITE_CONCURRENCY: usize = 16;

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

impl Context {
    fn count(&self, kind: &'static str, ok: bool) {
        self.metrics
            .writes
            .get_or_create(&ResultLabels {
                kind,
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    async fn publish_to(&self, regarding: &ObjectReference, e: &Event) {
        let ev = KubeEvent {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.to_string(),
            note: Some(e.note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&ev, regarding).await {
            warn!(error = %err, "cannot publish event");
        }
    }

    fn catalog(&self, ns: &str) -> Result<Option<Catalog>, crate::engine::catalog::CatalogError> {
        match &self.config.catalog_name {
            None => Ok(None),
            Some(name) => crate::cache::catalog(&self.catalogs, name, ns),
        }
    }

    fn configmap(&self, ns: &str, name: &str) -> Option<Arc<ConfigMap>> {
        self.configmaps
            .state()
            .into_iter()
            .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == name)
    }
}

fn annotation<'a>(cm: &'a ConfigMap, key: &str) -> Option<&'a str> {
    cm.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Reconcile one namespace.
pub async fn reconcile_namespace(ctx: &Context, ns: &str) -> Result<(), Error> {
    let objects = crate::cache::objects(&ctx.policies, &ctx.versions, &ctx.attachments, ns);
    report_undecodable(ctx, ns).await;
    let catalog = match ctx.catalog(ns) {
        Ok(c) => c,
        Err(e) => {
            warn!(namespace = ns, error = %e, "guardrail catalog unreadable; checking without it");
            None
        }
    };
    // Evaluating a namespace (tests included) and rendering its bundle is CPU work: it runs on
    // the blocking pool, so the async workers keep renewing the lease and serving probes.
    let factory = ctx.provider.clone();
    let shared = objects.clone();
    let (eval, bundle, checked) = tokio::task::spawn_blocking(move || {
        let names = catalog.as_ref().map(Catalog::names);
        let provider = factory(catalog.as_ref());
        let clock = MonotonicClock::default();
        let known = |v: &PolicyVersion, hash: &str| -> Option<Result<(), String>> {
            let tests = v.status.as_ref()?.tests.as_ref()?;
            if tests.content_hash.as_deref() != Some(hash) {
                return None;
            }
            Some(if tests.failed == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{} of {} test(s) failed (see status.tests)",
                    tests.failed,
                    tests.passed + tests.failed
                ))
            })
        };
        let eval = evaluate(
            &shared,
            &Options {
                catalog: names.as_ref(),
                provider: provider.as_ref(),
                clock: &clock,
                run_all_tests: false,
                known_verdict: Some(&known),
            },
        );
        let bundle = bundle::render(&eval);
        let checked = bundle::check(&bundle, &eval, names.as_ref());
        (eval, bundle, checked)
    })
    .await
    .map_err(|e| Error::Evaluation(e.to_string()))?;
    for stage in [Stage::Draft, Stage::Published, Stage::Production] {
        let n = eval
            .decisions
            .versions
            .iter()
            .filter(|d| d.stage == stage)
            .count();
        ctx.metrics
            .versions_by_stage
            .get_or_create(&StageLabels {
                stage: stage.as_str(),
            })
            .set(n as i64);
    }

    cascade_deletes(ctx, ns, &objects).await?;

    // Gateway outputs.
    let current = ctx.configmap(ns, &ctx.config.bundle_name);
    let mut problems: BTreeMap<String, String> = BTreeMap::new();
    let mut live_hash = current
        .as_deref()
        .and_then(|c| annotation(c, CONTENT_HASH_ANNOTATION))
        .map(str::to_string);
    match &checked {
        Ok(()) => {
            write_bundle(ctx, ns, &bundle, current.as_deref()).await?;
            write_policy_configmaps(ctx, ns, &eval, &objects).await?;
            live_hash = Some(bundle.content_hash.clone());
        }
        Err(rejected) => {
            let message = rejected.to_string();
            warn!(namespace = ns, %message, "gateway bundle rejected");
            let affected = match rejected {
                Rejected::TooLarge { .. } => {
                    objects.policies.iter().map(|p| p.name_any()).collect()
                }
                other => other.policies(),
            };
            for p in affected {
                problems.insert(p, message.clone());
            }
        }
    }

    let gateway = match (&ctx.config.gateway_deployment, &live_hash) {
        (Some(dep), Some(hash)) => vec![gateway_condition(ctx, ns, dep, hash).await?],
        _ => Vec::new(),
    };

    // Statuses, written a few at a time; their events are published once all are written.
    let now = now();
    let mut gathered = Gathered::default();
    let mut writes: Vec<StatusWrite<'_>> = Vec::new();
    for (i, v) in objects.versions.iter().enumerate() {
        let (st, events) =
            status::version_status(v, &eval.versions[i], &eval.decisions.versions[i], &now);
        let differs = status::version_status_changed(v.status.as_ref(), &st);
        if let Some(w) = status_write(ctx, ns, &**v, differs, st, events) {
            writes.push(w);
        }
    }
    for p in &objects.policies {
        let name = p.name_any();
        let st = status::policy_status(
            p,
            &eval,
            &objects.versions,
            problems.get(&name).map(String::as_str),
            &gateway,
            &now,
        );
        let differs = status::changed_ignoring_times(p.status.as_ref(), &st, |s| &mut s.conditions);
        let events = policy_events(ns, p, &st, problems.get(&name));
        if let Some(w) = status_write(ctx, ns, &**p, differs, st, events) {
            writes.push(w);
        }
    }
    for a in &objects.attachments {
        let exists = objects
            .policies
            .iter()
            .any(|p| p.name_any() == a.spec.policy);
        let st = status::attachment_status(a, &eval, exists, &now);
        let differs = status::changed_ignoring_times(a.status.as_ref(), &st, |s| &mut s.conditions);
        if let Some(w) = status_write(ctx, ns, &**a, differs, st, Vec::new()) {
            writes.push(w);
        }
    }
    let results: Vec<Result<(ObjectReference, Vec<Event>), Error>> = futures::stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    let mut failed = None;
    for r in results {
        match r {
            Ok((regarding, events)) => gathered.add(regarding, events),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    // Events of the writes that landed, even when another failed (a retry recomputes the rest).
    publish_all(ctx, ns, gathered).await;
    // The caches list each namespace sorted by name: a binary search, no copy of a name.
    fn present<K: Resource>(list: &[Arc<K>], name: &str) -> bool {
        list.binary_search_by(|o| o.meta().name.as_deref().unwrap_or_default().cmp(name))
            .is_ok()
    }
    ctx.written.retain(ns, |kind, name| match kind {
        "PolicyVersion" => present(&objects.versions, name),
        "Policy" => present(&objects.policies, name),
        "PolicyAttachment" => present(&objects.attachments, name),
        _ => true,
    });
    if let Some(e) = failed {
        return Err(e);
    }
    debug!(
        namespace = ns,
        production = eval.production.len(),
        "reconciled"
    );
    Ok(())
}

/// A status write in flight: the object's reference and the events to publish once it landed.
type StatusWrite<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(ObjectReference, Vec<Event>), Error>> + Send + 'a>,
>;

/// The write of `wanted` as `obj`'s status, unless neither the cache (`differs`) nor this
/// replica's own last write (see [`Written`]) says it is needed.
fn status_write<'a, K, S>(
    ctx: &'a Context,
    ns: &'a str,
    obj: &K,
    differs: bool,
    wanted: S,
    events: Vec<Event>,
) -> Option<StatusWrite<'a>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + 'static,
    S: serde::Serialize + Send + 'a,
{
    let kind: &'static str = match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => "object",
    };
    let name = obj.name_any();
    let rv = obj.resource_version();
    // Fingerprinted only when compared with an earlier write or recorded for a new one.
    let fp = std::cell::OnceCell::new();
    let fingerprint_of = || *fp.get_or_init(|| fingerprint(&wanted));
    if !ctx
        .written
        .needs_write(kind, ns, &name, rv.as_deref(), differs, &fingerprint_of)
    {
        return None;
    }
    let fp = fingerprint_of();
    let regarding = obj.object_ref(&());
    Some(Box::pin(async move {
        // Serialised when the write starts: only the writes in flight hold a JSON body.
        let body = serde_json::to_value(&wanted).unwrap_or_default();
        drop(wanted);
        patch_status::<K>(ctx, ns, name.clone(), body).await?;
        ctx.written.wrote(kind, ns, &name, rv.as_deref(), fp);
        Ok((regarding, events))
    }))
}

/// The events a Policy's new status calls for, compared with its current one.
fn policy_events(
    ns: &str,
    p: &Policy,
    st: &crate::api::PolicyStatus,
    problem: Option<&String>,
) -> Vec<Event> {
    use crate::api::conditions::reasons;
    let name = p.name_any();
    let mut events = Vec::new();
    let was_rejected = p.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.reason == reasons::BUNDLE_REJECTED
                && c.message == problem.map(String::as_str).unwrap_or("")
        })
    });
    if let (Some(problem), false) = (problem, was_rejected) {
        events.push(Event {
            warning: true,
            reason: reasons::BUNDLE_REJECTED,
            note: problem.clone(),
        });
    }
    let old_prod = p.status.as_ref().and_then(|s| s.production_version);
    let broken = |s: &crate::api::PolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.reason == reasons::REFERENCE_BROKEN)
            .map(|c| c.message.clone())
    };
    let now_broken = broken(st);
    let was_broken = p.status.as_ref().and_then(broken).is_some();
    if let (Some(why), false) = (&now_broken, was_broken) {
        warn!(namespace = ns, policy = %name, reason = %why, "a policy left the gateway");
        events.push(Event {
            warning: true,
            reason: reasons::REFERENCE_BROKEN,
            note: format!("{why}; its attachments are unresolved"),
        });
    } else if old_prod.is_some() && st.production_version.is_none() && problem.is_none() {
        events.push(Event {
            warning: true,
            reason: reasons::NO_PRODUCTION_VERSION,
            note: format!(
                "policy '{name}' has no production version any more; its attachments are unresolved"
            ),
        });
    }
    events
}

/// Publish a reconcile's events: per object while few, one summary per reason on the gateway
/// bundle when many (see [`super::events`]).
async fn publish_all(ctx: &Context, ns: &str, gathered: Gathered) {
    let summary = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(ctx.config.bundle_name.clone()),
        namespace: Some(ns.to_string()),
        ..Default::default()
    };
    for planned in gathered.plan(&summary) {
        ctx.publish_to(&planned.regarding, &planned.event).await;
    }
}

/// Objects the operator's types refuse are left out of the namespace's evaluation (as if
/// absent) and reported by name: a log line and a Warning event on the object, once per
/// resourceVersion. The rest of the namespace converges.
async fn report_undecodable(ctx: &Context, ns: &str) {
    let mut bad = ctx.policies.undecodable(ns);
    bad.extend(ctx.versions.undecodable(ns));
    bad.extend(ctx.attachments.undecodable(ns));
    for (kind, b) in bad {
        let key = (
            b.metadata.uid.clone().unwrap_or_default(),
            b.metadata.resource_version.clone().unwrap_or_default(),
        );
        let fresh = ctx
            .reported_undecodable
            .lock()
            .map(|mut seen| seen.insert(key))
            .unwrap_or(true);
        let name = b.metadata.name.clone().unwrap_or_default();
        if !fresh {
            continue;
        }
        let note = format!(
            "{kind} {ns}/{name} cannot be read by the operator and is ignored until it is fixed: {}. Re-apply it with the current CRDs (crds/) or delete it",
            b.error
        );
        warn!(namespace = ns, kind = %kind, name = %name, error = %b.error, "ignoring an object the operator cannot read");
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(crate::api::PolicyVersion::api_version(&()).into_owned()),
            kind: Some(kind.clone()),
            name: Some(name.clone()),
            namespace: Some(ns.to_string()),
            uid: b.metadata.uid.clone(),
            resource_version: b.metadata.resource_version.clone(),
            field_path: None,
        };
        let ev = KubeEvent {
            type_: EventType::Warning,
            reason: crate::api::conditions::reasons::UNDECODABLE.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&ev, &reference).await {
            warn!(error = %err, "cannot publish event");
        }
    }
}

async fn patch_status<K>(
    ctx: &Context,
    ns: &str,
    name: String,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    let r = api
        .patch_status(&name, &apply_params(), &Patch::Apply(&body))
        .await;
    ctx.count("status", r.is_ok());
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()), // deleted meanwhile
        Err(source) => Err(Error::Write {
            what: format!("status of {} {ns}/{name}", K::kind(&())),
            source,
        }),
    }
}

async fn write_bundle(
    ctx: &Context,
    ns: &str,
    bundle: &Bundle,
    current: Option<&ConfigMap>,
) -> Result<(), Error> {
    let size: usize = bundle.data.values().map(String::len).sum();
    ctx.metrics.bundle_bytes.set(size as i64);
    let differs = current.and_then(|c| annotation(c, CONTENT_HASH_ANNOTATION))
        != Some(bundle.content_hash.as_str());
    let rv = current.and_then(|c| c.metadata.resource_version.clone());
    let fp = fingerprint(&bundle.content_hash);
    let name = ctx.config.bundle_name.as_str();
    if !ctx
        .written
        .needs_write("ConfigMap", ns, name, rv.as_deref(), differs, &|| fp)
    {
        return Ok(());
    }
    let generation = current
        .and_then(|c| annotation(c, GENERATION_ANNOTATION))
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ctx.config.bundle_name,
            "namespace": ns,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "annotations": {CONTENT_HASH_ANNOTATION: bundle.content_hash, GENERATION_ANNOTATION: generation.to_string()},
        },
        "data": bundle.data,
    });
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let r = api
        .patch(
            &ctx.config.bundle_name,
            &apply_params(),
            &Patch::Apply(&body),
        )
        .await;
    ctx.count("configmap", r.is_ok());
    r.map_err(|source| Error::Write {
        what: format!("ConfigMap {ns}/{}", ctx.config.bundle_name),
        source,
    })?;
    ctx.written.wrote("ConfigMap", ns, name, rv.as_deref(), fp);
    info!(namespace = ns, hash = %bundle.content_hash, generation, policies = bundle.policies.len(), "gateway bundle written");
    if let Some(dep) = &ctx.config.gateway_deployment {
        roll_gateway(ctx, ns, dep, &bundle.content_hash).await?;
    }
    Ok(())
}

/// `GatewaySynced`: the gateway Deployment runs the bundle once its pod template carries the
/// bundle hash and the rollout finished (observed, updated and available replicas).
async fn gateway_condition(
    ctx: &Context,
    ns: &str,
    name: &str,
    hash: &str,
) -> Result<status::Cond, Error> {
    use crate::api::conditions::{GATEWAY_SYNCED, reasons};
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let dep = api.get_opt(name).await.map_err(|source| Error::Write {
        what: format!("read Deployment {ns}/{name}"),
        source,
    })?;
    let Some(dep) = dep else {
        return Ok(status::cond(
            GATEWAY_SYNCED,
            false,
            reasons::GATEWAY_NOT_FOUND,
            format!("gateway Deployment {ns}/{name} not found"),
        ));
    };
    let template_hash = dep
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
        .map(String::as_str);
    let st = dep.status.clone().unwrap_or_default();
    let want = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let observed = st.observed_generation.unwrap_or(0) >= dep.metadata.generation.unwrap_or(0);
    let done = observed
        && st.updated_replicas.unwrap_or(0) >= want
        && st.available_replicas.unwrap_or(0) >= want
        && st.replicas.unwrap_or(0) <= want;
    Ok(if template_hash != Some(hash) {
        status::cond(
            GATEWAY_SYNCED,
            false,
            reasons::GATEWAY_ROLLING,
            format!("Deployment {name} does not carry the bundle hash yet"),
        )
    } else if done {
        status::cond(
            GATEWAY_SYNCED,
            true,
            reasons::GATEWAY_SYNCED,
            format!("Deployment {name} runs bundle {hash}"),
        )
    } else {
        status::cond(
            GATEWAY_SYNCED,
            false,
            reasons::GATEWAY_ROLLING,
            format!(
                "Deployment {name} is rolling out bundle {hash} ({} of {want} replicas updated, {} available)",
                st.updated_replicas.unwrap_or(0),
                st.available_replicas.unwrap_or(0)
            ),
        )
    })
}

async fn roll_gateway(ctx: &Context, ns: &str, name: &str, hash: &str) -> Result<(), Error> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"metadata": {"annotations": {CONFIG_HASH_ANNOTATION: hash}}}},
    });
    let r = api.patch(name, &apply_params(), &Patch::Apply(&body)).await;
    ctx.count("deployment", r.is_ok());
    match r {
        Ok(_) => {
            info!(
                namespace = ns,
                deployment = name,
                "gateway rollout requested"
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.is_not_found() => {
            warn!(
                namespace = ns,
                deployment = name,
                "gateway Deployment not found; not rolled"
            );
            Ok(())
        }
        Err(source) => Err(Error::Write {
            what: format!("Deployment {ns}/{name}"),
            source,
        }),
    }
}

async fn write_policy_configmaps(
    ctx: &Context,
    ns: &str,
    eval: &Evaluation,
    objects: &Objects,
) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let mut writes = Vec::new();
    for p in &objects.policies {
        let policy = p.name_any();
        let cm_name = format!("{policy}-guardrails");
        let current = ctx.configmap(ns, &cm_name);
        let data = match ctx.config.policy_configmaps {
            true => bundle::policy_data(eval, &policy),
            false => None,
        };
        let api = api.clone();
        match data {
            Some(data) => {
                let hash = bundle::data_hash(&data);
                if current
                    .as_deref()
                    .and_then(|c| annotation(c, CONTENT_HASH_ANNOTATION))
                    == Some(hash.as_str())
                {
                    continue;
                }
                let owner = OwnerReference {
                    api_version: Policy::api_version(&()).into_owned(),
                    kind: Policy::kind(&()).into_owned(),
                    name: policy.clone(),
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                };
                let body = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": cm_name,
                        "namespace": ns,
                        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, POLICY_LABEL: policy},
                        "annotations": {CONTENT_HASH_ANNOTATION: hash},
                        "ownerReferences": [owner],
                    },
                    "data": data,
                });
                writes.push(Box::pin(async move {
                    let r = api
                        .patch(&cm_name, &apply_params(), &Patch::Apply(&body))
                        .await;
                    ctx.count("configmap", r.is_ok());
                    r.map(|_| ()).map_err(|source| Error::Write {
                        what: format!("ConfigMap {ns}/{cm_name}"),
                        source,
                    })
                })
                    as std::pin::Pin<
                        Box<dyn std::future::Future<Output = Result<(), Error>> + Send + '_>,
                    >);
            }
            None if current.is_some() => {
                writes.push(Box::pin(async move {
                    let r = api.delete(&cm_name, &DeleteParams::default()).await;
                    ctx.count("configmap", r.is_ok());
                    match r {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
                        Err(source) => Err(Error::Write {
                            what: format!("delete ConfigMap {ns}/{cm_name}"),
                            source,
                        }),
                    }
                }));
            }
            None => {}
        }
    }
    run_all(writes).await
}

/// Run writes a few at a time; the first error wins.
async fn run_all<'a>(writes: Vec<Write<'a>>) -> Result<(), Error> {
    let results: Vec<Result<(), Error>> = futures::stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<Result<Vec<()>, Error>>()
        .map(|_| ())
}

/// Per namespace: the Policies (name → uid and creationTimestamp) present at this replica's
/// last successful reconcile while it led. A Policy that was there and is gone had its versions
/// deleted (api.md §2: LiteLLM's "delete all versions").
pub type SeenPolicies =
    std::sync::Mutex<std::collections::HashMap<String, BTreeMap<String, SeenPolicy>>>;

/// A Policy as the last reconcile saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenPolicy {
    pub uid: String,
    pub created: Option<Time>,
}

fn present_policies(objects: &Objects) -> BTreeMap<String, SeenPolicy> {
    objects
        .policies
        .iter()
        .map(|p| {
            (
                p.name_any(),
                SeenPolicy {
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    created: p.metadata.creation_timestamp.clone(),
                },
            )
        })
        .collect()
}

/// Which versions to delete, and which to release from an ownerReference an earlier release
/// wrote. Pure, so the cascade rule is tested without a cluster:
/// - the versions of a Policy seen at the last reconcile and gone now (or re-created: then only
///   the versions older than the new Policy), so deleting a Policy deletes its versions;
/// - versions an earlier release made owned by a Policy that is gone (what the garbage
///   collector would do);
///
/// and never a version whose Policy this replica has not seen: a version applied before its
/// Policy exists stays. No ownerReference is written: Argo CD never prunes an object that has
/// one (api.md §2).
pub fn cascade(
    objects: &Objects,
    seen: Option<&BTreeMap<String, SeenPolicy>>,
) -> (Vec<String>, Vec<String>) {
    let present = present_policies(objects);
    let present_uids: BTreeSet<&str> = present.values().map(|p| p.uid.as_str()).collect();
    let gone: BTreeMap<&str, Option<&Time>> = seen
        .into_iter()
        .flatten()
        .filter(|(name, old)| present.get(*name).is_none_or(|now| now.uid != old.uid))
        .map(|(name, _)| {
            (
                name.as_str(),
                present.get(name).and_then(|p| p.created.as_ref()),
            )
        })
        .collect();
    let mut delete = Vec::new();
    let mut release = Vec::new();
    for v in &objects.versions {
        if v.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let policy_owners: Vec<&OwnerReference> = v
            .owner_references()
            .iter()
            .filter(|o| o.kind == "Policy" && o.api_version.starts_with(crate::api::GROUP))
            .collect();
        let of_gone_policy = gone.get(v.spec.policy.as_str()).is_some_and(|recreated| {
            match (recreated, v.metadata.creation_timestamp.as_ref()) {
                (None, _) => true,
                (Some(new_policy), Some(created)) => created.0 < new_policy.0,
                (Some(_), None) => false,
            }
        });
        let owned_by_gone_policy = policy_owners
            .iter()
            .any(|o| !present_uids.contains(o.uid.as_str()));
        if of_gone_policy || owned_by_gone_policy {
            delete.push(v.name_any());
        } else if !policy_owners.is_empty() {
            release.push(v.name_any());
        }
    }
    (delete, release)
}

/// Delete the versions of deleted Policies and release versions from the ownerReferences
/// earlier releases wrote; then remember the Policies now present.
async fn cascade_deletes(ctx: &Context, ns: &str, objects: &Objects) -> Result<(), Error> {
    let seen = ctx
        .seen_policies
        .lock()
        .ok()
        .and_then(|m| m.get(ns).cloned());
    let (delete, release) = cascade(objects, seen.as_ref());
    let api: Api<PolicyVersion> = Api::namespaced(ctx.client.clone(), ns);
    let mut writes: Vec<Write<'_>> = Vec::new();
    for name in delete {
        let api = api.clone();
        writes.push(Box::pin(async move {
            info!(namespace = ns, version = %name, "deleting a version whose Policy was deleted");
            let r = api.delete(&name, &DeleteParams::background()).await;
            ctx.count("delete", r.is_ok());
            match r {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
                Err(source) => Err(Error::Write {
                    what: format!("delete PolicyVersion {ns}/{name}"),
                    source,
                }),
            }
        }));
    }
    for name in release {
        let api = api.clone();
        // Applying no fields as the manager that wrote them removes that manager's
        // ownerReference and label (server-side apply drops fields a manager stops applying).
        let body = json!({
            "apiVersion": PolicyVersion::api_version(&()),
            "kind": PolicyVersion::kind(&()),
            "metadata": {"name": name, "namespace": ns},
        });
        writes.push(Box::pin(async move {
            let r = api
                .patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&body))
                .await;
            ctx.count("ownerref", r.is_ok());
            match r {
                Ok(_) => {
                    info!(namespace = ns, version = %name, "removed the ownerReference an earlier release wrote");
                    Ok(())
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
                Err(source) => Err(Error::Write {
                    what: format!("ownerReference of PolicyVersion {ns}/{name}"),
                    source,
                }),
            }
        }));
    }
    run_all(writes).await?;
    if let Ok(mut m) = ctx.seen_policies.lock() {
        m.insert(ns.to_string(), present_policies(objects));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, uid: &str, created: &str) -> Policy {
        serde_json::from_value(json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "creationTimestamp": created},
            "spec": {}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn version(name: &str, policy: &str, created: &str, owner: Option<&str>) -> PolicyVersion {
        let owners: Vec<serde_json::Value> = owner
            .map(|uid| json!({"apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy", "name": policy, "uid": uid}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion",
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created, "ownerReferences": owners},
            "spec": {"policy": policy, "version": 1}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn objects(policies: Vec<Policy>, versions: Vec<PolicyVersion>) -> Objects {
        Objects {
            policies: policies.into_iter().map(Arc::new).collect(),
            versions: versions.into_iter().map(Arc::new).collect(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn deleting_a_policy_deletes_its_versions_but_never_one_applied_before_its_policy() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-01T00:00:10Z";
        let before = objects(
            vec![policy("a", "uid-a", t0), policy("b", "uid-b", t0)],
            vec![
                version("a-v1", "a", t0, None),
                version("b-v1", "b", t0, None),
            ],
        );
        // First reconcile of this replica: nothing seen yet, nothing deleted.
        assert_eq!(cascade(&before, None), (vec![], vec![]));
        let seen = present_policies(&before);
        // `a` deleted: its version goes; a version of a Policy never seen stays.
        let after = objects(
            vec![policy("b", "uid-b", t0)],
            vec![
                version("a-v1", "a", t0, None),
                version("b-v1", "b", t0, None),
                version("c-v1", "c", t1, None),
            ],
        );
        assert_eq!(
            cascade(&after, Some(&seen)),
            (vec!["a-v1".to_string()], vec![])
        );
        // `a` deleted and created again: only versions older than the new Policy go.
        let recreated = objects(
            vec![policy("a", "uid-a2", t1), policy("b", "uid-b", t0)],
            vec![
                version("a-v1", "a", t0, None),
                version("a-v2", "a", t1, None),
            ],
        );
        assert_eq!(
            cascade(&recreated, Some(&seen)),
            (vec!["a-v1".to_string()], vec![])
        );
    }

    #[test]
    fn owner_references_of_earlier_releases_are_released_or_cascaded() {
        let t0 = "2026-01-01T00:00:00Z";
        let o = objects(
            vec![policy("a", "uid-a", t0)],
            vec![
                version("a-v1", "a", t0, Some("uid-a")),
                version("gone-v1", "gone", t0, Some("uid-gone")),
            ],
        );
        assert_eq!(
            cascade(&o, None),
            (vec!["gone-v1".to_string()], vec!["a-v1".to_string()])
        );
    }
}
