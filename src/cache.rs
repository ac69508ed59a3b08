//! Reading the reflector caches, shared by the controller and the webhook.
//!
//! The caches hold [`Decoded`] objects: one the operator's types refuse (stored through an older
//! CRD, or with the webhook away) is kept as its metadata and the reason, so it never stops the
//! watch or the list of its kind, and is reported by name instead of silently missing.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

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

/// The decodable cached objects of one namespace, sorted by name.
pub fn in_namespace<K>(store: &Store<Decoded<K>>, ns: &str) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut v: Vec<K> = store
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(ns))
        .filter_map(|o| o.ok().cloned())
        .collect();
    v.sort_by_key(|o| o.name_any());
    v
}

/// The objects of one namespace the operator's types refuse: (kind, name, uid, resourceVersion,
/// error), sorted.
pub fn undecodable<K>(store: &Store<Decoded<K>>, ns: &str) -> Vec<(String, Undecodable)>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut v: Vec<(String, Undecodable)> = store
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(ns))
        .filter_map(|o| match &*o {
            Decoded::Bad(b) => Some((K::kind(&()).into_owned(), (**b).clone())),
            Decoded::Ok(_) => None,
        })
        .collect();
    v.sort_by(|a, b| a.1.metadata.name.cmp(&b.1.metadata.name));
    v
}

/// The reflector caches of the three kinds.
pub type PolicyStore = Store<Decoded<Policy>>;
pub type VersionStore = Store<Decoded<PolicyVersion>>;
pub type AttachmentStore = Store<Decoded<PolicyAttachment>>;

/// The three kinds of one namespace.
pub fn objects(
    policies: &PolicyStore,
    versions: &VersionStore,
    attachments: &AttachmentStore,
    ns: &str,
) -> Objects {
    Objects {
        policies: in_namespace(policies, ns),
        versions: in_namespace(versions, ns),
        attachments: in_namespace(attachments, ns),
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
}
