//! `plan` (api.md §8): what changes at the gateway between two states of a namespace — which
//! versions enter, leave or replace production, which classes of requests gain or lose which
//! guardrails, and (with traffic) how many requests that is. Pure: both states arrive as
//! objects and their evaluations.

mod bits;
pub mod classes;
mod describe;
pub mod strings;
mod tags;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::admission::update_refusal;
use super::diff::compare;
use super::lifecycle::{Blocked, Promotion};
use super::model::{Attachment, MatchContext};
use super::namespace::{Evaluation, Objects};
use crate::api::Stage;

pub use classes::{ClassError, Limits, Partition, RequestClass, Side};
pub use traffic::{Messages, Traffic, Weighted};

/// One state of the namespace.
#[derive(Clone, Copy)]
pub struct State<'a> {
    pub objects: &'a Objects,
    pub eval: &'a Evaluation,
}

/// A version by policy and number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub policy: String,
    pub version: i64,
}

/// A policy whose production version changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replacing {
    pub policy: String,
    pub from: i64,
    pub to: i64,
    /// LiteLLM's compare of the two contents: the fields that differ.
    pub fields: Vec<String>,
}

/// A version that asks for production and would not get it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub policy: String,
    pub version: i64,
    pub reason: String,
}

/// A test that fails in the new state and did not in the base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailingTest {
    pub policy: String,
    pub version: i64,
    pub test: String,
    pub message: String,
}

/// Production changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Production {
    pub entering: Vec<Entry>,
    pub leaving: Vec<Entry>,
    pub replacing: Vec<Replacing>,
    pub waiting: Vec<Waiting>,
    pub newly_failing_tests: Vec<FailingTest>,
}

/// A request as api.md §7 writes one (absent values are null).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Request {
    pub team: Option<String>,
    pub key: Option<String>,
    pub model: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl From<&MatchContext> for Request {
    fn from(c: &MatchContext) -> Self {
        Request {
            team: c.team_alias.clone(),
            key: c.key_alias.clone(),
            model: c.model.clone(),
            tags: c.tags.clone(),
        }
    }
}

/// A class of requests whose effective guardrails change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    pub description: String,
    pub example: Request,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub policies_before: Vec<String>,
    pub policies_after: Vec<String>,
}

/// A class for which no request could be constructed exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unwitnessed {
    pub description: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// The requests part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    pub changed: Vec<Changed>,
    pub unchanged: usize,
    pub unwitnessed: Vec<Unwitnessed>,
}

/// A change the API server or the webhook would refuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub object: String,
    pub field: String,
    pub message: String,
}

/// The plan (api.md §8 `plan -o json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub namespace: String,
    pub production: Production,
    pub requests: Requests,
    pub refusals: Vec<Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
}

impl Plan {
    /// Whether anything reaches the gateway (`--detailed-exitcode` 2): production entering,
    /// leaving or replacing, or a class of requests that changes (witnessed or not).
    pub fn changes(&self) -> bool {
        let p = &self.production;
        !(p.entering.is_empty()
            && p.leaving.is_empty()
            && p.replacing.is_empty()
            && self.requests.changed.is_empty()
            && self.requests.unwitnessed.is_empty())
    }
}

fn sorted_difference(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

fn name(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

/// Production versions by policy: number and content.
fn production(s: State<'_>) -> BTreeMap<&str, (i64, usize)> {
    s.eval
        .decisions
        .production
        .iter()
        .map(|(p, &i)| (p.as_str(), (s.eval.decisions.versions[i].version, i)))
        .collect()
}

/// Production changes, waiting versions and newly failing tests.
pub fn production_changes(base: State<'_>, new: State<'_>) -> Production {
    let (b, n) = (production(base), production(new));
    let mut out = Production::default();
    for (p, &(v, i)) in &n {
        match b.get(p) {
            None => out.entering.push(Entry {
                policy: p.to_string(),
                version: v,
            }),
            Some(&(bv, bi)) => {
                let (bc, nc) = (
                    base.eval.versions[bi].content.as_ref(),
                    new.eval.versions[i].content.as_ref(),
                );
                let fields: Vec<String> = match (bc, nc) {
                    (Ok(x), Ok(y)) => compare(x, y).keys().map(|k| k.to_string()).collect(),
                    _ => Vec::new(),
                };
                if bv != v || !fields.is_empty() {
                    out.replacing.push(Replacing {
                        policy: p.to_string(),
                        from: bv,
                        to: v,
                        fields,
                    });
                }
            }
        }
    }
    for (p, &(v, _)) in &b {
        if !n.contains_key(p) {
            out.leaving.push(Entry {
                policy: p.to_string(),
                version: v,
            });
        }
    }
    // Versions asking for production that do not get it, and why.
    for (i, d) in new.eval.decisions.versions.iter().enumerate() {
        let asks = new.objects.versions[i].spec.stage == Some(Stage::Production);
        let reason = match (&d.promotion, &d.blocked) {
            (Promotion::Waiting(r), _) => Some(r.clone()),
            (_, Some(Blocked::Invalid(r))) => Some(format!("invalid: {r}")),
            (_, Some(Blocked::TestsFailed(r))) => Some(format!("tests fail: {r}")),
            (_, Some(Blocked::DuplicateVersion(o))) => {
                Some(format!("duplicate version: {o} counts instead"))
            }
            _ => None,
        };
        if let (true, Some(reason)) = (asks, reason) {
            out.waiting.push(Waiting {
                policy: d.policy.clone(),
                version: d.version,
                reason,
            });
        }
    }
    // Tests failing now that did not fail (or did not exist) in the base.
    let failing = |s: State<'_>| -> BTreeSet<(String, i64, String)> {
        s.eval
            .versions
            .iter()
            .enumerate()
            .flat_map(|(i, v)| {
                let spec = &s.objects.versions[i].spec;
                v.tests
                    .iter()
                    .flatten()
                    .filter(|t| !t.passed)
                    .map(|t| (spec.policy.clone(), spec.version, t.name.clone()))
            })
            .collect()
    };
    let before = failing(base);
    for (i, v) in new.eval.versions.iter().enumerate() {
        let spec = &new.objects.versions[i].spec;
        for t in v.tests.iter().flatten().filter(|t| !t.passed) {
            if !before.contains(&(spec.policy.clone(), spec.version, t.name.clone())) {
                out.newly_failing_tests.push(FailingTest {
                    policy: spec.policy.clone(),
                    version: spec.version,
                    test: t.name.clone(),
                    message: t.failures.join("; "),
                });
            }
        }
    }
    out
}

/// Changes the API server or the webhook would refuse: edits of versions that exist in the
/// base (api.md §3's update rules, the webhook's own function) and duplicate version numbers
/// among new or changed objects.
pub fn refusals(base: State<'_>, new: State<'_>) -> Vec<Refusal> {
    let old: BTreeMap<String, &crate::api::PolicyVersion> = base
        .objects
        .versions
        .iter()
        .map(|v| (name(&v.metadata), v.as_ref()))
        .collect();
    let mut out = Vec::new();
    for (i, v) in new.objects.versions.iter().enumerate() {
        let n = name(&v.metadata);
        let object = format!("PolicyVersion/{n}");
        let before = old.get(&n);
        if let Some(o) = before
            && let Some(r) = update_refusal(o, v)
        {
            out.push(Refusal {
                object: object.clone(),
                field: r.field.to_string(),
                message: r.message,
            });
        }
        let unchanged = before.is_some_and(|o| o.spec == v.spec);
        if let (false, Some(Blocked::DuplicateVersion(other))) =
            (unchanged, &new.eval.decisions.versions[i].blocked)
        {
            out.push(Refusal {
                object,
                field: "spec.version".into(),
                message: format!(
                    "version {} of policy '{}' already exists (PolicyVersion {other}); version numbers are unique per policy",
                    v.spec.version, v.spec.policy
                ),
            });
        }
    }
    out
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Classes(#[from] ClassError),
}

/// The plan from `base` to `new` (traffic: with `contexts`).
pub fn plan(
    namespace: &str,
    base: State<'_>,
    new: State<'_>,
    contexts: Option<&[Weighted]>,
    messages: Option<&Messages<'_>>,
    limits: Limits,
) -> Result<Plan, PlanError> {
    let (ba, na): (Vec<Attachment>, Vec<Attachment>) =
        (base.eval.attachment_list(), new.eval.attachment_list());
    let part = classes::partition(
        Side {
            attachments: &ba,
            production: &base.eval.production,
        },
        Side {
            attachments: &na,
            production: &new.eval.production,
        },
        limits,
    )?;
    let mut changed: Vec<Changed> = part
        .changed
        .into_iter()
        .filter_map(|c| {
            let example = c.example.as_ref().map(Request::from)?;
            Some(Changed {
                added: sorted_difference(&c.after, &c.before),
                removed: sorted_difference(&c.before, &c.after),
                description: c.description,
                example,
                before: c.before,
                after: c.after,
                policies_before: c.policies_before,
                policies_after: c.policies_after,
            })
        })
        .collect();
    // The most important first: most guardrails moved, then by description.
    changed.sort_by(|a, b| {
        (b.added.len() + b.removed.len())
            .cmp(&(a.added.len() + a.removed.len()))
            .then_with(|| a.description.cmp(&b.description))
    });
    let unwitnessed = part
        .unwitnessed
        .into_iter()
        .map(|c| Unwitnessed {
            added: sorted_difference(&c.after, &c.before),
            removed: sorted_difference(&c.before, &c.after),
            description: c.description,
            before: c.before,
            after: c.after,
        })
        .collect();
    let traffic = contexts.map(|w| {
        traffic::replay(
            (&ba, &base.eval.production),
            (&na, &new.eval.production),
            w,
            messages,
        )
    });
    Ok(Plan {
        namespace: namespace.to_string(),
        production: production_changes(base, new),
        requests: Requests {
            changed,
            unchanged: part.unchanged,
            unwitnessed,
        },
        refusals: refusals(base, new),
        traffic,
    })
}
