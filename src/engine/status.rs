//! Desired status of every object from an evaluation (api.md §2, §6): kstatus-compatible
//! conditions whose `lastTransitionTime` moves only when the status flips, stage timestamps set
//! once per transition, and the events a change deserves. Pure: `now` is passed in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::lifecycle::{Blocked, Promotion, VersionDecision};
use super::namespace::{EvaluatedVersion, Evaluation};
use super::testing::TestOutcome;
use crate::api::conditions::{reasons, *};
use crate::api::{
    Policy, PolicyAttachment, PolicyAttachmentStatus, PolicyStatus, PolicyVersion,
    PolicyVersionStatus, PolicyVersionSummary, Stage, TestResult, TestStepResult, TestsSummary,
};

/// A condition to set, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

pub fn cond(
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Cond {
    Cond {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

/// Build the condition list, keeping `lastTransitionTime` of conditions whose status did not
/// change. Conditions not listed are dropped.
pub fn merge_conditions(
    previous: &[Condition],
    wanted: Vec<Cond>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = wanted
        .into_iter()
        .map(|c| {
            let status = Word::new(if c.status { "True" } else { "False" });
            let last = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: Word::new(c.type_),
                status,
                reason: Word::new(c.reason),
                message: c.message,
                observed_generation: generation,
                last_transition_time: last,
            }
        })
        .collect();
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Whether two condition lists differ other than in `lastTransitionTime`.
pub fn conditions_differ(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort();
    kb.sort();
    ka != kb
}

/// Whether a new status differs from the current one other than in condition timestamps
/// (what makes a write worth doing).
pub fn changed_ignoring_times<T: Clone + PartialEq>(
    old: Option<&T>,
    new: &T,
    conditions: impl Fn(&mut T) -> &mut Vec<Condition>,
) -> bool {
    let Some(old) = old else { return true };
    let (mut a, mut b) = (old.clone(), new.clone());
    let (ca, cb) = (
        std::mem::take(conditions(&mut a)),
        std::mem::take(conditions(&mut b)),
    );
    conditions_differ(&ca, &cb) || a != b
}

/// An event the controller should publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

fn tests_summary(outcomes: &[TestOutcome], hash: &str) -> TestsSummary {
    let passed = outcomes.iter().filter(|t| t.passed).count() as i64;
    let failed = outcomes.len() as i64 - passed;
    TestsSummary {
        passed,
        failed,
        summary: Some(format!("{passed}/{}", outcomes.len())),
        content_hash: Some(hash.to_string()),
        results: outcomes
            .iter()
            .map(|t| TestResult {
                name: t.name.clone(),
                passed: t.passed,
                action: t.action,
                blocked_by: t.blocked_by.clone(),
                message: t.message.clone(),
                failure: (!t.failures.is_empty()).then(|| t.failures.join("; ")),
                steps: t
                    .steps
                    .iter()
                    .map(|s| TestStepResult {
                        guardrail: s.guardrail.clone(),
                        outcome: s.outcome,
                        action: s.action,
                        duration_seconds: s.duration_seconds,
                        detail: s.detail.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The desired status of a PolicyVersion and the events its change deserves.
pub fn version_status(
    v: &PolicyVersion,
    ev: &EvaluatedVersion,
    d: &VersionDecision,
    now: &Time,
) -> (PolicyVersionStatus, Vec<Event>) {
    let prev = v.status.clone().unwrap_or_default();
    let generation = v.metadata.generation;
    let prev_stage = prev.stage.unwrap_or(Stage::Draft);
    let mut events = Vec::new();

    let tests = match &ev.tests {
        Some(outcomes) => Some(tests_summary(outcomes, &ev.content_hash)),
        None => prev
            .tests
            .clone()
            .filter(|t| t.content_hash.as_deref() == Some(ev.content_hash.as_str())),
    };

    let mut conds = Vec::new();
    let desired = v.spec.stage.unwrap_or_default();
    let (ready, ready_reason, ready_msg, stalled): (bool, &str, String, Option<(&str, String)>) =
        match &d.blocked {
            Some(Blocked::DuplicateVersion(m)) => (
                false,
                reasons::DUPLICATE_VERSION,
                m.clone(),
                Some((reasons::DUPLICATE_VERSION, m.clone())),
            ),
            Some(Blocked::Invalid(m)) => (
                false,
                reasons::INVALID,
                m.clone(),
                Some((reasons::INVALID, m.clone())),
            ),
            Some(Blocked::TestsFailed(m)) => (
                false,
                reasons::TESTS_FAILED,
                m.clone(),
                Some((reasons::TESTS_FAILED, m.clone())),
            ),
            None => match &d.promotion {
                Promotion::Waiting(m) => (
                    false,
                    reasons::WAITING_FOR_REFERENCES,
                    format!("Published; promotion waits: {m}"),
                    None,
                ),
                Promotion::Promoted => (
                    true,
                    reasons::RECONCILED,
                    format!(
                        "version {} of policy '{}' is in production",
                        d.version, d.policy
                    ),
                    None,
                ),
                Promotion::Superseded(by) => (
                    true,
                    reasons::SUPERSEDED,
                    format!("Published; version {by} is in production"),
                    None,
                ),
                Promotion::NotRequested | Promotion::NotPublished => (
                    true,
                    reasons::RECONCILED,
                    format!("{} as requested", d.stage),
                    None,
                ),
            },
        };
    conds.push(cond(READY, ready, ready_reason, ready_msg));
    if let Some((reason, msg)) = stalled {
        conds.push(cond(STALLED, true, reason, msg));
    }
    if !ready && d.blocked.is_none() {
        conds.push(cond(
            RECONCILING,
            true,
            reasons::WAITING_FOR_REFERENCES,
            "waiting for the references named in Ready",
        ));
    }
    match (&tests, &ev.tests) {
        (Some(t), _) if t.failed > 0 => conds.push(cond(
            TESTED,
            false,
            reasons::TESTS_FAILED,
            format!("{} of {} test(s) failed", t.failed, t.passed + t.failed),
        )),
        (Some(t), _) if t.passed == 0 => conds.push(cond(
            TESTED,
            true,
            reasons::NO_TESTS,
            "the version has no tests",
        )),
        (Some(t), _) => conds.push(cond(
            TESTED,
            true,
            reasons::TESTS_PASSED,
            format!("{} test(s) passed", t.passed),
        )),
        (None, _) => {}
    }
    conds.push(match &d.promotion {
        Promotion::Promoted => cond(PROMOTED, true, reasons::PROMOTED, "in production"),
        Promotion::Superseded(by) => cond(
            PROMOTED,
            false,
            reasons::SUPERSEDED,
            format!("version {by} is in production"),
        ),
        Promotion::Waiting(m) => cond(PROMOTED, false, reasons::WAITING_FOR_REFERENCES, m.clone()),
        Promotion::NotRequested => cond(
            PROMOTED,
            false,
            reasons::NOT_REQUESTED,
            format!("spec.stage is {desired}"),
        ),
        Promotion::NotPublished => cond(
            PROMOTED,
            false,
            reasons::NOT_REQUESTED,
            "the version has not been published",
        ),
    });

    let stage = d.stage;
    let mut status = PolicyVersionStatus {
        observed_generation: generation,
        stage: Some(stage),
        content_hash: Some(ev.content_hash.clone()),
        published_at: prev.published_at.clone(),
        production_at: prev.production_at.clone(),
        superseded_at: prev.superseded_at.clone(),
        superseded_by: d.superseded_by.or(if stage == Stage::Production {
            None
        } else {
            prev.superseded_by
        }),
        tests,
        conditions: merge_conditions(&prev.conditions, conds, generation, now),
    };
    if stage != Stage::Draft && status.published_at.is_none() {
        status.published_at = Some(now.clone());
    }
    if stage == Stage::Production {
        status.superseded_by = None;
        if prev_stage != Stage::Production {
            status.production_at = Some(now.clone());
        }
    }
    if prev_stage == Stage::Production && stage != Stage::Production {
        status.superseded_at = Some(now.clone());
        events.push(Event {
            warning: false,
            reason: reasons::SUPERSEDED,
            note: match d.superseded_by {
                Some(by) => format!(
                    "left production: version {by} of policy '{}' took over",
                    d.policy
                ),
                None => format!(
                    "left production; policy '{}' has no other production version",
                    d.policy
                ),
            },
        });
    }
    if stage != prev_stage && stage != Stage::Draft {
        events.push(Event {
            warning: false,
            reason: if stage == Stage::Production {
                reasons::PROMOTED
            } else {
                "Published"
            },
            note: format!("stage {prev_stage} -> {stage}"),
        });
    }
    if let Some(Blocked::TestsFailed(m)) = &d.blocked {
        let was_failing = prev
            .conditions
            .iter()
            .any(|c| c.type_ == TESTED && c.status == "False")
            && prev.content_hash.as_deref() == Some(ev.content_hash.as_str());
        if !was_failing {
            events.push(Event {
                warning: true,
                reason: reasons::TESTS_FAILED,
                note: m.clone(),
            });
        }
    }
    (status, events)
}

/// Whether a new version status differs from the current one in anything but timestamps that
/// were carried over.
pub fn version_status_changed(
    old: Option<&PolicyVersionStatus>,
    new: &PolicyVersionStatus,
) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &PolicyVersionStatus| {
        let mut s = s.clone();
        s.conditions = Vec::new();
        if let Some(t) = &mut s.tests {
            for r in &mut t.results {
                for st in &mut r.steps {
                    st.duration_seconds = 0.0;
                }
            }
        }
        s
    };
    strip(old) != strip(new) || conditions_differ(&old.conditions, &new.conditions)
}

/// The desired status of a Policy. `bundle_problem` is set when the namespace bundle was
/// rejected because of this policy.
pub fn policy_status(
    p: &Policy,
    eval: &Evaluation,
    versions: &[std::sync::Arc<PolicyVersion>],
    bundle_problem: Option<&str>,
    extra: &[Cond],
    now: &Time,
) -> PolicyStatus {
    let name = p.metadata.name.clone().unwrap_or_default();
    let prev = p.status.clone().unwrap_or_default();
    let mut list: Vec<PolicyVersionSummary> = eval
        .decisions
        .versions
        .iter()
        .zip(versions)
        .filter(|(d, _)| d.policy == name)
        .map(|(d, v)| PolicyVersionSummary {
            name: v.metadata.name.clone().unwrap_or_default(),
            version: d.version,
            stage: d.stage,
        })
        .collect();
    list.sort_by(|a, b| b.version.cmp(&a.version).then(a.name.cmp(&b.name)));
    let production = eval.decisions.production_version(&name);
    let resolved = eval
        .production
        .contains_key(&name)
        .then(|| super::inherit::resolve_policy(&name, &eval.production, None));
    let wants_production = eval
        .decisions
        .versions
        .iter()
        .any(|d| d.policy == name && d.promotion != Promotion::NotRequested);
    let mut conds = Vec::new();
    if let Some(problem) = bundle_problem {
        conds.push(cond(READY, false, reasons::BUNDLE_REJECTED, problem));
        conds.push(cond(STALLED, true, reasons::BUNDLE_REJECTED, problem));
    } else if let Some(v) = production {
        conds.push(cond(
            READY,
            true,
            reasons::RECONCILED,
            format!("version {v} is in production"),
        ));
    } else if wants_production {
        let why: Vec<String> = eval
            .decisions
            .versions
            .iter()
            .filter(|d| d.policy == name)
            .filter_map(|d| match (&d.promotion, &d.blocked) {
                (Promotion::Waiting(m), _) => Some(format!("version {}: {m}", d.version)),
                (_, Some(Blocked::TestsFailed(m))) => Some(format!("version {}: {m}", d.version)),
                (_, Some(Blocked::Invalid(m))) => {
                    Some(format!("version {}: invalid: {m}", d.version))
                }
                _ => None,
            })
            .collect();
        if let Some(broken) = reference_broken(&name, &prev, eval) {
            // It was in production and left because a reference of that version broke: the
            // gateway lost it, which a person must know (kstatus: Failed), not a quiet wait.
            conds.push(cond(
                READY,
                false,
                reasons::REFERENCE_BROKEN,
                broken.clone(),
            ));
            conds.push(cond(STALLED, true, reasons::REFERENCE_BROKEN, broken));
            conds.extend(extra.iter().cloned());
            return PolicyStatus {
                observed_generation: p.metadata.generation,
                production_version: None,
                latest_version: list.iter().map(|v| v.version).max(),
                versions: list,
                resolved_guardrails: Vec::new(),
                inheritance_chain: Vec::new(),
                conditions: merge_conditions(&prev.conditions, conds, p.metadata.generation, now),
            };
        }
        conds.push(cond(
            READY,
            false,
            reasons::NO_PRODUCTION_VERSION,
            format!("no version is in production: {}", why.join("; ")),
        ));
        // Waiting for references may resolve by itself; versions blocked by failed tests or
        // invalid content need a person (kstatus: Failed, not InProgress forever).
        let any_waiting = eval
            .decisions
            .versions
            .iter()
            .any(|d| d.policy == name && matches!(d.promotion, Promotion::Waiting(_)));
        if any_waiting {
            conds.push(cond(
                RECONCILING,
                true,
                reasons::NO_PRODUCTION_VERSION,
                "waiting for a version to become eligible",
            ));
        } else {
            conds.push(cond(
                STALLED,
                true,
                reasons::NO_PRODUCTION_VERSION,
                format!(
                    "no version can reach production without a change: {}",
                    why.join("; ")
                ),
            ));
        }
    } else {
        conds.push(cond(
            READY,
            true,
            reasons::RECONCILED,
            "no version asks for production",
        ));
    }
    conds.extend(extra.iter().cloned());
    PolicyStatus {
        observed_generation: p.metadata.generation,
        production_version: production,
        latest_version: list.iter().map(|v| v.version).max(),
        versions: list,
        resolved_guardrails: resolved
            .as_ref()
            .map(|r| r.guardrails.clone())
            .unwrap_or_default(),
        inheritance_chain: resolved.map(|r| r.inheritance_chain).unwrap_or_default(),
        conditions: merge_conditions(&prev.conditions, conds, p.metadata.generation, now),
    }
}

/// Why a policy with no production version left the gateway, when a broken reference took it
/// out: the version that was in production (per the previous status) still asks for production
/// but now waits for a reference. Stays so (from the previous `ReferenceBroken` condition)
/// while the policy has a waiting version and none in production.
pub fn reference_broken(name: &str, prev: &PolicyStatus, eval: &Evaluation) -> Option<String> {
    let waiting = |version: Option<i64>| {
        eval.decisions
            .versions
            .iter()
            .filter(|d| d.policy == name && version.is_none_or(|v| d.version == v))
            .find_map(|d| match &d.promotion {
                Promotion::Waiting(why) => Some((d.version, why.clone())),
                _ => None,
            })
    };
    let was_broken = prev
        .conditions
        .iter()
        .any(|c| c.type_ == STALLED && c.status == "True" && c.reason == reasons::REFERENCE_BROKEN);
    let (version, why) = match prev.production_version {
        Some(v) => waiting(Some(v))?,
        None if was_broken => waiting(None)?,
        None => return None,
    };
    Some(format!(
        "policy '{name}' left the gateway: version {version} was in production and now waits: {why}"
    ))
}

/// The desired status of a PolicyAttachment.
pub fn attachment_status(
    a: &PolicyAttachment,
    eval: &Evaluation,
    policy_exists: bool,
    now: &Time,
) -> PolicyAttachmentStatus {
    let prev = a.status.clone().unwrap_or_default();
    let policy = &a.spec.policy;
    let production = eval.decisions.production_version(policy);
    let conds = if !policy_exists {
        let m = format!(
            "Policy '{policy}' does not exist in this namespace; the attachment is not written to the gateway until it exists with a production version"
        );
        vec![
            cond(READY, false, reasons::POLICY_NOT_FOUND, m.clone()),
            cond(STALLED, true, reasons::POLICY_NOT_FOUND, m),
        ]
    } else if production.is_none() {
        vec![
            cond(
                READY,
                false,
                reasons::NO_PRODUCTION_VERSION,
                format!(
                    "Policy '{policy}' has no production version yet; the attachment is not written to the gateway"
                ),
            ),
            cond(
                RECONCILING,
                true,
                reasons::NO_PRODUCTION_VERSION,
                "waiting for the policy's production version",
            ),
        ]
    } else {
        vec![cond(
            READY,
            true,
            reasons::RECONCILED,
            format!(
                "attached to version {} of policy '{policy}'",
                production.unwrap_or_default()
            ),
        )]
    };
    PolicyAttachmentStatus {
        observed_generation: a.metadata.generation,
        production_version: production,
        resolved_guardrails: if eval.production.contains_key(policy) {
            super::inherit::resolve_policy(policy, &eval.production, None).guardrails
        } else {
            Vec::new()
        },
        conditions: merge_conditions(&prev.conditions, conds, a.metadata.generation, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn last_transition_time_moves_only_on_a_flip() {
        let first = merge_conditions(
            &[],
            vec![cond(READY, false, "A", "m")],
            Some(1),
            &t("2026-01-01T00:00:00Z"),
        );
        let same = merge_conditions(
            &first,
            vec![cond(READY, false, "B", "other")],
            Some(2),
            &t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(same[0].last_transition_time, t("2026-01-01T00:00:00Z"));
        let flipped = merge_conditions(
            &same,
            vec![cond(READY, true, "C", "ok")],
            Some(2),
            &t("2026-01-03T00:00:00Z"),
        );
        assert_eq!(flipped[0].last_transition_time, t("2026-01-03T00:00:00Z"));
        assert!(!conditions_differ(
            &first,
            &merge_conditions(
                &first,
                vec![cond(READY, false, "A", "m")],
                Some(1),
                &t("2030-01-01T00:00:00Z")
            )
        ));
    }
}
