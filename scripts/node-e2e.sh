#!/usr/bin/env bash
# Opt-in test on a real node (not part of .ci/run; root only): scripts/node-up.sh with the
# webhook, so the chart's Pods run on a real kubelet with the locally built image; then
# examples/policy-repo is applied with kubectl, the bundle must equal `guardrail-operator render`
# of it, and a version whose tests fail must be refused by the webhook running in a Pod.
# scripts/node-down.sh runs at exit, whatever happened (KEEP_NODE=1 leaves the node up).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
say() { printf '\n==> %s\n' "$*" >&2; }
fail() { echo "node-e2e: FAILED: $*" >&2; exit 1; }
[[ ${KEEP_NODE:-0} = 1 ]] || trap 'scripts/node-down.sh >&2' EXIT
started=$(date +%s)

say "a real node: kubelet, containerd, runc, CNI; the chart with the webhook"
WEBHOOK=1 scripts/node-up.sh >&2
. /var/lib/gro-node/testcp.env
bin=${CARGO_TARGET_DIR:-target}/release/guardrail-operator   # built by scripts/image-build.sh

say "kubectl apply -f examples/policy-repo (through the webhook in a Pod)"
kubectl create namespace llm-gateway --dry-run=client -o yaml | kubectl apply -f - >&2
for i in $(seq 60); do
  kubectl apply -f examples/policy-repo >&2 && break
  [[ $i -lt 60 ]] || fail "kubectl apply kept failing"
  sleep 2
done

say "the bundle equals guardrail-operator render of the repository"
data() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("data", {}), sort_keys=True))'; }
want=$("$bin" render -f examples/policy-repo --catalog examples/policy-repo/00-catalog.yaml -o json | data)
for i in $(seq 90); do
  got=$(kubectl get configmap guardrail-gateway-config -n llm-gateway -o json 2>/dev/null | data || true)
  [[ $got == "$want" ]] && break
  [[ $i -lt 90 ]] || fail "the bundle never matched render; last: ${got:0:400}"
  sleep 1
done
kubectl get guardrails -n llm-gateway >&2

say "a failing version is refused at admission"
if out=$(kubectl apply -f examples/broken/failing-test.yaml 2>&1); then
  fail "examples/broken/failing-test.yaml was admitted: $out"
fi
grep -q 'denied the request' <<<"$out" || fail "not refused by the webhook: $out"
echo "$out" >&2
kubectl get pods -n guardrail-system -o wide >&2
echo "node-e2e: passed in $(( $(date +%s) - started )) s"
