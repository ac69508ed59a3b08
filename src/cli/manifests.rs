//! Reading manifests like `kubectl apply -f`: files, directories (`-R` recurses), `-` for stdin,
//! multi-document YAML; Policy, PolicyVersion and PolicyAttachment are kept, other kinds skipped.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::api::{GROUP, Policy, PolicyAttachment, PolicyVersion, VERSION};
use crate::engine::namespace::Objects;
use crate::engine::schema::{self, SchemaError};

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based document index in the file.
    pub document: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (document {})", self.file, self.document)
    }
}

/// A problem found while reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: is a directory; pass -R to read it recursively, or name its files")]
    Directory { path: String },
    #[error("no input: give -f PATH (a file, a directory, or - for stdin)")]
    NoInput,
    #[error("{origin}: not valid YAML: {message}")]
    Yaml { origin: Origin, message: String },
}

/// One object with its origin and any schema errors.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub object: Option<T>,
    pub origin: Origin,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub schema_errors: Vec<SchemaError>,
}

impl<T> Loaded<T> {
    /// `PolicyVersion llm-gateway/pii-strict-v3`
    pub fn display(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Everything read from the inputs.
#[derive(Debug, Default)]
pub struct Manifests {
    pub policies: Vec<Loaded<Policy>>,
    pub versions: Vec<Loaded<PolicyVersion>>,
    pub attachments: Vec<Loaded<PolicyAttachment>>,
}

/// Expand the `-f` arguments into files (directories: `.yaml`, `.yml`, `.json`, sorted).
pub fn expand(paths: &[String], recursive: bool) -> Result<Vec<String>, ReadError> {
    if paths.is_empty() {
        return Err(ReadError::NoInput);
    }
    let mut out = Vec::new();
    for p in paths {
        if p == "-" {
            out.push(p.clone());
            continue;
        }
        let path = Path::new(p);
        let meta = std::fs::metadata(path).map_err(|source| ReadError::Io {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            collect_dir(path, recursive, true, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn collect_dir(
    dir: &Path,
    recursive: bool,
    top: bool,
    out: &mut Vec<String>,
) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            if recursive {
                collect_dir(&e, recursive, false, out)?;
            }
        } else if matches!(
            e.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(e.display().to_string());
        }
    }
    let _ = top;
    Ok(())
}

/// Read and classify every document.
pub fn read(paths: &[String], recursive: bool) -> Result<Manifests, ReadError> {
    let mut m = Manifests::default();
    for file in expand(paths, recursive)? {
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|source| ReadError::Io {
                    path: "-".into(),
                    source,
                })?;
            s
        } else {
            std::fs::read_to_string(&file).map_err(|source| ReadError::Io {
                path: file.clone(),
                source,
            })?
        };
        let label = if file == "-" {
            "<stdin>".to_string()
        } else {
            file.clone()
        };
        parse_into(&text, &label, &mut m)?;
    }
    Ok(m)
}

/// Parse one file's text.
pub fn parse_into(text: &str, file: &str, m: &mut Manifests) -> Result<(), ReadError> {
    // serde-saphyr's default budget (1,024 documents, 250,000 nodes) is for config files; a
    // policy repository or `kubectl get -o yaml` of 10,000 objects is far larger. Alias, anchor
    // and depth limits (the billion-laughs guards) stay at their defaults.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1_000_000,
            max_nodes: 50_000_000,
            max_events: 100_000_000,
        },
    };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| ReadError::Yaml {
            origin: Origin {
                file: file.to_string(),
                document: 1,
            },
            message: e.to_string(),
        })?;
    let mut index = 0;
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        index += 1;
        let origin = Origin {
            file: file.to_string(),
            document: index,
        };
        // A List (kubectl get -o yaml) holds items.
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            for item in doc
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                classify(item, origin.clone(), m);
            }
            continue;
        }
        classify(&doc, origin, m);
    }
    Ok(())
}

fn classify(doc: &Value, origin: Origin, m: &mut Manifests) {
    let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    if api.split('/').next() != Some(GROUP) {
        return;
    }
    let wanted = format!("{GROUP}/{VERSION}");
    let kind_static: &'static str = match kind {
        "Policy" => "Policy",
        "PolicyVersion" => "PolicyVersion",
        "PolicyAttachment" => "PolicyAttachment",
        _ => return,
    };
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut errors = Vec::new();
    if api != wanted {
        errors.push(SchemaError {
            path: "apiVersion".into(),
            message: format!("{api} is not served; use {wanted}"),
        });
    }
    if name.is_empty() {
        errors.push(SchemaError {
            path: "metadata.name".into(),
            message: "required value".into(),
        });
    }
    match kind_static {
        "Policy" => m.policies.push(load::<Policy>(
            doc,
            origin,
            kind_static,
            namespace,
            name,
            errors,
        )),
        "PolicyVersion" => m.versions.push(load::<PolicyVersion>(
            doc,
            origin,
            kind_static,
            namespace,
            name,
            errors,
        )),
        _ => m.attachments.push(load::<PolicyAttachment>(
            doc,
            origin,
            kind_static,
            namespace,
            name,
            errors,
        )),
    }
}

fn spec_schema<T: kube::CustomResourceExt>()
-> Option<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps> {
    let crd = T::crd();
    let root = crd
        .spec
        .versions
        .first()?
        .schema
        .as_ref()?
        .open_api_v3_schema
        .as_ref()?;
    root.properties.as_ref()?.get("spec").cloned()
}

/// `spec_schema` per kind, built once: generating the CRD is most of the cost of reading a
/// manifest, and a repository has thousands of objects of three kinds.
fn cached_spec_schema<T: kube::CustomResourceExt>(
    kind: &'static str,
) -> Option<
    std::sync::Arc<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
    >,
> {
    type Cache = std::sync::Mutex<
        std::collections::BTreeMap<
            &'static str,
            Option<
                std::sync::Arc<
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
                >,
            >,
        >,
    >;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(kind)
        .or_insert_with(|| spec_schema::<T>().map(std::sync::Arc::new))
        .clone()
}

fn load<T>(
    doc: &Value,
    origin: Origin,
    kind: &'static str,
    namespace: String,
    name: String,
    mut errors: Vec<SchemaError>,
) -> Loaded<T>
where
    T: kube::CustomResourceExt + serde::de::DeserializeOwned,
{
    match (doc.get("spec"), cached_spec_schema::<T>(kind)) {
        (Some(spec), Some(schema)) => errors.extend(schema::check(spec, &schema, "spec")),
        (None, _) => errors.push(SchemaError {
            path: "spec".into(),
            message: "required value".into(),
        }),
        _ => {}
    }
    // Status in a manifest is ignored, as the API server ignores it on create.
    let mut clean = doc.clone();
    if let Value::Object(o) = &mut clean {
        o.remove("status");
    }
    let object = if errors.is_empty() {
        match serde_json::from_value::<T>(clean) {
            Ok(o) => Some(o),
            Err(e) => {
                errors.push(SchemaError {
                    path: "spec".into(),
                    message: e.to_string(),
                });
                None
            }
        }
    } else {
        None
    };
    Loaded {
        object,
        origin,
        kind,
        namespace,
        name,
        schema_errors: errors,
    }
}

impl Manifests {
    /// The namespaces the objects are in (`default` for objects without one).
    pub fn namespaces(&self) -> Vec<String> {
        let mut set = std::collections::BTreeSet::new();
        for ns in self
            .policies
            .iter()
            .map(|l| &l.namespace)
            .chain(self.versions.iter().map(|l| &l.namespace))
            .chain(self.attachments.iter().map(|l| &l.namespace))
        {
            set.insert(if ns.is_empty() {
                "default".to_string()
            } else {
                ns.clone()
            });
        }
        set.into_iter().collect()
    }

    /// Pick the namespace: the flag, else the only one, else an error listing them.
    pub fn choose_namespace(&self, flag: Option<&str>) -> Result<String, String> {
        if let Some(ns) = flag {
            return Ok(ns.to_string());
        }
        let all = self.namespaces();
        match all.len() {
            0 => Ok("default".into()),
            1 => Ok(all[0].clone()),
            _ => Err(format!(
                "the objects are in several namespaces ({}); pick one with -n/--namespace",
                all.join(", ")
            )),
        }
    }

    /// The well-formed objects of one namespace.
    pub fn objects(&self, namespace: &str) -> Objects {
        fn pick<T: Clone>(list: &[Loaded<T>], ns: &str) -> Vec<std::sync::Arc<T>> {
            list.iter()
                .filter(|l| {
                    (if l.namespace.is_empty() {
                        "default"
                    } else {
                        l.namespace.as_str()
                    }) == ns
                })
                .filter_map(|l| l.object.clone())
                .map(std::sync::Arc::new)
                .collect()
        }
        Objects {
            policies: pick(&self.policies, namespace),
            versions: pick(&self.versions, namespace),
            attachments: pick(&self.attachments, namespace),
        }
    }
}

/// Count of objects by kind, for messages.
pub fn counts(m: &Manifests) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("Policy", m.policies.len()),
        ("PolicyVersion", m.versions.len()),
        ("PolicyAttachment", m.attachments.len()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_other_kinds() {
        let text = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
---
apiVersion: guardrails.dev/v1alpha1
kind: Policy
metadata: {name: p, namespace: gw}
spec: {}
---
apiVersion: guardrails.dev/v1alpha1
kind: PolicyVersion
metadata: {name: p-v1, namespace: gw}
spec:
  policy: p
  version: 0
  guardrails: {add: [a], ad: [b]}
"#;
        let mut m = Manifests::default();
        parse_into(text, "f.yaml", &mut m).unwrap();
        assert_eq!(m.policies.len(), 1);
        assert!(m.policies[0].object.is_some());
        let v = &m.versions[0];
        assert!(v.object.is_none());
        assert_eq!(v.origin.document, 3);
        let msgs: Vec<String> = v.schema_errors.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("spec.version: must be greater than or equal to 1")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("spec.guardrails.ad: unknown field")),
            "{msgs:?}"
        );
    }
}
