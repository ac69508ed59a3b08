#!/usr/bin/env bash
# Build the Argo CD prune checker (tools/argocd-prune-check: gitops-engine's cluster cache and
# GetManagedLiveObjs, the call Argo CD's controller uses to collect the live objects it diffs
# and prunes) or reuse a cached binary, and print only the binary's path on stdout. Build
# output goes to stderr. Modelled on scripts/kstatus-build.sh.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/argocd-prune-check/<key>/argocd-prune-check
# where <key> hashes every build input (go.mod, go.sum, *.go with their names, go version,
# GOOS/GOARCH, ldflags and this script). GOCACHE and GOMODCACHE stay at their defaults.
set -euo pipefail
self=$(readlink -f "$0")
root=$(cd "$(dirname "$self")/.." && pwd)
cd "$root/tools/argocd-prune-check"
command -v go >/dev/null || { echo "argocd-prune-check-build: Go 1.26 is required (go not found on PATH)" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -mod=readonly"
ld="-s -w"

key=$( { find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
           | LC_ALL=C sort -z | xargs -0 sha256sum
         go version; go env GOOS GOARCH; echo "$ld"; sha256sum <"$self"; } | sha256sum | cut -c1-16 )
cache="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/argocd-prune-check"
out="$cache/$key/argocd-prune-check"
if [ ! -x "$out" ]; then
  mkdir -p "$cache/$key"
  exec 9>"$cache/.lock"
  flock 9                                   # one build at a time
  if [ ! -x "$out" ]; then                  # someone else may have built it meanwhile
    echo "argocd-prune-check-build: building the gitops-engine prune checker into $out (cold: ~3-4 min)" >&2
    start=$SECONDS
    trap 'rm -f "$out.partial.$$"' EXIT
    go build -trimpath -ldflags "$ld" -o "$out.partial.$$" . >&2
    mv -f "$out.partial.$$" "$out"          # never leave a half-written binary
    trap - EXIT
    echo "argocd-prune-check-build: built in $((SECONDS - start))s" >&2
  fi
  exec 9>&-
fi
echo "$out"
