//! Custom resource types (group `guardrails.dev`, version `v1alpha1`): types only, no logic.
//!
//! The CRD YAML in `crds/` is generated from these types (`guardrail-operator crds`); a test fails
//! when the two drift.

pub mod conditions;
pub mod labels;
pub mod policy;
pub mod policy_attachment;
pub mod policy_version;
mod schema;

pub use policy::{Policy, PolicySpec, PolicyStatus, PolicyVersionSummary};
pub use policy_attachment::{PolicyAttachment, PolicyAttachmentSpec, PolicyAttachmentStatus};
pub use policy_version::{
    ExpectedStep, GuardrailsSpec, MockOutcome, PipelineAction, PipelineMode, PipelineSpec,
    PipelineStepSpec, PolicyVersion, PolicyVersionSpec, PolicyVersionStatus, Stage, StepOutcome,
    TerminalAction, TestExpectation, TestMessage, TestResult, TestSpec, TestStepResult, TestsSummary,
    VersionCondition,
};

use kube::CustomResourceExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// API group of every kind.
pub const GROUP: &str = "guardrails.dev";
/// API version of every kind.
pub const VERSION: &str = "v1alpha1";

/// The three CRDs, in a stable order (Policy, PolicyVersion, PolicyAttachment).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Policy::crd(), PolicyVersion::crd(), PolicyAttachment::crd()]
}

/// The CRDs rendered as YAML, one `(file stem, yaml)` per kind: what `crds/` holds.
pub fn crds_yaml() -> Result<Vec<(String, String)>, serde_saphyr::ser::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let stem = crd.spec.names.plural.clone();
            serde_saphyr::to_string(&crd).map(|yaml| (stem, yaml))
        })
        .collect()
}
