//! The guardrail catalog: LiteLLM's `guardrails:` list (the block of the gateway's config).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;

use serde_json::Value;

use super::model::PipelineMode;

/// One catalog entry.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    /// `guardrail_name`
    pub name: String,
    /// `litellm_params.guardrail`, e.g. `litellm_content_filter`, `presidio`.
    pub kind: Option<String>,
    /// `litellm_params.mode` when it is pre_call or post_call.
    pub mode: Option<PipelineMode>,
    /// The entry as written.
    pub raw: Value,
}

/// The catalog.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    /// Other files next to the list (the catalog ConfigMap's other keys): content-filter
    /// category and blocked-words files, by name.
    pub files: Vec<(String, String)>,
}

/// Why a catalog cannot be read. The message names the place and the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("expected a `guardrails:` list (LiteLLM's config format)")]
    NotAList,
    #[error("guardrails[{0}]: guardrail_name (a string) is required")]
    MissingName(usize),
    #[error(
        "the ConfigMap has no data: put the `guardrails:` list under the key `guardrails.yaml`"
    )]
    NoData,
    #[error("{key}: not valid YAML: {message}")]
    Yaml { key: String, message: String },
    #[error("{key}: {source}")]
    InKey {
        key: String,
        #[source]
        source: Box<CatalogError>,
    },
    #[error("ConfigMap {namespace}/{name}: {source}")]
    InConfigMap {
        namespace: String,
        name: String,
        #[source]
        source: Box<CatalogError>,
    },
}

/// The key of a catalog ConfigMap that holds the `guardrails:` list.
pub const LIST_KEY: &str = "guardrails.yaml";

impl Catalog {
    /// Accepts a list of entries, or a mapping with a `guardrails:` list.
    pub fn from_value(v: &Value) -> Result<Catalog, CatalogError> {
        let list = match v {
            Value::Array(a) => a,
            Value::Object(o) => match o.get("guardrails") {
                Some(Value::Array(a)) => a,
                _ => return Err(CatalogError::NotAList),
            },
            _ => return Err(CatalogError::NotAList),
        };
        let mut entries = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let name = e
                .get("guardrail_name")
                .and_then(Value::as_str)
                .ok_or(CatalogError::MissingName(i))?;
            let params = e.get("litellm_params");
            let kind = params
                .and_then(|p| p.get("guardrail"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let mode = match params.and_then(|p| p.get("mode")).and_then(Value::as_str) {
                Some("pre_call") => Some(PipelineMode::PreCall),
                Some("post_call") => Some(PipelineMode::PostCall),
                _ => None,
            };
            entries.push(CatalogEntry {
                name: name.to_string(),
                kind,
                mode,
                raw: e.clone(),
            });
        }
        Ok(Catalog {
            entries,
            files: Vec::new(),
        })
    }

    /// The one reading of a catalog ConfigMap, for the controller, the webhook and the CLI:
    /// the list under `guardrails.yaml` (else the first key); every other key is a file
    /// (content-filter category files, blocked-words files), kept for the guardrails.
    pub fn from_configmap(cm: &ConfigMap) -> Result<Catalog, CatalogError> {
        let empty = BTreeMap::new();
        let data = cm.data.as_ref().unwrap_or(&empty);
        Catalog::from_configmap_data(data).map_err(|e| CatalogError::InConfigMap {
            namespace: cm.metadata.namespace.clone().unwrap_or_default(),
            name: cm.metadata.name.clone().unwrap_or_default(),
            source: Box::new(e),
        })
    }

    fn from_configmap_data(data: &BTreeMap<String, String>) -> Result<Catalog, CatalogError> {
        let (key, text) = match data.get_key_value(LIST_KEY) {
            Some(kv) => kv,
            None => data.iter().next().ok_or(CatalogError::NoData)?,
        };
        let in_key = |e| CatalogError::InKey {
            key: key.clone(),
            source: Box::new(e),
        };
        let value: Value = serde_saphyr::from_str(text).map_err(|e| CatalogError::Yaml {
            key: key.clone(),
            message: e.to_string(),
        })?;
        let mut catalog = Catalog::from_value(&value).map_err(in_key)?;
        catalog.files = data
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(catalog)
    }

    /// The guardrail names.
    pub fn names(&self) -> BTreeSet<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmap(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("guardrail-catalog".into()),
                namespace: Some("team-a".into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_configmap_keeps_every_other_key_as_a_file() {
        let cm = configmap(&[
            (
                "guardrails.yaml",
                "guardrails:\n- guardrail_name: words\n  litellm_params: {guardrail: litellm_content_filter, mode: pre_call}\n",
            ),
            ("finance.yaml", "category_name: finance\nkeywords: []\n"),
            ("blocked.yaml", "blocked_words: []\n"),
        ]);
        let c = Catalog::from_configmap(&cm).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.names(), BTreeSet::from(["words".to_string()]));
        assert_eq!(c.entries[0].mode, Some(PipelineMode::PreCall));
        let files: Vec<&str> = c.files.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(files, ["blocked.yaml", "finance.yaml"]);
    }

    #[test]
    fn errors_name_the_configmap_the_key_and_the_entry() {
        let cm = configmap(&[("guardrails.yaml", "guardrails:\n- litellm_params: {}\n")]);
        let e = Catalog::from_configmap(&cm).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "ConfigMap team-a/guardrail-catalog: guardrails.yaml: guardrails[0]: guardrail_name (a string) is required"
            )
        );
        let e = Catalog::from_configmap(&configmap(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("has no data")));
        let e = Catalog::from_configmap(&configmap(&[("list", "[")]))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| {
            e.starts_with("ConfigMap team-a/guardrail-catalog: list: not valid YAML")
        }));
    }
}
