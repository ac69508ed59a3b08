//! The command line on the example repository and on broken inputs, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run guardrail-operator")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(args: &[&str]) -> Value {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json output")
}

const REPO: &str = "examples/policy-repo";
const CATALOG: &str = "examples/policy-repo/00-catalog.yaml";

#[test]
fn validate_accepts_the_example_repository() {
    let o = run(&["validate", "-f", REPO, "--catalog", CATALOG]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).starts_with(
        "valid: 4 Policy, 5 PolicyVersion, 5 PolicyAttachment; 0 error(s), 0 warning(s)"
    ));
}

#[test]
fn validate_names_file_document_object_field_and_fix() {
    let o = run(&["validate", "-f", "examples/broken/bad-schema.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for expected in [
        "error: examples/broken/bad-schema.yaml (document 1): PolicyVersion llm-gateway/typo-v1: spec.version: must be greater than or equal to 1",
        "error: examples/broken/bad-schema.yaml (document 1): PolicyVersion llm-gateway/typo-v1: spec.guardrails.ad: unknown field (check the spelling; see `kubectl explain`)",
        "error: examples/broken/bad-schema.yaml (document 1): PolicyVersion llm-gateway/typo-v1: spec.pipeline.mode: unsupported value \"during_call\"; supported values: \"pre_call\", \"post_call\"",
        "error: examples/broken/bad-schema.yaml (document 1): PolicyVersion llm-gateway/typo-v1: spec.pipeline.steps: must have at least 1 item(s)",
    ] {
        assert!(
            out.contains(expected),
            "missing line:\n{expected}\n--- got:\n{out}"
        );
    }
}

#[test]
fn validate_reports_content_cycles_duplicates_and_unsupported_regex() {
    let v = {
        let o = run(&[
            "validate",
            "-f",
            "examples/broken/bad-content.yaml",
            "-o",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(1));
        serde_json::from_slice::<Value>(&o.stdout).expect("json")
    };
    assert_eq!(v["valid"], false);
    let errors: Vec<(String, String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["field"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |name: &str, field: &str, needle: &str| {
        errors
            .iter()
            .any(|(n, f, m)| n == name && f == field && m.contains(needle))
    };
    assert!(
        has(
            "loop-a-v1",
            "spec.pipeline.steps",
            "Pipeline step 0 guardrail 'not-added' is not in the policy's guardrails.add list"
        ),
        "{errors:?}"
    );
    assert!(
        has(
            "loop-a-v1",
            "spec.condition.model",
            "'(gpt)-\\1' uses a backreference"
        ),
        "{errors:?}"
    );
    assert!(
        has(
            "loop-b-v1-again",
            "spec.version",
            "is also defined by PolicyVersion 'loop-b-v1'"
        ),
        "{errors:?}"
    );
    assert!(
        has("loop-a-v1", "spec.inherit", "Circular inheritance detected"),
        "{errors:?}"
    );
    assert!(
        has("loop-b-v1", "spec.inherit", "Circular inheritance detected"),
        "{errors:?}"
    );
}

#[test]
fn validate_warns_about_references_that_may_arrive_later() {
    let o = run(&[
        "validate",
        "-f",
        "examples/policy-repo/20-research-team.yaml",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "warnings do not fail: {}",
        stdout(&o)
    );
    assert!(stdout(&o).contains(
        "warning: examples/policy-repo/20-research-team.yaml (document 2): PolicyVersion llm-gateway/research-v1: spec.inherit: Parent policy 'org-baseline' not found (LiteLLM: invalid_inheritance)"
    ), "{}", stdout(&o));
}

#[test]
fn resolve_matches_litellm_order_reasons_and_union() {
    let v = json(&[
        "resolve",
        "-f",
        REPO,
        "--team",
        "research-nlp",
        "--model",
        "claude-3-opus",
        "--tag",
        "external",
        "-o",
        "json",
    ]);
    assert_eq!(
        v["effectiveGuardrails"],
        serde_json::json!([
            "audit-logger",
            "legacy-filter",
            "pii-blocker",
            "prompt-injection",
            "toxicity-filter"
        ])
    );
    let matched: Vec<(&str, &str)> = v["matchedPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["policyName"].as_str().unwrap(),
                m["matchedVia"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        matched,
        vec![
            ("research", "team:research-nlp"),
            ("org-baseline", "scope:*"),
            ("claude-audit", "tag:external")
        ]
    );
    // The research policy removes legacy-filter, but the baseline is attached too: union.
    assert_eq!(
        v["matchedPolicies"][0]["guardrailsAdded"],
        serde_json::json!(["pii-blocker", "prompt-injection", "toxicity-filter"])
    );
}

#[test]
fn resolve_model_condition_and_defaults() {
    // claude-audit's condition does not match gpt-4o, so the tag attachment does not apply.
    let v = json(&[
        "resolve", "-f", REPO, "--model", "gpt-4o", "--tag", "external", "-o", "json",
    ]);
    let names: Vec<&str> = v["matchedPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["policyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["org-baseline"]);
    let v = json(&[
        "resolve",
        "-f",
        REPO,
        "--key",
        "partner-acme",
        "--model",
        "gpt-4o",
        "-o",
        "json",
    ]);
    assert_eq!(
        v["matchedPolicies"][0]["matchedVia"],
        "key:partner-acme+model:gpt-4o"
    );
}

#[test]
fn resolve_reads_stdin_and_refuses_ambiguous_namespaces() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args(["resolve", "-f", "-", "-o", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let manifest = std::fs::read_to_string(format!(
        "{}/{REPO}/10-org-baseline.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), manifest.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["matchedPolicies"][0]["matchedVia"], "scope:*");

    let dir = std::env::temp_dir().join(format!("go-ns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let other = manifest.replace("namespace: llm-gateway", "namespace: other");
    std::fs::write(dir.join("a.yaml"), &manifest).unwrap();
    std::fs::write(dir.join("b.yaml"), other).unwrap();
    let o = run(&["resolve", "-f", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(
        "the objects are in several namespaces (llm-gateway, other); pick one with -n/--namespace"
    ));
    let o = run(&[
        "resolve",
        "-f",
        dir.to_str().unwrap(),
        "-n",
        "other",
        "-o",
        "json",
    ]);
    assert!(o.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_directory_needs_recursion_only_for_subdirectories() {
    let o = run(&["validate", "-f", "examples"]);
    // examples/ has no YAML at its top level: nothing is read without -R.
    assert!(
        stdout(&o).contains("0 Policy, 0 PolicyVersion, 0 PolicyAttachment"),
        "{}",
        stdout(&o)
    );
    let o = run(&["validate", "-R", "-f", "examples"]);
    assert!(
        !stdout(&o).contains("0 Policy, 0 PolicyVersion"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn crds_prints_what_crds_dir_holds() {
    let o = run(&["crds"]);
    assert!(o.status.success());
    let printed = stdout(&o);
    for f in ["policies", "policyversions", "policyattachments"] {
        let on_disk =
            std::fs::read_to_string(format!("{}/crds/{f}.yaml", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        assert!(
            printed.contains(&on_disk),
            "crds/{f}.yaml is not what `crds` prints"
        );
    }
}

#[test]
fn help_lists_every_command() {
    let o = run(&["--help"]);
    let help = stdout(&o);
    for cmd in ["crds", "validate", "resolve", "plan"] {
        assert!(help.contains(cmd), "--help does not mention {cmd}");
    }
}

#[test]
fn test_command_passes_on_the_examples_and_reports_failures_it_can_act_on() {
    let o = run(&["test", "-f", REPO]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).ends_with("3 passed, 0 failed\n"),
        "{}",
        stdout(&o)
    );

    let o = run(&["test", "-f", "examples/broken/failing-test.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for needle in [
        "FAIL llm-gateway/leaky v1 ssn-must-be-blocked: allow",
        "expected action block, got allow",
        "expected blockedBy pii-blocker, got nothing",
        "step 1: pii-blocker -> fail (next, 0.0000s): Mocked failure of guardrail 'pii-blocker'",
        "add `mocks: {prompt-injection: pass|fail|error}` to the test",
        "0 passed, 2 failed",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        !out.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );

    let v: Value = serde_json::from_slice(
        &run(&[
            "test",
            "-f",
            "examples/broken/failing-test.yaml",
            "-o",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(0), Some(2))
    );
    let r = &v["results"][0];
    assert_eq!(r["policy"], "leaky");
    assert_eq!(r["version"], 1);
    assert_eq!(
        r["expected"],
        serde_json::json!({"action": "block", "blockedBy": "pii-blocker"})
    );
    assert_eq!(r["steps"][0]["outcome"], "fail");
    assert_eq!(r["steps"][0]["action"], "next");
    assert!(r["steps"][0]["durationSeconds"].is_number());

    let junit = stdout(&run(&[
        "test",
        "-f",
        "examples/broken/failing-test.yaml",
        "-o",
        "junit",
    ]));
    assert!(
        junit.contains("<testsuites name=\"guardrail-operator\" tests=\"2\" failures=\"2\">"),
        "{junit}"
    );
    assert!(junit.contains("<failure message=\"expected action block, got allow; expected blockedBy pii-blocker, got nothing\">"), "{junit}");
}

#[test]
fn render_prints_the_bundle_and_refuses_what_the_operator_would_refuse() {
    let o = run(&["render", "-f", REPO, "--catalog", CATALOG]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(
        out.contains("kind: ConfigMap")
            && out.contains("name: guardrail-gateway-config")
            && out.contains("guardrails.dev/content-hash: sha256:"),
        "{out}"
    );
    let yaml = stdout(&run(&["render", "-f", REPO, "--key", "policies.yaml"]));
    assert!(
        yaml.starts_with("# Generated by guardrail-operator"),
        "{yaml}"
    );
    assert!(yaml.contains("policy_attachments:"), "{yaml}");
    // The Draft research-v2 is not in the bundle; the production research-v1 is.
    assert!(
        yaml.contains("research:") && !yaml.contains("Next revision"),
        "{yaml}"
    );
    // Deterministic bytes.
    assert_eq!(
        yaml,
        stdout(&run(&["render", "-f", REPO, "--key", "policies.yaml"]))
    );
    let o = run(&["render", "-f", REPO, "--key", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--key nope: the bundle has only policies.yaml, resolved.json")
    );
}

#[test]
fn diff_shows_litellm_field_diffs() {
    let v = json(&[
        "diff", "-f", REPO, "--policy", "research", "1", "2", "-o", "json",
    ]);
    assert_eq!(
        v["field_diffs"]["guardrails_add"]["version_a"],
        serde_json::json!(["toxicity-filter"])
    );
    assert_eq!(
        v["field_diffs"]["guardrails_add"]["version_b"],
        serde_json::json!(["toxicity-filter", "audit-logger"])
    );
    assert_eq!(v["field_diffs"]["description"]["version_a"], Value::Null);
    assert!(
        v["field_diffs"].get("inherit").is_none(),
        "equal fields are left out"
    );
    let text = stdout(&run(&[
        "diff", "-f", REPO, "--policy", "research", "1", "2",
    ]));
    assert!(text.contains("guardrails_add:\n  - version 1: [\"toxicity-filter\"]\n  + version 2: [\"toxicity-filter\",\"audit-logger\"]"), "{text}");
    let o = run(&["diff", "-f", REPO, "--policy", "research", "1", "9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(
        "policy 'research' has no version 9 in namespace llm-gateway; versions found: 1, 2"
    ));
}

#[test]
fn every_command_help_lists_its_flags() {
    let cases: &[(&str, &[&str])] = &[
        (
            "run",
            &[
                "--namespace",
                "--bundle-name",
                "--catalog-configmap",
                "--gateway-deployment",
                "--http-addr",
                "--leader-elect",
                "--webhook-addr",
                "--webhook-cert-dir",
                "--webhook-secret",
            ],
        ),
        ("crds", &["--dir"]),
        (
            "validate",
            &[
                "--filename",
                "--recursive",
                "--namespace",
                "--catalog",
                "--output",
            ],
        ),
        (
            "resolve",
            &[
                "--filename",
                "--team",
                "--key",
                "--model",
                "--tag",
                "--output",
                "--live",
            ],
        ),
        ("test", &["--filename", "--catalog", "--output", "junit"]),
        (
            "render",
            &["--filename", "--bundle-name", "--key", "--output"],
        ),
        (
            "diff",
            &["--filename", "--policy", "<VERSION>", "--output", "--live"],
        ),
        (
            "plan",
            &[
                "--filename",
                "--base",
                "--base-ref",
                "--live",
                "--catalog",
                "--contexts",
                "--messages",
                "markdown",
                "--detailed-exitcode",
            ],
        ),
        (
            "new-version",
            &[
                "<POLICY>",
                "--from",
                "--dry-run",
                "--output",
                "--namespace",
                "--kubeconfig",
                "--context",
            ],
        ),
        (
            "publish",
            &[
                "<POLICY>",
                "<VERSION>",
                "--wait",
                "--timeout",
                "--namespace",
            ],
        ),
        (
            "promote",
            &[
                "<POLICY>",
                "<VERSION>",
                "--wait",
                "--timeout",
                "--namespace",
            ],
        ),
        ("rollback", &["<POLICY>", "--to", "--wait", "--timeout"]),
        ("status", &["[POLICY]", "--namespace", "--kubeconfig"]),
    ];
    for (cmd, flags) in cases {
        let o = run(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help failed");
        let help = stdout(&o);
        for f in *flags {
            assert!(
                help.contains(f),
                "`{cmd} --help` does not mention {f}:\n{help}"
            );
        }
    }
    let top = stdout(&run(&["--help"]));
    for cmd in [
        "run",
        "crds",
        "validate",
        "resolve",
        "test",
        "render",
        "diff",
        "new-version",
        "publish",
        "promote",
        "rollback",
        "status",
    ] {
        assert!(top.contains(cmd), "--help does not list {cmd}");
    }
}

/// A repository in one file far beyond the YAML parser's default budget (1,024 documents):
/// found by the crash-safety test, which renders ~1,000-object repositories.
#[test]
fn one_file_with_thousands_of_documents_is_read() {
    let dir = std::env::temp_dir().join(format!("many-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut y = String::new();
    for i in 0..3000 {
        y.push_str(&format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: p{i}, namespace: ns}}\nspec: {{}}\n---\napiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {{name: p{i}-v1, namespace: ns}}\nspec: {{policy: p{i}, version: 1, stage: Production, guardrails: {{add: [g{i}]}}}}\n---\n"
        ));
    }
    let file = dir.join("repo.yaml");
    std::fs::write(&file, y).unwrap();
    let o = run(&[
        "render",
        "-f",
        file.to_str().unwrap(),
        "--key",
        "resolved.json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policies"].as_object().map(|m| m.len()), Some(3000));
    let _ = std::fs::remove_dir_all(dir);
}
