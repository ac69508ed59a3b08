//! Hostile and broken input, table-driven through `guardrail-operator validate`/`render`: each
//! bad manifest with the message a person gets (a start on issue 9's table).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

fn run_on(args: &[&str], manifest: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!(
        "hostile-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("m.yaml");
    std::fs::write(&f, manifest).unwrap();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["-f", f.to_str().unwrap()]);
    let o = Command::new(env!("CARGO_BIN_EXE_guardrail-operator"))
        .args(&all)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn version(name: &str, policy: &str, v: i64, extra: &str) -> String {
    format!(
        "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  policy: {policy}\n  version: {v}\n{extra}---\n"
    )
}

#[test]
fn bad_manifests_each_with_a_clear_message() {
    let many: Vec<String> = (0..300).map(|i| format!("g{i}")).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("not YAML", "apiVersion: [unclosed".into(), "not valid YAML"),
        (
            "wrong version",
            "apiVersion: guardrails.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec: {}\n".into(),
            "apiVersion: guardrails.dev/v1 is not served; use guardrails.dev/v1alpha1",
        ),
        (
            "no name",
            "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {}\nspec: {}\n".into(),
            "metadata.name: required value",
        ),
        (
            "string version",
            version("p-v1", "p", 1, "").replace("version: 1", "version: one"),
            "spec.version: must be of type integer, got string",
        ),
        (
            "huge add list",
            version(
                "p-v1",
                "p",
                1,
                &format!("  guardrails: {{add: [{}]}}\n", many.join(", ")),
            ),
            "spec.guardrails.add: must have at most 256 items (got 300)",
        ),
        (
            "bad stage",
            version("p-v1", "p", 1, "  stage: Live\n"),
            "spec.stage: unsupported value \"Live\"",
        ),
        (
            "uppercase policy name",
            version("p-v1", "Pii", 1, ""),
            "spec.policy: \"Pii\" is not a DNS-1123 subdomain",
        ),
        (
            "empty DNS label in spec.policy",
            version("p-v1", "app..eu", 1, ""),
            "spec.policy: \"app..eu\" is not a DNS-1123 subdomain",
        ),
        (
            "empty DNS label in inherit",
            version("p-v1", "p", 1, "  inherit: base..eu\n"),
            "spec.inherit: \"base..eu\" is not a DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, '-' and '.', with every '.'-separated label non-empty and starting and ending with a letter or digit; it has an empty label",
        ),
        (
            "empty DNS label in an attachment's policy",
            "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {name: a, namespace: ns}\nspec: {policy: app..eu, scope: '*'}\n".into(),
            "spec.policy: \"app..eu\" is not a DNS-1123 subdomain",
        ),
        (
            "condition.model lists nested 300 deep",
            version(
                "p-v1",
                "p",
                1,
                &format!("  condition: {{model: {}x{}}}\n", "[".repeat(300), "]".repeat(300)),
            ),
            // The YAML reader's depth guard stops first, at the exact place.
            "(document 1): not valid YAML: error: line 7 column 276: recursion limit exceeded",
        ),
        (
            "condition.model as a nested list",
            version("p-v1", "p", 1, "  condition: {model: [[gpt-4o]]}\n"),
            "spec.condition.model[0]: must be a string (a model name or regular expression), got [\"gpt-4o\"]",
        ),
        (
            "model as a number",
            version("p-v1", "p", 1, "  condition: {model: 5}\n"),
            "spec.condition.model: must be a string or a list of strings, got 5",
        ),
        (
            "possessive quantifier",
            version("p-v1", "p", 1, "  condition: {model: 'gpt-4*+'}\n"),
            "uses a possessive quantifier",
        ),
        (
            "backreference",
            version("p-v1", "p", 1, "  condition: {model: '(a)\\1'}\n"),
            "uses a backreference",
        ),
        (
            "unknown step key",
            version(
                "p-v1",
                "p",
                1,
                "  guardrails: {add: [a]}\n  pipeline:\n    steps: [{guardrail: a, retries: 3}]\n",
            ),
            "spec.pipeline.steps[0].retries: unknown field",
        ),
        (
            "bad action",
            version(
                "p-v1",
                "p",
                1,
                "  guardrails: {add: [a]}\n  pipeline:\n    steps: [{guardrail: a, onFail: retry}]\n",
            ),
            "spec.pipeline.steps[0].onFail: unsupported value \"retry\"",
        ),
    ];
    let mut failures = Vec::new();
    for (what, manifest, needle) in &cases {
        let (code, out) = run_on(&["validate"], manifest);
        if code == Some(0) || !out.contains(needle) {
            failures.push(format!(
                "{what}: exit {code:?}, expected {needle:?} in:\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unicode_names_and_texts_are_opaque_strings() {
    let m = "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {name: p, namespace: ns}\nspec: {description: \"Überprüfung 🚦 政策\"}\n---\n".to_string()
        + &version("p-v1", "p", 1, "  stage: Production\n  guardrails: {add: [\"pii-blocker-ü\", \"政策\"]}\n")
        + "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {name: a, namespace: ns}\nspec: {policy: p, teams: [\"équipe-*\"]}\n";
    let (code, out) = run_on(&["resolve", "--team", "équipe-α", "-o", "json"], &m);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"政策\"") && out.contains("team:équipe-α"),
        "{out}"
    );
}

#[test]
fn deep_inheritance_is_bounded_and_reported() {
    let mut m = String::new();
    for i in 0..101 {
        let parent = if i < 100 {
            format!("  inherit: p{}\n", i + 1)
        } else {
            String::new()
        };
        m.push_str(&format!("apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: p{i}, namespace: ns}}\nspec: {{}}\n---\n"));
        m.push_str(&version(
            &format!("p{i}-v1"),
            &format!("p{i}"),
            1,
            &format!("  stage: Production\n{parent}  guardrails: {{add: [g]}}\n"),
        ));
    }
    let (_, out) = run_on(&["validate"], &m);
    assert!(
        out.contains("Inheritance chain too deep (exceeded max depth of 100)"),
        "{out}"
    );
    // The bottom policy never reaches production: 100 of the 101 do.
    let (code, out) = run_on(&["render", "--key", "resolved.json"], &m);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("\"p0\"") && out.contains("\"p1\""),
        "p0 is 101 deep"
    );
}

#[test]
fn pathological_regexes_stay_linear() {
    let m = version(
        "p-v1",
        "p",
        1,
        "  stage: Production\n  condition: {model: '(a+)+$'}\n  guardrails: {add: [g]}\n",
    ) + "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {name: p, namespace: ns}\nspec: {}\n---\napiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {name: a, namespace: ns}\nspec: {policy: p, scope: \"*\"}\n";
    let model = format!("{}!", "a".repeat(50_000));
    let start = Instant::now();
    let (code, out) = run_on(&["resolve", "--model", &model, "-o", "json"], &m);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"matchedPolicies\": []"),
        "no match for a catastrophic-backtracking input: {}",
        &out[..out.len().min(300)]
    );
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

#[test]
fn an_oversized_bundle_is_refused_not_truncated() {
    let mut m = String::new();
    let names: Vec<String> = (0..250)
        .map(|i| format!("guardrail-with-a-rather-long-name-{i:04}"))
        .collect();
    for i in 0..60 {
        m.push_str(&format!("apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: p{i}, namespace: ns}}\nspec: {{}}\n---\n"));
        m.push_str(&version(
            &format!("p{i}-v1"),
            &format!("p{i}"),
            1,
            &format!(
                "  stage: Production\n  guardrails: {{add: [{}]}}\n",
                names.join(", ")
            ),
        ));
    }
    let (code, out) = run_on(&["render"], &m);
    assert_eq!(code, Some(1), "{}", &out[..out.len().min(300)]);
    assert!(
        out.contains("over the ConfigMap limit of 1048576; the last good bundle is kept"),
        "{out}"
    );
}

/// Found with the `condition_regex` fuzz target (4,000 nested groups: an AddressSanitizer
/// stack overflow): a condition pattern of 100,000 nested groups overflowed the parser's stack
/// and aborted the process (`validate` died with SIGABRT; the webhook and controller would
/// too). Deep nesting is now an unsupported construct.
#[test]
fn deeply_nested_condition_pattern_is_refused_not_a_crash() {
    let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    let m = version(
        "p-v1",
        "p",
        1,
        &format!("  condition: {{model: \"{deep}\"}}\n  guardrails: {{add: [g]}}\n"),
    );
    let start = Instant::now();
    let (code, out) = run_on(&["validate"], &m);
    assert_eq!(code, Some(1), "{}", &out[out.len().saturating_sub(300)..]);
    assert!(
        out.contains("uses groups nested more than 100 deep, which the operator does not evaluate"),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

/// The same stack overflow in the content filter's Python-regex parser, from a catalog's
/// `pattern_type: regex` rule (found next to the fuzz finding above).
#[test]
fn deeply_nested_content_filter_regex_is_refused_not_a_crash() {
    let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    let dir = std::env::temp_dir().join(format!(
        "hostile-cat-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("catalog.yaml");
    std::fs::write(
        &catalog,
        format!(
            "guardrails:\n  - guardrail_name: cf\n    litellm_params:\n      guardrail: litellm_content_filter\n      mode: pre_call\n      patterns:\n        - {{pattern_type: regex, name: deep, action: BLOCK, pattern: \"{deep}\"}}\n"
        ),
    )
    .unwrap();
    let m = "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {name: p, namespace: ns}\nspec: {}\n---\n".to_string()
        + &version(
            "p-v1",
            "p",
            1,
            "  guardrails: {add: [cf]}\n  tests:\n    - name: t\n      messages: [{role: user, content: hi}]\n      expect: {action: allow}\n",
        );
    let (code, out) = run_on(&["test", "--catalog", catalog.to_str().unwrap()], &m);
    let _ = std::fs::remove_dir_all(&dir);
    let tail = &out[out.len().saturating_sub(400)..];
    assert!(code.is_some(), "killed by a signal: {tail}");
    assert!(out.contains("groups nested more than 100 deep"), "{tail}");
}

/// A 200,000-character pattern gets a short message, not a 200 KB one.
#[test]
fn a_huge_rejected_pattern_is_quoted_short() {
    let pattern = format!("{}(a)\\1", "a".repeat(200_000));
    let (code, out) = run_on(
        &["validate"],
        &version(
            "p-v1",
            "p",
            1,
            &format!("  condition: {{model: '{pattern}'}}\n"),
        ),
    );
    assert_ne!(code, Some(0));
    assert!(
        out.contains("(200005 characters)"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(out.len() < 5_000, "message of {} bytes", out.len());
}
