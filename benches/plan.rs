//! `plan` on a 1,000-policy repository with a 100,000-line contexts file, through the release
//! binary, as CI would run it (`plan --base ... -f ... --contexts ... -o json`).
//!
//! The repository has the "realistic" shape of `scripts/bench-vs-litellm.sh` (exact teams,
//! keys, tags and models; a tenth by org prefix plus a model; one global baseline and one
//! default; chains of two under a baseline every fourth policy; a model condition every 13th).
//! The change: one policy gets a new production version with one more guardrail, another is
//! rolled back, and an org prefix gets a new attachment.
//!
//! Reproduce: `cargo bench --bench plan` (PLAN_POLICIES, PLAN_CONTEXTS, PLAN_RUNS to vary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b"];

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The repository's YAML; `changed` applies the change under review.
fn repository(n: usize, changed: bool) -> String {
    let orgs = (n / 80).max(2);
    let (teams, tags) = (orgs * 10, (n / 20).max(3));
    let mut y = String::new();
    let doc = |y: &mut String, body: String| {
        y.push_str("---\n");
        y.push_str(&body);
    };
    for i in 0..n {
        let name = format!("p{i:05}");
        doc(
            &mut y,
            format!(
                "apiVersion: guardrails.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}, namespace: bench}}\nspec: {{}}\n"
            ),
        );
        let mut add = vec![format!("g{}", i % 40), format!("g{}", (i * 7) % 40)];
        let mut spec = String::new();
        if i % 4 != 0 {
            let _ = writeln!(spec, "  inherit: p{:05}", (i / 4) * 4);
        }
        let remove = if i % 4 != 0 {
            vec![format!("g{}", (i * 3) % 40)]
        } else {
            vec![]
        };
        if i % 13 == 0 {
            spec.push_str("  condition: {model: [\"gpt-4o.*\", \"claude-.*\"]}\n");
        }
        let version = |v: usize, stage: &str, add: &[String]| {
            format!(
                "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyVersion\nmetadata: {{name: {name}-v{v}, namespace: bench}}\nspec:\n  policy: {name}\n  version: {v}\n  stage: {stage}\n{spec}  guardrails: {{add: {}, remove: {}}}\n",
                list(add),
                list(&remove)
            )
        };
        doc(&mut y, version(1, "Production", &add));
        // The change: p00005 gets v2 with one more guardrail; p00010 rolls v2 back.
        if i == 5 && changed {
            add.push("g40".into());
            doc(&mut y, version(2, "Production", &add));
        }
        if i == 10 {
            add.push("g41".into());
            doc(
                &mut y,
                version(2, if changed { "Published" } else { "Production" }, &add),
            );
        }
        let k = i % 10;
        let scope = if k < 4 {
            format!("teams: [org-{}-team-{}]", i % orgs, i % teams)
        } else if k < 6 {
            format!("keys: [key-{i}]")
        } else if k < 8 {
            format!("tags: [app-{}]", i % tags)
        } else if k == 8 {
            format!(
                "teams: [\"org-{}-*\"]\n  models: [{}]",
                i % orgs,
                MODELS[i % 4]
            )
        } else {
            format!(
                "teams: [org-{}-team-{}]\n  models: [{}]\n  priority: {}",
                i % orgs,
                i % teams,
                MODELS[i % 4],
                i % 3
            )
        };
        doc(
            &mut y,
            format!(
                "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {{name: a{i:05}, namespace: bench}}\nspec:\n  policy: {name}\n  {scope}\n"
            ),
        );
    }
    doc(&mut y, "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {name: zz-global, namespace: bench}\nspec:\n  policy: p00000\n  scope: \"*\"\n".into());
    doc(
        &mut y,
        format!(
            "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {{name: zz-default, namespace: bench}}\nspec:\n  policy: p{:05}\n  default: true\n",
            4.min(n - 1)
        ),
    );
    if changed {
        doc(&mut y, "apiVersion: guardrails.dev/v1alpha1\nkind: PolicyAttachment\nmetadata: {name: zz-new, namespace: bench}\nspec:\n  policy: p00020\n  teams: [\"org-1-*\"]\n".into());
    }
    y
}

fn contexts(n: usize, lines: usize) -> String {
    let orgs = (n / 80).max(2);
    let (teams, tags) = (orgs * 10, (n / 20).max(3));
    let mut rng = StdRng::seed_from_u64(20261206);
    let mut out = String::with_capacity(lines * 100);
    for _ in 0..lines {
        let t = rng.random_range(0..teams + 5);
        let team = if t < teams {
            format!("\"org-{}-team-{t}\"", t % orgs)
        } else {
            "null".into()
        };
        let key = if rng.random_bool(0.8) {
            format!("\"key-{}\"", rng.random_range(0..n))
        } else {
            "null".into()
        };
        let model = if rng.random_bool(0.9) {
            format!("\"{}\"", MODELS[rng.random_range(0..4)])
        } else {
            "null".into()
        };
        let tag = if rng.random_bool(0.5) {
            format!("[\"app-{}\"]", rng.random_range(0..tags))
        } else {
            "null".into()
        };
        let _ = writeln!(
            out,
            "{{\"team\": {team}, \"key\": {key}, \"model\": {model}, \"tags\": {tag}, \"count\": {}}}",
            rng.random_range(1..500)
        );
    }
    out
}

fn main() {
    let n = knob("PLAN_POLICIES", 1000);
    let lines = knob("PLAN_CONTEXTS", 100_000);
    let runs = knob("PLAN_RUNS", 5);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plan");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("base")).unwrap();
    std::fs::create_dir_all(dir.join("new")).unwrap();
    std::fs::write(dir.join("base/repo.yaml"), repository(n, false)).unwrap();
    std::fs::write(dir.join("new/repo.yaml"), repository(n, true)).unwrap();
    std::fs::write(dir.join("contexts.jsonl"), contexts(n, lines)).unwrap();
    let bin = env!("CARGO_BIN_EXE_guardrail-operator");
    let run = |with_contexts: bool| {
        let mut cmd = Command::new(bin);
        cmd.current_dir(&dir)
            .args(["plan", "--base", "base", "-f", "new", "-o", "json"]);
        if with_contexts {
            cmd.args(["--contexts", "contexts.jsonl"]);
        }
        let t = Instant::now();
        let o = cmd.output().unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (secs, v)
    };
    for with_contexts in [false, true] {
        let mut times: Vec<f64> = Vec::new();
        let mut last = serde_json::Value::Null;
        for _ in 0..runs {
            let (s, v) = run(with_contexts);
            times.push(s);
            last = v;
        }
        times.sort_by(f64::total_cmp);
        let p = &last;
        eprintln!(
            "plan, {n} policies{}: median {:.3} s, min {:.3} s over {runs} runs; production: {} entering, {} leaving, {} replacing; {} classes changed, {} unchanged, {} unwitnessed{}",
            if with_contexts {
                format!(", {lines} contexts")
            } else {
                String::new()
            },
            times[times.len() / 2],
            times[0],
            p["production"]["entering"].as_array().map_or(0, Vec::len),
            p["production"]["leaving"].as_array().map_or(0, Vec::len),
            p["production"]["replacing"].as_array().map_or(0, Vec::len),
            p["requests"]["changed"].as_array().map_or(0, Vec::len),
            p["requests"]["unchanged"],
            p["requests"]["unwitnessed"].as_array().map_or(0, Vec::len),
            if with_contexts {
                format!(
                    "; traffic: {} of {} requests change",
                    p["traffic"]["changed"], p["traffic"]["requests"]
                )
            } else {
                String::new()
            }
        );
    }
}
