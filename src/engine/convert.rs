//! From the custom resources to the engine's model, with LiteLLM's defaults applied.

use serde_json::Value;

use super::model::{
    Attachment, ModelCondition, Pipeline, PipelineAction, PipelineMode, PolicyContent, Step,
};
use super::pyregex::ModelPattern;
use crate::api::{PolicyAttachmentSpec, PolicyVersionSpec};

/// A content field the structural schema could not rule out (only `condition.model`, which is
/// free-form in the schema because it is a string or a list).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct ContentError {
    pub field: String,
    pub message: String,
}

/// A JSON value for a message: at most 80 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        return s;
    }
    format!(
        "{}… ({} characters)",
        s.chars().take(80).collect::<String>(),
        s.len()
    )
}

/// A version's content in LiteLLM's model.
pub fn version_content(spec: &PolicyVersionSpec) -> Result<PolicyContent, ContentError> {
    let condition = match &spec.condition {
        None => None,
        Some(c) => Some(match &c.model {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(ModelCondition::One(ModelPattern::new(s))),
            Some(Value::Array(items)) => {
                let mut patterns = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Value::String(s) = item else {
                        return Err(ContentError {
                            field: format!("condition.model[{i}]"),
                            message: format!(
                                "must be a string (a model name or regular expression), got {}",
                                short(item)
                            ),
                        });
                    };
                    patterns.push(ModelPattern::new(s));
                }
                Some(ModelCondition::Many(patterns))
            }
            Some(other) => {
                return Err(ContentError {
                    field: "condition.model".into(),
                    message: format!(
                        "must be a string or a list of strings, got {}",
                        short(other)
                    ),
                });
            }
        }),
    };
    // LiteLLM parses `condition: {}` as no condition at all.
    let condition = match (&spec.condition, condition) {
        (Some(c), _) if c.model.is_none() => None,
        (_, c) => c,
    };
    let pipeline = spec.pipeline.as_ref().map(|p| Pipeline {
        mode: p.mode.unwrap_or(PipelineMode::PreCall),
        steps: p
            .steps
            .iter()
            .map(|s| Step {
                guardrail: s.guardrail.clone(),
                on_pass: s.on_pass.unwrap_or(PipelineAction::Allow),
                on_fail: s.on_fail.unwrap_or(PipelineAction::Block),
                on_error: s.on_error,
                pass_data: s.pass_data.unwrap_or(false),
                modify_response_message: s.modify_response_message.clone(),
            })
            .collect(),
    });
    let guardrails = spec.guardrails.clone().unwrap_or_default();
    Ok(PolicyContent {
        inherit: spec.inherit.clone(),
        description: spec.description.clone(),
        add: guardrails.add.unwrap_or_default(),
        remove: guardrails.remove.unwrap_or_default(),
        condition,
        pipeline,
    })
}

/// An attachment in LiteLLM's model.
pub fn attachment(spec: &PolicyAttachmentSpec) -> Attachment {
    Attachment {
        policy: spec.policy.clone(),
        scope: spec.scope.clone(),
        teams: spec.teams.clone(),
        keys: spec.keys.clone(),
        models: spec.models.clone(),
        tags: spec.tags.clone(),
        priority: spec.priority,
        default: spec.default.unwrap_or(false),
    }
}
