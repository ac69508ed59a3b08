//! The image scripts/image-build.sh builds agrees with the Dockerfile users build with Docker:
//! the same user, entrypoint, command, exposed ports and labels, read from the Dockerfile here
//! (its final stage), never copied into the test. And it is minimal: it runs as that user and
//! holds no shell.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::repo_root;
use crate::support::{local_image, podman, podman_output, ulimits};

/// What the Dockerfile's final stage says about the image's configuration.
#[derive(Debug, Default)]
struct FinalStage {
    user: Option<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    expose: Vec<String>,
    labels: BTreeMap<String, String>,
}

/// Instructions with their continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if cur.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        let full = std::mem::take(&mut cur);
        let full = full.trim();
        if full.is_empty() {
            continue;
        }
        let (word, rest) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
        out.push((word.to_ascii_uppercase(), rest.trim().to_string()));
    }
    out
}

/// `key="value" key2="value 2"` pairs of a LABEL instruction.
fn label_pairs(rest: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            return pairs;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| !c.is_whitespace()).collect();
        }
        pairs.push((key, value));
    }
}

fn final_stage(text: &str) -> FinalStage {
    let mut stage = FinalStage::default();
    for (word, rest) in instructions(text) {
        match word.as_str() {
            "FROM" => stage = FinalStage::default(),
            "USER" => stage.user = Some(rest),
            "EXPOSE" => {
                stage
                    .expose
                    .extend(rest.split_whitespace().map(|p| match p.contains('/') {
                        true => p.to_string(),
                        false => format!("{p}/tcp"),
                    }))
            }
            "ENTRYPOINT" => stage.entrypoint = Some(serde_json::from_str(&rest).unwrap()),
            "CMD" => stage.cmd = Some(serde_json::from_str(&rest).unwrap()),
            "LABEL" => stage.labels.extend(label_pairs(&rest)),
            _ => {}
        }
    }
    stage
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    })
}

#[test]
fn the_dockerfile_parser_reads_a_final_stage() {
    let stage = final_stage(
        "FROM a AS b\nUSER 1\nFROM c\n# note\nLABEL x=\"one two\" \\\n   y=z\nUSER 7:7\nEXPOSE 1 2/udp\nENTRYPOINT [\"/e\"]\nCMD [\"a\", \"b\"]\n",
    );
    assert_eq!(stage.user.as_deref(), Some("7:7"));
    assert_eq!(stage.expose, ["1/tcp", "2/udp"]);
    assert_eq!(stage.entrypoint, Some(vec!["/e".to_string()]));
    assert_eq!(stage.cmd, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(stage.labels["x"], "one two");
    assert_eq!(stage.labels["y"], "z");
}

#[tokio::test]
async fn the_image_agrees_with_the_dockerfile() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let want = final_stage(&dockerfile);
    assert!(
        want.user.is_some() && want.entrypoint.is_some() && !want.expose.is_empty(),
        "the Dockerfile's final stage lost USER, ENTRYPOINT or EXPOSE: {want:?}"
    );
    let image = local_image();
    let out = podman_output(&["image", "inspect", &image]).await;
    assert!(
        out.success,
        "no image {image}: build it with scripts/image-build.sh ({})",
        out.stderr
    );
    let inspect: Value = serde_json::from_str(&out.stdout).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"].as_str(), want.user.as_deref(), "user");
    assert_eq!(
        strings(&config["Entrypoint"]),
        want.entrypoint,
        "entrypoint"
    );
    assert_eq!(strings(&config["Cmd"]), want.cmd, "command");
    let mut ports: Vec<String> = config["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    ports.sort();
    let mut want_ports = want.expose.clone();
    want_ports.sort();
    assert_eq!(ports, want_ports, "exposed ports");
    for (k, v) in &want.labels {
        assert_eq!(config["Labels"][k].as_str(), Some(v.as_str()), "label {k}");
    }
    let size = inspect[0]["Size"].as_u64().unwrap_or_default();
    eprintln!("image {image}: {size} bytes");

    // It runs as the Dockerfile's user, read-only, and answers --version.
    let mut run = vec![
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--pull",
        "never",
    ];
    let limits = ulimits();
    run.extend(limits.iter().map(String::as_str));
    let mut version = run.clone();
    version.extend([image.as_str(), "--version"]);
    let printed = podman(&version).await;
    assert!(
        printed.contains(env!("CARGO_PKG_VERSION")),
        "--version printed {printed:?}"
    );
    // No shell, no package manager: only what the binary needs.
    let mut shell = run.clone();
    shell.extend(["--entrypoint", "/bin/sh", image.as_str(), "-c", "true"]);
    let out = podman_output(&shell).await;
    assert!(!out.success, "the image has a shell: {}", out.stdout);
}
