#!/usr/bin/env bash
# The README's first command: start the local control plane (real kube-apiserver + etcd), the
# operator (controller + admission webhook) as a local process, apply the example policy
# repository with kubectl, and show it working: stages, a promotion, a refused version, the
# gateway bundle. Leaves everything running; prints how to stop it. If it fails or is
# interrupted (Ctrl-C) before the end, it stops what it started (the operator, and the control
# plane unless it reused one already running in this shell) instead.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step() { printf '==> %s\n' "$*" >&2; }
state=${TMPDIR:-/tmp}/guardrail-operator-demo
mkdir -p "$state"

started_cp=  # set once this run started a control plane (testcp-up.sh may reuse a running one)
op_pid=      # set once this run started the operator
webhook=     # set once this run registered its ValidatingWebhookConfiguration
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "demo: stopped before the end (exit $rc); stopping what it started" >&2
    if [ -n "$op_pid" ]; then
      kill "$op_pid" 2>/dev/null || true
      wait "$op_pid" 2>/dev/null || true
      echo "demo: operator log tail ($state/operator.log):" >&2
      tail -n 20 "$state/operator.log" >&2 2>/dev/null || true
    fi
    if [ -n "$started_cp" ]; then
      scripts/testcp-down.sh || true
    elif [ -n "$webhook" ]; then  # a reused control plane stays; unregister the dead webhook
      kubectl delete validatingwebhookconfiguration guardrails.dev-demo --ignore-not-found >/dev/null || true
    fi
    rm -f "$state/env" "$state/operator.pid"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in cargo python3 kubectl; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is required but not on PATH" >&2; exit 1; }
done
# Go first: on 2 cores, go and rustc slow each other badly. Both builds are cached, so a second
# run starts in seconds.
if [ -z "${TESTCP_BIN:-}" ]; then
  step "building the test control plane: kube-apiserver + etcd from their Go modules (the first time ~15-20 min on 2 cores; cached under ~/.cache/guardrail-operator afterwards)"
  TESTCP_BIN=$(scripts/testcp-build.sh); export TESTCP_BIN
fi
step "building guardrail-operator: cargo build (the first time several minutes on 2 cores; incremental afterwards)"
cargo build --bin guardrail-operator
bin=$PWD/target/debug/guardrail-operator
step "starting the test control plane on 127.0.0.1"
prev_pid=${TESTCP_PID:-}
up=$(scripts/testcp-up.sh)
eval "$up"
[ "$TESTCP_PID" = "$prev_pid" ] || started_cp=1
echo "$up" > "$state/env"

kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl create namespace llm-gateway --dry-run=client -o yaml | kubectl apply -f - >/dev/null

# The operator: controller + webhook on 127.0.0.1, with testcp's ready-made webhook certificate.
# shellcheck disable=SC2153  # TESTCP_DIR comes from testcp-up.sh's exports (the eval above)
cp "$TESTCP_DIR/pki/webhook.crt" "$state/tls.crt"; cp "$TESTCP_DIR/pki/webhook.key" "$state/tls.key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" run --catalog-configmap guardrail-catalog --http-addr 127.0.0.1:0 \
  --webhook-addr "127.0.0.1:$port" --webhook-cert-dir "$state" >"$state/operator.log" 2>&1 &
op_pid=$!
echo "$op_pid" > "$state/operator.pid"
ca=$(base64 -w0 < "$TESTCP_DIR/pki/ca.crt")
webhook=1
cat <<YAML | kubectl apply -f - >/dev/null
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: guardrails.dev-demo}
webhooks:
- name: versions.guardrails.dev
  clientConfig: {url: "https://127.0.0.1:$port/validate/policyversions", caBundle: "$ca"}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  rules: [{apiGroups: [guardrails.dev], apiVersions: [v1alpha1], resources: [policyversions], operations: [CREATE, UPDATE, DELETE]}]
- name: attachments.guardrails.dev
  clientConfig: {url: "https://127.0.0.1:$port/validate/policyattachments", caBundle: "$ca"}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  rules: [{apiGroups: [guardrails.dev], apiVersions: [v1alpha1], resources: [policyattachments], operations: [CREATE, UPDATE]}]
YAML
sleep 2

say "guardrail-operator validate -f examples/policy-repo --catalog examples/policy-repo/00-catalog.yaml"
"$bin" validate -f examples/policy-repo --catalog examples/policy-repo/00-catalog.yaml
say "guardrail-operator test -f examples/policy-repo"
"$bin" test -f examples/policy-repo
say "kubectl apply -f examples/policy-repo/"
kubectl apply -f examples/policy-repo/
kubectl wait -n llm-gateway --for=jsonpath='{.status.stage}'=Production policyversion/org-baseline-v1 policyversion/research-v1 policyversion/gated-v1 --timeout=60s >/dev/null
say "kubectl get guardrails -n llm-gateway"
kubectl get guardrails -n llm-gateway

say "promote research v2: set spec.stage to Production (as a Git change would)"
sed 's/  version: 2\n  stage: Draft/X/' examples/policy-repo/20-research-team.yaml \
  | awk '/name: research-v2/{v2=1} v2 && /stage: Draft/{sub(/Draft/,"Production"); v2=0} {print}' \
  | kubectl apply -f -
kubectl wait -n llm-gateway --for=jsonpath='{.status.stage}'=Production policyversion/research-v2 --timeout=60s >/dev/null
kubectl get policyversions -n llm-gateway --field-selector spec.policy=research \
  -o custom-columns=NAME:.metadata.name,DESIRED:.spec.stage,STAGE:.status.stage,SUPERSEDED-BY:.status.supersededBy

say "a version whose tests fail is refused at admission (examples/broken/failing-test.yaml)"
kubectl apply -f examples/broken/failing-test.yaml 2>&1 | sed -n '1,12p' || true

say "kubectl get configmap guardrail-gateway-config -n llm-gateway -o jsonpath='{.data.policies\\.yaml}'"
kubectl get configmap guardrail-gateway-config -n llm-gateway -o jsonpath='{.data.policies\.yaml}'
say "kubectl describe policyversion research-v1 -n llm-gateway (events)"
kubectl get events -n llm-gateway --field-selector involvedObject.name=research-v1 2>/dev/null | tail -3 || true

trap - EXIT INT TERM  # success: leave the control plane and the operator running
cat <<MSG

Running: the control plane and the operator (log: $state/operator.log).
Use it:   source $state/env && kubectl get guardrails -n llm-gateway
Stop it:  kill \$(cat $state/operator.pid); source $state/env && scripts/testcp-down.sh
MSG
