#!/usr/bin/env bash
# Build the kstatus checker (tools/kstatus-check: sigs.k8s.io/cli-utils kstatus on stdin
# objects) or reuse a cached binary, and print only the binary's path on stdout. Build
# output goes to stderr. Modelled on scripts/testcp-build.sh.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/kstatus/<key>/kstatus-check
# where <key> hashes every build input (go.mod, go.sum, *.go with their names, go version,
# GOOS/GOARCH, ldflags and this script). GOCACHE and GOMODCACHE stay at their defaults.
set -euo pipefail
self=$(readlink -f "$0")
root=$(cd "$(dirname "$self")/.." && pwd)
cd "$root/tools/kstatus-check"
command -v go >/dev/null || { echo "kstatus-build: Go 1.26 is required (go not found on PATH)" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -mod=readonly"
ld="-s -w"

key=$( { find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
           | LC_ALL=C sort -z | xargs -0 sha256sum
         go version; go env GOOS GOARCH; echo "$ld"; sha256sum <"$self"; } | sha256sum | cut -c1-16 )
cache="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/kstatus"
out="$cache/$key/kstatus-check"
if [ ! -x "$out" ]; then
  mkdir -p "$cache/$key"
  exec 9>"$cache/.lock"
  flock 9                                   # one build at a time
  if [ ! -x "$out" ]; then                  # someone else may have built it meanwhile
    echo "kstatus-build: building sigs.k8s.io/cli-utils kstatus checker into $out (cold: ~1-2 min)" >&2
    start=$SECONDS
    trap 'rm -f "$out.partial.$$"' EXIT
    go build -trimpath -ldflags "$ld" -o "$out.partial.$$" . >&2
    mv -f "$out.partial.$$" "$out"          # never leave a half-written binary
    trap - EXIT
    echo "kstatus-build: built in $((SECONDS - start))s" >&2
  fi
  exec 9>&-
fi
echo "$out"
