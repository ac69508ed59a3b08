//! The pipeline executor (`pipeline_executor.py`, reference §5): steps run in order, each
//! outcome maps to an action, the first terminal action ends the run, running off the end
//! allows.

use serde::Serialize;

use super::model::{Pipeline, PipelineAction, PipelineMode, Step, StepOutcome, TerminalAction};

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What a guardrail sees: the request messages (pre_call) and the model's response (post_call).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub response: Option<String>,
}

/// How a passing guardrail changed the request.
#[derive(Clone, Debug, PartialEq)]
pub enum Rewrite {
    /// Nothing returned.
    None,
    /// A new payload was returned: forwarded only with `pass_data` (always in post_call).
    Returned(Request),
    /// The message objects were changed in place (LiteLLM's content filter MASK does this):
    /// later steps see the change whatever `pass_data` says, because the executor's working
    /// copy is shallow.
    InPlace(Request),
}

/// What one guardrail call produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Returned normally.
    Pass(Rewrite),
    /// Intervened (HTTP 400/403/422 or a guardrail exception); the detail as LiteLLM shows it.
    Fail(String),
    /// A technical error; the detail as LiteLLM shows it.
    Error(String),
    /// The guardrail's stream scope excluded the request.
    Skip,
}

/// A guardrail the executor can run.
pub trait Guardrail {
    fn check(&self, mode: PipelineMode, request: &Request) -> Verdict;
}

/// Finds guardrails by name (LiteLLM's loaded guardrail callbacks).
pub trait GuardrailSet {
    fn find(&self, name: &str) -> Option<&dyn Guardrail>;
}

/// A monotonic clock in seconds, injected so the engine reads no clock itself.
pub trait Clock {
    fn seconds(&self) -> f64;

    /// True once a time budget this clock carries has run out (see [`Deadline`]): runs stop
    /// before their next step. Plain clocks never expire.
    fn expired(&self) -> bool {
        false
    }
}

/// A clock with a time budget: expired from `at` seconds on (admission reviews).
pub struct Deadline<'a> {
    pub clock: &'a dyn Clock,
    pub at: f64,
}

impl Clock for Deadline<'_> {
    fn seconds(&self) -> f64 {
        self.clock.seconds()
    }

    fn expired(&self) -> bool {
        self.clock.seconds() > self.at
    }
}

/// The detail of a run stopped because its time budget ran out.
pub fn budget_detail(before: &str) -> String {
    format!("stopped before step '{before}': the time budget ran out")
}

/// The standard monotonic clock.
pub struct MonotonicClock(std::time::Instant);

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock(std::time::Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// One executed step (`PipelineStepResult`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepResult {
    pub guardrail: String,
    pub outcome: StepOutcome,
    pub action: PipelineAction,
    /// Wall time, rounded to 4 decimals as LiteLLM does.
    pub duration_seconds: f64,
    pub detail: Option<String>,
}

/// The result of a run (`PipelineExecutionResult`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Execution {
    pub terminal_action: TerminalAction,
    pub steps: Vec<StepResult>,
    /// On block: the blocking step's error detail.
    pub error_message: Option<String>,
    /// On modify_response: the step's message, else its error detail.
    pub modify_response_message: Option<String>,
    /// The guardrail that blocked or caused modify_response.
    pub decided_by: Option<String>,
    /// The working request at the end of the run.
    pub request: Request,
}

/// Action for an outcome, with the `on_error` → `on_fail` fallback; a skip always goes on.
pub fn action_for(step: &Step, outcome: StepOutcome) -> PipelineAction {
    match outcome {
        StepOutcome::Skip => PipelineAction::Next,
        StepOutcome::Pass => step.on_pass,
        StepOutcome::Fail => step.on_fail,
        StepOutcome::Error => step.on_error.unwrap_or(step.on_fail),
    }
}

/// True when every action the step can reach is `allow` or `next`.
pub fn step_is_detect_only(step: &Step) -> bool {
    [StepOutcome::Pass, StepOutcome::Fail, StepOutcome::Error]
        .into_iter()
        .all(|o| {
            matches!(
                action_for(step, o),
                PipelineAction::Allow | PipelineAction::Next
            )
        })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `PipelineExecutor.execute_steps`.
pub fn execute(
    pipeline: &Pipeline,
    request: &Request,
    guardrails: &dyn GuardrailSet,
    clock: &dyn Clock,
) -> Execution {
    let mut working = request.clone();
    let mut steps = Vec::with_capacity(pipeline.steps.len());
    for step in &pipeline.steps {
        if clock.expired() {
            // Only under a budget (admission): the run is cut short, and says so.
            return Execution {
                terminal_action: TerminalAction::Block,
                steps,
                error_message: Some(budget_detail(&step.guardrail)),
                modify_response_message: None,
                decided_by: None,
                request: working,
            };
        }
        let start = clock.seconds();
        let (outcome, detail, forwarded) = match guardrails.find(&step.guardrail) {
            None => (
                StepOutcome::Error,
                Some(format!("Guardrail '{}' not found", step.guardrail)),
                None,
            ),
            Some(g) => match g.check(pipeline.mode, &working) {
                Verdict::Pass(Rewrite::None) => (StepOutcome::Pass, None, None),
                Verdict::Pass(Rewrite::Returned(r)) => {
                    let forward = step.pass_data || pipeline.mode == PipelineMode::PostCall;
                    (StepOutcome::Pass, None, forward.then_some(r))
                }
                Verdict::Pass(Rewrite::InPlace(r)) => (StepOutcome::Pass, None, Some(r)),
                Verdict::Fail(d) => (StepOutcome::Fail, Some(d), None),
                Verdict::Error(d) => (StepOutcome::Error, Some(d), None),
                Verdict::Skip => (StepOutcome::Skip, None, None),
            },
        };
        let action = action_for(step, outcome);
        steps.push(StepResult {
            guardrail: step.guardrail.clone(),
            outcome,
            action,
            duration_seconds: round4(clock.seconds() - start),
            detail: detail.clone(),
        });
        if let Some(r) = forwarded {
            working = r;
        }
        let terminal = match action {
            PipelineAction::Next => continue,
            PipelineAction::Allow => TerminalAction::Allow,
            PipelineAction::Block => TerminalAction::Block,
            PipelineAction::ModifyResponse => TerminalAction::ModifyResponse,
        };
        let (error_message, modify_response_message, decided_by) = match terminal {
            TerminalAction::Allow => (None, None, None),
            TerminalAction::Block => (detail, None, Some(step.guardrail.clone())),
            TerminalAction::ModifyResponse => (
                None,
                step.modify_response_message
                    .clone()
                    .filter(|m| !m.is_empty())
                    .or(detail),
                Some(step.guardrail.clone()),
            ),
        };
        return Execution {
            terminal_action: terminal,
            steps,
            error_message,
            modify_response_message,
            decided_by,
            request: working,
        };
    }
    Execution {
        terminal_action: TerminalAction::Allow,
        steps,
        error_message: None,
        modify_response_message: None,
        decided_by: None,
        request: working,
    }
}

/// A test clock that advances `step` seconds per reading.
#[cfg(test)]
pub(crate) struct SteppingClock {
    now: std::cell::Cell<f64>,
    step: f64,
}

#[cfg(test)]
impl SteppingClock {
    pub(crate) fn new(step: f64) -> Self {
        SteppingClock {
            now: std::cell::Cell::new(0.0),
            step,
        }
    }
}

#[cfg(test)]
impl Clock for SteppingClock {
    fn seconds(&self) -> f64 {
        self.now.set(self.now.get() + self.step);
        self.now.get()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fixed(Verdict);
    impl Guardrail for Fixed {
        fn check(&self, _: PipelineMode, _: &Request) -> Verdict {
            self.0.clone()
        }
    }

    /// Fails when the last message contains a marker; otherwise passes.
    struct FailIfContains(&'static str);
    impl Guardrail for FailIfContains {
        fn check(&self, _: PipelineMode, r: &Request) -> Verdict {
            if r.messages
                .last()
                .is_some_and(|m| m.content.contains(self.0))
            {
                Verdict::Fail(format!("found {}", self.0))
            } else {
                Verdict::Pass(Rewrite::None)
            }
        }
    }

    struct Set(HashMap<&'static str, Box<dyn Guardrail>>);
    impl GuardrailSet for Set {
        fn find(&self, name: &str) -> Option<&dyn Guardrail> {
            self.0.get(name).map(|b| b.as_ref())
        }
    }

    struct ZeroClock;
    impl Clock for ZeroClock {
        fn seconds(&self) -> f64 {
            0.0
        }
    }

    fn step(g: &str) -> Step {
        Step {
            guardrail: g.into(),
            on_pass: PipelineAction::Allow,
            on_fail: PipelineAction::Block,
            on_error: None,
            pass_data: false,
            modify_response_message: None,
        }
    }

    fn req(text: &str) -> Request {
        Request {
            messages: vec![Message {
                role: "user".into(),
                content: text.into(),
            }],
            ..Default::default()
        }
    }

    fn rewritten(text: &str) -> Verdict {
        Verdict::Pass(Rewrite::Returned(req(text)))
    }

    #[test]
    fn defaults_first_pass_allows_first_failure_blocks() {
        let set = Set(HashMap::from([(
            "a",
            Box::new(Fixed(Verdict::Fail("no".into()))) as Box<dyn Guardrail>,
        )]));
        let p = Pipeline {
            mode: PipelineMode::PreCall,
            steps: vec![step("a"), step("b")],
        };
        let r = execute(&p, &req("x"), &set, &ZeroClock);
        assert_eq!(r.terminal_action, TerminalAction::Block);
        assert_eq!(r.error_message.as_deref(), Some("no"));
        assert_eq!(r.steps.len(), 1);
    }

    #[test]
    fn missing_guardrail_errors_and_on_error_falls_back_to_on_fail() {
        let set = Set(HashMap::new());
        let mut s = step("ghost");
        s.on_fail = PipelineAction::Next;
        let p = Pipeline {
            mode: PipelineMode::PreCall,
            steps: vec![s],
        };
        let r = execute(&p, &req("x"), &set, &ZeroClock);
        assert_eq!(r.steps[0].outcome, StepOutcome::Error);
        assert_eq!(
            r.steps[0].detail.as_deref(),
            Some("Guardrail 'ghost' not found")
        );
        assert_eq!(r.steps[0].action, PipelineAction::Next);
        assert_eq!(
            r.terminal_action,
            TerminalAction::Allow,
            "running off the end allows"
        );
    }

    #[test]
    fn pass_data_controls_returned_payloads_only() {
        let set = Set(HashMap::from([
            (
                "rw",
                Box::new(Fixed(rewritten("MARK"))) as Box<dyn Guardrail>,
            ),
            (
                "chk",
                Box::new(FailIfContains("MARK")) as Box<dyn Guardrail>,
            ),
        ]));
        for (pass_data, expect) in [
            (false, TerminalAction::Allow),
            (true, TerminalAction::Block),
        ] {
            let mut first = step("rw");
            first.on_pass = PipelineAction::Next;
            first.pass_data = pass_data;
            let p = Pipeline {
                mode: PipelineMode::PreCall,
                steps: vec![first, step("chk")],
            };
            assert_eq!(
                execute(&p, &req("x"), &set, &ZeroClock).terminal_action,
                expect
            );
        }
        // post_call always chains.
        let mut first = step("rw");
        first.on_pass = PipelineAction::Next;
        let p = Pipeline {
            mode: PipelineMode::PostCall,
            steps: vec![first, step("chk")],
        };
        assert_eq!(
            execute(&p, &req("x"), &set, &ZeroClock).terminal_action,
            TerminalAction::Block
        );
    }

    #[test]
    fn modify_response_message_falls_back_to_detail() {
        let set = Set(HashMap::from([(
            "a",
            Box::new(Fixed(Verdict::Fail("why".into()))) as Box<dyn Guardrail>,
        )]));
        let mut s = step("a");
        s.on_fail = PipelineAction::ModifyResponse;
        s.modify_response_message = Some(String::new());
        let p = Pipeline {
            mode: PipelineMode::PreCall,
            steps: vec![s.clone()],
        };
        assert_eq!(
            execute(&p, &req("x"), &set, &ZeroClock)
                .modify_response_message
                .as_deref(),
            Some("why")
        );
        s.modify_response_message = Some("Refused".into());
        let p = Pipeline {
            mode: PipelineMode::PreCall,
            steps: vec![s],
        };
        assert_eq!(
            execute(&p, &req("x"), &set, &ZeroClock)
                .modify_response_message
                .as_deref(),
            Some("Refused")
        );
    }

    #[test]
    fn skip_goes_on_and_on_pass_block_has_no_message() {
        let set = Set(HashMap::from([
            ("s", Box::new(Fixed(Verdict::Skip)) as Box<dyn Guardrail>),
            (
                "p",
                Box::new(Fixed(Verdict::Pass(Rewrite::None))) as Box<dyn Guardrail>,
            ),
        ]));
        let mut last = step("p");
        last.on_pass = PipelineAction::Block;
        let p = Pipeline {
            mode: PipelineMode::PreCall,
            steps: vec![step("s"), last],
        };
        let r = execute(&p, &req("x"), &set, &ZeroClock);
        assert_eq!(r.steps[0].action, PipelineAction::Next);
        assert_eq!(r.terminal_action, TerminalAction::Block);
        assert_eq!(r.error_message, None);
        assert!(step_is_detect_only(&Step {
            on_pass: PipelineAction::Next,
            on_fail: PipelineAction::Allow,
            ..step("x")
        }));
        assert!(!step_is_detect_only(&step("x")));
    }

    #[test]
    fn a_deadline_stops_the_run_before_the_next_step_and_says_so() {
        let names = ["a", "b", "c", "d", "e"];
        let p = Pipeline {
            mode: PipelineMode::PreCall,
            steps: names
                .iter()
                .map(|g| Step {
                    on_pass: PipelineAction::Next,
                    ..step(g)
                })
                .collect(),
        };
        let set = Set(names
            .iter()
            .map(|g| {
                (
                    *g,
                    Box::new(Fixed(Verdict::Pass(Rewrite::None))) as Box<dyn Guardrail>,
                )
            })
            .collect());
        let ticking = SteppingClock::new(1.0);
        // Reading 1 now; step a reads 2 (the check), 3 and 4 (its timing); b's check reads 5.
        let clock = Deadline {
            clock: &ticking,
            at: ticking.seconds() + 3.0,
        };
        let r = execute(&p, &req("x"), &set, &clock);
        assert_eq!(r.terminal_action, TerminalAction::Block);
        assert_eq!(
            r.steps
                .iter()
                .map(|s| s.guardrail.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            r.error_message.as_deref(),
            Some("stopped before step 'b': the time budget ran out")
        );
        // Without a deadline the same pipeline runs every step.
        let r = execute(&p, &req("x"), &set, &SteppingClock::new(1.0));
        assert_eq!(r.steps.len(), 5);
        assert_eq!(r.terminal_action, TerminalAction::Allow);
    }
}
