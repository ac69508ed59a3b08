//! The guardrail catalog: LiteLLM's `guardrails:` list (the block of the gateway's config).

use std::collections::BTreeSet;

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

impl Catalog {
    /// Accepts a list of entries, or a mapping with a `guardrails:` list.
    pub fn from_value(v: &Value) -> Result<Catalog, String> {
        let list = match v {
            Value::Array(a) => a,
            Value::Object(o) => match o.get("guardrails") {
                Some(Value::Array(a)) => a,
                _ => return Err("expected a `guardrails:` list (LiteLLM's config format)".into()),
            },
            _ => return Err("expected a `guardrails:` list (LiteLLM's config format)".into()),
        };
        let mut entries = Vec::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let name = e
                .get("guardrail_name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("guardrails[{i}]: guardrail_name (a string) is required"))?;
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

    /// From a catalog ConfigMap's data: the list under `guardrails.yaml` (else the first key);
    /// every other key is a file (content-filter categories, blocked words).
    pub fn from_configmap_data(
        data: std::collections::BTreeMap<String, String>,
    ) -> Result<Catalog, String> {
        let key = if data.contains_key("guardrails.yaml") {
            "guardrails.yaml".to_string()
        } else {
            data.keys()
                .next()
                .cloned()
                .ok_or("the ConfigMap has no data")?
        };
        let text = data.get(&key).cloned().unwrap_or_default();
        let value: Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("{key}: not valid YAML: {e}"))?;
        let mut catalog = Catalog::from_value(&value).map_err(|e| format!("{key}: {e}"))?;
        catalog.files = data.into_iter().filter(|(k, _)| *k != key).collect();
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
