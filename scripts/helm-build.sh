#!/usr/bin/env bash
# Build the helm CLI from its Go module (or reuse the cached binary) and print only its path.
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/helm/<version>-<go version>/helm
#
#   export HELM=$(scripts/helm-build.sh)
#
# `go install module@version` builds with Helm's own go.mod, so its pins never mix with
# tools/testcp's. Only local chart directories work here (no chart repositories or OCI
# registries are reachable). HELM_VERSION=v3.x.y builds Helm 3 instead of the default.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=lib/go-cached-build.sh
. "$here/lib/go-cached-build.sh"
gcb_setup helm-build
v=${HELM_VERSION:-v4.3.1}
major=$(cut -d. -f1 <<<"$v")                # v4 or v3
gcb_install helm "$v-$(go env GOVERSION)" "helm.sh/helm/$major/cmd/helm@$v" \
  "-s -w -X helm.sh/helm/$major/internal/version.version=$v" "helm $v" "a few minutes"
