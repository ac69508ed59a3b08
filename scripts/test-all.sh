#!/usr/bin/env bash
# The README's test command (what .ci/run runs): builds what the tests need, starts the real
# test control plane, and runs every test. Safe on a fresh machine: it installs nothing by
# hand and caches builds outside the repository.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { printf '\n==> %s\n' "$*" >&2; }
for tool in go cargo python3 kubectl git; do
  command -v "$tool" >/dev/null || { echo "test-all: $tool is required but not on PATH" >&2; exit 1; }
done

# Go first: on 2 cores, go and rustc slow each other badly.
step "test control plane binary (kube-apiserver 1.37 + etcd, built from Go modules, cached)"
TESTCP_BIN=$(scripts/testcp-build.sh); export TESTCP_BIN
step "helm (from its Go module, cached)"
HELM=$(scripts/helm-build.sh); export HELM
step "kstatus checker (sigs.k8s.io/cli-utils, cached)"
KSTATUS_BIN=$(scripts/kstatus-build.sh); export KSTATUS_BIN
step "Argo CD prune checker (gitops-engine's cluster cache, cached)"
ARGOCD_PRUNE_CHECK_BIN=$(scripts/argocd-prune-check-build.sh); export ARGOCD_PRUNE_CHECK_BIN
step "litellm 1.110.2 oracle (PyPI, cached venv)"
ORACLE_PYTHON=$(tests/conformance/setup-oracle.sh); export ORACLE_PYTHON

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings

step "compile every test target"
cargo test --all-features --no-run

step "operator image (release build, buildah; nothing pulled)"
GUARDRAIL_IMAGE=$(scripts/image-build.sh); export GUARDRAIL_IMAGE

step "bounded fuzzing: cargo fuzz, ${FUZZ_SECONDS:-20} s per target (long run: scripts/fuzz.sh 3600)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

step "differential conformance against litellm 1.110.2"
scripts/conformance.sh 1 "${CONFORMANCE_COUNT:-5000}"
export CONTENT_FILTER_CASES="$PWD/target/content-filter/cases-1-1000.json"; scripts/content-filter-conformance.sh

step "start the test control plane"
up=$(scripts/testcp-up.sh)          # a plain assignment, so set -e sees a failure
eval "$up"
trap 'rc=$?; [ "$rc" -eq 0 ] || tail -n 80 "$TESTCP_DIR/testcp.log" >&2 || true; scripts/testcp-down.sh || true; exit "$rc"' EXIT

step "unit, CLI, property and control-plane tests"
export CONFORMANCE_CASES="$PWD/target/conformance/cases-1-${CONFORMANCE_COUNT:-5000}.json"
log=$(mktemp)
set +e
cargo test --all-features --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i-1)} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i-1)} END {print s + 0}' "$log")
rm -f "$log"
echo
echo "$passed passed, $failed failed"
exit "$rc"
