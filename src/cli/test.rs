//! `test`: run every PolicyVersion's `spec.tests` offline with the executor and guardrails the
//! webhook uses; a per-test, per-step report (coloured on a terminal), JSON or JUnit XML.

use std::io::IsTerminal as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::manifests::read;
use super::{Failure, TestArgs, TestOutput, read_catalog};
use crate::engine::catalog::Catalog;
use crate::engine::namespace::{checked_content, desired_production};
use crate::engine::pipeline::MonotonicClock;
use crate::engine::testing::{GuardrailProvider, TestOutcome, run_tests};

/// The guardrails that run for real offline, from the catalog: the one place the CLI, the
/// controller and the webhook get them from.
pub fn provider(catalog: Option<&Catalog>) -> Arc<dyn GuardrailProvider + Send + Sync> {
    (crate::providers::default_provider())(catalog)
}

/// One test's result in `-o json` (api.md §7).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultJson {
    pub namespace: String,
    pub policy: String,
    pub version: i64,
    pub test: String,
    pub passed: bool,
    pub action: Option<String>,
    pub expected: serde_json::Value,
    pub blocked_by: Option<String>,
    pub message: Option<String>,
    pub failures: Vec<String>,
    pub messages: serde_json::Value,
    pub steps: Vec<serde_json::Value>,
}

fn to_json(
    ns: &str,
    policy: &str,
    version: i64,
    expected: serde_json::Value,
    t: &TestOutcome,
) -> ResultJson {
    ResultJson {
        namespace: ns.to_string(),
        policy: policy.to_string(),
        version,
        test: t.name.clone(),
        passed: t.passed,
        action: Some(t.action.as_str().to_string()),
        expected,
        blocked_by: t.blocked_by.clone(),
        message: t.message.clone(),
        failures: t.failures.clone(),
        messages: serde_json::to_value(&t.messages).unwrap_or_default(),
        steps: t
            .steps
            .iter()
            .map(|s| json!({"guardrail": s.guardrail, "outcome": s.outcome.as_str(), "action": s.action.as_str(), "durationSeconds": s.duration_seconds, "detail": s.detail}))
            .collect(),
    }
}

/// Run every test of every version read.
pub fn collect(args: &TestArgs) -> Result<Vec<ResultJson>, Failure> {
    let catalog = read_catalog(args.inputs.catalog.as_deref())?;
    let provider = provider(catalog.as_ref());
    let m = read(&args.inputs.files, args.inputs.recursive).map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let clock = MonotonicClock::default();
    let mut out = Vec::new();
    let namespaces = match &args.inputs.namespace {
        Some(ns) => vec![ns.clone()],
        None => m.namespaces(),
    };
    for ns in namespaces {
        let objects = m.objects(&ns);
        let others_all = desired_production(&objects.versions);
        for v in &objects.versions {
            let Some(tests) = v.spec.tests.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            let (content, _) = checked_content(v);
            let content = match content {
                Ok(c) => c,
                Err(e) => {
                    for t in tests {
                        out.push(ResultJson {
                            namespace: ns.clone(),
                            policy: v.spec.policy.clone(),
                            version: v.spec.version,
                            test: t.name.clone(),
                            passed: false,
                            action: None,
                            expected: serde_json::to_value(&t.expect).unwrap_or_default(),
                            blocked_by: None,
                            message: None,
                            failures: vec![format!(
                                "the version's content is invalid, so its tests cannot run: {e}"
                            )],
                            messages: serde_json::Value::Array(Vec::new()),
                            steps: Vec::new(),
                        });
                    }
                    continue;
                }
            };
            let outcomes = run_tests(
                &v.spec.policy,
                &content,
                tests,
                &others_all,
                provider.as_ref(),
                &clock,
            );
            for (t, o) in tests.iter().zip(&outcomes) {
                out.push(to_json(
                    &ns,
                    &v.spec.policy,
                    v.spec.version,
                    serde_json::to_value(&t.expect).unwrap_or_default(),
                    o,
                ));
            }
        }
    }
    Ok(out)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn step_lines(r: &ResultJson) -> Vec<String> {
    r.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "step {}: {} -> {} ({}, {:.4}s){}",
                i + 1,
                s["guardrail"].as_str().unwrap_or(""),
                s["outcome"].as_str().unwrap_or(""),
                s["action"].as_str().unwrap_or(""),
                s["durationSeconds"].as_f64().unwrap_or(0.0),
                s["detail"]
                    .as_str()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// `test`.
pub fn run(args: &TestArgs) -> Result<i32, Failure> {
    let results = collect(args)?;
    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    match args.output {
        TestOutput::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"passed": passed, "failed": failed, "results": results})
                )
                .unwrap_or_default()
            );
        }
        TestOutput::Junit => {
            println!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            println!(
                "<testsuites name=\"guardrail-operator\" tests=\"{}\" failures=\"{failed}\">",
                results.len()
            );
            println!(
                "  <testsuite name=\"policy tests\" tests=\"{}\" failures=\"{failed}\">",
                results.len()
            );
            for r in &results {
                let secs: f64 = r
                    .steps
                    .iter()
                    .filter_map(|s| s["durationSeconds"].as_f64())
                    .sum();
                let class = xml_escape(&format!("{}/{} v{}", r.namespace, r.policy, r.version));
                print!(
                    "    <testcase classname=\"{class}\" name=\"{}\" time=\"{secs:.4}\"",
                    xml_escape(&r.test)
                );
                if r.passed {
                    println!("/>");
                } else {
                    let mut body = r.failures.join("\n");
                    for l in step_lines(r) {
                        body.push('\n');
                        body.push_str(&l);
                    }
                    println!(
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&r.failures.join("; ")),
                        xml_escape(&body)
                    );
                }
            }
            println!("  </testsuite>\n</testsuites>");
        }
        TestOutput::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let paint = |code: &str, s: &str| {
                if color {
                    format!("\x1b[{code}m{s}\x1b[0m")
                } else {
                    s.to_string()
                }
            };
            for r in &results {
                let mark = if r.passed {
                    paint("32", "PASS")
                } else {
                    paint("31", "FAIL")
                };
                println!(
                    "{mark} {}/{} v{} {}: {}{}",
                    r.namespace,
                    r.policy,
                    r.version,
                    r.test,
                    r.action.as_deref().unwrap_or("not run"),
                    r.blocked_by
                        .as_ref()
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default()
                );
                for f in &r.failures {
                    println!("     {}", paint("31", f));
                }
                if !r.passed {
                    if let Some(m) = &r.message {
                        println!("     message: {m:?}");
                    }
                    for l in step_lines(r) {
                        println!("     {l}");
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
