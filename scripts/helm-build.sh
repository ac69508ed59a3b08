#!/usr/bin/env bash
# Build the helm CLI from its Go module (or reuse the cached binary) and print
# only its path. Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/helm/<version>-<go version>/helm
#
#   export HELM=$(scripts/helm-build.sh)
#
# `go install module@version` builds with Helm's own go.mod, so its pins never
# mix with tools/testcp's. Only local chart directories work here (no chart
# repositories or OCI registries are reachable).
set -euo pipefail
command -v go >/dev/null || { echo "helm-build: Go 1.26 is required (go not found on PATH)" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"
v=${HELM_VERSION:-v4.3.1}
major=$(cut -d. -f1 <<<"$v")                # v4 or v3
cache="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/helm"
dir="$cache/$v-$(go env GOVERSION)"
if [ ! -x "$dir/helm" ]; then
  mkdir -p "$dir"
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -x "$dir/helm" ]; then
    echo "helm-build: building helm $v into $dir (cold: a few minutes)" >&2
    tmp=$(mktemp -d "$dir/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    start=$SECONDS
    (cd "$tmp" && GOBIN="$tmp" go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$v" \
      "helm.sh/helm/$major/cmd/helm@$v") >&2
    mv -f "$tmp/helm" "$dir/helm"
    echo "helm-build: built in $((SECONDS - start))s" >&2
  fi
  exec 9>&-
fi
echo "$dir/helm"
