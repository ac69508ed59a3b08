//! `PolicyAttachment`: where a policy applies.

use super::conditions::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a policy applies (LiteLLM policy attachment). Matching, ordering, defaults and
/// de-duplication are LiteLLM's; only the policy's production version counts.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "guardrails.dev",
    version = "v1alpha1",
    kind = "PolicyAttachment",
    namespaced,
    status = "PolicyAttachmentStatus",
    shortname = "grpa",
    category = "guardrails",
    selectable = ".spec.policy",
    doc = "Attaches a policy to requests by team alias, key alias, model, tag, or globally (scope \"*\"). Patterns ending in * match by prefix; everything else is exact and case-sensitive.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Scope", type_ = "string", json_path = ".spec.scope"),
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAttachmentSpec {
    /// Name of the attached Policy (same namespace; a DNS-1123 subdomain).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = crate::engine::names::DNS_SUBDOMAIN_PATTERN)
    )]
    pub policy: String,
    /// Only the exact value "*" makes the attachment global; teams, keys, models and tags are
    /// then ignored. Any other value is not special.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub scope: Option<String>,
    /// Team-alias patterns; a trailing * matches by prefix. Absent or empty matches every team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub teams: Option<Vec<String>>,
    /// Key-alias patterns; a trailing * matches by prefix. Absent or empty matches every key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub keys: Option<Vec<String>>,
    /// Request-model patterns; a trailing * matches by prefix. Absent or empty matches every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub models: Option<Vec<String>>,
    /// Tag patterns; absent or empty means tags are not checked, otherwise some request tag must
    /// match some pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub tags: Option<Vec<String>>,
    /// Lower runs first; attachments with a priority come before those without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// A fallback, used only when no non-default attachment matches the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// Observed state of a PolicyAttachment, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAttachmentStatus {
    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Production version of the referenced policy, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_version: Option<i64>,
    /// The referenced policy's resolved guardrails (no request context).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_guardrails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::conditions")]
    pub conditions: Vec<Condition>,
}
