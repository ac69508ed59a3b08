//! Policy conditions (`condition_evaluator.py`): only `model` exists.

use super::model::{MatchContext, ModelCondition, PolicyContent};

/// What a request says about model conditions: a concrete request answers by matching its
/// model; `plan` answers for a whole class of requests at once.
pub trait ModelFacts {
    /// Whether a non-null model condition holds.
    fn model_condition(&self, condition: &ModelCondition) -> bool;
}

impl ModelFacts for MatchContext {
    fn model_condition(&self, condition: &ModelCondition) -> bool {
        model_condition_holds(condition, self.model.as_deref())
    }
}

/// LiteLLM's `ConditionEvaluator.evaluate` for a policy's own condition.
pub fn condition_holds(policy: &PolicyContent, ctx: &(impl ModelFacts + ?Sized)) -> bool {
    match &policy.condition {
        None | Some(None) => true,
        Some(Some(model)) => ctx.model_condition(model),
    }
}

/// A non-null model condition against the request model: a null model never matches; a list
/// matches when any element does (an empty list never does).
pub fn model_condition_holds(condition: &ModelCondition, model: Option<&str>) -> bool {
    let Some(model) = model else {
        return false;
    };
    condition.patterns().iter().any(|p| p.matches(model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pyregex::ModelPattern;

    fn policy(cond: Option<Option<ModelCondition>>) -> PolicyContent {
        PolicyContent {
            condition: cond,
            ..Default::default()
        }
    }

    fn ctx(model: Option<&str>) -> MatchContext {
        MatchContext {
            model: model.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn no_condition_and_null_model_always_hold() {
        assert!(condition_holds(&policy(None), &ctx(None)));
        assert!(condition_holds(&policy(Some(None)), &ctx(None)));
    }

    #[test]
    fn model_condition_needs_a_model() {
        let one = Some(Some(ModelCondition::One(ModelPattern::new(".*"))));
        assert!(!condition_holds(&policy(one.clone()), &ctx(None)));
        assert!(condition_holds(&policy(one), &ctx(Some(""))));
    }

    #[test]
    fn list_is_any_and_empty_list_never_matches() {
        let list = ModelCondition::Many(vec![
            ModelPattern::new("gpt-4o"),
            ModelPattern::new("claude-.*"),
        ]);
        assert!(model_condition_holds(&list, Some("claude-3")));
        assert!(!model_condition_holds(&list, Some("gpt-4")));
        assert!(!model_condition_holds(
            &ModelCondition::Many(vec![]),
            Some("x")
        ));
    }
}
