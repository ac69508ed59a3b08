#!/usr/bin/env bash
# Build the test control plane (tools/testcp) or reuse a cached binary, and
# print only the binary's path on stdout. Build output goes to stderr.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/testcp/<key>/testcp
# where <key> hashes every build input (go.mod, go.sum, *.go with their names,
# go version, GOOS/GOARCH, ldflags and this script). GOCACHE and GOMODCACHE
# stay at their defaults, so a kept machine rebuilds warm.
set -euo pipefail
self=$(readlink -f "$0")
root=$(cd "$(dirname "$self")/.." && pwd)
cd "$root/tools/testcp"
command -v go >/dev/null || { echo "testcp-build: Go 1.26 is required (go not found on PATH)" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -mod=readonly"

k8s=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' go.mod)
[ -n "$k8s" ] || { echo "testcp-build: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
minor=$(cut -d. -f2 <<<"$k8s")
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitCommit=testcp"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

key=$( { find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
           | LC_ALL=C sort -z | xargs -0 sha256sum
         go version; go env GOOS GOARCH; echo "$ld"; sha256sum <"$self"; } | sha256sum | cut -c1-16 )
cache="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/testcp"
out="$cache/$key/testcp"
if [ ! -x "$out" ]; then
  mkdir -p "$cache/$key"
  exec 9>"$cache/.lock"
  flock 9                                   # one build at a time
  if [ ! -x "$out" ]; then                  # someone else may have built it meanwhile
    echo "testcp-build: building $k8s control plane into $out (cold: ~15-20 min on 2 cores)" >&2
    start=$SECONDS
    trap 'rm -f "$out.partial.$$"' EXIT
    go build -trimpath -ldflags "$ld" -o "$out.partial.$$" . >&2
    mv -f "$out.partial.$$" "$out"          # never leave a half-written binary
    trap - EXIT
    echo "testcp-build: built in $((SECONDS - start))s" >&2
  fi
  exec 9>&-
fi
echo "$out"
