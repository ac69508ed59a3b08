//! `PolicyVersion`: one revision of a policy's content, immutable once it leaves Draft.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifecycle stage of a version (LiteLLM's draft → published → production).
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum Stage {
    /// Editable; not active anywhere.
    #[default]
    Draft,
    /// Frozen and tested; not active.
    Published,
    /// Frozen, tested and active in the gateway (at most one version per policy).
    Production,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Draft => "Draft",
            Stage::Published => "Published",
            Stage::Production => "Production",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One revision of a policy's content (LiteLLM policy version). Content fields are editable only
/// while `spec.stage` is Draft; `spec.stage` is the desired stage, `status.stage` the achieved one.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "guardrails.dev",
    version = "v1alpha1",
    kind = "PolicyVersion",
    namespaced,
    status = "PolicyVersionStatus",
    shortname = "grpv",
    category = "guardrails",
    selectable = ".spec.policy",
    doc = "One revision of a guardrail policy's content. Content is editable only while the version is a Draft; spec.stage is the desired stage (Draft, Published, Production), status.stage the achieved one.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Version", type_ = "integer", json_path = ".spec.version"),
    printcolumn(name = "Desired", type_ = "string", json_path = ".spec.stage"),
    printcolumn(name = "Stage", type_ = "string", json_path = ".status.stage"),
    printcolumn(name = "Tests", type_ = "string", json_path = ".status.tests.summary"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    )
)]
#[x_kube(validation = Rule::new(
    "(has(oldSelf.stage) && oldSelf.stage != 'Draft') ? (has(self.stage) && self.stage != 'Draft') : true"
).message("spec.stage cannot go back to Draft once a version has left Draft. Create a new version to change the content.").field_path(".stage"))]
#[x_kube(validation = Rule::new(
    "(!has(oldSelf.stage) || oldSelf.stage == 'Draft') || ((has(self.inherit) ? (has(oldSelf.inherit) && self.inherit == oldSelf.inherit) : !has(oldSelf.inherit)) && (has(self.description) ? (has(oldSelf.description) && self.description == oldSelf.description) : !has(oldSelf.description)) && (has(self.guardrails) ? (has(oldSelf.guardrails) && self.guardrails == oldSelf.guardrails) : !has(oldSelf.guardrails)) && (has(self.condition) ? (has(oldSelf.condition) && self.condition == oldSelf.condition) : !has(oldSelf.condition)) && (has(self.pipeline) ? (has(oldSelf.pipeline) && self.pipeline == oldSelf.pipeline) : !has(oldSelf.pipeline)) && (has(self.tests) ? (has(oldSelf.tests) && self.tests == oldSelf.tests) : !has(oldSelf.tests)))"
).message("Only draft versions can be updated. Create a new version to change published/production."))]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionSpec {
    /// Name of the Policy this version belongs to (same namespace). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.policy is immutable"))]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = crate::engine::names::DNS_SUBDOMAIN_PATTERN)
    )]
    pub policy: String,
    /// Version number, at least 1, unique per policy. Immutable. The highest eligible version
    /// asking for Production is the one in production.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.version is immutable"))]
    #[schemars(range(min = 1, max = 2147483647))]
    pub version: i64,
    /// Desired stage: Draft (default), Published or Production. Never back to Draft; lowering
    /// Production to Published is a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Name of the parent Policy (same namespace) whose production content this version
    /// inherits. Single inheritance, acyclic, at most 100 deep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = crate::engine::names::DNS_SUBDOMAIN_PATTERN)
    )]
    pub inherit: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// Guardrails this version adds to and removes from what it inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<GuardrailsSpec>,
    /// When this version's own guardrails apply (LiteLLM policy condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<VersionCondition>,
    /// Ordered, conditional execution of some of this version's guardrails (LiteLLM guardrail pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineSpec>,
    /// Tests run before the version may leave Draft (by the admission webhook, the controller and
    /// `guardrail-operator test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub tests: Option<Vec<TestSpec>>,
}

/// Guardrail names added and removed by a version (LiteLLM `guardrails: {add, remove}`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GuardrailsSpec {
    /// Guardrail names (from the gateway's guardrail catalog) this version adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub add: Option<Vec<String>>,
    /// Guardrail names this version removes from what it inherits (and from its own add list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub remove: Option<Vec<String>>,
}

/// LiteLLM policy condition: only `model` exists.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VersionCondition {
    /// A model-name pattern or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::string_or_string_list")]
    pub model: Option<serde_json::Value>,
}

/// Hook a pipeline runs in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PipelineMode {
    /// Before the model is called (checks the request).
    #[default]
    PreCall,
    /// After the model answered (checks the response).
    PostCall,
}

impl PipelineMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineMode::PreCall => "pre_call",
            PipelineMode::PostCall => "post_call",
        }
    }
}

/// What a pipeline does after a step (LiteLLM's four actions).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PipelineAction {
    /// Stop and let the request through.
    Allow,
    /// Stop and reject the request.
    Block,
    /// Go on to the next step (running off the end allows).
    Next,
    /// Stop and answer with `modifyResponseMessage` instead of calling the model.
    ModifyResponse,
}

impl PipelineAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineAction::Allow => "allow",
            PipelineAction::Block => "block",
            PipelineAction::Next => "next",
            PipelineAction::ModifyResponse => "modify_response",
        }
    }
}

/// A LiteLLM guardrail pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// pre_call (default) or post_call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PipelineMode>,
    /// The steps, run in order; at least one.
    #[schemars(length(min = 1, max = 64))]
    pub steps: Vec<PipelineStepSpec>,
}

/// One pipeline step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStepSpec {
    /// Guardrail to run; must be in this version's own guardrails.add.
    #[schemars(length(min = 1, max = 253))]
    pub guardrail: String,
    /// Action when the guardrail passes (default allow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pass: Option<PipelineAction>,
    /// Action when the guardrail intervenes (default block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<PipelineAction>,
    /// Action on a technical error (default: the onFail action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<PipelineAction>,
    /// Forward the request this step returns to later steps (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_data: Option<bool>,
    /// Message answered by modify_response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub modify_response_message: Option<String>,
}

/// Outcome of one pipeline step (LiteLLM's words).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Pass,
    Fail,
    Error,
    Skip,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Pass => "pass",
            StepOutcome::Fail => "fail",
            StepOutcome::Error => "error",
            StepOutcome::Skip => "skip",
        }
    }
}

/// Outcome a test gives a guardrail that cannot run offline.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MockOutcome {
    /// The guardrail lets the request through.
    Pass,
    /// The guardrail intervenes (policy rejection).
    Fail,
    /// The guardrail has a technical error.
    Error,
}

/// A test of this version's guardrails, run before it may leave Draft.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSpec {
    /// Test name, unique within the version.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Request model, for model conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub model: Option<String>,
    /// The request messages.
    #[schemars(length(min = 1, max = 16))]
    pub messages: Vec<TestMessage>,
    /// The model's answer, for post_call guardrails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    pub response: Option<String>,
    /// Outcome for each guardrail that cannot run offline (anything but litellm_content_filter).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mocks: BTreeMap<String, MockOutcome>,
    /// What the run must produce.
    pub expect: TestExpectation,
}

/// One chat message of a test request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TestMessage {
    /// system, user, assistant or tool.
    #[schemars(length(min = 1, max = 32))]
    pub role: String,
    /// Text content.
    #[schemars(length(max = 16384))]
    pub content: String,
}

/// The expected result of a test.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestExpectation {
    /// allow, block or modify_response.
    pub action: TerminalAction,
    /// Guardrail expected to block (or to cause modify_response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// Text the block or modify-response message must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_contains: Option<String>,
    /// Expected outcome of steps, matched by guardrail name in run order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub steps: Option<Vec<ExpectedStep>>,
}

/// The final action of a pipeline run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TerminalAction {
    Allow,
    Block,
    ModifyResponse,
}

impl TerminalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalAction::Allow => "allow",
            TerminalAction::Block => "block",
            TerminalAction::ModifyResponse => "modify_response",
        }
    }
}

/// An expected step outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ExpectedStep {
    /// Guardrail of the step.
    pub guardrail: String,
    /// pass, fail, error or skip.
    pub outcome: StepOutcome,
}

/// Observed state of a PolicyVersion, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionStatus {
    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Achieved stage; only the controller moves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// sha256 of the normalised content: what "unchanged" means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// When the version reached Published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Time>,
    /// When the version last reached Production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_at: Option<Time>,
    /// When another version last took production from this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<Time>,
    /// The version that took production from this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<i64>,
    /// Result of the last test run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestsSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::conditions")]
    pub conditions: Vec<Condition>,
}

/// Summary of a test run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestsSummary {
    /// Tests that passed.
    pub passed: i64,
    /// Tests that failed.
    pub failed: i64,
    /// "passed/total", for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The content hash the tests ran against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Per-test results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TestResult>,
}

/// The result of one test.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Whether the run met the expectation.
    pub passed: bool,
    /// The final action.
    pub action: TerminalAction,
    /// The guardrail that blocked, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// Error detail or modify-response message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the test failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The steps that ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<TestStepResult>,
}

/// One step of a test run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestStepResult {
    /// Guardrail of the step.
    pub guardrail: String,
    /// pass, fail, error or skip.
    pub outcome: StepOutcome,
    /// allow, block, next or modify_response.
    pub action: PipelineAction,
    /// Wall time of the step.
    pub duration_seconds: f64,
    /// Error detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
