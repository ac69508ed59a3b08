//! The engine stays pure: no Kubernetes client, runtime, async runtime or network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn engine_uses_no_client_runtime_or_io() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let forbidden = [
        "kube::Client",
        "kube::Api",
        "kube::runtime",
        "kube_runtime",
        "tokio",
        "std::net",
        "std::fs",
        "reqwest",
        "hyper",
    ];
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/engine") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for f in forbidden {
            if text.contains(f) {
                hits.push(format!("{}: {f}", path.display()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the engine must stay free of I/O and Kubernetes clients: {hits:?}"
    );
}
