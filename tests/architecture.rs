//! The layering rules, checked on the source text:
//!
//! * the engine stays pure: no Kubernetes client, runtime, async runtime or network;
//! * the controller and the webhook are siblings: neither imports the other, nor the runtime
//!   that composes them;
//! * the shared modules (`providers`, `cache`, `api`) import no front end;
//! * only the CLI starts the runtime;
//! * no source file grows past ~1,000 lines unless it is data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` (recursively), with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                out.push((path, text));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The paths under `dir` whose text mentions any of `forbidden` (comments included: a doc
/// comment naming the other side is a smell too, and keeps the check simple).
fn mentions(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for (path, text) in sources(dir) {
        for f in forbidden {
            if text.contains(f) {
                hits.push(format!("{}: {f}", path.display()));
            }
        }
    }
    hits
}

#[test]
fn engine_uses_no_client_runtime_or_io() {
    let hits = mentions(
        &src().join("engine"),
        &[
            "kube::Client",
            "kube::Api",
            "kube::runtime",
            "kube_runtime",
            "tokio",
            "std::net",
            "std::fs",
            "reqwest",
            "hyper",
            "crate::controller",
            "crate::webhook",
            "crate::runtime",
            "crate::cli",
        ],
    );
    assert!(
        hits.is_empty(),
        "the engine must stay free of I/O and Kubernetes clients: {hits:?}"
    );
}

#[test]
fn the_controller_and_the_webhook_are_siblings() {
    let hits = mentions(
        &src().join("controller"),
        &[
            "crate::webhook",
            "webhook::",
            "crate::runtime",
            "crate::cli",
        ],
    );
    assert!(
        hits.is_empty(),
        "the controller must not import the webhook or the runtime: {hits:?}"
    );
    let hits = mentions(
        &src().join("webhook"),
        &[
            "crate::controller",
            "controller::",
            "crate::runtime",
            "crate::cli",
        ],
    );
    assert!(
        hits.is_empty(),
        "the webhook must not import the controller or the runtime: {hits:?}"
    );
}

#[test]
fn shared_modules_import_no_front_end() {
    let front_ends = [
        "crate::controller",
        "crate::webhook",
        "crate::runtime",
        "crate::cli",
    ];
    let mut hits = Vec::new();
    for file in ["providers.rs", "cache.rs"] {
        let text = std::fs::read_to_string(src().join(file)).expect(file);
        hits.extend(
            front_ends
                .iter()
                .filter(|f| text.contains(*f))
                .map(|f| format!("{file}: {f}")),
        );
    }
    hits.extend(mentions(&src().join("api"), &front_ends));
    assert!(hits.is_empty(), "{hits:?}");
}

#[test]
fn only_the_cli_starts_the_runtime() {
    let mut hits = Vec::new();
    for (path, text) in sources(&src()) {
        let rel = path.strip_prefix(src()).expect("under src");
        if rel.starts_with("cli") || rel.starts_with("runtime") || rel == Path::new("lib.rs") {
            continue;
        }
        if text.contains("crate::runtime") {
            hits.push(rel.display().to_string());
        }
    }
    assert!(hits.is_empty(), "{hits:?}");
}

#[test]
fn no_source_file_is_over_a_thousand_lines_unless_it_is_data() {
    // Tables of facts, not logic.
    let data = ["engine/content_filter/prebuilt.rs"];
    let mut long = Vec::new();
    for (path, text) in sources(&src()) {
        let rel = path.strip_prefix(src()).expect("under src");
        let lines = text.lines().count();
        if lines > 1_000 && !data.iter().any(|d| rel == Path::new(d)) {
            long.push(format!("{}: {lines} lines", rel.display()));
        }
    }
    assert!(long.is_empty(), "split these by what they hold: {long:?}");
}

#[test]
fn unsafe_code_stays_in_the_allocator_setting() {
    let hits: Vec<String> = mentions(&src(), &["unsafe"])
        .into_iter()
        .filter(|h| !h.starts_with(&src().join("runtime/allocator.rs").display().to_string()))
        .collect();
    assert!(
        hits.is_empty(),
        "`unsafe` belongs only in src/runtime/allocator.rs (one mallopt call): {hits:?}"
    );
}
