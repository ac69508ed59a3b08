//! `Policy`: the identity that attachments and `inherit` point at.

use super::conditions::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::policy_version::Stage;

/// A guardrail policy: the name that attachments and other policies' `inherit` refer to. Its
/// content lives in PolicyVersion objects; the highest eligible version whose desired stage is
/// Production is the one the gateway runs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "guardrails.dev",
    version = "v1alpha1",
    kind = "Policy",
    namespaced,
    status = "PolicyStatus",
    shortname = "grpol",
    category = "guardrails",
    doc = "A guardrail policy (LiteLLM policy name). Content lives in its PolicyVersions; deleting a Policy deletes all of its versions.",
    printcolumn(
        name = "Production",
        type_ = "integer",
        json_path = ".status.productionVersion",
        description = "Version in production"
    ),
    printcolumn(
        name = "Latest",
        type_ = "integer",
        json_path = ".status.latestVersion",
        description = "Highest version number"
    ),
    printcolumn(
        name = "Guardrails",
        type_ = "string",
        json_path = ".status.resolvedGuardrails",
        description = "Resolved guardrails of the production version"
    ),
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
pub struct PolicySpec {
    /// Free text shown to people; not used by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
}

/// Observed state of a Policy, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The version number in production; absent when no version is in production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_version: Option<i64>,
    /// The highest version number among this policy's versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<i64>,
    /// Every version of this policy, newest first, with its achieved stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<PolicyVersionSummary>,
    /// Guardrails of the production version with inheritance applied and conditions ignored, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_guardrails: Vec<String>,
    /// Inheritance chain of the production version, root first, this policy last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inheritance_chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::conditions")]
    pub conditions: Vec<Condition>,
}

/// One version of a policy as listed in the Policy's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionSummary {
    /// Name of the PolicyVersion object.
    pub name: String,
    /// Its version number.
    pub version: i64,
    /// Its achieved stage.
    pub stage: Stage,
}
