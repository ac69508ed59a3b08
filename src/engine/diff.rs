//! LiteLLM's version compare (`/policies/compare`): plain equality of the content fields,
//! list order counts, only differing fields are listed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::litellm::pipeline_to_json;
use super::model::{ModelCondition, PolicyContent};

/// One differing field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDiff {
    pub version_a: Value,
    pub version_b: Value,
}

/// The content fields as LiteLLM's database stores them.
fn db_fields(p: &PolicyContent) -> [(&'static str, Value); 6] {
    [
        ("inherit", json!(p.inherit)),
        ("description", json!(p.description)),
        ("guardrails_add", json!(p.add)),
        ("guardrails_remove", json!(p.remove)),
        (
            "condition",
            match &p.condition {
                None => Value::Null,
                Some(m) => json!({"model": m.as_ref().map(ModelCondition::to_json)}),
            },
        ),
        (
            "pipeline",
            p.pipeline
                .as_ref()
                .map(pipeline_to_json)
                .unwrap_or(Value::Null),
        ),
    ]
}

/// `field_diffs` of LiteLLM's compare, keyed by field name.
pub fn compare(a: &PolicyContent, b: &PolicyContent) -> BTreeMap<&'static str, FieldDiff> {
    db_fields(a)
        .into_iter()
        .zip(db_fields(b))
        .filter(|((_, va), (_, vb))| va != vb)
        .map(|((k, va), (_, vb))| {
            (
                k,
                FieldDiff {
                    version_a: va,
                    version_b: vb,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_order_counts_and_equal_fields_are_left_out() {
        let a = PolicyContent {
            add: vec!["a".into(), "b".into()],
            description: Some("d".into()),
            ..Default::default()
        };
        let b = PolicyContent {
            add: vec!["b".into(), "a".into()],
            description: Some("d".into()),
            ..Default::default()
        };
        let d = compare(&a, &b);
        assert_eq!(
            d.keys().copied().collect::<Vec<_>>(),
            vec!["guardrails_add"]
        );
        assert_eq!(d["guardrails_add"].version_a, json!(["a", "b"]));
        assert!(compare(&a, &a).is_empty());
    }
}
