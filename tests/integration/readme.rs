//! The README's day-2 section runs as written: its bash blocks, with `kubectl guardrails` as a
//! real kubectl plugin (the binary installed as `kubectl-guardrails` on PATH), against a
//! namespace holding the policy the README talks about.

use std::time::Duration;

use guardrail_operator::api::Policy;
use kube::Api;

use crate::common::{TestNamespace, await_condition, kubeconfig_path, repo_root};
use crate::controller::{Operator, apply, policy, version};

#[tokio::test]
async fn day_two_section_runs_as_written() {
    let ns = TestNamespace::new("readme").await;
    let n = ns.name.as_str();
    let _op = Operator::start(n, &[]).await;
    apply(
        &(policy(n, "pii-strict")
            + &version(
                n,
                "pii-strict",
                3,
                "Production",
                "  guardrails: {add: [pii]}\n",
            )),
    )
    .await;
    let policies: Api<Policy> = ns.api();
    await_condition(
        &policies,
        "pii-strict",
        "v3 in production",
        Duration::from_secs(60),
        |p| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.production_version)
                == Some(3)
        },
    )
    .await;

    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("## Day-2 operations")
        .nth(1)
        .expect("the README has a Day-2 section");
    let section = section.split("\n## ").next().unwrap();
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in section.lines() {
        if line.starts_with("```bash") {
            in_block = true;
            continue;
        }
        if line.starts_with("```") {
            in_block = false;
            continue;
        }
        if !in_block {
            continue;
        }
        let code = line.split("  #").next().unwrap().trim_end();
        if let Some(cont) = code.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(code);
        if !pending.trim().is_empty() {
            commands.push(pending.trim().replace("llm-gateway", n));
        }
        pending.clear();
    }
    assert!(commands.len() >= 8, "day-2 commands found: {commands:?}");

    // kubectl finds plugins on PATH by name.
    let dir = std::env::temp_dir().join(format!("plugin-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("kubectl-guardrails");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_guardrail-operator"), &plugin).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for cmd in &commands {
        let out = tokio::process::Command::new("bash")
            .args(["-c", cmd])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("KUBECONFIG", kubeconfig_path())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "README command failed: {cmd}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // After the walkthrough v3 is back in production (the rollback) and v4 is Published.
    let p = policies.get("pii-strict").await.unwrap();
    assert_eq!(p.status.unwrap().production_version, Some(3));
}
