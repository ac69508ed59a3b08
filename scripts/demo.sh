#!/usr/bin/env bash
# The README's first command: start the local control plane (real kube-apiserver + etcd),
# install the CRDs, apply the example policy repository with kubectl, and show it.
# Leaves the control plane running; stop it with the printed command.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
cargo build --quiet --bin guardrail-operator
bin=target/debug/guardrail-operator
up=$(scripts/testcp-up.sh)
eval "$up"
env_file=${TMPDIR:-/tmp}/guardrail-operator-demo.env
echo "$up" > "$env_file"
say "kubectl apply -f crds/"
kubectl apply -f crds/
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl create namespace llm-gateway --dry-run=client -o yaml | kubectl apply -f -
say "guardrail-operator validate -f examples/policy-repo --catalog examples/policy-repo/00-catalog.yaml"
$bin validate -f examples/policy-repo --catalog examples/policy-repo/00-catalog.yaml
say "kubectl apply -f examples/policy-repo/"
kubectl apply -f examples/policy-repo/
say "kubectl get guardrails -n llm-gateway"
kubectl get guardrails -n llm-gateway
say "guardrail-operator resolve -f examples/policy-repo --team research-nlp --model claude-3-opus --tag external"
$bin resolve -f examples/policy-repo --team research-nlp --model claude-3-opus --tag external
say "kubectl patch: a published version's content is immutable (CEL rule on the API server)"
kubectl -n llm-gateway patch policyversion org-baseline-v1 --type merge -p '{"spec":{"description":"edited"}}' || true
cat <<MSG

The control plane keeps running. Use it with:   source $env_file
Stop it with:                                   source $env_file && scripts/testcp-down.sh
MSG
