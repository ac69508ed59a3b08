//! Custom resource types (group `guardrails.dev`, version `v1alpha1`): types only, no logic.
//!
//! The CRD YAML in `crds/` is generated from these types (`guardrail-operator crds`); a test fails
//! when the two drift.

// kube's `printcolumn(...)` repeats `type_ = ...` per column, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

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
    TerminalAction, TestExpectation, TestMessage, TestResult, TestSpec, TestStepResult,
    TestsSummary, VersionCondition,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` must hold exactly what the types generate; regenerate with
    /// `cargo run -- crds --dir crds`.
    #[test]
    fn crds_directory_matches_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        let generated = crds_yaml().expect("render");
        let mut expected_files: Vec<String> = generated
            .iter()
            .map(|(stem, _)| format!("{stem}.yaml"))
            .collect();
        expected_files.sort();
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .expect("crds/ exists")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        present.sort();
        assert_eq!(
            present, expected_files,
            "crds/ holds other files than the generated CRDs"
        );
        for (stem, yaml) in generated {
            let on_disk = std::fs::read_to_string(dir.join(format!("{stem}.yaml"))).expect("read");
            assert!(
                on_disk == yaml,
                "crds/{stem}.yaml drifted from the Rust types: run `cargo run -- crds --dir crds` and commit the result"
            );
        }
    }

    #[test]
    fn every_schema_property_has_a_description() {
        fn walk(path: &str, v: &serde_json::Value, missing: &mut Vec<String>) {
            if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
                for (k, child) in props {
                    let p = format!("{path}.{k}");
                    if child.get("description").is_none()
                        && !["apiVersion", "kind", "metadata"].contains(&k.as_str())
                    {
                        missing.push(p.clone());
                    }
                    walk(&p, child, missing);
                }
            }
            if let Some(items) = v.get("items") {
                walk(&format!("{path}[]"), items, missing);
            }
        }
        for crd in crds() {
            let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("json");
            let mut missing = Vec::new();
            walk(
                &crd.spec.names.kind,
                &schema["openAPIV3Schema"],
                &mut missing,
            );
            // Condition fields come from k8s-openapi and carry their upstream descriptions.
            missing.retain(|m| !m.contains(".conditions[]."));
            assert!(
                missing.is_empty(),
                "fields without a description (kubectl explain shows nothing): {missing:?}"
            );
        }
    }
}
