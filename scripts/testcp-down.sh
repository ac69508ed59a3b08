#!/usr/bin/env bash
# Stop the control plane started by scripts/testcp-up.sh (TESTCP_PID,
# TESTCP_DIR from its exports): SIGTERM, wait up to 40 s, then SIGKILL, and
# remove its directory. A no-op when nothing is running.
set -euo pipefail
pid=${TESTCP_PID:-}
dir=${TESTCP_DIR:-}

is_testcp() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'testcp serve'
}

if [ -n "$pid" ] && is_testcp "$pid"; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 160); do                   # 160 x 0.25 s = 40 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "testcp-down: pid $pid still running after 40s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  echo "testcp-down: stopped pid $pid" >&2
elif [ -n "$pid" ]; then
  echo "testcp-down: no testcp running as pid $pid; nothing to stop" >&2
fi

# Remove only a directory that testcp-up.sh made.
if [ -n "$dir" ] && [ -d "$dir" ] && [[ "$(basename "$dir")" == testcp.* ]]; then
  rm -rf "$dir"
fi
exit 0
