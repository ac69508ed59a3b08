//! Reading the reflector caches, shared by the controller and the webhook.

use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use crate::api::{Policy, PolicyAttachment, PolicyVersion};
use crate::engine::namespace::Objects;

/// The cached objects of one namespace, sorted by name.
pub fn in_namespace<K>(store: &Store<K>, ns: &str) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut v: Vec<K> = store
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(ns))
        .map(|o| (*o).clone())
        .collect();
    v.sort_by_key(|o| o.name_any());
    v
}

/// The three kinds of one namespace.
pub fn objects(
    policies: &Store<Policy>,
    versions: &Store<PolicyVersion>,
    attachments: &Store<PolicyAttachment>,
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
) -> Result<Option<crate::engine::catalog::Catalog>, String> {
    let Some(cm) = store
        .state()
        .into_iter()
        .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == name)
    else {
        return Ok(None);
    };
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("guardrails.yaml").or_else(|| d.values().next()))
        .cloned()
        .unwrap_or_default();
    let value: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("ConfigMap {ns}/{name}: not valid YAML: {e}"))?;
    crate::engine::catalog::Catalog::from_value(&value)
        .map(Some)
        .map_err(|e| format!("ConfigMap {ns}/{name}: {e}"))
}
