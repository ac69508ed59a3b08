#!/usr/bin/env bash
# Differential test of the offline litellm_content_filter (src/engine/content_filter.rs) against
# litellm 1.110.2: builds (or reuses) the oracle venv, generates seeded configurations and texts
# with LiteLLM's answers (tests/content_filter/oracle.py), and runs our engine on the same inputs.
# Usage: scripts/content-filter-conformance.sh [SEED] [COUNT]     (defaults: 1 and 1000)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
seed=${1:-1}
count=${2:-1000}
py=$(tests/conformance/setup-oracle.sh)
out="target/content-filter/cases-$seed-$count.json"
mkdir -p target/content-filter
if [ ! -s "$out" ] || [ tests/content_filter/oracle.py -nt "$out" ]; then
  PYTHONHASHSEED=0 LITELLM_LOCAL_MODEL_COST_MAP=True "$py" tests/content_filter/oracle.py \
    --seed "$seed" --count "$count" --out "$out.partial"
  mv "$out.partial" "$out"
fi
# --all-features, like the rest of test-all.sh, so the crate is compiled once.
CONTENT_FILTER_CASES="$PWD/$out" cargo test --all-features --test content_filter -- --nocapture
