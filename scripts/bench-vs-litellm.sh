#!/usr/bin/env bash
# Side by side, in one run: LiteLLM 1.110.2's resolver (Python) and ours (Rust, release build) on
# the same generated policy sets and requests; prints the time per request of each and the ratio.
# Usage: scripts/bench-vs-litellm.sh [N ...]   (default 10 100 1000 10000)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
py=$(tests/conformance/setup-oracle.sh)
mkdir -p target/bench
sets=target/bench/resolve-sets.json
PYTHONHASHSEED=0 "$py" tests/conformance/bench_resolve.py "$sets" "$@"
result=$(RESOLVE_SETS="$PWD/$sets" cargo bench --bench resolve_vs_litellm 2>/dev/null | sed -n 's/^RESULT //p')
[ -n "$result" ] || { echo "the Rust half printed no result" >&2; exit 1; }
python3 - "$sets" "$result" <<'PY'
import json, sys
sets = {s["n"]: s for s in json.load(open(sys.argv[1]))["sets"]}
ours = {r["n"]: r["per_request_seconds"] for r in json.loads(sys.argv[2])}
print("| policies + attachments | LiteLLM 1.110.2 (µs/request) | guardrail-operator (µs/request) | speed-up |")
print("|---|---|---|---|")
for n, s in sorted(sets.items()):
    l, o = s["litellm_per_request_seconds"] * 1e6, ours[n] * 1e6
    print(f"| {n:,} | {l:,.1f} | {o:,.2f} | {l / o:,.0f}× |")
PY
