#!/usr/bin/env bash
# Start the test control plane in the background and print export lines:
#
#   eval "$(scripts/testcp-up.sh)"      # TESTCP_DIR TESTCP_PID KUBECONFIG TESTCP_KUBECONFIG
#   cargo test --features testcp
#   scripts/testcp-down.sh
#
# Uses $TESTCP_BIN if set, else builds or reuses the cached binary
# (scripts/testcp-build.sh). Safe to run twice: if the instance named by
# TESTCP_PID/TESTCP_DIR in this environment is still running and ready, it
# prints the same exports again and starts nothing. On failure it prints the
# log tail to stderr, stops what it started, removes its directory and exits 1.
#
# Knobs: TESTCP_CONTROLLERS (gc | none, default gc), TESTCP_READY_TIMEOUT
# (seconds, default 120).
set -euo pipefail
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)

print_exports() {
  printf 'export TESTCP_DIR=%q TESTCP_PID=%q KUBECONFIG=%q TESTCP_KUBECONFIG=%q\n' \
    "$1" "$2" "$1/kubeconfig" "$1/kubeconfig"
}

is_testcp() { # pid -> true if it is a live "testcp serve"
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'testcp serve'
}

if [ -n "${TESTCP_PID:-}" ] && [ -n "${TESTCP_DIR:-}" ] && [ -e "$TESTCP_DIR/ready" ] \
   && is_testcp "$TESTCP_PID"; then
  echo "testcp-up: reusing running instance pid $TESTCP_PID in $TESTCP_DIR" >&2
  print_exports "$TESTCP_DIR" "$TESTCP_PID"
  exit 0
fi

bin=${TESTCP_BIN:-}
if [ -z "$bin" ]; then
  bin=$("$here/testcp-build.sh")
fi
[ -x "$bin" ] || { echo "testcp-up: $bin is not an executable" >&2; exit 1; }
controllers=${TESTCP_CONTROLLERS:-gc}
timeout=${TESTCP_READY_TIMEOUT:-120}
quota=${TESTCP_ETCD_QUOTA_BYTES:-0}   # 0: etcd's default (2 GiB); the 100,000 scale run needs more

for attempt in 1 2; do                      # the second try is only for a lost port race
  dir=$(mktemp -d "${TMPDIR:-/tmp}/testcp.XXXXXXXX")
  # All three streams redirected: a background process holding our stdout
  # would make "$(testcp-up.sh)" wait forever. Never --exit-on-stdin-eof here:
  # stdin is /dev/null (and CI has none), so it would exit at once.
  "$bin" serve --dir "$dir" --controllers="$controllers" --ready-file "$dir/ready" \
    --ready-timeout "$timeout" --etcd-quota-bytes "$quota" --keep-dir </dev/null >"$dir/serve.out" 2>&1 &
  pid=$!
  start=$SECONDS
  # testcp gives up by itself after $timeout s; 30 s more covers its shutdown.
  while [ $((SECONDS - start)) -lt $((timeout + 30)) ]; do
    [ -e "$dir/ready" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if [ -e "$dir/ready" ] && kill -0 "$pid" 2>/dev/null; then
    echo "testcp-up: ready in $((SECONDS - start))s (pid $pid, dir $dir, controllers=$controllers)" >&2
    print_exports "$dir" "$pid"
    exit 0
  fi
  kill "$pid" 2>/dev/null || true
  rc=0; wait "$pid" || rc=$?
  echo "testcp-up: attempt $attempt failed (exit $rc); log tail:" >&2
  tail -n 60 "$dir/testcp.log" "$dir/serve.out" >&2 2>/dev/null || true
  rm -rf "$dir"
  [ "$rc" -eq 75 ] || break                 # 75 = port already in use
done
echo "testcp-up: control plane did not become ready" >&2
exit 1
