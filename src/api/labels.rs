//! Label, annotation and field-manager names the operator writes.

/// Server-side-apply field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "guardrail-operator";
/// Label on versions and outputs naming the policy they belong to.
pub const POLICY_LABEL: &str = "guardrails.dev/policy";
/// `app.kubernetes.io/managed-by` on generated objects.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "guardrail-operator";
/// Annotation with the sha256 of a generated ConfigMap's data.
pub const CONTENT_HASH_ANNOTATION: &str = "guardrails.dev/content-hash";
/// Annotation with the bundle generation counter.
pub const GENERATION_ANNOTATION: &str = "guardrails.dev/generation";
/// Pod-template annotation patched on the gateway Deployment when the bundle changes.
pub const CONFIG_HASH_ANNOTATION: &str = "guardrails.dev/config-hash";
