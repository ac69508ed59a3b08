//! Running a version's `spec.tests` (api.md §5): the admission webhook, the controller and
//! `guardrail-operator test` all call [`run_tests`].
//!
//! A version with a pipeline is tested through it (when its own condition holds for the test's
//! model); the resolved guardrails that are not pipeline steps run independently first, as
//! LiteLLM runs them, and any failure or error among them blocks. Guardrails that can run
//! offline come from a [`GuardrailProvider`] (the content filter); every other guardrail takes
//! its outcome from the test's `mocks`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::condition::condition_holds;
use super::inherit::resolve_policy;
use super::model::{
    MatchContext, Overlay, PipelineAction, PipelineMode, Policies, PolicyContent, PolicyMap,
    StepOutcome, TerminalAction,
};
use super::pipeline::{
    Clock, Guardrail, GuardrailSet, Message, Request, Rewrite, StepResult, Verdict, execute,
};
use crate::api::{MockOutcome, TestSpec};

/// Guardrails that run for real in tests (e.g. `litellm_content_filter` from the catalog).
pub trait GuardrailProvider {
    /// The guardrail, if it can run offline.
    fn real(&self, name: &str) -> Option<&dyn Guardrail>;
    /// The mode the guardrail is configured for (independent runs use it).
    fn mode(&self, name: &str) -> PipelineMode;
}

/// No guardrail runs for real: every guardrail needs a mock.
pub struct MocksOnly;

impl GuardrailProvider for MocksOnly {
    fn real(&self, _: &str) -> Option<&dyn Guardrail> {
        None
    }
    fn mode(&self, _: &str) -> PipelineMode {
        PipelineMode::PreCall
    }
}

/// The result of one test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestOutcome {
    pub name: String,
    pub passed: bool,
    pub action: TerminalAction,
    pub blocked_by: Option<String>,
    /// Error detail or modify-response message.
    pub message: Option<String>,
    /// What did not match the expectation.
    pub failures: Vec<String>,
    pub steps: Vec<StepResult>,
    pub messages: Vec<Message>,
}

struct Mock(MockOutcome, String);

impl Guardrail for Mock {
    fn check(&self, _: PipelineMode, _: &Request) -> Verdict {
        match self.0 {
            MockOutcome::Pass => Verdict::Pass(Rewrite::None),
            MockOutcome::Fail => Verdict::Fail(format!("Mocked failure of guardrail '{}'", self.1)),
            MockOutcome::Error => Verdict::Error(format!("Mocked error of guardrail '{}'", self.1)),
        }
    }
}

struct Unmocked(String);

impl Guardrail for Unmocked {
    fn check(&self, _: PipelineMode, _: &Request) -> Verdict {
        Verdict::Error(format!(
            "Guardrail '{0}' cannot run offline (it is not a litellm_content_filter guardrail in the guardrail catalog) and the test has no mock for it; add `mocks: {{{0}: pass|fail|error}}` to the test",
            self.0
        ))
    }
}

struct TestGuardrails<'a> {
    provider: &'a dyn GuardrailProvider,
    mocks: BTreeMap<String, Mock>,
    unmocked: BTreeMap<String, Unmocked>,
}

impl<'a> TestGuardrails<'a> {
    fn new(provider: &'a dyn GuardrailProvider, test: &TestSpec, names: &BTreeSet<String>) -> Self {
        let mocks = test
            .mocks
            .iter()
            .map(|(k, v)| (k.clone(), Mock(*v, k.clone())))
            .collect();
        let unmocked = names
            .iter()
            .map(|n| (n.clone(), Unmocked(n.clone())))
            .collect();
        TestGuardrails {
            provider,
            mocks,
            unmocked,
        }
    }
}

impl GuardrailSet for TestGuardrails<'_> {
    fn find(&self, name: &str) -> Option<&dyn Guardrail> {
        if let Some(real) = self.provider.real(name) {
            return Some(real);
        }
        if let Some(m) = self.mocks.get(name) {
            return Some(m);
        }
        self.unmocked.get(name).map(|u| u as &dyn Guardrail)
    }
}

/// Run every test of a version. `others` holds the production content of the other policies
/// (for inheritance); the version's content is placed under its own policy name.
pub fn run_tests(
    policy: &str,
    content: &PolicyContent,
    tests: &[TestSpec],
    others: &PolicyMap,
    provider: &dyn GuardrailProvider,
    clock: &dyn Clock,
) -> Vec<TestOutcome> {
    let map = Overlay {
        base: others,
        name: policy,
        content,
    };
    tests
        .iter()
        .map(|t| run_one(policy, content, t, &map, provider, clock))
        .collect()
}

fn run_one(
    policy: &str,
    content: &PolicyContent,
    test: &TestSpec,
    map: &impl Policies,
    provider: &dyn GuardrailProvider,
    clock: &dyn Clock,
) -> TestOutcome {
    let ctx = MatchContext {
        model: test.model.clone(),
        ..Default::default()
    };
    let resolved = resolve_policy(policy, map, Some(&ctx));
    let pipeline = content
        .pipeline
        .as_ref()
        .filter(|_| condition_holds(content, &ctx));
    let managed: BTreeSet<String> = pipeline
        .map(|p| p.steps.iter().map(|s| s.guardrail.clone()).collect())
        .unwrap_or_default();
    let mut names: BTreeSet<String> = resolved.guardrails.iter().cloned().collect();
    names.extend(managed.iter().cloned());
    let guardrails = TestGuardrails::new(provider, test, &names);
    let request = Request {
        model: test.model.clone(),
        messages: test
            .messages
            .iter()
            .map(|m| Message {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect(),
        response: test.response.clone(),
    };

    // Independent guardrails first: any failure or error blocks.
    let mut steps = Vec::new();
    let mut working = request;
    let mut verdict: Option<(TerminalAction, Option<String>, Option<String>)> = None;
    for name in resolved.guardrails.iter().filter(|g| !managed.contains(*g)) {
        if clock.expired() {
            let detail = super::pipeline::budget_detail(name);
            verdict = Some((TerminalAction::Block, None, Some(detail)));
            break;
        }
        let start = clock.seconds();
        let (outcome, detail) = match guardrails.find(name) {
            None => (
                StepOutcome::Error,
                Some(format!("Guardrail '{name}' not found")),
            ),
            Some(g) => match g.check(provider.mode(name), &working) {
                Verdict::Pass(Rewrite::None) | Verdict::Skip => (StepOutcome::Pass, None),
                Verdict::Pass(Rewrite::Returned(r) | Rewrite::InPlace(r)) => {
                    working = r;
                    (StepOutcome::Pass, None)
                }
                Verdict::Fail(d) => (StepOutcome::Fail, Some(d)),
                Verdict::Error(d) => (StepOutcome::Error, Some(d)),
            },
        };
        let blocks = matches!(outcome, StepOutcome::Fail | StepOutcome::Error);
        steps.push(StepResult {
            guardrail: name.clone(),
            outcome,
            action: if blocks {
                PipelineAction::Block
            } else {
                PipelineAction::Next
            },
            duration_seconds: ((clock.seconds() - start) * 10_000.0).round() / 10_000.0,
            detail: detail.clone(),
        });
        if blocks {
            verdict = Some((TerminalAction::Block, Some(name.clone()), detail));
            break;
        }
    }
    let (action, blocked_by, message) = match (verdict, pipeline) {
        (Some(v), _) => v,
        (None, Some(p)) => {
            let run = execute(p, &working, &guardrails, clock);
            steps.extend(run.steps);
            working = run.request;
            let message = run.error_message.or(run.modify_response_message);
            (run.terminal_action, run.decided_by, message)
        }
        (None, None) => (TerminalAction::Allow, None, None),
    };

    let mut failures = Vec::new();
    if clock.expired() {
        failures.push("the time budget ran out before the test finished".to_string());
    }
    let expect = &test.expect;
    if expect.action != action {
        failures.push(format!(
            "expected action {}, got {}",
            expect.action.as_str(),
            action.as_str()
        ));
    }
    if let Some(want) = &expect.blocked_by
        && blocked_by.as_deref() != Some(want.as_str())
    {
        failures.push(format!(
            "expected blockedBy {want}, got {}",
            blocked_by.as_deref().unwrap_or("nothing")
        ));
    }
    if let Some(want) = &expect.message_contains
        && !message
            .as_deref()
            .is_some_and(|m| m.contains(want.as_str()))
    {
        failures.push(format!(
            "expected the message to contain {want:?}, got {}",
            message
                .as_deref()
                .map(|m| format!("{m:?}"))
                .unwrap_or_else(|| "no message".into())
        ));
    }
    if let Some(want) = &expect.steps {
        let got: Vec<(String, StepOutcome)> = steps
            .iter()
            .map(|s| (s.guardrail.clone(), s.outcome))
            .collect();
        let want_pairs: Vec<(String, StepOutcome)> = want
            .iter()
            .map(|s| (s.guardrail.clone(), s.outcome))
            .collect();
        if got != want_pairs {
            let show = |v: &[(String, StepOutcome)]| {
                v.iter()
                    .map(|(g, o)| format!("{g}={}", o.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            failures.push(format!(
                "expected steps [{}], got [{}]",
                show(&want_pairs),
                show(&got)
            ));
        }
    }
    TestOutcome {
        name: test.name.clone(),
        passed: failures.is_empty(),
        action,
        blocked_by,
        message,
        failures,
        steps,
        messages: working.messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ExpectedStep, TestExpectation, TestMessage};
    use crate::engine::model::{Pipeline, Step};

    struct NoClock;
    impl Clock for NoClock {
        fn seconds(&self) -> f64 {
            0.0
        }
    }

    fn test(
        mocks: &[(&str, MockOutcome)],
        action: TerminalAction,
        blocked_by: Option<&str>,
    ) -> TestSpec {
        TestSpec {
            name: "t".into(),
            model: Some("gpt-4o".into()),
            messages: vec![TestMessage {
                role: "user".into(),
                content: "hi".into(),
            }],
            response: None,
            mocks: mocks.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            expect: TestExpectation {
                action,
                blocked_by: blocked_by.map(Into::into),
                message_contains: None,
                steps: None,
            },
        }
    }

    fn content() -> PolicyContent {
        PolicyContent {
            add: vec!["pii".into(), "inj".into()],
            pipeline: Some(Pipeline {
                mode: PipelineMode::PreCall,
                steps: vec![
                    Step {
                        guardrail: "pii".into(),
                        on_pass: PipelineAction::Next,
                        on_fail: PipelineAction::Block,
                        on_error: None,
                        pass_data: true,
                        modify_response_message: None,
                    },
                    Step {
                        guardrail: "inj".into(),
                        on_pass: PipelineAction::Allow,
                        on_fail: PipelineAction::ModifyResponse,
                        on_error: None,
                        pass_data: false,
                        modify_response_message: Some("Refused".into()),
                    },
                ],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pipeline_with_mocks() {
        let t = test(
            &[("pii", MockOutcome::Fail), ("inj", MockOutcome::Pass)],
            TerminalAction::Block,
            Some("pii"),
        );
        let r = run_tests(
            "p",
            &content(),
            &[t],
            &PolicyMap::new(),
            &MocksOnly,
            &NoClock,
        );
        assert!(r[0].passed, "{:?}", r[0].failures);
        let t = test(
            &[("pii", MockOutcome::Pass), ("inj", MockOutcome::Fail)],
            TerminalAction::ModifyResponse,
            Some("inj"),
        );
        let r = run_tests(
            "p",
            &content(),
            &[t],
            &PolicyMap::new(),
            &MocksOnly,
            &NoClock,
        );
        assert!(r[0].passed, "{:?}", r[0].failures);
        assert_eq!(r[0].message.as_deref(), Some("Refused"));
    }

    #[test]
    fn unmocked_guardrail_errors_with_a_message_and_fails_the_expectation() {
        let t = test(&[("inj", MockOutcome::Pass)], TerminalAction::Allow, None);
        let r = run_tests(
            "p",
            &content(),
            &[t],
            &PolicyMap::new(),
            &MocksOnly,
            &NoClock,
        );
        assert!(!r[0].passed);
        assert_eq!(r[0].steps[0].outcome, StepOutcome::Error);
        assert!(
            r[0].steps[0]
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("add `mocks: {pii: pass|fail|error}`")
        );
        assert_eq!(r[0].failures, vec!["expected action allow, got block"]);
    }

    #[test]
    fn without_pipeline_resolved_guardrails_run_independently() {
        let parent = PolicyContent {
            add: vec!["base".into()],
            ..Default::default()
        };
        let child = PolicyContent {
            inherit: Some("parent".into()),
            add: vec!["own".into()],
            ..Default::default()
        };
        let others: PolicyMap = [("parent".to_string(), parent)].into();
        let mut t = test(
            &[("own", MockOutcome::Pass), ("base", MockOutcome::Fail)],
            TerminalAction::Block,
            Some("base"),
        );
        t.expect.steps = Some(vec![ExpectedStep {
            guardrail: "base".into(),
            outcome: StepOutcome::Fail,
        }]);
        let r = run_tests("child", &child, &[t], &others, &MocksOnly, &NoClock);
        assert!(r[0].passed, "{:?}", r[0].failures);
    }
}
