//! Everything the operator decides for one namespace, from its objects alone: content,
//! validation, tests, lifecycle (production fixpoint) and the resolved gateway view. The
//! controller converges to this state and the offline CLI prints it, so both agree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::convert;
use super::hash::content_hash;
use super::lifecycle::{self, Decisions, VersionInput};
use super::model::{Attachment, PolicyContent, PolicyMap};
use super::pipeline::Clock;
use super::testing::{GuardrailProvider, TestOutcome, run_tests};
use super::validate::{Issue, content_issues};
use crate::api::{Policy, PolicyAttachment, PolicyVersion, Stage};

/// The objects of one namespace.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub policies: Vec<Arc<Policy>>,
    pub versions: Vec<Arc<PolicyVersion>>,
    pub attachments: Vec<Arc<PolicyAttachment>>,
}

/// What was decided for one version.
#[derive(Clone, Debug)]
pub struct EvaluatedVersion {
    pub content: Result<PolicyContent, String>,
    pub issues: Vec<Issue>,
    pub content_hash: String,
    /// Tests run when the version asks for Published or Production (or `run_all_tests`).
    pub tests: Option<Vec<TestOutcome>>,
}

/// The evaluation of a namespace.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// In the input order of `Objects::versions`.
    pub versions: Vec<EvaluatedVersion>,
    pub decisions: Decisions,
    /// Policy name → content of its production version.
    pub production: PolicyMap,
    /// Attachments in registry order (metadata.name), as the gateway gets them.
    pub attachments: Vec<(String, Attachment)>,
}

/// Looks up a test verdict already recorded for a version's content hash.
pub type KnownVerdict = dyn Fn(&PolicyVersion, &str) -> Option<Result<(), String>>;

/// Options for [`evaluate`].
pub struct Options<'a> {
    /// The guardrail catalog's names; None when no catalog is configured.
    pub catalog: Option<&'a BTreeSet<String>>,
    pub provider: &'a dyn GuardrailProvider,
    pub clock: &'a dyn Clock,
    /// Run the tests of every version, not only of those asking for Published or Production.
    pub run_all_tests: bool,
    /// A verdict already recorded for this content (by `status.tests.contentHash`): the tests
    /// are not run again.
    pub known_verdict: Option<&'a KnownVerdict>,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// The content tests resolve inheritance against: for every policy, its highest version that
/// asks for Production (desired state, so the answer never depends on the order of evaluation).
pub fn desired_production(versions: &[Arc<PolicyVersion>]) -> PolicyMap {
    let mut best: BTreeMap<&str, &PolicyVersion> = BTreeMap::new();
    for v in versions
        .iter()
        .map(|v| &**v)
        .filter(|v| v.spec.stage == Some(Stage::Production))
    {
        let e = best.entry(v.spec.policy.as_str()).or_insert(v);
        if v.spec.version > e.spec.version {
            *e = v;
        }
    }
    best.into_iter()
        .filter_map(|(p, v)| {
            convert::version_content(&v.spec)
                .ok()
                .map(|c| (p.to_string(), c))
        })
        .collect()
}

/// A version's content with its own problems folded into the error.
pub fn checked_content(v: &PolicyVersion) -> (Result<PolicyContent, String>, Vec<Issue>) {
    match convert::version_content(&v.spec) {
        Err(e) => (Err(e.to_string()), Vec::new()),
        Ok(c) => {
            let mut issues = content_issues(&v.spec.policy, &c);
            if let Some(why) = super::names::dns_subdomain_problem(&v.spec.policy) {
                issues.insert(
                    0,
                    Issue {
                        policy_name: v.spec.policy.clone(),
                        error_type: super::validate::ErrorType::InvalidSyntax,
                        message: format!("{why}; name the Policy's metadata.name"),
                        field: Some("policy".into()),
                        value: None,
                    },
                );
            }
            if issues.is_empty() {
                (Ok(c), issues)
            } else {
                let msg = issues
                    .iter()
                    .map(|i| format!("{}: {}", i.field.as_deref().unwrap_or("spec"), i.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                (Err(msg), issues)
            }
        }
    }
}

/// Summary of failed tests, for conditions and the lifecycle.
pub fn test_verdict(outcomes: &[TestOutcome]) -> Result<(), String> {
    let failed: Vec<&TestOutcome> = outcomes.iter().filter(|t| !t.passed).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} of {} test(s) failed: {}",
        failed.len(),
        outcomes.len(),
        failed
            .iter()
            .map(|t| format!("{} ({})", t.name, t.failures.join("; ")))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Evaluate a namespace.
pub fn evaluate(objects: &Objects, opts: &Options<'_>) -> Evaluation {
    let others = desired_production(&objects.versions);
    let mut evaluated = Vec::with_capacity(objects.versions.len());
    let mut inputs = Vec::with_capacity(objects.versions.len());
    for v in &objects.versions {
        let (content, issues) = checked_content(v);
        let desired = v.spec.stage.unwrap_or_default();
        let hash = content_hash(&v.spec);
        let known = opts.known_verdict.and_then(|f| f(v, &hash));
        let wants_tests = known.is_none() && (opts.run_all_tests || desired != Stage::Draft);
        let tests = match (&content, wants_tests) {
            (Ok(c), true) => Some(run_tests(
                &v.spec.policy,
                c,
                v.spec.tests.as_deref().unwrap_or(&[]),
                &others,
                opts.provider,
                opts.clock,
            )),
            _ => None,
        };
        inputs.push(VersionInput {
            name: name_of(&v.metadata),
            created: v
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            policy: v.spec.policy.clone(),
            version: v.spec.version,
            desired,
            previous: v.status.as_ref().and_then(|s| s.stage),
            content: content.clone(),
            tests: known.unwrap_or_else(|| tests.as_deref().map(test_verdict).unwrap_or(Ok(()))),
        });
        evaluated.push(EvaluatedVersion {
            content,
            issues,
            content_hash: hash,
            tests,
        });
    }
    let policy_names: BTreeSet<String> = objects
        .policies
        .iter()
        .map(|p| name_of(&p.metadata))
        .collect();
    let decisions = lifecycle::decide(&inputs, &policy_names, opts.catalog);
    let production: PolicyMap = decisions
        .production
        .iter()
        .filter_map(|(p, &i)| {
            evaluated[i]
                .content
                .as_ref()
                .ok()
                .map(|c| (p.clone(), c.clone()))
        })
        .collect();
    let mut attachments: Vec<(String, Attachment)> = objects
        .attachments
        .iter()
        .map(|a| (name_of(&a.metadata), convert::attachment(&a.spec)))
        .collect();
    attachments.sort_by(|a, b| a.0.cmp(&b.0));
    Evaluation {
        versions: evaluated,
        decisions,
        production,
        attachments,
    }
}

impl Evaluation {
    /// The attachments alone, in registry order.
    pub fn attachment_list(&self) -> Vec<Attachment> {
        self.attachments.iter().map(|(_, a)| a.clone()).collect()
    }
}
