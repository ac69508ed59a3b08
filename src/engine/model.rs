//! The engine's view of policies, attachments and requests: LiteLLM's data model
//! (reference §1), independent of how the objects were stored (CRDs or LiteLLM YAML).

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::api::{PipelineAction, PipelineMode, StepOutcome, TerminalAction};

use super::pyregex::ModelPattern;

/// The content of one policy as LiteLLM sees it (`Policy` in `policy_types.py`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyContent {
    /// Parent policy name; `None` (or LiteLLM's falsy empty string) means no parent.
    pub inherit: Option<String>,
    pub description: Option<String>,
    /// `guardrails.add` in written order (duplicates kept: the validator reports each).
    pub add: Vec<String>,
    /// `guardrails.remove` in written order.
    pub remove: Vec<String>,
    /// `None`: no condition. `Some(None)`: `{model: null}`, always true.
    pub condition: Option<Option<ModelCondition>>,
    pub pipeline: Option<Pipeline>,
}

impl PolicyContent {
    /// The parent, with LiteLLM's truthiness (an empty name is no parent).
    pub fn parent(&self) -> Option<&str> {
        self.inherit.as_deref().filter(|p| !p.is_empty())
    }
}

/// A model condition: one pattern or a list (any element may match).
#[derive(Clone, Debug, PartialEq)]
pub enum ModelCondition {
    One(ModelPattern),
    Many(Vec<ModelPattern>),
}

impl ModelCondition {
    pub fn patterns(&self) -> &[ModelPattern] {
        match self {
            ModelCondition::One(p) => std::slice::from_ref(p),
            ModelCondition::Many(ps) => ps,
        }
    }

    /// The condition as LiteLLM serialises it (`"x"` or `["x", "y"]`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ModelCondition::One(p) => serde_json::Value::String(p.raw().to_string()),
            ModelCondition::Many(ps) => serde_json::Value::Array(
                ps.iter()
                    .map(|p| serde_json::Value::String(p.raw().to_string()))
                    .collect(),
            ),
        }
    }
}

/// A LiteLLM guardrail pipeline with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub mode: PipelineMode,
    pub steps: Vec<Step>,
}

/// One pipeline step with LiteLLM's defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub guardrail: String,
    pub on_pass: PipelineAction,
    pub on_fail: PipelineAction,
    /// `None`: use `on_fail`.
    pub on_error: Option<PipelineAction>,
    pub pass_data: bool,
    pub modify_response_message: Option<String>,
}

/// A policy attachment (LiteLLM `PolicyAttachment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub policy: String,
    pub scope: Option<String>,
    pub teams: Option<Vec<String>>,
    pub keys: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub priority: Option<i32>,
    pub default: bool,
}

/// A request as the matcher sees it (LiteLLM `PolicyMatchContext`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MatchContext {
    pub team_alias: Option<String>,
    pub key_alias: Option<String>,
    pub model: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// The policies in force, by name (LiteLLM's policy registry).
pub type PolicyMap = BTreeMap<String, PolicyContent>;

/// Looking policies up by name: the sorted [`PolicyMap`], or a [`PolicyIndex`] built once for
/// many lookups (the per-request hot path).
pub trait Policies {
    /// The stored name and the policy.
    fn lookup(&self, name: &str) -> Option<(&str, &PolicyContent)>;
    /// How many policies there are.
    fn count(&self) -> usize;
}

impl Policies for PolicyMap {
    fn lookup(&self, name: &str) -> Option<(&str, &PolicyContent)> {
        self.get_key_value(name).map(|(k, v)| (k.as_str(), v))
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// A hash index over a [`PolicyMap`], for resolving many requests against one policy set.
pub struct PolicyIndex<'a>(
    std::collections::HashMap<&'a str, &'a PolicyContent, std::hash::BuildHasherDefault<Fnv>>,
);

impl<'a> PolicyIndex<'a> {
    pub fn new(map: &'a PolicyMap) -> Self {
        PolicyIndex(map.iter().map(|(k, v)| (k.as_str(), v)).collect())
    }
}

/// FNV-1a: a fast hash for short policy names (no untrusted hash-flooding concern: the index
/// is built from the operator's own objects).
#[derive(Default)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

impl Policies for PolicyIndex<'_> {
    fn lookup(&self, name: &str) -> Option<(&str, &PolicyContent)> {
        self.0.get_key_value(name).map(|(k, v)| (*k, *v))
    }
    fn count(&self) -> usize {
        self.0.len()
    }
}

/// A policy map with one policy's content replaced (or added), without copying the map: how
/// a version's tests see the other policies.
pub struct Overlay<'a> {
    pub base: &'a PolicyMap,
    pub name: &'a str,
    pub content: &'a PolicyContent,
}

impl Policies for Overlay<'_> {
    fn lookup(&self, name: &str) -> Option<(&str, &PolicyContent)> {
        if name == self.name {
            Some((self.name, self.content))
        } else {
            self.base.lookup(name)
        }
    }
    fn count(&self) -> usize {
        self.base.len() + usize::from(!self.base.contains_key(self.name))
    }
}
