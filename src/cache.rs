//! Reading the reflector caches, shared by the controller and the webhook.
//!
//! The caches hold [`Decoded`] objects: one the operator's types refuse (stored through an older
//! CRD, or with the webhook away) is kept as its metadata and the reason, so it never stops the
//! watch or the list of its kind, and is reported by name instead of silently missing.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::watch;

use crate::api::{Policy, PolicyAttachment, PolicyVersion};
use crate::engine::catalog::{Catalog, CatalogError};
use crate::engine::namespace::Objects;

/// An object of kind `K` as the API server returned it: decoded, or — when `K` refuses it —
/// its metadata and why.
#[derive(Clone, Debug)]
pub enum Decoded<K> {
    Ok(K),
    /// Boxed: rare, and kept small beside the common case.
    Bad(Box<Undecodable>),
}

/// An object the operator's types refuse.
#[derive(Clone, Debug, Default)]
pub struct Undecodable {
    pub metadata: ObjectMeta,
    /// The decoding error, with the field's path where serde knows it.
    pub error: String,
}

impl<K> Decoded<K> {
    pub fn ok(&self) -> Option<&K> {
        match self {
            Decoded::Ok(k) => Some(k),
            Decoded::Bad(_) => None,
        }
    }
}

/// Metadata alone (every other field skipped without recursion, so any depth reads).
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

/// Decode `text` as `K`, naming the failing field (`spec.condition.model: ...`).
pub fn decode<K: DeserializeOwned>(text: &str) -> Result<K, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.classify() == serde_json::error::Category::Syntax
            && inner.to_string().contains("recursion limit")
        {
            let deep = crate::engine::json_depth::too_deep_path(
                text,
                crate::engine::json_depth::MAX_DEPTH,
            )
            .unwrap_or(path);
            format!(
                "{deep}: nested more than {} levels deep",
                crate::engine::json_depth::MAX_DEPTH
            )
        } else if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The raw text is captured without recursion, so no object can fail the whole list.
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        match decode::<K>(raw.get()) {
            Ok(k) => Ok(Decoded::Ok(k)),
            Err(error) => {
                let metadata = serde_json::from_str::<MetadataOnly>(raw.get())
                    .map(|m| m.metadata)
                    .unwrap_or_default();
                Ok(Decoded::Bad(Box::new(Undecodable { metadata, error })))
            }
        }
    }
}

impl<K: Serialize> Serialize for Decoded<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Decoded::Ok(k) => k.serialize(s),
            Decoded::Bad(b) => serde_json::json!({"metadata": b.metadata}).serialize(s),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Decoded<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Decoded::Ok(k) => k.meta(),
            Decoded::Bad(b) => &b.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Decoded::Ok(k) => k.meta_mut(),
            Decoded::Bad(b) => &mut b.metadata,
        }
    }
}

/// One cached object: shared, so reading a namespace copies pointers, not objects.
#[derive(Clone, Debug)]
enum Entry<K> {
    Ok(Arc<K>),
    Bad(Arc<Undecodable>),
}

impl<K> From<Decoded<K>> for Entry<K> {
    fn from(d: Decoded<K>) -> Self {
        match d {
            Decoded::Ok(k) => Entry::Ok(Arc::new(k)),
            Decoded::Bad(b) => Entry::Bad(Arc::from(b)),
        }
    }
}

/// namespace → name → object.
type Index<K> = HashMap<String, BTreeMap<String, Entry<K>>>;

#[derive(Debug)]
struct Inner<K> {
    live: Index<K>,
    /// A relist in progress (between `Init` and `InitDone`).
    relist: Option<Index<K>>,
}

/// The cache of one kind, indexed by namespace and name, holding shared objects.
///
/// A watch fills it ([`NsStore::apply`]); readers take one namespace at a time, sorted by name,
/// without touching other namespaces and without copying an object. Clones share the cache.
#[derive(Debug)]
pub struct NsStore<K> {
    inner: Arc<RwLock<Inner<K>>>,
    ready: Arc<watch::Sender<bool>>,
}

impl<K> Clone for NsStore<K> {
    fn clone(&self) -> Self {
        NsStore {
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K> Default for NsStore<K> {
    fn default() -> Self {
        NsStore {
            inner: Arc::new(RwLock::new(Inner {
                live: HashMap::new(),
                relist: None,
            })),
            ready: Arc::new(watch::channel(false).0),
        }
    }
}

fn place<K>(index: &mut Index<K>, meta: &ObjectMeta, entry: Option<Entry<K>>) {
    let (Some(ns), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else {
        return;
    };
    match entry {
        Some(e) => {
            index.entry(ns).or_default().insert(name, e);
        }
        None => {
            if let Some(names) = index.get_mut(&ns) {
                names.remove(&name);
                if names.is_empty() {
                    index.remove(&ns);
                }
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> NsStore<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<K>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply one watch event; returns the namespaces whose objects it changed (a completed
    /// relist reports every namespace before and after it, so deletions missed while the
    /// watch was away are noticed too).
    pub fn apply(&self, event: watcher::Event<Decoded<K>>) -> Vec<String> {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(o) => {
                let meta = o.meta().clone();
                place(&mut inner.live, &meta, Some(o.into()));
                meta.namespace.into_iter().collect()
            }
            watcher::Event::Delete(o) => {
                let meta = o.meta();
                place(&mut inner.live, meta, None);
                meta.namespace.clone().into_iter().collect()
            }
            watcher::Event::Init => {
                inner.relist = Some(HashMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                let meta = o.meta().clone();
                if let Some(relist) = inner.relist.as_mut() {
                    place(relist, &meta, Some(o.into()));
                }
                Vec::new()
            }
            watcher::Event::InitDone => {
                let fresh = inner.relist.take().unwrap_or_default();
                let old = std::mem::replace(&mut inner.live, fresh);
                let mut touched: BTreeSet<String> = old.into_keys().collect();
                touched.extend(inner.live.keys().cloned());
                drop(inner);
                self.ready.send_replace(true);
                touched.into_iter().collect()
            }
        }
    }

    /// What `pick` keeps of the objects of `ns`, in name order.
    fn pick<T>(&self, ns: &str, pick: impl Fn(&Entry<K>) -> Option<T>) -> Vec<T> {
        self.read()
            .live
            .get(ns)
            .map(|names| names.values().filter_map(&pick).collect())
            .unwrap_or_default()
    }

    /// The decodable objects of `ns`, sorted by name (shared, not copied).
    pub fn in_namespace(&self, ns: &str) -> Vec<Arc<K>> {
        self.pick(ns, |e| match e {
            Entry::Ok(k) => Some(k.clone()),
            Entry::Bad(_) => None,
        })
    }

    /// The objects of `ns` the operator's types refuse, with their kind, sorted by name.
    pub fn undecodable(&self, ns: &str) -> Vec<(String, Arc<Undecodable>)> {
        self.pick(ns, |e| match e {
            Entry::Bad(b) => Some((K::kind(&()).into_owned(), b.clone())),
            Entry::Ok(_) => None,
        })
    }

    /// One object, decodable or not.
    pub fn get(&self, ns: &str, name: &str) -> Option<Result<Arc<K>, Arc<Undecodable>>> {
        self.read()
            .live
            .get(ns)
            .and_then(|names| names.get(name))
            .map(|e| match e {
                Entry::Ok(k) => Ok(k.clone()),
                Entry::Bad(b) => Err(b.clone()),
            })
    }

    /// The namespaces holding at least one object.
    pub fn namespaces(&self) -> Vec<String> {
        self.read().live.keys().cloned().collect()
    }

    /// Objects held, in every namespace.
    pub fn len(&self) -> usize {
        self.read().live.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns once the first list has been applied.
    pub async fn wait_until_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }
}

/// The caches of the three kinds.
pub type PolicyStore = NsStore<Policy>;
pub type VersionStore = NsStore<PolicyVersion>;
pub type AttachmentStore = NsStore<PolicyAttachment>;

/// The three kinds of one namespace.
pub fn objects(
    policies: &PolicyStore,
    versions: &VersionStore,
    attachments: &AttachmentStore,
    ns: &str,
) -> Objects {
    Objects {
        policies: policies.in_namespace(ns),
        versions: versions.in_namespace(ns),
        attachments: attachments.in_namespace(ns),
    }
}

/// The guardrail catalog of a namespace from the cached catalog ConfigMaps (key
/// `guardrails.yaml`, else the first key). `Ok(None)` when there is none.
pub fn catalog(
    store: &Store<k8s_openapi::api::core::v1::ConfigMap>,
    name: &str,
    ns: &str,
) -> Result<Option<Catalog>, CatalogError> {
    store
        .state()
        .into_iter()
        .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == name)
        .map(|cm| Catalog::from_configmap(&cm))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn a_refused_object_keeps_its_name_and_the_list_decodes() {
        let good = r#"{"apiVersion":"guardrails.dev/v1alpha1","kind":"PolicyVersion","metadata":{"name":"ok","namespace":"n"},"spec":{"policy":"p","version":1}}"#;
        let deep = format!(
            r#"{{"apiVersion":"guardrails.dev/v1alpha1","kind":"PolicyVersion","metadata":{{"name":"deep","namespace":"n"}},"spec":{{"policy":"p","version":2,"condition":{{"model":{}}}}}}}"#,
            nested(300)
        );
        let typed = r#"{"apiVersion":"guardrails.dev/v1alpha1","kind":"PolicyVersion","metadata":{"name":"typed","namespace":"n"},"spec":{"policy":"p","version":"three"}}"#;
        let list = format!(r#"{{"items":[{good},{deep},{typed}]}}"#);
        #[derive(Deserialize)]
        struct List {
            items: Vec<Decoded<PolicyVersion>>,
        }
        let l: List = serde_json::from_str(&list).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&l.items[0], Decoded::Ok(v) if v.spec.version == 1));
        match &l.items[1] {
            Decoded::Bad(b) => {
                assert_eq!(b.metadata.name.as_deref(), Some("deep"));
                assert!(b.error.starts_with("spec.condition.model"), "{}", b.error);
                assert!(b.error.contains("nested more than"), "{}", b.error);
            }
            other => panic!("{other:?}"),
        }
        match &l.items[2] {
            Decoded::Bad(b) => {
                assert_eq!(b.metadata.name.as_deref(), Some("typed"));
                assert!(b.error.starts_with("spec.version:"), "{}", b.error);
            }
            other => panic!("{other:?}"),
        }
    }

    fn version(ns: &str, name: &str) -> Decoded<PolicyVersion> {
        let text = format!(
            r#"{{"apiVersion":"guardrails.dev/v1alpha1","kind":"PolicyVersion","metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{{"policy":"p","version":1}}}}"#
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(v: &[Arc<PolicyVersion>]) -> Vec<String> {
        v.iter().map(|o| o.name_any()).collect()
    }

    #[test]
    fn the_store_reads_one_namespace_sorted_and_shares_objects() {
        let store = VersionStore::default();
        for (ns, name) in [("a", "z"), ("b", "x"), ("a", "m")] {
            assert_eq!(store.apply(watcher::Event::Apply(version(ns, name))), [ns]);
        }
        assert_eq!(names(&store.in_namespace("a")), ["m", "z"]);
        assert_eq!(names(&store.in_namespace("b")), ["x"]);
        assert!(store.in_namespace("c").is_empty());
        let (one, two) = (store.in_namespace("a"), store.in_namespace("a"));
        assert!(Arc::ptr_eq(&one[0], &two[0]), "a read copies no object");
        store.apply(watcher::Event::Delete(version("b", "x")));
        assert_eq!(store.namespaces(), ["a"]);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_relist_replaces_the_contents_and_reports_every_namespace_it_touched() {
        let store = VersionStore::default();
        store.apply(watcher::Event::Apply(version("gone", "v")));
        assert_eq!(store.apply(watcher::Event::Init), Vec::<String>::new());
        store.apply(watcher::Event::InitApply(version("kept", "v")));
        // Until the relist completes, readers see the old contents.
        assert_eq!(store.namespaces(), ["gone"]);
        let mut touched = store.apply(watcher::Event::InitDone);
        touched.sort();
        assert_eq!(touched, ["gone", "kept"]);
        assert_eq!(store.namespaces(), ["kept"]);
    }

    #[tokio::test]
    async fn ready_after_the_first_list() {
        let store = VersionStore::default();
        let waiter = {
            let s = store.clone();
            tokio::spawn(async move { s.wait_until_ready().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        store.apply(watcher::Event::Init);
        store.apply(watcher::Event::InitDone);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("ready")
            .expect("joined");
    }

    #[test]
    fn undecodable_objects_are_kept_by_name_apart_from_the_decodable_ones() {
        let store = VersionStore::default();
        let typed = r#"{"apiVersion":"guardrails.dev/v1alpha1","kind":"PolicyVersion","metadata":{"name":"typed","namespace":"n"},"spec":{"policy":"p","version":"three"}}"#;
        store.apply(watcher::Event::Apply(
            serde_json::from_str(typed).unwrap_or_else(|e| panic!("{e}")),
        ));
        store.apply(watcher::Event::Apply(version("n", "ok")));
        assert_eq!(names(&store.in_namespace("n")), ["ok"]);
        let bad = store.undecodable("n");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "PolicyVersion");
        assert_eq!(bad[0].1.metadata.name.as_deref(), Some("typed"));
        assert!(matches!(store.get("n", "typed"), Some(Err(_))));
        assert!(matches!(store.get("n", "ok"), Some(Ok(_))));
    }
}
