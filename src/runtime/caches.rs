//! The shared caches: one reflector per kind, read by the controller and the webhook alike,
//! and the stream of namespaces whose objects changed.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use tracing::warn;

use super::backoff;
use crate::api::labels::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{Policy, PolicyAttachment, PolicyVersion};
use crate::cache::{AttachmentStore, Decoded, NsStore, PolicyStore, VersionStore};

/// What the caches watch.
pub struct Scope<'a> {
    /// One namespace, or all.
    pub namespace: Option<&'a str>,
    /// The guardrail catalog ConfigMap's name (none: no catalog).
    pub catalog_name: Option<&'a str>,
    /// The gateway Deployment whose rollouts re-queue its namespace.
    pub gateway_deployment: Option<&'a str>,
}

/// The caches, filled by the streams in [`Caches::events`].
pub struct Caches {
    pub policies: PolicyStore,
    pub versions: VersionStore,
    pub attachments: AttachmentStore,
    /// ConfigMaps the operator wrote (label-selected).
    pub configmaps: Store<ConfigMap>,
    /// Guardrail catalog ConfigMaps (selected by name; empty without a catalog).
    pub catalogs: Store<ConfigMap>,
    /// Set once every cache has synced.
    pub ready: Arc<OnceCell<()>>,
}

/// The namespaces each change concerns. Polling it drives every watch.
pub type Events = Pin<Box<dyn Stream<Item = Vec<String>> + Send>>;

/// Drop what the caches never read (managed fields, kubectl's last-applied copy): at 10,000
/// objects this is most of the operator's memory. Emptied collections become absent, so no
/// empty buffer or map node stays allocated per object.
fn slim<K: Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    if meta.labels.as_ref().is_some_and(|l| l.is_empty()) {
        meta.labels = None;
    }
}

/// Give back what deserialising left spare: vectors grow by doubling, so the three conditions
/// every status holds sit in room for four, and a one-team attachment in room for four teams.
/// At 10,000 PolicyVersions that is megabytes of the cache.
trait Compact {
    fn compact(&mut self);
}

fn shrink_opt<T>(v: &mut Option<Vec<T>>) {
    if let Some(v) = v {
        v.shrink_to_fit();
    }
}

impl Compact for Policy {
    fn compact(&mut self) {
        if let Some(st) = self.status.as_mut() {
            st.versions.shrink_to_fit();
            st.resolved_guardrails.shrink_to_fit();
            st.inheritance_chain.shrink_to_fit();
            st.conditions.shrink_to_fit();
        }
    }
}

impl Compact for PolicyVersion {
    fn compact(&mut self) {
        if let Some(g) = self.spec.guardrails.as_mut() {
            shrink_opt(&mut g.add);
            shrink_opt(&mut g.remove);
        }
        shrink_opt(&mut self.spec.tests);
        if let Some(st) = self.status.as_mut() {
            st.conditions.shrink_to_fit();
            if let Some(t) = st.tests.as_mut() {
                t.results.shrink_to_fit();
            }
        }
    }
}

impl Compact for PolicyAttachment {
    fn compact(&mut self) {
        let spec = &mut self.spec;
        for v in [
            &mut spec.teams,
            &mut spec.keys,
            &mut spec.models,
            &mut spec.tags,
        ] {
            shrink_opt(v);
        }
        if let Some(st) = self.status.as_mut() {
            st.resolved_guardrails.shrink_to_fit();
            st.conditions.shrink_to_fit();
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A watch of `api` kept in a kube reflector store, its events as namespaces.
fn cached<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    cfg: watcher::Config,
) -> impl Stream<Item = Vec<String>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    reflector::reflector(writer, watcher(api, cfg).modify(slim))
        .backoff(backoff::watch())
        .filter_map(|ev| async move { namespaces_of(ev) })
}

/// A watch of `api` kept in a namespace-indexed [`NsStore`], its events as namespaces.
fn indexed<K>(
    store: NsStore<K>,
    api: Api<Decoded<K>>,
    cfg: watcher::Config,
) -> impl Stream<Item = Vec<String>> + Send
where
    K: Resource<DynamicType = ()>
        + Compact
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(api, cfg)
        .modify(|o| {
            slim(o);
            if let Decoded::Ok(k) = o {
                k.compact();
            }
        })
        .backoff(backoff::watch())
        .filter_map(move |ev| {
            let store = store.clone();
            async move {
                match ev {
                    Ok(ev) => Some(store.apply(ev)).filter(|ns| !ns.is_empty()),
                    Err(e) => {
                        warn!(error = %e, "watch error; retrying");
                        None
                    }
                }
            }
        })
}

/// The namespace a watch event concerns.
fn namespaces_of<K: ResourceExt>(
    ev: Result<watcher::Event<K>, watcher::Error>,
) -> Option<Vec<String>> {
    match ev {
        Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o)) => {
            Some(o.namespace().into_iter().collect())
        }
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "watch error; retrying");
            None
        }
    }
}

impl Caches {
    /// Start watching (the watches run while the returned stream is polled).
    pub fn start(client: &Client, scope: &Scope<'_>) -> (Caches, Events) {
        let ns = scope.namespace;
        // Watches are re-established at least every minute: a connection that silently stops
        // delivering (a network black hole, not a reset) is noticed within ~65 s, not kube's
        // 295 s.
        let cfg = watcher::Config::default().timeout(60);
        let (policies, versions, attachments) = (
            PolicyStore::default(),
            VersionStore::default(),
            AttachmentStore::default(),
        );
        let (configmaps, cw) = reflector::store::<ConfigMap>();
        let (catalogs, kw) = reflector::store::<ConfigMap>();
        let owned = cfg
            .clone()
            .labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
        let mut streams: Vec<Events> = vec![
            Box::pin(indexed(policies.clone(), api(client, ns), cfg.clone())),
            Box::pin(indexed(versions.clone(), api(client, ns), cfg.clone())),
            Box::pin(indexed(attachments.clone(), api(client, ns), cfg.clone())),
            Box::pin(cached(cw, api(client, ns), owned)),
        ];
        if let Some(name) = scope.catalog_name {
            let by_name = cfg.clone().fields(&format!("metadata.name={name}"));
            streams.push(Box::pin(cached(kw, api(client, ns), by_name)));
        }
        if let Some(name) = scope.gateway_deployment {
            let by_name = cfg.clone().fields(&format!("metadata.name={name}"));
            let rollouts = watcher(api::<Deployment>(client, ns), by_name)
                .backoff(backoff::watch())
                .filter_map(|ev| async move { namespaces_of(ev) });
            streams.push(Box::pin(rollouts));
        }
        let ready = Arc::new(OnceCell::new());
        let caches = Caches {
            policies,
            versions,
            attachments,
            configmaps,
            catalogs,
            ready: ready.clone(),
        };
        let (p, v, a, c, k) = (
            caches.policies.clone(),
            caches.versions.clone(),
            caches.attachments.clone(),
            caches.configmaps.clone(),
            scope.catalog_name.map(|_| caches.catalogs.clone()),
        );
        tokio::spawn(async move {
            let _ = p.wait_until_ready().await;
            let _ = v.wait_until_ready().await;
            let _ = a.wait_until_ready().await;
            let _ = c.wait_until_ready().await;
            if let Some(k) = k {
                let _ = k.wait_until_ready().await;
            }
            let _ = ready.set(());
        });
        (caches, Box::pin(futures::stream::select_all(streams)))
    }
}
