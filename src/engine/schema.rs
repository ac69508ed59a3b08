//! Offline structural-schema check: the same OpenAPI rules the API server applies to our CRDs
//! (types, required fields, unknown fields, lengths, counts, bounds, patterns, enums), read from
//! the CRDs generated from our types, so `validate` and the API server agree. CEL rules are
//! transition rules (immutability) and are enforced by the API server and the webhook.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// One schema violation, with a field path like `spec.pipeline.steps[0].onFail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Check a value against a schema.
pub fn check(value: &Value, schema: &JSONSchemaProps, path: &str) -> Vec<SchemaError> {
    let mut out = Vec::new();
    walk(value, schema, path, &mut out);
    out
}

fn err(out: &mut Vec<SchemaError>, path: &str, message: String) {
    out.push(SchemaError {
        path: path.to_string(),
        message,
    });
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(value: &Value, schema: &JSONSchemaProps, path: &str, out: &mut Vec<SchemaError>) {
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) && schema.type_.is_none() {
        return;
    }
    if value.is_null() {
        if schema.nullable != Some(true) {
            err(out, path, "must not be null".into());
        }
        return;
    }
    if let Some(t) = &schema.type_ {
        let actual = type_name(value);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            err(out, path, format!("must be of type {t}, got {actual}"));
            return;
        }
    }
    if let Some(values) = &schema.enum_
        && !values.iter().any(|e| e.0 == *value)
    {
        let allowed: Vec<String> = values.iter().map(|e| e.0.to_string()).collect();
        err(
            out,
            path,
            format!(
                "unsupported value {value}; supported values: {}",
                allowed.join(", ")
            ),
        );
    }
    match value {
        Value::String(s) => {
            let len = s.chars().count() as i64;
            if let Some(min) = schema.min_length
                && len < min
            {
                err(out, path, format!("must be at least {min} characters long"));
            }
            if let Some(max) = schema.max_length
                && len > max
            {
                err(
                    out,
                    path,
                    format!("may not be more than {max} characters long (got {len})"),
                );
            }
            if let Some(p) = &schema.pattern
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                let msg = match super::names::dns_subdomain_problem(s) {
                    Some(why) if p == super::names::DNS_SUBDOMAIN_PATTERN => {
                        format!("{why}; name an existing Policy")
                    }
                    _ => format!("{s:?} does not match the pattern {p}"),
                };
                err(out, path, msg);
            }
        }
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                if let Some(min) = schema.minimum
                    && f < min
                {
                    err(out, path, format!("must be greater than or equal to {min}"));
                }
                if let Some(max) = schema.maximum
                    && f > max
                {
                    err(out, path, format!("must be less than or equal to {max}"));
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as i64;
            if let Some(min) = schema.min_items
                && n < min
            {
                err(out, path, format!("must have at least {min} item(s)"));
            }
            if let Some(max) = schema.max_items
                && n > max
            {
                err(
                    out,
                    path,
                    format!("must have at most {max} items (got {n})"),
                );
            }
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for (i, v) in items.iter().enumerate() {
                    walk(v, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            for r in schema.required.iter().flatten() {
                if !map.contains_key(r) {
                    err(out, &format!("{path}.{r}"), "required value".into());
                }
            }
            let props = schema.properties.as_ref();
            for (k, v) in map {
                let child = format!("{path}.{k}");
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    walk(v, p, &child, out);
                } else if let Some(JSONSchemaPropsOrBool::Schema(extra)) =
                    &schema.additional_properties
                {
                    walk(v, extra, &child, out);
                } else if schema.x_kubernetes_preserve_unknown_fields != Some(true)
                    && !matches!(
                        schema.additional_properties,
                        Some(JSONSchemaPropsOrBool::Bool(true))
                    )
                {
                    err(
                        out,
                        &child,
                        "unknown field (check the spelling; see `kubectl explain`)".into(),
                    );
                }
            }
        }
        _ => {}
    }
}
