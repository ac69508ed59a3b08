//! Admission decisions (api.md §5): what the validating webhook answers, as pure functions over
//! the object, its old version and the namespace's other objects. Malformed content and
//! lifecycle violations deny; references that may only not exist *yet* give warnings.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::hash::content_hash;
use super::lifecycle::{self, Decisions, Promotion, VersionInput};
use super::namespace::{Objects, checked_content, desired_production};
use super::pipeline::Clock;
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
        if old.spec.policy != new.spec.policy {
            return Decision::deny(format!(
                "{who}: spec.policy is immutable ('{}' -> '{}'); create a new PolicyVersion for the other policy",
                old.spec.policy, new.spec.policy
            ));
        }
        if old.spec.version != new.spec.version {
            return Decision::deny(format!(
                "{who}: spec.version is immutable ({} -> {}); create a new PolicyVersion instead",
                old.spec.version, new.spec.version
            ));
        }
        let old_stage = old.spec.stage.unwrap_or_default();
        if old_stage != Stage::Draft && desired == Stage::Draft {
            return Decision::deny(format!(
                "{who}: spec.stage cannot go back to Draft (it is {old_stage}). Lower Production to Published to roll back, or create a new version to change the content"
            ));
        }
        if old_stage != Stage::Draft && content_hash(&old.spec) != content_hash(&new.spec) {
            return Decision::deny(format!(
                "{who}: Only draft versions can be updated. Create a new version to change published/production. (spec.stage was {old_stage}; only spec.stage may change)"
            ));
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
    let start = env.clock.seconds();
    let mut outcomes = Vec::with_capacity(tests.len());
    for t in tests {
        outcomes.extend(run_tests(
            &new.spec.policy,
            &content,
            std::slice::from_ref(t),
            &others,
            env.provider,
            env.clock,
        ));
        if env.clock.seconds() - start > env.budget_seconds {
            let mut d = Decision::deny(format!(
                "{who}: its tests took longer than the admission budget of {:.1}s after {} of {} test(s); make them smaller or run them with `guardrail-operator test`",
                env.budget_seconds,
                outcomes.len(),
                tests.len()
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
    let mut versions: Vec<PolicyVersion> = objects
        .versions
        .iter()
        .filter(|v| name(&v.metadata) != me)
        .cloned()
        .collect();
    if let Some(new) = new {
        versions.push(new.clone());
    }
    Objects {
        policies: objects.policies.clone(),
        versions,
        attachments: objects.attachments.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pipeline::{Clock, MonotonicClock};
    use crate::engine::testing::MocksOnly;
    use serde_json::json;

    fn policy(name: &str) -> Policy {
        serde_json::from_value(json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "Policy",
            "metadata": {"name": name, "namespace": "ns"}, "spec": {}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn version(policy: &str, v: i64, stage: &str, inherit: Option<&str>) -> PolicyVersion {
        let mut spec = json!({"policy": policy, "version": v, "stage": stage,
                              "guardrails": {"add": [format!("g-{policy}")]}});
        if let Some(p) = inherit {
            spec["inherit"] = json!(p);
        }
        serde_json::from_value(json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyVersion",
            "metadata": {"name": format!("{policy}-v{v}"), "namespace": "ns"},
            "spec": spec,
            "status": {"stage": if stage == "Production" { "Production" } else { stage }}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn review<T>(objects: Objects, f: impl FnOnce(&Env<'_>) -> T) -> T {
        let load = move || objects.clone();
        let env = Env {
            load_objects: &load,
            objects: std::cell::OnceCell::new(),
            catalog: None,
            provider: &MocksOnly,
            clock: &MonotonicClock::default(),
            budget_seconds: 5.0,
        };
        f(&env)
    }

    fn org() -> Objects {
        Objects {
            policies: ["org-baseline", "research", "claims", "other"]
                .map(policy)
                .to_vec(),
            versions: vec![
                version("org-baseline", 1, "Production", None),
                version("research", 1, "Production", Some("org-baseline")),
                version("claims", 2, "Production", Some("research")),
                version("other", 1, "Production", None),
            ],
            attachments: Vec::new(),
        }
    }

    /// What a review must answer: denied with a message containing `deny`, or allowed with
    /// exactly these warnings (each given by a fragment it contains).
    enum Expect {
        Deny(&'static str),
        Allow(&'static [&'static str]),
    }

    fn check(case: &str, d: &Decision, expect: &Expect) {
        match expect {
            Expect::Deny(fragment) => {
                assert!(
                    !d.allowed,
                    "{case}: allowed, expected a denial with {fragment:?}"
                );
                let m = d.message.as_deref().unwrap_or_default();
                assert!(m.contains(fragment), "{case}: {m:?} lacks {fragment:?}");
                assert!(
                    m.starts_with("PolicyVersion ns/") || m.starts_with("PolicyAttachment ns/"),
                    "{case}: the message names the object: {m:?}"
                );
            }
            Expect::Allow(fragments) => {
                assert!(d.allowed, "{case}: denied: {:?}", d.message);
                assert_eq!(
                    d.warnings.len(),
                    fragments.len(),
                    "{case}: {:?}",
                    d.warnings
                );
                for (w, f) in d.warnings.iter().zip(fragments.iter()) {
                    assert!(w.contains(f), "{case}: {w:?} lacks {f:?}");
                }
            }
        }
    }

    /// A version from YAML-ish JSON overrides of `version("app", 1, "Draft", None)`.
    fn v(patch: serde_json::Value) -> PolicyVersion {
        let mut o = serde_json::to_value(version("app", 1, "Draft", None))
            .unwrap_or_else(|e| panic!("{e}"));
        for (k, val) in patch.as_object().into_iter().flatten() {
            o["spec"][k] = val.clone();
        }
        if let Some(name) = patch.get("name") {
            o["metadata"]["name"] = name.clone();
            o["spec"].as_object_mut().map(|m| m.remove("name"));
        }
        serde_json::from_value(o).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Two tests against a one-step pipeline: the second expects `allow` while its mock fails.
    fn with_tests(second_passes: bool) -> serde_json::Value {
        json!({
            "guardrails": {"add": ["g"]},
            "pipeline": {"mode": "pre_call", "steps": [{"guardrail": "g", "onFail": "block"}]},
            "tests": [
                {"name": "clean", "messages": [{"role": "user", "content": "hi"}],
                 "mocks": {"g": "pass"}, "expect": {"action": "allow"}},
                {"name": "second", "messages": [{"role": "user", "content": "hi"}],
                 "mocks": {"g": if second_passes { "pass" } else { "fail" }},
                 "expect": {"action": "allow"}}
            ]
        })
    }

    /// The namespace of the version table: `app` (no production), `base` in production at
    /// v3, `app` v4 published.
    fn namespace() -> Objects {
        let mut base = policy("base");
        base.status = Some(crate::api::PolicyStatus {
            production_version: Some(3),
            ..Default::default()
        });
        Objects {
            policies: vec![policy("app"), base, policy("idle")],
            versions: vec![
                version("base", 3, "Production", None),
                v(json!({"version": 4, "stage": "Published", "name": "app-v4"})),
            ],
            attachments: Vec::new(),
        }
    }

    /// A clock where every reading is ten seconds after the last.
    struct Slow(std::cell::Cell<f64>);
    impl Clock for Slow {
        fn seconds(&self) -> f64 {
            self.0.set(self.0.get() + 10.0);
            self.0.get()
        }
    }

    #[test]
    fn every_version_rule_denies_or_warns_with_its_message() {
        let published = v(json!({"stage": "Published"}));
        let catalog: BTreeSet<String> = ["g", "g-app"].map(String::from).into();
        type Case = (
            &'static str,
            Operation,
            Option<PolicyVersion>,
            Option<PolicyVersion>,
            Expect,
        );
        let cases: Vec<Case> = vec![
            // Denials (api.md §5).
            (
                "policy is immutable",
                Operation::Update,
                Some(v(json!({"policy": "other"}))),
                Some(v(json!({}))),
                Expect::Deny(
                    "spec.policy is immutable ('app' -> 'other'); create a new PolicyVersion",
                ),
            ),
            (
                "version is immutable",
                Operation::Update,
                Some(v(json!({"version": 2}))),
                Some(v(json!({}))),
                Expect::Deny("spec.version is immutable (1 -> 2)"),
            ),
            (
                "no way back to Draft",
                Operation::Update,
                Some(v(json!({}))),
                Some(published.clone()),
                Expect::Deny(
                    "spec.stage cannot go back to Draft (it is Published). Lower Production to Published to roll back",
                ),
            ),
            (
                "only drafts are editable",
                Operation::Update,
                Some(v(json!({"stage": "Published", "description": "new"}))),
                Some(published.clone()),
                Expect::Deny(
                    "Only draft versions can be updated. Create a new version to change published/production.",
                ),
            ),
            (
                "content: inherit is a DNS name",
                Operation::Create,
                Some(v(json!({"inherit": "base..eu"}))),
                None,
                Expect::Deny("spec.inherit"),
            ),
            (
                "content: a pipeline step's guardrail is the policy's",
                Operation::Create,
                Some(v(
                    json!({"pipeline": {"mode": "pre_call", "steps": [{"guardrail": "nope"}]}}),
                )),
                None,
                Expect::Deny("nope"),
            ),
            (
                "version numbers are unique per policy",
                Operation::Create,
                Some(v(json!({"version": 4, "name": "app-v4-copy"}))),
                None,
                Expect::Deny(
                    "version 4 of policy 'app' already exists (PolicyVersion app-v4); version numbers are unique per policy: use spec.version 5",
                ),
            ),
            (
                "failing tests keep it out of Published",
                Operation::Create,
                Some(v({
                    let mut t = with_tests(false);
                    t["stage"] = json!("Published");
                    t
                })),
                None,
                Expect::Deny(
                    "1 of 2 test(s) failed; it cannot become Published until they pass:\n  test \"second\"",
                ),
            ),
            // Warnings: references that may arrive later.
            (
                "its Policy does not exist yet",
                Operation::Create,
                Some(v(json!({"policy": "later"}))),
                None,
                Expect::Allow(&[
                    "Policy 'later' does not exist yet; this version cannot reach production until it does",
                ]),
            ),
            (
                "parent not found",
                Operation::Create,
                Some(v(json!({"inherit": "ghost"}))),
                None,
                Expect::Allow(&[
                    "spec.inherit: Parent policy 'ghost' not found; promotion waits until it exists with a production version",
                ]),
            ),
            (
                "parent without production",
                Operation::Create,
                Some(v(json!({"inherit": "idle"}))),
                None,
                Expect::Allow(&[
                    "spec.inherit: policy 'idle' has no production version yet; promotion waits for it",
                ]),
            ),
            (
                "parent in production: no warning",
                Operation::Create,
                Some(v(json!({"inherit": "base"}))),
                None,
                Expect::Allow(&[]),
            ),
            (
                "guardrails missing from the catalog",
                Operation::Create,
                Some(v(json!({"guardrails": {"add": ["g", "h", "i"]}}))),
                None,
                Expect::Allow(&[
                    "guardrails not in the guardrail catalog: h, i; promotion waits until they are added",
                ]),
            ),
            // Allowed quietly.
            (
                "an unchanged spec costs nothing",
                Operation::Update,
                Some(published.clone()),
                Some(published.clone()),
                Expect::Allow(&[]),
            ),
            (
                "a draft may change",
                Operation::Update,
                Some(v(json!({"description": "x"}))),
                Some(v(json!({}))),
                Expect::Allow(&[]),
            ),
            (
                "promotion is a stage change only",
                Operation::Update,
                Some(v(json!({"stage": "Production"}))),
                Some(published.clone()),
                Expect::Allow(&[]),
            ),
            (
                "passing tests",
                Operation::Create,
                Some(v({
                    let mut t = with_tests(true);
                    t["stage"] = json!("Production");
                    t
                })),
                None,
                Expect::Allow(&[]),
            ),
            (
                "drafts run no tests",
                Operation::Create,
                Some(v(with_tests(false))),
                None,
                Expect::Allow(&[]),
            ),
            (
                "deleting a draft",
                Operation::Delete,
                None,
                Some(v(json!({}))),
                Expect::Allow(&[]),
            ),
        ];
        for (case, op, new, old, expect) in &cases {
            let load = namespace;
            let env = Env {
                load_objects: &load,
                objects: std::cell::OnceCell::new(),
                catalog: Some(&catalog),
                provider: &MocksOnly,
                clock: &MonotonicClock::default(),
                budget_seconds: 5.0,
            };
            let d = review_version(*op, new.as_ref(), old.as_ref(), &env);
            check(case, &d, expect);
        }
    }

    #[test]
    fn tests_over_the_budget_deny_and_tested_content_is_not_run_again() {
        let mut new = v(with_tests(true));
        new.spec.stage = Some(Stage::Production);
        let load = namespace;
        let slow = Slow(std::cell::Cell::new(0.0));
        let env = Env {
            load_objects: &load,
            objects: std::cell::OnceCell::new(),
            catalog: None,
            provider: &MocksOnly,
            clock: &slow,
            budget_seconds: 5.0,
        };
        let d = review_version(Operation::Create, Some(&new), None, &env);
        check(
            "budget",
            &d,
            &Expect::Deny(
                "its tests took longer than the admission budget of 5.0s after 1 of 2 test(s)",
            ),
        );
        assert!(d.ran_tests);
        // The same content with a passing record in status: no run, even on a slow clock.
        new.status = Some(crate::api::PolicyVersionStatus {
            tests: Some(crate::api::TestsSummary {
                content_hash: Some(content_hash(&new.spec)),
                passed: 2,
                failed: 0,
                ..Default::default()
            }),
            ..Default::default()
        });
        let d = review_version(Operation::Create, Some(&new), None, &env);
        check("recorded", &d, &Expect::Allow(&[]));
        assert!(!d.ran_tests);
    }

    #[test]
    fn every_attachment_and_policy_rule_with_its_message() {
        let att = |policy: &str| -> PolicyAttachment {
            serde_json::from_value(json!({
                "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyAttachment",
                "metadata": {"name": "a", "namespace": "ns"}, "spec": {"policy": policy, "scope": "*"}
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        type Case = (
            &'static str,
            Operation,
            Option<PolicyAttachment>,
            Option<PolicyAttachment>,
            Expect,
        );
        let cases: Vec<Case> = vec![
            (
                "not a DNS name",
                Operation::Create,
                Some(att("App")),
                None,
                Expect::Deny(
                    "PolicyAttachment ns/a: spec.policy: \"App\" is not a DNS-1123 subdomain",
                ),
            ),
            (
                "no such policy",
                Operation::Create,
                Some(att("ghost")),
                None,
                Expect::Allow(&[
                    "Policy 'ghost' does not exist; the attachment stays unresolved (not in the gateway) until it exists with a production version",
                ]),
            ),
            (
                "no production version",
                Operation::Create,
                Some(att("idle")),
                None,
                Expect::Allow(&[
                    "Policy 'idle' has no production version; the attachment stays unresolved",
                ]),
            ),
            (
                "in production",
                Operation::Update,
                Some(att("base")),
                Some(att("idle")),
                Expect::Allow(&[]),
            ),
            (
                "unchanged",
                Operation::Update,
                Some(att("ghost")),
                Some(att("ghost")),
                Expect::Allow(&[]),
            ),
            (
                "deleting",
                Operation::Delete,
                None,
                Some(att("ghost")),
                Expect::Allow(&[]),
            ),
        ];
        for (case, op, new, old, expect) in &cases {
            let d = review(namespace(), |env| {
                review_attachment(*op, new.as_ref(), old.as_ref(), env)
            });
            check(case, &d, expect);
        }
        let d = review(namespace(), |env| {
            review_policy(Operation::Delete, Some(&policy("app")), env)
        });
        check(
            "delete policy",
            &d,
            &Expect::Allow(&[
                "deleting Policy 'app' deletes its 1 version(s) (LiteLLM's delete all versions); 0 attachment(s) to it become unresolved",
            ]),
        );
        let d = review(namespace(), |env| {
            review_policy(Operation::Update, Some(&policy("app")), env)
        });
        check("update policy", &d, &Expect::Allow(&[]));
    }

    #[test]
    fn deleting_a_production_version_says_who_takes_over() {
        let mut objects = namespace();
        objects
            .versions
            .push(version("base", 5, "Production", None));
        let old = objects.versions[0].clone();
        let d = review(objects, |env| {
            review_version(Operation::Delete, None, Some(&old), env)
        });
        check(
            "next",
            &d,
            &Expect::Allow(&[
                "PolicyVersion ns/base-v3 is the production version of policy 'base'; version 5 takes over if it is eligible",
            ]),
        );
        let d = review(namespace(), |env| {
            review_version(Operation::Delete, None, Some(&old), env)
        });
        check(
            "last",
            &d,
            &Expect::Allow(&[
                "PolicyVersion ns/base-v3 is the production version of policy 'base' and no other version asks for production: the policy leaves the gateway and its attachments become unresolved",
            ]),
        );
    }

    #[test]
    fn deleting_a_parent_names_every_policy_that_leaves_the_gateway() {
        let d = review(org(), |env| {
            review_policy(Operation::Delete, Some(&policy("org-baseline")), env)
        });
        assert!(d.allowed);
        let w = d.warnings.join("\n");
        assert!(
            w.contains("Deleting Policy 'org-baseline' takes 'claims' and 'research' out of the gateway (they inherit from it)"),
            "{w}"
        );
        assert!(
            w.contains("inherit: policy 'org-baseline' does not exist"),
            "{w}"
        );
        assert!(!w.contains("'other'"), "{w}");
        // A policy nobody inherits from: only the usual warning.
        let d = review(org(), |env| {
            review_policy(Operation::Delete, Some(&policy("other")), env)
        });
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    }

    #[test]
    fn a_rollback_whose_fallback_waits_warns_that_the_policy_leaves() {
        let mut objects = Objects {
            policies: ["airline", "hub"].map(policy).to_vec(),
            versions: vec![
                version("airline", 5, "Production", None),
                version("airline", 9, "Production", Some("hub")),
                version("hub", 1, "Draft", None),
            ],
            attachments: Vec::new(),
        };
        objects.versions[1].status = None;
        let old = objects.versions[0].clone();
        let mut new = old.clone();
        new.spec.stage = Some(Stage::Published);
        let d = review(objects.clone(), |env| {
            review_version(Operation::Update, Some(&new), Some(&old), env)
        });
        assert!(d.allowed, "{:?}", d.message);
        let w = d.warnings.join("\n");
        assert!(
            w.contains("Changing spec.stage of PolicyVersion ns/airline-v5 from Production to Published takes 'airline' out of the gateway: 'airline': version 9 waits: inherit: policy 'hub' has no production version yet"),
            "{w}"
        );
        // Deleting it says the same; raising hub's version first would keep airline in.
        let d = review(objects.clone(), |env| {
            review_version(Operation::Delete, None, Some(&old), env)
        });
        let w = d.warnings.join("\n");
        assert!(w.contains("version 9 takes over if it is eligible"), "{w}");
        assert!(
            w.contains("Deleting PolicyVersion ns/airline-v5 takes 'airline' out of the gateway"),
            "{w}"
        );
        objects.versions[2] = version("hub", 1, "Production", None);
        let d = review(objects, |env| {
            review_version(Operation::Update, Some(&new), Some(&old), env)
        });
        assert!(
            d.warnings.iter().all(|w| !w.contains("out of the gateway")),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn an_attachment_to_a_name_with_an_empty_label_is_denied() {
        let a: PolicyAttachment = serde_json::from_value(json!({
            "apiVersion": "guardrails.dev/v1alpha1", "kind": "PolicyAttachment",
            "metadata": {"name": "a", "namespace": "ns"}, "spec": {"policy": "app..eu", "scope": "*"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let d = review(org(), |env| {
            review_attachment(Operation::Create, Some(&a), None, env)
        });
        assert!(!d.allowed);
        let m = d.message.unwrap_or_default();
        assert!(
            m.contains("spec.policy: \"app..eu\" is not a DNS-1123 subdomain"),
            "{m}"
        );
        assert!(m.contains("empty label"), "{m}");
    }
}
