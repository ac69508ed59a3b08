//! LiteLLM's config format: reading a raw `policies:` / `policy_attachments:` block with the
//! registry's parse rules (reference §7.2), and writing the same format for the gateway.
//!
//! Reading is used where policies arrive in LiteLLM's own shape (the differential suite, and
//! checking a rendered bundle); parse failures carry Python-like messages and become
//! `invalid_syntax` errors, as in LiteLLM's validator.

use serde_json::{Map, Value};

use super::model::{
    Attachment, ModelCondition, Pipeline, PipelineAction, PipelineMode, PolicyContent, Step,
};
use super::pyregex::ModelPattern;

/// Python's type name for a JSON value, for error messages.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn no_get(v: &Value) -> String {
    format!("'{}' object has no attribute 'get'", py_type(v))
}

fn as_object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object().ok_or_else(|| no_get(v))
}

fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{key}: Input should be a valid string (got {})",
            py_type(other)
        )),
    }
}

fn str_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "{what}: Input should be a valid list (got {})",
            py_type(v)
        ));
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "{what}: Input should be a valid string (got {})",
                py_type(other)
            )),
        })
        .collect()
}

fn opt_str_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => str_list(v, what),
    }
}

/// `PolicyRegistry.parse_policy`.
pub fn parse_policy(body: &Value) -> Result<PolicyContent, String> {
    let obj = as_object(body)?;
    let (add, remove) = match obj.get("guardrails") {
        None => (Vec::new(), Vec::new()),
        Some(Value::Object(g)) => (
            opt_str_list(g.get("add"), "guardrails.add")?,
            opt_str_list(g.get("remove"), "guardrails.remove")?,
        ),
        Some(v) if truthy(v) => (str_list(v, "guardrails.add")?, Vec::new()),
        Some(_) => (Vec::new(), Vec::new()),
    };
    let condition = match obj.get("condition") {
        Some(c) if truthy(c) => {
            let c = as_object(c)?;
            Some(match c.get("model") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(ModelCondition::One(ModelPattern::new(s))),
                Some(Value::Array(items)) => Some(ModelCondition::Many(
                    str_list(&Value::Array(items.clone()), "condition.model")?
                        .iter()
                        .map(|s| ModelPattern::new(s))
                        .collect(),
                )),
                Some(other) => {
                    return Err(format!(
                        "condition.model: Input should be a valid string or list (got {})",
                        py_type(other)
                    ));
                }
            })
        }
        _ => None,
    };
    let pipeline = match obj.get("pipeline") {
        None | Some(Value::Null) => None,
        Some(p) => Some(parse_pipeline(p)?),
    };
    Ok(PolicyContent {
        inherit: opt_str(obj, "inherit")?,
        description: opt_str(obj, "description")?,
        add,
        remove,
        condition,
        pipeline,
    })
}

fn parse_action(v: &Value, field: &str) -> Result<PipelineAction, String> {
    let Value::String(s) = v else {
        return Err(format!("{field}: Input should be a valid string"));
    };
    action_from_str(s).ok_or_else(|| {
        format!("Value error, Invalid action '{s}'. Must be one of: ['allow', 'block', 'modify_response', 'next']")
    })
}

/// LiteLLM's action names.
pub fn action_from_str(s: &str) -> Option<PipelineAction> {
    Some(match s {
        "allow" => PipelineAction::Allow,
        "block" => PipelineAction::Block,
        "next" => PipelineAction::Next,
        "modify_response" => PipelineAction::ModifyResponse,
        _ => return None,
    })
}

pub fn parse_pipeline(p: &Value) -> Result<Pipeline, String> {
    let obj = as_object(p)?;
    let mode = match obj.get("mode") {
        None => PipelineMode::PreCall,
        Some(Value::String(s)) if s == "pre_call" => PipelineMode::PreCall,
        Some(Value::String(s)) if s == "post_call" => PipelineMode::PostCall,
        Some(Value::String(s)) => {
            return Err(format!(
                "Value error, Invalid mode '{s}'. Must be one of: ['post_call', 'pre_call']"
            ));
        }
        Some(other) => {
            return Err(format!(
                "mode: Input should be a valid string (got {})",
                py_type(other)
            ));
        }
    };
    let steps_v = obj
        .get("steps")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let steps_raw: Vec<Value> = match steps_v {
        Value::Array(a) => a,
        Value::String(s) => s.chars().map(|c| Value::String(c.to_string())).collect(),
        other => return Err(format!("'{}' object is not iterable", py_type(&other))),
    };
    if steps_raw.is_empty() {
        return Err("steps: List should have at least 1 item after validation, not 0".to_string());
    }
    let steps = steps_raw
        .iter()
        .map(parse_step)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pipeline { mode, steps })
}

fn parse_step(v: &Value) -> Result<Step, String> {
    let Value::Object(obj) = v else {
        return Err(format!(
            "steps: Input should be a valid dictionary or instance of PipelineStep (got {})",
            py_type(v)
        ));
    };
    const KNOWN: [&str; 6] = [
        "guardrail",
        "on_fail",
        "on_pass",
        "on_error",
        "pass_data",
        "modify_response_message",
    ];
    if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("{unknown}: Extra inputs are not permitted"));
    }
    let guardrail = match obj.get("guardrail") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "guardrail: Input should be a valid string (got {})",
                py_type(other)
            ));
        }
        None => return Err("guardrail: Field required".to_string()),
    };
    let on_pass = obj
        .get("on_pass")
        .map(|v| parse_action(v, "on_pass"))
        .transpose()?
        .unwrap_or(PipelineAction::Allow);
    let on_fail = obj
        .get("on_fail")
        .map(|v| parse_action(v, "on_fail"))
        .transpose()?
        .unwrap_or(PipelineAction::Block);
    let on_error = match obj.get("on_error") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_action(v, "on_error")?),
    };
    let pass_data = match obj.get("pass_data") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => false,
        Some(Value::Number(n)) if n.as_i64() == Some(1) => true,
        Some(other) => {
            return Err(format!(
                "pass_data: Input should be a valid boolean (got {})",
                py_type(other)
            ));
        }
    };
    let modify_response_message = opt_str(obj, "modify_response_message")?;
    Ok(Step {
        guardrail,
        on_pass,
        on_fail,
        on_error,
        pass_data,
        modify_response_message,
    })
}

/// `AttachmentRegistry._parse_attachment`: only known keys are read.
pub fn parse_attachment(v: &Value) -> Result<Attachment, String> {
    let obj = as_object(v)?;
    let list = |key: &str| -> Result<Option<Vec<String>>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => str_list(v, key).map(Some),
        }
    };
    let policy = match obj.get("policy") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "policy: Input should be a valid string (got {})",
                py_type(other)
            ));
        }
    };
    let priority = match obj.get("priority") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(p) => Some(p),
            None => return Err(format!("priority: Input should be a valid int32 (got {n})")),
        },
        Some(other) => {
            return Err(format!(
                "priority: Input should be a valid integer (got {})",
                py_type(other)
            ));
        }
    };
    let default = match obj.get("default") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "default: Input should be a valid boolean (got {})",
                py_type(other)
            ));
        }
    };
    Ok(Attachment {
        policy,
        scope: opt_str(obj, "scope")?,
        teams: list("teams")?,
        keys: list("keys")?,
        models: list("models")?,
        tags: list("tags")?,
        priority,
        default,
    })
}

/// A policy in LiteLLM's config format (snake_case), with empty parts left out.
pub fn policy_to_json(p: &PolicyContent) -> Value {
    let mut obj = Map::new();
    if let Some(d) = &p.description {
        obj.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(i) = p.parent() {
        obj.insert("inherit".into(), Value::String(i.to_string()));
    }
    let mut g = Map::new();
    if !p.add.is_empty() {
        g.insert(
            "add".into(),
            p.add.iter().cloned().map(Value::String).collect(),
        );
    }
    if !p.remove.is_empty() {
        g.insert(
            "remove".into(),
            p.remove.iter().cloned().map(Value::String).collect(),
        );
    }
    obj.insert("guardrails".into(), Value::Object(g));
    if let Some(cond) = &p.condition {
        let mut c = Map::new();
        c.insert(
            "model".into(),
            cond.as_ref()
                .map(ModelCondition::to_json)
                .unwrap_or(Value::Null),
        );
        obj.insert("condition".into(), Value::Object(c));
    }
    if let Some(pl) = &p.pipeline {
        obj.insert("pipeline".into(), pipeline_to_json(pl));
    }
    Value::Object(obj)
}

/// A pipeline in LiteLLM's format, every step field written out.
pub fn pipeline_to_json(pl: &Pipeline) -> Value {
    let steps: Vec<Value> = pl
        .steps
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("guardrail".into(), Value::String(s.guardrail.clone()));
            o.insert("on_pass".into(), Value::String(s.on_pass.as_str().into()));
            o.insert("on_fail".into(), Value::String(s.on_fail.as_str().into()));
            o.insert(
                "on_error".into(),
                s.on_error
                    .map(|a| Value::String(a.as_str().into()))
                    .unwrap_or(Value::Null),
            );
            o.insert("pass_data".into(), Value::Bool(s.pass_data));
            o.insert(
                "modify_response_message".into(),
                s.modify_response_message
                    .clone()
                    .map(Value::String)
                    .unwrap_or(Value::Null),
            );
            Value::Object(o)
        })
        .collect();
    let mut o = Map::new();
    o.insert("mode".into(), Value::String(pl.mode.as_str().into()));
    o.insert("steps".into(), Value::Array(steps));
    Value::Object(o)
}

/// An attachment in LiteLLM's format, with absent fields left out.
pub fn attachment_to_json(a: &Attachment) -> Value {
    let mut o = Map::new();
    o.insert("policy".into(), Value::String(a.policy.clone()));
    if let Some(s) = &a.scope {
        o.insert("scope".into(), Value::String(s.clone()));
    }
    for (key, list) in [
        ("teams", &a.teams),
        ("keys", &a.keys),
        ("models", &a.models),
        ("tags", &a.tags),
    ] {
        if let Some(l) = list {
            o.insert(key.into(), l.iter().cloned().map(Value::String).collect());
        }
    }
    if let Some(p) = a.priority {
        o.insert("priority".into(), Value::from(p));
    }
    if a.default {
        o.insert("default".into(), Value::Bool(true));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syntax_errors_of_the_edge_case_table() {
        for body in [
            json!(null),
            json!({"condition": "gpt-4"}),
            json!({"condition": {"model": 5}}),
            json!({"guardrails": "abc"}),
            json!({"inherit": 5}),
            json!({"pipeline": {"mode": "during_call", "steps": [{"guardrail": "a"}]}}),
            json!({"pipeline": {"steps": [{"guardrail": "a", "on_fail": "retry"}]}}),
            json!({"pipeline": {"steps": []}}),
            json!({"pipeline": {"steps": [{"guardrail": "a", "foo": 1}]}}),
        ] {
            assert!(parse_policy(&body).is_err(), "{body}");
        }
        assert_eq!(
            parse_policy(&json!(null)).unwrap_err(),
            "'NoneType' object has no attribute 'get'"
        );
    }

    #[test]
    fn lenient_forms() {
        let p = parse_policy(&json!({"guardrails": ["a", "b"], "scope": "x", "statements": []}))
            .unwrap();
        assert_eq!(p.add, vec!["a", "b"]);
        let p = parse_policy(&json!({"condition": {}})).unwrap();
        assert_eq!(p.condition, None);
        let p = parse_policy(&json!({"condition": {"model": null}})).unwrap();
        assert_eq!(p.condition, Some(None));
        let p = parse_policy(&json!({"condition": {"model": "gpt-4", "team": "x"}})).unwrap();
        assert!(matches!(p.condition, Some(Some(ModelCondition::One(_)))));
        let p = parse_policy(&json!({"pipeline": {"steps": [{"guardrail": "a"}]}})).unwrap();
        let pl = p.pipeline.unwrap();
        assert_eq!(pl.mode, PipelineMode::PreCall);
        assert_eq!(pl.steps[0].on_pass, PipelineAction::Allow);
        assert_eq!(pl.steps[0].on_fail, PipelineAction::Block);
    }

    #[test]
    fn attachments() {
        let a = parse_attachment(&json!({"teams": ["a"], "foo": 1})).unwrap();
        assert_eq!(a.policy, "");
        assert!(parse_attachment(&json!({"teams": "finance"})).is_err());
        assert!(parse_attachment(&json!({"priority": "high"})).is_err());
        assert!(parse_attachment(&json!({"priority": 2147483648i64})).is_err());
        assert!(parse_attachment(&json!({"priority": -2147483648i64})).is_ok());
    }
}
