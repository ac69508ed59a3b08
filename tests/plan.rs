//! `plan` through the real binary: the CI examples as they are written, run on a two-commit
//! git repository made from `examples/policy-repo`, plus exit codes, refusals and traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_guardrail-operator");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run guardrail-operator")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_repo(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(Path::new(ROOT).join("examples/policy-repo")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Set the stage of one PolicyVersion in a file.
fn set_stage(file: &Path, version: &str, from: &str, to: &str) {
    let s = std::fs::read_to_string(file).unwrap();
    let start = s
        .find(&format!("name: {version},"))
        .expect("version in file");
    let at = start + s[start..].find(&format!("stage: {from}")).expect("stage");
    let s = format!(
        "{}stage: {to}{}",
        &s[..at],
        &s[at + "stage: ".len() + from.len()..]
    );
    std::fs::write(file, s).unwrap();
}

/// A policy repository in git: `main` has research v2 in production; the checked-out branch
/// adds a guardrail for team research-nlp and rolls research back to v1.
fn two_commit_repo(name: &str) -> PathBuf {
    let dir = fresh_dir(name);
    git(&dir, &["init", "-q", "-b", "main"]);
    let policies = dir.join("policies");
    copy_repo(&policies);
    set_stage(
        &policies.join("20-research-team.yaml"),
        "research-v2",
        "Draft",
        "Production",
    );
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "research v2 in production"]);
    git(&dir, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    git(&dir, &["checkout", "-q", "-b", "change"]);
    set_stage(
        &policies.join("20-research-team.yaml"),
        "research-v2",
        "Production",
        "Published",
    );
    std::fs::copy(
        Path::new(ROOT).join("examples/plan/50-nlp-audit.yaml"),
        policies.join("50-nlp-audit.yaml"),
    )
    .unwrap();
    std::fs::copy(
        Path::new(ROOT).join("examples/plan/contexts.jsonl"),
        dir.join("contexts.jsonl"),
    )
    .unwrap();
    git(&dir, &["add", "-A"]);
    git(
        &dir,
        &[
            "commit",
            "-q",
            "-m",
            "audit logger for research-nlp; roll research back",
        ],
    );
    dir
}

/// The `guardrail-operator ...` lines of a CI file's shell steps.
fn operator_lines(ci: &Value, out: &mut Vec<String>) {
    match ci {
        Value::String(s) => {
            for line in s.lines() {
                let l = line.trim();
                if l.starts_with("guardrail-operator ") {
                    out.push(l.to_string());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| operator_lines(v, out)),
        Value::Object(m) => m.values().for_each(|v| operator_lines(v, out)),
        _ => {}
    }
}

fn bash_in(dir: &Path, line: &str) -> Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args(["-c", line])
        .env("PATH", path)
        .current_dir(dir)
        .output()
        .expect("bash")
}

#[test]
fn the_ci_examples_run_as_written_on_a_two_commit_repository() {
    for (file, base_ref) in [
        ("examples/ci/github-actions.yaml", "${{ github.base_ref }}"),
        (
            "examples/ci/gitlab-ci.yml",
            "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
        ),
    ] {
        let ci: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap())
                .unwrap();
        let mut lines = Vec::new();
        operator_lines(&ci, &mut lines);
        let verbs: Vec<&str> = lines
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
            .collect();
        assert_eq!(verbs, ["validate", "test", "plan"], "{file}: {lines:?}");
        assert!(
            lines[2].contains(&format!("--base-ref origin/{base_ref}"))
                || lines[2].contains(&format!("--base-ref \"origin/{base_ref}\"")),
            "{file}: {}",
            lines[2]
        );
        let repo = two_commit_repo(&format!("ci-{}", file.replace(['/', '.'], "-")));
        for line in &lines {
            let line = line.replace(base_ref, "main");
            let o = bash_in(&repo, &line);
            let code = o.status.code();
            if line.contains(" plan ") {
                assert_eq!(
                    code,
                    Some(2),
                    "{file}: `{line}` exits 2 (changes): {}",
                    text(&o.stderr)
                );
            } else {
                assert_eq!(
                    code,
                    Some(0),
                    "{file}: `{line}`: {}{}",
                    text(&o.stdout),
                    text(&o.stderr)
                );
            }
        }
        let md = std::fs::read_to_string(repo.join("plan.md")).unwrap();
        assert!(
            md.starts_with("### Guardrail plan for `llm-gateway`"),
            "{md}"
        );
        assert!(
            md.contains("| rolled back | `research` | v2 → v1 |"),
            "{md}"
        );
        assert!(md.contains("| enters | `nlp-audit` | v1 |"), "{md}");
        assert!(md.contains("`audit-logger`"), "{md}");
    }
}

/// The plan of the two-commit repository, as JSON, checked against `resolve` in both states.
#[test]
fn a_rollback_and_a_new_team_guardrail_plan_exactly_what_resolve_says() {
    let repo = two_commit_repo("plan-json");
    let o = run_in(
        &repo,
        &[
            "plan",
            "--base-ref",
            "origin/main",
            "-f",
            "policies/",
            "--catalog",
            "policies/00-catalog.yaml",
            "-o",
            "json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        p["production"]["entering"],
        serde_json::json!([{"policy": "nlp-audit", "version": 1}])
    );
    assert_eq!(p["production"]["leaving"], serde_json::json!([]));
    assert_eq!(p["production"]["replacing"][0]["policy"], "research");
    assert_eq!(p["production"]["replacing"][0]["from"], 2);
    assert_eq!(p["production"]["replacing"][0]["to"], 1);
    assert_eq!(p["refusals"], serde_json::json!([]));
    let changed = p["requests"]["changed"].as_array().unwrap();
    assert!(!changed.is_empty());
    // The base state: main's files.
    let base = fresh_dir("plan-json-base");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            base.join("wt").to_str().unwrap(),
            "origin/main",
        ],
    );
    for c in changed {
        let ex = &c["example"];
        let mut args: Vec<String> = vec![
            "resolve".into(),
            "--catalog".into(),
            "policies/00-catalog.yaml".into(),
            "-f".into(),
            "policies/".into(),
            "-o".into(),
            "json".into(),
        ];
        for (flag, k) in [("--team", "team"), ("--key", "key"), ("--model", "model")] {
            if let Some(v) = ex[k].as_str() {
                args.push(flag.into());
                args.push(v.into());
            }
        }
        for t in ex["tags"].as_array().into_iter().flatten() {
            args.push("--tag".into());
            args.push(t.as_str().unwrap().into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for (dir, want, policies) in [
            (base.join("wt"), &c["before"], &c["policiesBefore"]),
            (repo.clone(), &c["after"], &c["policiesAfter"]),
        ] {
            let o = run_in(&dir, &args);
            assert!(o.status.success(), "{}", text(&o.stderr));
            let r: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                &r["effectiveGuardrails"],
                want,
                "{} in {}",
                c["description"],
                dir.display()
            );
            let names: Vec<Value> = r["matchedPolicies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["policyName"].clone())
                .collect();
            assert_eq!(&Value::Array(names), policies);
        }
        let (b, a) = (
            c["before"].as_array().unwrap(),
            c["after"].as_array().unwrap(),
        );
        let added: Vec<&Value> = a.iter().filter(|g| !b.contains(g)).collect();
        let removed: Vec<&Value> = b.iter().filter(|g| !a.contains(g)).collect();
        assert_eq!(
            c["added"].as_array().unwrap().iter().collect::<Vec<_>>(),
            added
        );
        assert_eq!(
            c["removed"].as_array().unwrap().iter().collect::<Vec<_>>(),
            removed
        );
    }
    // research-* teams other than research-nlp lose the audit logger; research-nlp keeps it.
    assert!(changed.iter().any(|c| {
        c["removed"] == serde_json::json!(["audit-logger"])
            && c["example"]["team"]
                .as_str()
                .is_some_and(|t| t.starts_with("research-") && t != "research-nlp")
    }));
    git(
        &repo,
        &[
            "worktree",
            "remove",
            "--force",
            base.join("wt").to_str().unwrap(),
        ],
    );
}

#[test]
fn nothing_changes_exit_zero_and_usage_errors_exit_one() {
    let root = Path::new(ROOT);
    let o = run_in(
        root,
        &[
            "plan",
            "--base",
            "examples/policy-repo",
            "-f",
            "examples/policy-repo",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("0 production changes, 0 classes of requests change"),
        "{}",
        text(&o.stdout)
    );
    // No base, two bases, an unknown flag: exit 1 (2 means "changes").
    for args in [
        vec!["plan", "-f", "examples/policy-repo", "--detailed-exitcode"],
        vec![
            "plan",
            "--base",
            "examples/policy-repo",
            "--live",
            "-f",
            "examples/policy-repo",
            "--detailed-exitcode",
        ],
        vec!["plan", "--bogus", "--detailed-exitcode"],
    ] {
        let o = run_in(root, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
    }
    let o = run_in(root, &["plan", "-f", "examples/policy-repo"]);
    assert!(
        text(&o.stderr).contains("--base PATH")
            && text(&o.stderr).contains("--base-ref REV")
            && text(&o.stderr).contains("--live"),
        "{}",
        text(&o.stderr)
    );
    let o = run_in(
        root,
        &[
            "plan",
            "--base-ref",
            "no-such-rev",
            "-f",
            "examples/policy-repo",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no-such-rev is not a revision"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn edits_the_webhook_would_refuse_are_refusals_and_exit_one() {
    let dir = fresh_dir("plan-refusal");
    let (base, new) = (dir.join("base"), dir.join("new"));
    copy_repo(&base);
    copy_repo(&new);
    // Content edited outside Draft, and a stage back to Draft.
    let f = new.join("10-org-baseline.yaml");
    let s = std::fs::read_to_string(&f).unwrap().replace(
        "add: [pii-blocker, prompt-injection, legacy-filter]",
        "add: [pii-blocker, prompt-injection]",
    );
    std::fs::write(&f, s).unwrap();
    set_stage(
        &new.join("40-gated-pipeline.yaml"),
        "gated-v1",
        "Production",
        "Draft",
    );
    let o = run_in(&dir, &["plan", "--base", "base", "-f", "new", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let refusals = p["refusals"].as_array().unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r["object"] == "PolicyVersion/org-baseline-v1"
                && r["field"] == "spec"
                && r["message"]
                    .as_str()
                    .unwrap()
                    .contains("Only draft versions can be updated")),
        "{refusals:?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r["object"] == "PolicyVersion/gated-v1" && r["field"] == "spec.stage"),
        "{refusals:?}"
    );
}

#[test]
fn traffic_counts_requests_by_guardrail_and_bad_lines_are_named() {
    let dir = fresh_dir("plan-traffic");
    let (base, new) = (dir.join("base"), dir.join("new"));
    copy_repo(&base);
    copy_repo(&new);
    std::fs::copy(
        Path::new(ROOT).join("examples/plan/50-nlp-audit.yaml"),
        new.join("50-nlp-audit.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("contexts.jsonl"),
        concat!(
            "{\"team\": \"research-nlp\", \"key\": null, \"model\": \"gpt-4o\", \"tags\": null, \"count\": 120}\n",
            "\n",
            "{\"team\": \"research-nlp\", \"model\": \"claude-3\", \"tags\": [\"external\"], \"count\": 7}\n",
            "{\"team\": \"research-cv\", \"count\": 30}\n",
            "{\"team\": \"ops\"}\n",
        ),
    )
    .unwrap();
    let o = run_in(
        &dir,
        &[
            "plan",
            "--base",
            "base",
            "-f",
            "new",
            "--contexts",
            "contexts.jsonl",
            "-o",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Only research-nlp without the claude audit gains the audit logger.
    assert_eq!(
        p["traffic"],
        serde_json::json!({"requests": 158, "changed": 120, "guardrails": [{"guardrail": "audit-logger", "gained": 120, "lost": 0}]})
    );
    std::fs::write(dir.join("bad.jsonl"), "{\"team\": \"a\"}\n{\"team\": 3}\n").unwrap();
    let o = run_in(
        &dir,
        &[
            "plan",
            "--base",
            "base",
            "-f",
            "new",
            "--contexts",
            "bad.jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--contexts bad.jsonl: line 2:"),
        "{}",
        text(&o.stderr)
    );
    // Markdown and text carry the traffic too.
    let o = run_in(
        &dir,
        &[
            "plan",
            "--base",
            "base",
            "-f",
            "new",
            "--contexts",
            "contexts.jsonl",
            "-o",
            "markdown",
        ],
    );
    assert!(
        text(&o.stdout).contains("120 of 158 requests change (75.9%)"),
        "{}",
        text(&o.stdout)
    );
    let o = run_in(
        &dir,
        &[
            "plan",
            "--base",
            "base",
            "-f",
            "new",
            "--contexts",
            "contexts.jsonl",
        ],
    );
    assert!(
        text(&o.stdout).contains("audit-logger") && !text(&o.stdout).contains("\x1b["),
        "no colour when not a terminal"
    );
}

/// The README's `plan` example is the real output of its command on the two-commit repository.
#[test]
fn the_readme_plan_example_is_what_plan_prints() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let section = readme
        .split("## Plan a change before it lands")
        .nth(1)
        .expect("a plan section");
    let block = section
        .split("```console\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut lines = block.lines();
    let command = lines
        .next()
        .unwrap()
        .strip_prefix("$ ")
        .expect("a $ command line");
    let want: String = lines.map(|l| format!("{l}\n")).collect();
    assert!(command.starts_with("guardrail-operator plan "), "{command}");
    let repo = two_commit_repo("readme-plan");
    let o = bash_in(&repo, command);
    assert_eq!(text(&o.stdout), want, "{}", text(&o.stderr));
}

/// `--messages`: sample texts run for real through the catalog's content filters, for the
/// requests that change.
#[test]
fn sample_messages_run_through_the_content_filters_of_both_states() {
    let dir = fresh_dir("plan-messages");
    let (base, new) = (dir.join("base"), dir.join("new"));
    copy_repo(&base);
    copy_repo(&new);
    std::fs::write(
        new.join("60-ops-toxicity.yaml"),
        "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {name: ops-toxicity, namespace: llm-gateway}\nspec: {}\n---\napiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {name: ops-toxicity-v1, namespace: llm-gateway}\nspec:\n  policy: ops-toxicity\n  version: 1\n  stage: Production\n  guardrails: {add: [toxicity-filter]}\n---\napiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {name: ops-toxicity, namespace: llm-gateway}\nspec:\n  policy: ops-toxicity\n  teams: [ops]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("contexts.jsonl"),
        "{\"team\": \"ops\", \"count\": 90}\n{\"team\": \"research-nlp\", \"count\": 10}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("messages.txt"),
        "you idiot\nthis is confidential\n\"hello\\nthere\"\n",
    )
    .unwrap();
    let args = [
        "plan",
        "--base",
        "base",
        "-f",
        "new",
        "--catalog",
        "new/00-catalog.yaml",
        "--contexts",
        "contexts.jsonl",
        "--messages",
        "messages.txt",
        "-o",
        "json",
    ];
    let o = run_in(&dir, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["traffic"]["changed"], 90);
    // One sample in three is newly blocked (the insult); "confidential" was masked before too.
    assert_eq!(
        p["traffic"]["messages"],
        serde_json::json!({"samples": 3, "blocked": 30, "masked": 0, "unblocked": 0, "notRun": []})
    );
    let o = run_in(
        &dir,
        &[
            "plan",
            "--base",
            "base",
            "-f",
            "new",
            "--messages",
            "messages.txt",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--messages needs --contexts"),
        "{}",
        text(&o.stderr)
    );
}
