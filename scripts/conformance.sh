#!/usr/bin/env bash
# Differential conformance against litellm 1.110.2: builds (or reuses) the oracle venv,
# generates seeded cases with LiteLLM's answers, and runs our engine on the same inputs.
# Usage: scripts/conformance.sh [SEED_START] [COUNT]     (defaults: 1 and 2000)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
start=${1:-1}
count=${2:-2000}
py=$(tests/conformance/setup-oracle.sh)
out="target/conformance/cases-$start-$count.json"
mkdir -p target/conformance
if [ ! -s "$out" ] || [ tests/conformance/oracle.py -nt "$out" ]; then
  PYTHONHASHSEED=0 LITELLM_LOCAL_MODEL_COST_MAP=True "$py" tests/conformance/oracle.py \
    --seed-start "$start" --count "$count" --out "$out.partial"
  mv "$out.partial" "$out"
fi
# --all-features, like the rest of test-all.sh, so the crate is compiled once.
CONFORMANCE_CASES="$PWD/$out" cargo test --all-features --test conformance -- --nocapture
