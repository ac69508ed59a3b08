//! `validate`: schema, content rules, duplicates, and LiteLLM's validation of the policies
//! that ask for production — each finding names the file, document, object, field and fix.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::manifests::{Loaded, Manifests, read};
use super::{Failure, Output, ValidateArgs, catalog_names, read_catalog};
use crate::engine::namespace::{checked_content, desired_production};
use crate::engine::validate::{ErrorType, validate_policies};

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub document: usize,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (document {}): {} {}/{}: {}: {}",
            self.file,
            self.document,
            self.kind,
            self.namespace,
            self.name,
            self.field,
            self.message
        )
    }
}

/// The result of `validate`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub valid: bool,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

fn finding<T>(l: &Loaded<T>, field: &str, message: String) -> Finding {
    Finding {
        file: l.origin.file.clone(),
        document: l.origin.document,
        kind: l.kind.to_string(),
        namespace: if l.namespace.is_empty() {
            "default".into()
        } else {
            l.namespace.clone()
        },
        name: l.name.clone(),
        field: field.to_string(),
        message,
    }
}

/// Validate everything read, in every namespace.
pub fn check(m: &Manifests, catalog: Option<&BTreeSet<String>>) -> Outcome {
    let mut out = Outcome::default();
    for l in &m.policies {
        out.errors.extend(
            l.schema_errors
                .iter()
                .map(|e| finding(l, &e.path, e.message.clone())),
        );
    }
    for l in &m.versions {
        out.errors.extend(
            l.schema_errors
                .iter()
                .map(|e| finding(l, &e.path, e.message.clone())),
        );
    }
    for l in &m.attachments {
        out.errors.extend(
            l.schema_errors
                .iter()
                .map(|e| finding(l, &e.path, e.message.clone())),
        );
    }

    for ns in m.namespaces() {
        let in_ns = |n: &str| (if n.is_empty() { "default" } else { n }) == ns;
        let policies: BTreeSet<&str> = m
            .policies
            .iter()
            .filter(|l| in_ns(&l.namespace) && l.object.is_some())
            .map(|l| l.name.as_str())
            .collect();
        let versions: Vec<&Loaded<_>> = m.versions.iter().filter(|l| in_ns(&l.namespace)).collect();

        // Content rules and duplicates.
        let mut seen: BTreeMap<(String, i64), &str> = BTreeMap::new();
        for l in &versions {
            let Some(v) = &l.object else { continue };
            let (content, issues) = checked_content(v);
            for i in &issues {
                out.errors.push(finding(
                    l,
                    &format!("spec.{}", i.field.as_deref().unwrap_or("")),
                    i.message.clone(),
                ));
            }
            if let (Err(e), true) = (&content, issues.is_empty()) {
                out.errors.push(finding(l, "spec", e.clone()));
            }
            let key = (v.spec.policy.clone(), v.spec.version);
            if let Some(other) = seen.get(&key) {
                out.errors.push(finding(
                    l,
                    "spec.version",
                    format!(
                        "version {} of policy '{}' is also defined by PolicyVersion '{other}'; version numbers are unique per policy: use the next free number",
                        v.spec.version, v.spec.policy
                    ),
                ));
            } else {
                seen.insert(key, &l.name);
            }
            if !policies.contains(v.spec.policy.as_str()) {
                out.warnings.push(finding(
                    l,
                    "spec.policy",
                    format!(
                        "no Policy named '{}' in the given files; it must exist in namespace {ns} before this version can reach production",
                        v.spec.policy
                    ),
                ));
            }
        }
        for l in m.attachments.iter().filter(|l| in_ns(&l.namespace)) {
            if let Some(a) = &l.object
                && !policies.contains(a.spec.policy.as_str())
            {
                out.warnings.push(finding(
                    l,
                    "spec.policy",
                    format!(
                        "no Policy named '{}' in the given files; the attachment stays unresolved (Ready=False, PolicyNotFound) until it exists with a production version",
                        a.spec.policy
                    ),
                ));
            }
        }

        // LiteLLM's validation of what asks for production (the highest Production version of
        // each policy), as the gateway would load it.
        let objects: Vec<_> = versions
            .iter()
            .filter_map(|l| l.object.clone())
            .map(std::sync::Arc::new)
            .collect();
        let desired = desired_production(&objects);
        let order: Vec<String> = desired.keys().cloned().collect();
        let available = catalog.cloned().unwrap_or_default();
        let report = validate_policies(&order, &desired, &available);
        let locate = |policy: &str| {
            versions
                .iter()
                .filter(|l| {
                    l.object.as_ref().is_some_and(|v| {
                        v.spec.policy == policy
                            && v.spec.stage == Some(crate::api::Stage::Production)
                    })
                })
                .max_by_key(|l| l.object.as_ref().map(|v| v.spec.version))
                .copied()
        };
        for issue in report.errors.iter().chain(report.warnings.iter()) {
            let Some(l) = locate(&issue.policy_name) else {
                continue;
            };
            let field = match issue.field.as_deref() {
                Some("inherit") => "spec.inherit",
                Some("guardrails.add") => "spec.guardrails.add",
                Some("guardrails.remove") => "spec.guardrails.remove",
                Some("pipeline.steps") => "spec.pipeline.steps",
                _ => "spec",
            };
            let (message, is_error) = match issue.error_type {
                ErrorType::InvalidInheritance => (
                    format!(
                        "{} (LiteLLM: invalid_inheritance). The version waits at Published until that policy has a production version; add it to the repository",
                        issue.message
                    ),
                    false,
                ),
                ErrorType::CircularInheritance => (
                    format!(
                        "{} (LiteLLM: circular_inheritance). Break the cycle: versions on it never reach production",
                        issue.message
                    ),
                    true,
                ),
                ErrorType::InvalidGuardrail
                    if issue.field.as_deref() == Some("pipeline.steps")
                        && issue.message.contains("guardrails.add") =>
                {
                    continue; // already reported as a content error
                }
                ErrorType::InvalidGuardrail => (
                    format!(
                        "{} (LiteLLM: invalid_guardrail). Add it to the guardrail catalog or fix the name",
                        issue.message
                    ),
                    report.errors.contains(issue),
                ),
                _ => (issue.message.clone(), report.errors.contains(issue)),
            };
            let f = finding(l, field, message);
            if is_error {
                out.errors.push(f);
            } else {
                out.warnings.push(f);
            }
        }
    }
    out.errors.dedup();
    out.warnings.dedup();
    out.valid = out.errors.is_empty();
    out
}

/// `validate`.
pub fn run(args: &ValidateArgs) -> Result<i32, Failure> {
    let catalog = read_catalog(args.inputs.catalog.as_deref())?;
    let m = read(&args.inputs.files, args.inputs.recursive).map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let mut outcome = check(&m, catalog_names(&catalog).as_ref());
    if let Some(ns) = &args.inputs.namespace {
        outcome.errors.retain(|f| &f.namespace == ns);
        outcome.warnings.retain(|f| &f.namespace == ns);
        outcome.valid = outcome.errors.is_empty();
    }
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        ),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&outcome).unwrap_or_default()),
        Output::Text => {
            for e in &outcome.errors {
                println!("error: {e}");
            }
            for w in &outcome.warnings {
                println!("warning: {w}");
            }
            let c = super::manifests::counts(&m);
            println!(
                "{}: {} Policy, {} PolicyVersion, {} PolicyAttachment; {} error(s), {} warning(s)",
                if outcome.valid { "valid" } else { "invalid" },
                c["Policy"],
                c["PolicyVersion"],
                c["PolicyAttachment"],
                outcome.errors.len(),
                outcome.warnings.len()
            );
        }
    }
    Ok(if outcome.valid { 0 } else { 1 })
}
