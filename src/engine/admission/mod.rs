//! Admission decisions (api.md §5): what the validating webhook answers, as pure functions over
//! the object, its old version and the namespace's other objects. Malformed content and
//! lifecycle violations deny; references that may only not exist *yet* give warnings.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use super::hash::content_hash;
use super::lifecycle::{self, Decisions, Promotion, VersionInput};
use super::namespace::{Objects, checked_content, desired_production};
use super::pipeline::{Clock, Deadline};
use super::testing::{GuardrailProvider, TestOutcome, run_tests};
use crate::api::{Policy, PolicyAttachment, PolicyVersion, Stage};

/// The webhook's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Why it was denied.
    pub message: Option<String>,
    /// Shown by kubectl as `Warning: ...`.
    pub warnings: Vec<String>,
    /// Whether the test pipeline ran (it is skipped for unchanged or already tested content).
    pub ran_tests: bool,
}

impl Decision {
    fn allow(warnings: Vec<String>) -> Self {
        Decision {
            allowed: true,
            message: None,
            warnings,
            ran_tests: false,
        }
    }
    fn deny(message: String) -> Self {
        Decision {
            allowed: false,
            message: Some(message),
            warnings: Vec::new(),
            ran_tests: false,
        }
    }
}

/// The admission operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

/// What admission needs besides the object.
pub struct Env<'a> {
    /// Reads the other objects of the namespace (from the operator's caches); called only by
    /// reviews that need them, so unchanged specs cost no copy.
    pub load_objects: &'a dyn Fn() -> Objects,
    /// The objects, once loaded.
    pub objects: std::cell::OnceCell<Objects>,
    /// Guardrail catalog names (None: no catalog configured).
    pub catalog: Option<&'a BTreeSet<String>>,
    pub provider: &'a dyn GuardrailProvider,
    pub clock: &'a dyn Clock,
    /// Seconds the tests may take before the answer is a denial (keeps far inside the
    /// webhook's timeoutSeconds).
    pub budget_seconds: f64,
    /// Time this review already spent before its tests (waiting for a review slot); it counts
    /// against the budget.
    pub spent_seconds: f64,
}

impl Env<'_> {
    fn objects(&self) -> &Objects {
        self.objects.get_or_init(|| (self.load_objects)())
    }
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn label(v: &PolicyVersion) -> String {
    format!(
        "PolicyVersion {}/{}",
        v.metadata.namespace.clone().unwrap_or_default(),
        name(&v.metadata)
    )
}

/// A readable per-test, per-step report of failed tests.
pub fn test_report(outcomes: &[TestOutcome]) -> String {
    let mut out = String::new();
    for t in outcomes.iter().filter(|t| !t.passed) {
        let _ = writeln!(out, "  test {:?}: {}", t.name, t.failures.join("; "));
        let _ = writeln!(
            out,
            "    got action {}{}{}",
            t.action.as_str(),
            t.blocked_by
                .as_ref()
                .map(|b| format!(", blockedBy {b}"))
                .unwrap_or_default(),
            t.message
                .as_ref()
                .map(|m| format!(", message {m:?}"))
                .unwrap_or_default()
        );
        for (i, s) in t.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "    step {}: guardrail {} -> outcome {}, action {} ({:.4}s){}",
                i + 1,
                s.guardrail,
                s.outcome.as_str(),
                s.action.as_str(),
                s.duration_seconds,
                s.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
    }
    out.trim_end().to_string()
}

/// An update the webhook refuses: the field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub field: &'static str,
    pub message: String,
}

/// The update rules of a PolicyVersion (api.md §3): `spec.policy` and `spec.version` are
/// immutable, the stage never goes back to Draft, and content is immutable outside Draft.
/// Shared by the webhook and `plan`.
pub fn update_refusal(old: &PolicyVersion, new: &PolicyVersion) -> Option<Refused> {
    if old.spec.policy != new.spec.policy {
        return Some(Refused {
            field: "spec.policy",
            message: format!(
                "spec.policy is immutable ('{}' -> '{}'); create a new PolicyVersion for the other policy",
                old.spec.policy, new.spec.policy
            ),
        });
    }
    if old.spec.version != new.spec.version {
        return Some(Refused {
            field: "spec.version",
            message: format!(
                "spec.version is immutable ({} -> {}); create a new PolicyVersion instead",
                old.spec.version, new.spec.version
            ),
        });
    }
    let old_stage = old.spec.stage.unwrap_or_default();
    let desired = new.spec.stage.unwrap_or_default();
    if old_stage != Stage::Draft && desired == Stage::Draft {
        return Some(Refused {
            field: "spec.stage",
            message: format!(
                "spec.stage cannot go back to Draft (it is {old_stage}). Lower Production to Published to roll back, or create a new version to change the content"
            ),
        });
    }
    if old_stage != Stage::Draft && content_hash(&old.spec) != content_hash(&new.spec) {
        return Some(Refused {
            field: "spec",
            message: format!(
                "Only draft versions can be updated. Create a new version to change published/production. (spec.stage was {old_stage}; only spec.stage may change)"
            ),
        });
    }
    None
}

/// Admission of a PolicyVersion.
pub fn review_version(
    op: Operation,
    new: Option<&PolicyVersion>,
    old: Option<&PolicyVersion>,
    env: &Env<'_>,
) -> Decision {
    let (new, old) = match (op, new, old) {
        (Operation::Delete, _, Some(old)) => return delete_version_warnings(old, env),
        (Operation::Create, Some(new), _) => (new, None),
        (Operation::Update, Some(new), Some(old)) => (new, Some(old)),
        _ => return Decision::allow(Vec::new()),
    };
    let who = label(new);
    let desired = new.spec.stage.unwrap_or_default();
    if let Some(old) = old {
        // GitOps tools dry-run every object on every sync: an unchanged spec costs nothing.
        if old.spec == new.spec {
            return Decision::allow(Vec::new());
        }
        if let Some(r) = update_refusal(old, new) {
            return Decision::deny(format!("{who}: {}", r.message));
        }
    }

    // Content: LiteLLM's own-content rules and the operator's structural rules.
    let (content, issues) = checked_content(new);
    let content = match content {
        Ok(c) => c,
        Err(e) => {
            let detail = if issues.is_empty() {
                e
            } else {
                issues
                    .iter()
                    .map(|i| format!("spec.{}: {}", i.field.as_deref().unwrap_or(""), i.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return Decision::deny(format!("{who}: {detail}"));
        }
    };

    // Unique version per policy.
    let me = name(&new.metadata);
    if let Some(other) = env.objects().versions.iter().find(|v| {
        v.spec.policy == new.spec.policy
            && v.spec.version == new.spec.version
            && name(&v.metadata) != me
    }) {
        let next = env
            .objects()
            .versions
            .iter()
            .filter(|v| v.spec.policy == new.spec.policy)
            .map(|v| v.spec.version)
            .max()
            .unwrap_or(0)
            + 1;
        return Decision::deny(format!(
            "{who}: version {} of policy '{}' already exists (PolicyVersion {}); version numbers are unique per policy: use spec.version {next}",
            new.spec.version,
            new.spec.policy,
            name(&other.metadata)
        ));
    }

    // References that may arrive later: warnings.
    let mut warnings = Vec::new();
    let policy_exists = |p: &str| {
        env.objects()
            .policies
            .iter()
            .any(|x| name(&x.metadata) == p)
    };
    let in_production = |p: &str| {
        env.objects().policies.iter().any(|x| {
            name(&x.metadata) == p
                && x.status
                    .as_ref()
                    .and_then(|s| s.production_version)
                    .is_some()
        })
    };
    if !policy_exists(&new.spec.policy) {
        warnings.push(format!(
            "Policy '{}' does not exist yet; this version cannot reach production until it does",
            new.spec.policy
        ));
    }
    if let Some(parent) = content.parent() {
        if !policy_exists(parent) {
            warnings.push(format!("spec.inherit: Parent policy '{parent}' not found; promotion waits until it exists with a production version"));
        } else if !in_production(parent) {
            warnings.push(format!("spec.inherit: policy '{parent}' has no production version yet; promotion waits for it"));
        }
    }
    if let Some(catalog) = env.catalog {
        let missing = super::lifecycle::missing_from_catalog(&content, catalog);
        if !missing.is_empty() {
            warnings.push(format!(
                "guardrails not in the guardrail catalog: {}; promotion waits until they are added",
                missing.join(", ")
            ));
        }
    }

    // A stage change can take policies out of the gateway (a rollback whose fallback waits,
    // or children left without a parent in production): name them.
    if let Some(old) = old
        && old.spec.stage.unwrap_or_default() != desired
    {
        warnings.extend(leaving_warning(
            &format!(
                "Changing spec.stage of {who} from {} to {desired}",
                old.spec.stage.unwrap_or_default()
            ),
            env.objects(),
            &with_version(env.objects(), old, Some(new)),
            env.catalog,
            None,
        ));
    }

    // Test pipelines, when the version asks to leave Draft and this content has not passed.
    if desired == Stage::Draft {
        return Decision::allow(warnings);
    }
    let hash = content_hash(&new.spec);
    let passed_before = [Some(new), old].into_iter().flatten().any(|v| {
        v.status
            .as_ref()
            .and_then(|s| s.tests.as_ref())
            .is_some_and(|t| t.content_hash.as_deref() == Some(hash.as_str()) && t.failed == 0)
    });
    if passed_before {
        return Decision::allow(warnings);
    }
    let tests = new.spec.tests.as_deref().unwrap_or(&[]);
    let mut others = desired_production(&env.objects().versions);
    others.remove(&new.spec.policy);
    // The budget is checked before every pipeline step, not only between tests.
    let clock = Deadline {
        clock: env.clock,
        at: env.clock.seconds() + env.budget_seconds - env.spent_seconds,
    };
    let mut outcomes = Vec::with_capacity(tests.len());
    for t in tests {
        outcomes.extend(run_tests(
            &new.spec.policy,
            &content,
            std::slice::from_ref(t),
            &others,
            env.provider,
            &clock,
        ));
        if clock.expired() {
            let mut d = Decision::deny(format!(
                "{who}: its tests did not finish within the admission budget of {:.1}s: it ran out in test {} of {} ('{}'); make the tests smaller, or run them with `guardrail-operator test` and apply the version once they pass",
                env.budget_seconds,
                outcomes.len(),
                tests.len(),
                t.name
            ));
            d.ran_tests = true;
            return d;
        }
    }
    let failed = outcomes.iter().filter(|t| !t.passed).count();
    let mut d = if failed == 0 {
        Decision::allow(warnings)
    } else {
        Decision::deny(format!(
            "{who}: {failed} of {} test(s) failed; it cannot become {desired} until they pass:\n{}",
            outcomes.len(),
            test_report(&outcomes)
        ))
    };
    d.ran_tests = true;
    d
}

fn delete_version_warnings(old: &PolicyVersion, env: &Env<'_>) -> Decision {
    let in_production = old.status.as_ref().and_then(|s| s.stage) == Some(Stage::Production);
    if !in_production && old.spec.stage != Some(Stage::Production) {
        // Only a version that is or may become production can change the gateway.
        return Decision::allow(Vec::new());
    }
    let policy = &old.spec.policy;
    let next = env
        .objects()
        .versions
        .iter()
        .filter(|v| {
            &v.spec.policy == policy
                && v.spec.version != old.spec.version
                && v.spec.stage == Some(Stage::Production)
        })
        .map(|v| v.spec.version)
        .max();
    let mut warnings = Vec::new();
    match (in_production, next) {
        (true, Some(n)) => warnings.push(format!(
            "{} is the production version of policy '{policy}'; version {n} takes over if it is eligible",
            label(old)
        )),
        (true, None) => warnings.push(format!(
            "{} is the production version of policy '{policy}' and no other version asks for production: the policy leaves the gateway and its attachments become unresolved",
            label(old)
        )),
        _ => {}
    }
    // Who else leaves (children without their parent, or this policy when its fallback waits).
    warnings.extend(leaving_warning(
        &format!("Deleting {}", label(old)),
        env.objects(),
        &with_version(env.objects(), old, None),
        env.catalog,
        (in_production && next.is_none()).then_some(policy.as_str()),
    ));
    Decision::allow(warnings)
}

/// Admission of a PolicyAttachment: always allowed; a warning when its policy has no
/// production version (GitOps tools apply folders in any order).
pub fn review_attachment(
    op: Operation,
    new: Option<&PolicyAttachment>,
    old: Option<&PolicyAttachment>,
    env: &Env<'_>,
) -> Decision {
    let (Operation::Create | Operation::Update, Some(new)) = (op, new) else {
        return Decision::allow(Vec::new());
    };
    if old.is_some_and(|o| o.spec == new.spec) {
        return Decision::allow(Vec::new());
    }
    let policy = &new.spec.policy;
    if let Some(why) = super::names::dns_subdomain_problem(policy) {
        return Decision::deny(format!(
            "PolicyAttachment {}/{}: spec.policy: {why}; name the Policy's metadata.name",
            new.metadata.namespace.clone().unwrap_or_default(),
            name(&new.metadata)
        ));
    }
    let found = env
        .objects()
        .policies
        .iter()
        .find(|p| &name(&p.metadata) == policy);
    let warning = match found {
        None => Some(format!(
            "Policy '{policy}' does not exist; the attachment stays unresolved (not in the gateway) until it exists with a production version"
        )),
        Some(p)
            if p.status
                .as_ref()
                .and_then(|s| s.production_version)
                .is_none() =>
        {
            Some(format!(
                "Policy '{policy}' has no production version; the attachment stays unresolved (not in the gateway) until it has one"
            ))
        }
        Some(_) => None,
    };
    Decision::allow(warning.into_iter().collect())
}

/// Admission of a Policy deletion: a warning saying what goes with it.
pub fn review_policy(op: Operation, old: Option<&Policy>, env: &Env<'_>) -> Decision {
    let (Operation::Delete, Some(old)) = (op, old) else {
        return Decision::allow(Vec::new());
    };
    let p = name(&old.metadata);
    let versions = env
        .objects()
        .versions
        .iter()
        .filter(|v| v.spec.policy == p)
        .count();
    let attachments = env
        .objects()
        .attachments
        .iter()
        .filter(|a| a.spec.policy == p)
        .count();
    let mut warnings = vec![format!(
        "deleting Policy '{p}' deletes its {versions} version(s) (LiteLLM's delete all versions); {attachments} attachment(s) to it become unresolved"
    )];
    warnings.extend(leaving_warning(
        &format!("Deleting Policy '{p}'"),
        env.objects(),
        &without_policy(env.objects(), &p),
        env.catalog,
        Some(&p),
    ));
    Decision::allow(warnings)
}

/// The lifecycle of a namespace without running tests: a recorded verdict for the same content
/// counts (`status.tests`), anything else counts as passing. Enough to see which policies a
/// deletion or a stage change takes out of production (references, not tests, decide that).
fn light_decisions(objects: &Objects, catalog: Option<&BTreeSet<String>>) -> Decisions {
    let inputs: Vec<VersionInput> = objects
        .versions
        .iter()
        .map(|v| {
            let hash = content_hash(&v.spec);
            let tests = match v.status.as_ref().and_then(|s| s.tests.as_ref()) {
                Some(t) if t.content_hash.as_deref() == Some(hash.as_str()) && t.failed > 0 => {
                    Err(format!("{} test(s) failed", t.failed))
                }
                _ => Ok(()),
            };
            VersionInput {
                name: name(&v.metadata),
                created: v
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                policy: v.spec.policy.clone(),
                version: v.spec.version,
                desired: v.spec.stage.unwrap_or_default(),
                previous: v.status.as_ref().and_then(|s| s.stage),
                content: checked_content(v).0,
                tests,
            }
        })
        .collect();
    let policies: BTreeSet<String> = objects.policies.iter().map(|p| name(&p.metadata)).collect();
    lifecycle::decide(&inputs, &policies, catalog)
}

/// The policies in production with `before` that are not with `after`, each with why (the
/// waiting reasons of its versions), sorted by name.
pub fn leaving_production(
    before: &Objects,
    after: &Objects,
    catalog: Option<&BTreeSet<String>>,
) -> Vec<(String, String)> {
    let was = light_decisions(before, catalog);
    let now = light_decisions(after, catalog);
    was.production
        .keys()
        .filter(|p| !now.production.contains_key(*p))
        .map(|p| {
            let why: Vec<String> = now
                .versions
                .iter()
                .filter(|d| &d.policy == p)
                .filter_map(|d| match &d.promotion {
                    Promotion::Waiting(w) => Some(format!("version {} waits: {w}", d.version)),
                    _ => None,
                })
                .collect();
            let why = if why.is_empty() {
                "no version asks for production".to_string()
            } else {
                why.join("; ")
            };
            (p.clone(), why)
        })
        .collect()
}

/// `'a'`, `'a' and 'b'`, `'a', 'b' and 'c'`.
fn quoted_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match q.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The admission warning naming every policy a change takes out of the gateway (None when it
/// takes none). `what` says what the change is ("Deleting Policy 'org-baseline'"); `skip` is a
/// policy the warning need not name (the one being deleted).
pub fn leaving_warning(
    what: &str,
    before: &Objects,
    after: &Objects,
    catalog: Option<&BTreeSet<String>>,
    skip: Option<&str>,
) -> Option<String> {
    let leaving: Vec<(String, String)> = leaving_production(before, after, catalog)
        .into_iter()
        .filter(|(p, _)| Some(p.as_str()) != skip)
        .collect();
    if leaving.is_empty() {
        return None;
    }
    let names: Vec<&str> = leaving.iter().map(|(p, _)| p.as_str()).collect();
    let inherit = leaving.iter().all(|(_, why)| why.contains("inherit"));
    let verb = if names.len() == 1 {
        "it inherits"
    } else {
        "they inherit"
    };
    let why: Vec<String> = leaving.iter().map(|(p, w)| format!("'{p}': {w}")).collect();
    Some(format!(
        "{what} takes {} out of the gateway{}: {}",
        quoted_list(&names),
        if inherit && what.starts_with("Deleting Policy ") {
            format!(" ({verb} from it)")
        } else {
            String::new()
        },
        why.join("; ")
    ))
}

/// The namespace without a Policy and its versions (what deleting it leads to).
fn without_policy(objects: &Objects, policy: &str) -> Objects {
    Objects {
        policies: objects
            .policies
            .iter()
            .filter(|p| name(&p.metadata) != policy)
            .cloned()
            .collect(),
        versions: objects
            .versions
            .iter()
            .filter(|v| v.spec.policy != policy)
            .cloned()
            .collect(),
        attachments: objects.attachments.clone(),
    }
}

/// The namespace with one version replaced (None: removed).
fn with_version(objects: &Objects, old: &PolicyVersion, new: Option<&PolicyVersion>) -> Objects {
    let me = name(&old.metadata);
    let mut versions: Vec<Arc<PolicyVersion>> = objects
        .versions
        .iter()
        .filter(|v| name(&v.metadata) != me)
        .cloned()
        .collect();
    if let Some(new) = new {
        versions.push(Arc::new(new.clone()));
    }
    Objects {
        policies: objects.policies.clone(),
        versions,
        attachments: objects.attachments.clone(),
    }
}

#[cfg(test)]
mod tests;
