#!/usr/bin/env bash
# Creates (or reuses) the Python venv holding the real litellm==1.110.2 used as the
# differential-test oracle and as the gateway of the end-to-end tests (tests/e2e/gateway.rs),
# and prints the venv's python path on stdout (nothing else goes to stdout; progress goes to
# stderr).
#
#   PY=$(tests/conformance/setup-oracle.sh)
#   PYTHONHASHSEED=0 "$PY" tests/conformance/oracle.py --seed-start 1 --count 1000 --out out/cases.json
#
# The venv lives outside the repository, at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/litellm-oracle-1.110.2/
# and is (re)built only when its marker file does not match the pinned requirements
# (requirements-oracle.txt next to this script) and the interpreter version.
# Environment: ORACLE_PYTHON=/path/to/python3 picks the base interpreter (>=3.10, <3.16).
set -euo pipefail

LITELLM_VERSION="1.110.2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements-oracle.txt"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator"
venv="$cache_root/litellm-oracle-$LITELLM_VERSION"
marker="$venv/.oracle-ready"

log() { printf 'setup-oracle: %s\n' "$*" >&2; }

[[ -f "$requirements" ]] || { log "missing $requirements"; exit 1; }
if grep -Eq '^litellm(\[[^]]*\])?==1\.107\.' "$requirements"; then
  log "refusing: litellm 1.107.x must never be used"; exit 1
fi
grep -qx "litellm==$LITELLM_VERSION" "$requirements" || { log "requirements must pin litellm==$LITELLM_VERSION"; exit 1; }

pick_python() {
  local candidates=()
  [[ -n "${ORACLE_PYTHON:-}" ]] && candidates+=("$ORACLE_PYTHON")
  candidates+=(python3.11 python3.12 python3.13 python3.10 python3.14 python3.15 python3)
  local c
  for c in "${candidates[@]}"; do
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys, venv; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 16) else 1)' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

base_python="$(pick_python)" || { log "need Python >=3.10,<3.16 with the venv module (set ORACLE_PYTHON)"; exit 1; }
py_version="$("$base_python" -c 'import platform; print(platform.python_implementation(), platform.python_version())')"
req_hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
want_marker="litellm=$LITELLM_VERSION requirements=$req_hash python=$py_version"

mkdir -p "$cache_root"
# Serialise concurrent callers (e.g. parallel test processes) on one lock file.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/litellm-oracle-$LITELLM_VERSION.lock"
  flock 9
fi

if [[ -f "$marker" && "$(cat "$marker")" == "$want_marker" && -x "$venv/bin/python" ]]; then
  printf '%s\n' "$venv/bin/python"
  exit 0
fi

log "building $venv with $base_python ($py_version)"
rm -rf -- "$venv"
"$base_python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  -r "$requirements" >&2

# Smoke test: the exact version, and every module the oracle imports, offline.
LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" - "$LITELLM_VERSION" >&2 <<'PY'
import importlib.metadata
import sys

want = sys.argv[1]
got = importlib.metadata.version("litellm")
if got != want or got.startswith("1.107."):
    sys.exit(f"litellm {want} expected, {got} installed")
import fastapi  # noqa: F401  (required by the policy engine's route checks)
import orjson  # noqa: F401
from litellm.proxy._types import UserAPIKeyAuth  # noqa: F401
from litellm.proxy.policy_engine.attachment_registry import AttachmentRegistry  # noqa: F401
from litellm.proxy.policy_engine.pipeline_executor import PipelineExecutor  # noqa: F401
from litellm.proxy.policy_engine.policy_matcher import PolicyMatcher  # noqa: F401
from litellm.proxy.policy_engine.policy_registry import PolicyRegistry  # noqa: F401
from litellm.proxy.policy_engine.policy_resolver import PolicyResolver  # noqa: F401
from litellm.proxy.policy_engine.policy_validator import PolicyValidator  # noqa: F401
import importlib.util
for module in ("uvicorn", "websockets", "apscheduler", "jwt", "multipart", "fastapi_sso", "mcp", "soundfile"):
    if importlib.util.find_spec(module) is None:
        sys.exit(f"the proxy's dependency {module} is missing")
print(f"setup-oracle: litellm {got} ready", file=sys.stderr)
PY

printf '%s\n' "$want_marker" > "$marker"
printf '%s\n' "$venv/bin/python"
