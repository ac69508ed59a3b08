//! Schema helpers for fields whose structural schema schemars cannot express on its own.

use schemars::{Schema, SchemaGenerator, json_schema};

/// `status.conditions`: standard `metav1.Condition`s as a list-map keyed by `type`, so
/// server-side apply merges them per type.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let mut schema =
        generator.subschema_for::<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("x-kubernetes-list-type".into(), "map".into());
        obj.insert(
            "x-kubernetes-list-map-keys".into(),
            serde_json::json!(["type"]),
        );
        obj.insert(
            "description".into(),
            "Standard conditions (Ready, Reconciling, Stalled and kind-specific ones), one per type."
                .into(),
        );
    }
    schema
}

/// `condition.model`: a string or a list of strings (LiteLLM accepts both).
pub fn string_or_string_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A model-name pattern or a list of them: each is matched first exactly, then as a Python-style regular expression that must match the whole name (e.g. \"claude-.*\"). A list matches when any element does. Glob syntax is not supported: \"gpt-*\" means \"gpt\" followed by dashes.",
        "x-kubernetes-preserve-unknown-fields": true,
        // A structural schema cannot say "string or list" with types; these value rules refuse
        // what is neither shape at any depth: a list's items must be strings, a map must be
        // empty (a number or a boolean is left to the webhook and the controller).
        "items": {"type": "string", "maxLength": 1024},
        "maxProperties": 0,
        "maxItems": 256
    })
}
