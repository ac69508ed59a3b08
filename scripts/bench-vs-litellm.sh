#!/usr/bin/env bash
# Side by side, in one run: LiteLLM 1.110.2's resolver (Python) and ours (Rust, release build) on
# the same generated policy sets and requests, in two shapes (realistic and broad); prints the time
# per request of each (ours with the linear scan and with the indexed resolver) and the ratio.
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
sets = {(s["shape"], s["n"]): s for s in json.load(open(sys.argv[1]))["sets"]}
ours = {(r["shape"], r["n"]): r for r in json.loads(sys.argv[2])}
for shape in ("realistic", "broad"):
    print(f"\n{shape}:\n")
    print("| policies + attachments | matched per request | LiteLLM 1.110.2 (µs/request) | ours, linear scan (µs/request) | ours, indexed (µs/request) | speed-up (indexed) |")
    print("|---|---|---|---|---|---|")
    for (sh, n), s in sorted(sets.items()):
        if sh != shape:
            continue
        l = s["litellm_per_request_seconds"] * 1e6
        o = ours[(sh, n)]
        lin, idx = o["linear_per_request_seconds"] * 1e6, o["per_request_seconds"] * 1e6
        print(f"| {n:,} | {s['matched_per_request']:.1f} | {l:,.1f} | {lin:,.2f} | {idx:,.2f} | {l / idx:,.0f}× |")
PY
