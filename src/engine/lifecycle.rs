//! Lifecycle decisions (api.md §3): from the versions of a namespace, each version's achieved
//! stage, which version of each policy is in production, who is superseded, and why.
//!
//! Production is a least fixpoint computed in topological order: a version counts when it asks
//! for Production, is published (valid and tested), is the highest such version whose
//! references are satisfied by the policies already in production (parent in production, chain
//! at most 100 deep, guardrails in the catalog), and its `inherit` cannot close a cycle through
//! the `inherit` of Production-desired versions.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Serialize;

use super::model::PolicyContent;
use super::validate::MAX_INHERITANCE_DEPTH;
use crate::api::Stage;

/// One version as the lifecycle sees it.
#[derive(Clone, Debug)]
pub struct VersionInput {
    /// metadata.name
    pub name: String,
    /// Ordering key for duplicates: creationTimestamp (RFC 3339 sorts as text), then name.
    pub created: String,
    pub policy: String,
    pub version: i64,
    pub desired: Stage,
    /// status.stage as last written (None on a fresh cluster).
    pub previous: Option<Stage>,
    /// The content, or why it is invalid (content errors keep a version in Draft).
    pub content: Result<PolicyContent, String>,
    /// `Ok` when the tests passed (or there are none), else a summary of the failures.
    pub tests: Result<(), String>,
}

/// Why a version is or is not in production.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message")]
pub enum Promotion {
    /// The desired stage is not Production.
    NotRequested,
    /// In production.
    Promoted,
    /// A higher version of the same policy is in production.
    Superseded(i64),
    /// Asks for Production, published, but a reference is missing.
    Waiting(String),
    /// Not published, so not considered (see `blocked`).
    NotPublished,
}

/// The decision for one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionDecision {
    pub name: String,
    pub policy: String,
    pub version: i64,
    /// Achieved stage.
    pub stage: Stage,
    pub promotion: Promotion,
    /// Set when another version of the policy took production from this one.
    pub superseded_by: Option<i64>,
    /// Why the version stays in Draft although it asks for more.
    pub blocked: Option<Blocked>,
}

/// Why a version cannot leave Draft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "message")]
pub enum Blocked {
    /// Another object has the same policy and version and counts instead.
    DuplicateVersion(String),
    /// The content is invalid.
    Invalid(String),
    /// The tests failed.
    TestsFailed(String),
}

/// Decisions for a namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decisions {
    /// One per input version, in input order.
    pub versions: Vec<VersionDecision>,
    /// Policy name → index (into `versions`) of its production version.
    pub production: BTreeMap<String, usize>,
}

impl Decisions {
    /// The production version number of a policy.
    pub fn production_version(&self, policy: &str) -> Option<i64> {
        self.production
            .get(policy)
            .map(|&i| self.versions[i].version)
    }
}

/// Compute the decisions. `policies` are the Policy objects that exist; `catalog` is the
/// guardrail catalog (None: no catalog configured, existence not checked).
pub fn decide(
    versions: &[VersionInput],
    policies: &BTreeSet<String>,
    catalog: Option<&BTreeSet<String>>,
) -> Decisions {
    // 1. Duplicates: the oldest object (creationTimestamp, then name) counts.
    let mut counting: HashMap<(&str, i64), usize> = HashMap::new();
    for (i, v) in versions.iter().enumerate() {
        counting
            .entry((v.policy.as_str(), v.version))
            .and_modify(|j| {
                let w = &versions[*j];
                if (v.created.as_str(), v.name.as_str()) < (w.created.as_str(), w.name.as_str()) {
                    *j = i;
                }
            })
            .or_insert(i);
    }

    // 2. Published: asks for Published or more, not a duplicate, valid, tested (or already
    //    published before: the stage never goes back).
    let mut decisions: Vec<VersionDecision> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let keeper = counting[&(v.policy.as_str(), v.version)];
            let blocked = if keeper != i {
                Some(Blocked::DuplicateVersion(format!(
                    "PolicyVersion '{}' already has version {} of policy '{}'; this object never leaves Draft. Delete it or give it an unused spec.version",
                    versions[keeper].name, v.version, v.policy
                )))
            } else if v.desired == Stage::Draft || matches!(v.previous, Some(Stage::Published | Stage::Production)) {
                None
            } else if let Err(e) = &v.content {
                Some(Blocked::Invalid(e.clone()))
            } else if let Err(e) = &v.tests {
                Some(Blocked::TestsFailed(e.clone()))
            } else {
                None
            };
            let published = v.desired != Stage::Draft && blocked.is_none();
            VersionDecision {
                name: v.name.clone(),
                policy: v.policy.clone(),
                version: v.version,
                stage: if published { Stage::Published } else { Stage::Draft },
                promotion: if v.desired != Stage::Production {
                    Promotion::NotRequested
                } else if published {
                    Promotion::Waiting(String::new())
                } else {
                    Promotion::NotPublished
                },
                superseded_by: None,
                blocked,
            }
        })
        .collect();

    // 3. The inherit graph of every Production-desired version, for the cycle rule.
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for v in versions.iter().filter(|v| v.desired == Stage::Production) {
        if let Ok(c) = &v.content
            && let Some(parent) = c.parent()
        {
            graph.entry(v.policy.as_str()).or_default().insert(parent);
        }
    }

    // Candidates per policy, highest version first; each with its parent (if any).
    let mut candidates: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, v) in versions.iter().enumerate() {
        if decisions[i].promotion == Promotion::Waiting(String::new()) {
            candidates.entry(v.policy.as_str()).or_default().push(i);
        }
    }
    for list in candidates.values_mut() {
        list.sort_by_key(|&i| std::cmp::Reverse(versions[i].version));
    }
    let mut waiting: HashMap<usize, String> = HashMap::new();
    let mut deps: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (&policy, list) in &candidates {
        for &i in list {
            let Ok(content) = &versions[i].content else {
                continue;
            };
            if let Some(parent) = content.parent() {
                if let Some(path) = path_between(&graph, parent, policy) {
                    waiting.insert(
                        i,
                        format!(
                            "inherit '{parent}' would close an inheritance cycle ({policy} -> {}); versions on a cycle never go to production",
                            path.join(" -> ")
                        ),
                    );
                } else {
                    deps.entry(policy).or_default().insert(parent);
                }
            }
        }
    }

    // 4. Topological order over the acyclic remainder (parents first).
    let mut nodes: BTreeSet<&str> = candidates.keys().copied().collect();
    for ps in deps.values() {
        nodes.extend(ps.iter().copied());
    }
    let mut indegree: BTreeMap<&str, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (&child, parents) in &deps {
        for &p in parents {
            *indegree.entry(child).or_default() += 1;
            children.entry(p).or_default().push(child);
        }
    }
    let mut queue: VecDeque<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut depth: HashMap<&str, i32> = HashMap::new();
    let mut production: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(policy) = queue.pop_front() {
        if let Some(list) = candidates.get(policy) {
            for &i in list {
                if waiting.contains_key(&i) {
                    continue;
                }
                let Ok(content) = &versions[i].content else {
                    continue;
                };
                match eligibility(content, policy, policies, catalog, &depth) {
                    Ok(d) => {
                        depth.insert(policy, d);
                        production.insert(policy.to_string(), i);
                        break;
                    }
                    Err(why) => {
                        waiting.insert(i, why);
                    }
                }
            }
        }
        for &child in children.get(policy).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(d) = indegree.get_mut(child) {
                *d -= 1;
                if *d == 0 {
                    queue.push_back(child);
                }
            }
        }
    }

    // 5. Stages, supersession and reasons.
    for (i, d) in decisions.iter_mut().enumerate() {
        let v = &versions[i];
        let prod = production.get(&v.policy).copied();
        if prod == Some(i) {
            d.stage = Stage::Production;
            d.promotion = Promotion::Promoted;
            continue;
        }
        let prod_version = prod.map(|j| versions[j].version);
        if d.stage != Stage::Draft
            && let Some(pv) = prod_version
            && (v.desired == Stage::Production || v.previous == Some(Stage::Production))
            && (pv > v.version || v.desired != Stage::Production)
        {
            d.superseded_by = Some(pv);
        }
        if let Promotion::Waiting(_) = d.promotion {
            d.promotion = match (prod_version, waiting.remove(&i)) {
                (Some(pv), _) if pv > v.version => Promotion::Superseded(pv),
                (_, Some(why)) => Promotion::Waiting(why),
                (_, None) => Promotion::Waiting("waiting for its references".into()),
            };
        }
    }
    Decisions {
        versions: decisions,
        production,
    }
}

/// Whether a version's references are satisfied by the production set so far; its chain depth.
fn eligibility(
    content: &PolicyContent,
    policy: &str,
    policies: &BTreeSet<String>,
    catalog: Option<&BTreeSet<String>>,
    depth: &HashMap<&str, i32>,
) -> Result<i32, String> {
    if !policies.contains(policy) {
        return Err(format!(
            "Policy '{policy}' does not exist in this namespace; create it"
        ));
    }
    let d = match content.parent() {
        None => 1,
        Some(parent) => match depth.get(parent) {
            None => {
                return Err(if policies.contains(parent) {
                    format!("inherit: policy '{parent}' has no production version yet")
                } else {
                    format!("inherit: policy '{parent}' does not exist")
                });
            }
            Some(pd) => pd + 1,
        },
    };
    if d > MAX_INHERITANCE_DEPTH {
        return Err(format!(
            "the inheritance chain would be {d} policies deep; LiteLLM allows at most {MAX_INHERITANCE_DEPTH}"
        ));
    }
    if let Some(catalog) = catalog {
        let missing = missing_from_catalog(content, catalog);
        if !missing.is_empty() {
            return Err(format!(
                "guardrails not in the guardrail catalog: {}",
                missing.join(", ")
            ));
        }
    }
    Ok(d)
}

/// The guardrails a version names (`guardrails.add` and pipeline steps) that the catalog lacks,
/// sorted and de-duplicated: the rule both the webhook's warning and promotion use.
pub fn missing_from_catalog<'a>(
    content: &'a PolicyContent,
    catalog: &BTreeSet<String>,
) -> Vec<&'a str> {
    let steps = content
        .pipeline
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.guardrail.as_str()));
    let missing: BTreeSet<&str> = content
        .add
        .iter()
        .map(String::as_str)
        .chain(steps)
        .filter(|g| !catalog.contains(*g))
        .collect();
    missing.into_iter().collect()
}

/// A path from `from` to `to` in the inherit graph (breadth first), both ends included.
fn path_between<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    from: &'a str,
    to: &'a str,
) -> Option<Vec<&'a str>> {
    let mut prev: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen: BTreeSet<&str> = BTreeSet::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n];
            let mut cur = n;
            while let Some(&p) = prev.get(cur) {
                path.push(p);
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for &next in graph.get(n).into_iter().flatten() {
            if seen.insert(next) {
                prev.insert(next, n);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(
        name: &str,
        policy: &str,
        version: i64,
        desired: Stage,
        inherit: Option<&str>,
    ) -> VersionInput {
        VersionInput {
            name: name.into(),
            created: format!("2026-01-01T00:00:{version:02}Z"),
            policy: policy.into(),
            version,
            desired,
            previous: None,
            content: Ok(PolicyContent {
                inherit: inherit.map(Into::into),
                add: vec!["g".into()],
                ..Default::default()
            }),
            tests: Ok(()),
        }
    }

    fn pols(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn highest_production_version_wins_and_supersedes() {
        let vs = vec![
            v("p-v1", "p", 1, Stage::Production, None),
            v("p-v2", "p", 2, Stage::Production, None),
            v("p-v3", "p", 3, Stage::Published, None),
            v("p-v4", "p", 4, Stage::Draft, None),
        ];
        let d = decide(&vs, &pols(&["p"]), None);
        assert_eq!(d.production_version("p"), Some(2));
        let stages: Vec<Stage> = d.versions.iter().map(|x| x.stage).collect();
        assert_eq!(
            stages,
            vec![
                Stage::Published,
                Stage::Production,
                Stage::Published,
                Stage::Draft
            ]
        );
        assert_eq!(d.versions[0].promotion, Promotion::Superseded(2));
        assert_eq!(d.versions[0].superseded_by, Some(2));
        assert_eq!(d.versions[2].promotion, Promotion::NotRequested);
    }

    #[test]
    fn rollback_by_lowering_the_desired_stage() {
        let mut vs = vec![
            v("p-v1", "p", 1, Stage::Production, None),
            v("p-v2", "p", 2, Stage::Published, None),
        ];
        vs[1].previous = Some(Stage::Production);
        let d = decide(&vs, &pols(&["p"]), None);
        assert_eq!(d.production_version("p"), Some(1));
        assert_eq!(d.versions[1].stage, Stage::Published);
        assert_eq!(d.versions[1].superseded_by, Some(1));
    }

    #[test]
    fn child_waits_for_parent_then_is_promoted() {
        let vs = vec![v("c-v1", "child", 1, Stage::Production, Some("parent"))];
        let d = decide(&vs, &pols(&["child", "parent"]), None);
        assert_eq!(d.production_version("child"), None);
        assert_eq!(d.versions[0].stage, Stage::Published);
        assert!(
            matches!(&d.versions[0].promotion, Promotion::Waiting(m) if m.contains("'parent' has no production"))
        );
        let mut vs2 = vs.clone();
        vs2.push(v("p-v1", "parent", 1, Stage::Production, None));
        let d = decide(&vs2, &pols(&["child", "parent"]), None);
        assert_eq!(d.production_version("child"), Some(1));
    }

    #[test]
    fn lower_version_holds_production_while_higher_waits() {
        let vs = vec![
            v("p-v1", "p", 1, Stage::Production, None),
            v("p-v2", "p", 2, Stage::Production, Some("q")),
        ];
        let d = decide(&vs, &pols(&["p", "q"]), None);
        assert_eq!(d.production_version("p"), Some(1));
        assert!(matches!(d.versions[1].promotion, Promotion::Waiting(_)));
        assert_eq!(d.versions[0].superseded_by, None);
    }

    #[test]
    fn cycles_never_enter_production_whatever_the_order() {
        let a = v("a-v1", "a", 1, Stage::Production, Some("b"));
        let b = v("b-v1", "b", 1, Stage::Production, Some("a"));
        let c = v("c-v1", "c", 1, Stage::Production, Some("c"));
        for vs in [vec![a.clone(), b.clone(), c.clone()], vec![c, b, a]] {
            let d = decide(&vs, &pols(&["a", "b", "c"]), None);
            assert!(d.production.is_empty());
            assert!(
                d.versions
                    .iter()
                    .all(|x| matches!(&x.promotion, Promotion::Waiting(m) if m.contains("cycle")))
            );
        }
    }

    #[test]
    fn duplicates_tests_and_invalid_content_stay_draft() {
        let mut dup = v("p-v1-copy", "p", 1, Stage::Production, None);
        dup.created = "2026-02-01T00:00:00Z".into();
        let mut failing = v("p-v2", "p", 2, Stage::Production, None);
        failing.tests = Err("1 of 2 tests failed".into());
        let mut invalid = v("p-v3", "p", 3, Stage::Published, None);
        invalid.content = Err("bad".into());
        let vs = vec![
            v("p-v1", "p", 1, Stage::Production, None),
            dup,
            failing,
            invalid,
        ];
        let d = decide(&vs, &pols(&["p"]), None);
        assert_eq!(d.production_version("p"), Some(1));
        assert!(matches!(
            d.versions[1].blocked,
            Some(Blocked::DuplicateVersion(_))
        ));
        assert_eq!(d.versions[1].stage, Stage::Draft);
        assert!(matches!(
            d.versions[2].blocked,
            Some(Blocked::TestsFailed(_))
        ));
        assert!(matches!(d.versions[3].blocked, Some(Blocked::Invalid(_))));
    }

    #[test]
    fn catalog_and_missing_policy_object_keep_it_waiting() {
        let vs = vec![v("p-v1", "p", 1, Stage::Production, None)];
        let catalog: BTreeSet<String> = pols(&["other"]);
        let d = decide(&vs, &pols(&["p"]), Some(&catalog));
        assert!(
            matches!(&d.versions[0].promotion, Promotion::Waiting(m) if m.contains("catalog: g"))
        );
        let d = decide(&vs, &pols(&[]), None);
        assert!(
            matches!(&d.versions[0].promotion, Promotion::Waiting(m) if m.contains("does not exist"))
        );
    }

    #[test]
    fn depth_limit() {
        let n = 101;
        let vs: Vec<VersionInput> = (0..n)
            .map(|i| {
                let parent = (i + 1 < n).then(|| format!("p{}", i + 1));
                v(
                    &format!("p{i}-v1"),
                    &format!("p{i}"),
                    1,
                    Stage::Production,
                    parent.as_deref(),
                )
            })
            .collect();
        let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let d = decide(&vs, &names.iter().cloned().collect(), None);
        assert_eq!(d.production.len(), 100);
        assert!(d.production_version("p0").is_none());
    }
}
