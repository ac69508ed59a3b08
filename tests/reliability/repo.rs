//! A seeded policy repository and the changes a team makes to it, kept as a model so each state
//! can be written out (for `kubectl apply` and for `guardrail-operator render`).
//!
//! Changes respect the lifecycle rules (content only changes in Draft, nothing returns to Draft)
//! and never break a reference: leaves inherit only from base policies, which always keep a
//! production version. So the bundle is a function of the repository state alone, and every
//! bundle the operator writes must equal `render` of a state it was given.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;

#[derive(Clone, Debug)]
pub struct Version {
    pub stage: &'static str,
    pub inherit: Option<String>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    pub model: Option<String>,
}

#[derive(Clone, Debug)]
pub struct PolicyModel {
    pub base: bool,
    pub versions: BTreeMap<i64, Version>,
}

#[derive(Clone, Debug, Default)]
pub struct Repo {
    pub policies: BTreeMap<String, PolicyModel>,
    /// name → spec lines after `policy:`
    pub attachments: BTreeMap<String, (String, String)>,
    next_id: usize,
}

/// One change to apply: YAML documents to apply, objects to delete (`kind/name`).
#[derive(Default, Debug)]
pub struct Change {
    pub apply: Vec<(String, Option<(String, i64)>)>,
    pub delete: Vec<String>,
}

const GUARDRAILS: usize = 30;

fn guardrails(rng: &mut StdRng, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|_| format!("g{}", rng.random_range(0..GUARDRAILS)))
        .collect();
    v.sort();
    v.dedup();
    v
}

impl Repo {
    pub fn object_count(&self) -> usize {
        self.policies
            .values()
            .map(|p| 1 + p.versions.len())
            .sum::<usize>()
            + self.attachments.len()
    }

    fn bases(&self) -> Vec<String> {
        self.policies
            .iter()
            .filter(|(_, p)| p.base)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn random_version(&self, rng: &mut StdRng, stage: &'static str, base: bool) -> Version {
        let bases = self.bases();
        let inherit = (!base && !bases.is_empty() && rng.random_bool(0.5))
            .then(|| bases[rng.random_range(0..bases.len())].clone());
        let remove = if inherit.is_some() && rng.random_bool(0.3) {
            guardrails(rng, 1)
        } else {
            vec![]
        };
        let model = rng.random_bool(0.15).then(|| {
            ["gpt-.*", "claude-.*", "llama-3.*", "mistral"][rng.random_range(0..4)].into()
        });
        let n = rng.random_range(1..4);
        Version {
            stage,
            inherit,
            add: guardrails(rng, n),
            remove,
            model,
        }
    }

    fn random_scope(rng: &mut StdRng) -> String {
        let k = rng.random_range(0..20);
        let prio = rng.random_range(0..20);
        match rng.random_range(0..5) {
            0 => format!("  scope: \"*\"\n  priority: {prio}\n"),
            1 => format!("  teams: [team-{k}, \"research-*\"]\n  priority: {prio}\n"),
            2 => format!("  keys: [key-{k}]\n  priority: {prio}\n"),
            3 => format!("  models: [\"gpt-*\", model-{k}]\n  priority: {prio}\n"),
            _ => format!("  tags: [tag-{k}]\n  priority: {prio}\n"),
        }
    }

    /// A repository of about `objects` objects.
    pub fn generate(rng: &mut StdRng, objects: usize) -> Repo {
        let mut r = Repo::default();
        let bases = (objects / 50).max(3);
        for i in 0..bases {
            let v = r.random_version(rng, "Production", true);
            r.policies.insert(
                format!("base-{i}"),
                PolicyModel {
                    base: true,
                    versions: [(1, v)].into_iter().collect(),
                },
            );
            if i == 0 {
                r.attachments.insert(
                    "everyone".into(),
                    ("base-0".into(), "  scope: \"*\"\n".into()),
                );
            }
        }
        while r.object_count() < objects {
            r.add_leaf(rng);
        }
        r
    }

    fn add_leaf(&mut self, rng: &mut StdRng) -> String {
        let name = format!("leaf-{}", self.next_id);
        self.next_id += 1;
        let mut versions = BTreeMap::new();
        versions.insert(1, self.random_version(rng, "Production", false));
        if rng.random_bool(0.7) {
            let stage = ["Draft", "Published", "Production"][rng.random_range(0..3)];
            versions.insert(2, self.random_version(rng, stage, false));
        }
        self.policies.insert(
            name.clone(),
            PolicyModel {
                base: false,
                versions,
            },
        );
        if rng.random_bool(0.8) {
            self.attachments.insert(
                format!("{name}-at"),
                (name.clone(), Self::random_scope(rng)),
            );
        }
        name
    }

    /// Make `n` random changes; returns what to apply and delete.
    pub fn mutate(&mut self, rng: &mut StdRng, n: usize) -> Change {
        let mut c = Change::default();
        for _ in 0..n {
            let names: Vec<String> = self.policies.keys().cloned().collect();
            let name = names[rng.random_range(0..names.len())].clone();
            let base = self.policies[&name].base;
            match rng.random_range(0..8) {
                // A new version straight to production (supersedes).
                0 | 1 => {
                    let v = self.random_version(rng, "Production", base);
                    let p = self.policies.get_mut(&name).unwrap();
                    let next = p.versions.keys().max().copied().unwrap_or(0) + 1;
                    p.versions.insert(next, v);
                    c.apply.push((name.clone(), Some((name, next))));
                }
                // Roll back the highest production version of a leaf.
                2 if !base => {
                    let p = self.policies.get_mut(&name).unwrap();
                    if let Some((k, v)) = p
                        .versions
                        .iter_mut()
                        .rev()
                        .find(|(_, v)| v.stage == "Production")
                    {
                        v.stage = "Published";
                        c.apply.push((name.clone(), Some((name, *k))));
                    }
                }
                // Promote a draft or published version one step.
                3 => {
                    let p = self.policies.get_mut(&name).unwrap();
                    if let Some((k, v)) = p
                        .versions
                        .iter_mut()
                        .find(|(_, v)| v.stage == "Draft" || v.stage == "Published")
                    {
                        v.stage = if v.stage == "Draft" {
                            "Published"
                        } else {
                            "Production"
                        };
                        c.apply.push((name.clone(), Some((name, *k))));
                    }
                }
                // A new draft, or a draft edited.
                4 => {
                    let v = self.random_version(rng, "Draft", base);
                    let p = self.policies.get_mut(&name).unwrap();
                    let k = p
                        .versions
                        .iter()
                        .find(|(_, v)| v.stage == "Draft")
                        .map(|(k, _)| *k)
                        .unwrap_or_else(|| p.versions.keys().max().copied().unwrap_or(0) + 1);
                    p.versions.insert(k, v);
                    c.apply.push((name.clone(), Some((name, k))));
                }
                // Delete a version that is not production-desired.
                5 => {
                    let p = self.policies.get_mut(&name).unwrap();
                    if let Some(k) = p
                        .versions
                        .iter()
                        .find(|(_, v)| v.stage != "Production")
                        .map(|(k, _)| *k)
                    {
                        p.versions.remove(&k);
                        c.delete.push(format!("policyversion/{name}-v{k}"));
                    }
                }
                // Delete a leaf policy (its versions go with it) and its attachment.
                6 if !base => {
                    let p = self.policies.remove(&name).unwrap();
                    c.delete.push(format!("policy/{name}"));
                    for k in p.versions.keys() {
                        c.delete.push(format!("policyversion/{name}-v{k}"));
                    }
                    if self.attachments.remove(&format!("{name}-at")).is_some() {
                        c.delete.push(format!("policyattachment/{name}-at"));
                    }
                }
                // A new leaf, or an attachment re-scoped.
                _ => {
                    if rng.random_bool(0.5) {
                        let leaf = self.add_leaf(rng);
                        c.apply.push((leaf.clone(), None));
                    } else {
                        let att: Vec<String> = self.attachments.keys().cloned().collect();
                        let a = att[rng.random_range(0..att.len())].clone();
                        let scope = Self::random_scope(rng);
                        if let Some(e) = self.attachments.get_mut(&a) {
                            e.1 = scope;
                        }
                        c.apply.push((format!("@{a}"), None));
                    }
                }
            }
        }
        c
    }

    fn version_yaml(ns: &str, policy: &str, k: i64, v: &Version) -> String {
        let mut y = format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {{name: {policy}-v{k}, namespace: {ns}}}\nspec:\n  policy: {policy}\n  version: {k}\n  stage: {}\n",
            v.stage
        );
        if let Some(i) = &v.inherit {
            y.push_str(&format!("  inherit: {i}\n"));
        }
        y.push_str(&format!("  guardrails:\n    add: [{}]\n", v.add.join(", ")));
        if !v.remove.is_empty() {
            y.push_str(&format!("    remove: [{}]\n", v.remove.join(", ")));
        }
        if let Some(m) = &v.model {
            y.push_str(&format!("  condition: {{model: \"{m}\"}}\n"));
        }
        y.push_str("---\n");
        y
    }

    fn policy_yaml(ns: &str, name: &str) -> String {
        format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{}}\n---\n"
        )
    }

    fn attachment_yaml(ns: &str, name: &str, policy: &str, scope: &str) -> String {
        format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  policy: {policy}\n{scope}---\n"
        )
    }

    /// The whole repository as YAML in namespace `ns`.
    pub fn yaml(&self, ns: &str) -> String {
        let mut y = String::new();
        for (name, p) in &self.policies {
            y.push_str(&Self::policy_yaml(ns, name));
            for (k, v) in &p.versions {
                y.push_str(&Self::version_yaml(ns, name, *k, v));
            }
        }
        for (name, (policy, scope)) in &self.attachments {
            y.push_str(&Self::attachment_yaml(ns, name, policy, scope));
        }
        y
    }

    /// The YAML of a change's `apply` part, in namespace `ns` (objects deleted since are skipped).
    pub fn change_yaml(&self, c: &Change, ns: &str) -> String {
        let mut y = String::new();
        for (what, version) in &c.apply {
            if let Some(a) = what.strip_prefix('@') {
                if let Some((policy, scope)) = self.attachments.get(a) {
                    y.push_str(&Self::attachment_yaml(ns, a, policy, scope));
                }
                continue;
            }
            let Some(p) = self.policies.get(what) else {
                continue;
            };
            match version {
                Some((_, k)) => {
                    if let Some(v) = p.versions.get(k) {
                        y.push_str(&Self::version_yaml(ns, what, *k, v));
                    }
                }
                None => {
                    y.push_str(&Self::policy_yaml(ns, what));
                    for (k, v) in &p.versions {
                        y.push_str(&Self::version_yaml(ns, what, *k, v));
                    }
                    if let Some((policy, scope)) = self.attachments.get(&format!("{what}-at")) {
                        y.push_str(&Self::attachment_yaml(
                            ns,
                            &format!("{what}-at"),
                            policy,
                            scope,
                        ));
                    }
                }
            }
        }
        y
    }
}
