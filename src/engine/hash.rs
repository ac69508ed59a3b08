//! Content hashes: what "unchanged" means for a version, and for generated ConfigMaps.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::PolicyVersionSpec;

/// `sha256:<hex>` of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Canonical JSON: object keys sorted at every level, nulls dropped.
pub fn canonical_json(v: &Value) -> String {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().filter(|k| !m[*k].is_null()).collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), canon(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    canon(v).to_string()
}

/// Hash of a version's content: everything in its spec except the desired stage.
pub fn content_hash(spec: &PolicyVersionSpec) -> String {
    let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("stage");
    }
    sha256(canonical_json(&v).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GuardrailsSpec, Stage};

    #[test]
    fn stage_does_not_change_the_hash_content_does() {
        let mut a = PolicyVersionSpec {
            policy: "p".into(),
            version: 1,
            ..Default::default()
        };
        let h = content_hash(&a);
        a.stage = Some(Stage::Production);
        assert_eq!(content_hash(&a), h);
        a.guardrails = Some(GuardrailsSpec {
            add: Some(vec!["x".into()]),
            remove: None,
        });
        assert_ne!(content_hash(&a), h);
        assert!(h.starts_with("sha256:") && h.len() == 7 + 64);
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":null,"c":[2,1]}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"c":[2,1]},"b":1}"#);
    }
}
