#!/usr/bin/env bash
# Build the Argo CD prune checker (tools/argocd-prune-check: gitops-engine's cluster cache and
# GetManagedLiveObjs, the call Argo CD's controller uses to collect the live objects it diffs
# and prunes) or reuse a cached binary, and print only the binary's path on stdout. Build
# output goes to stderr.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/argocd-prune-check/<key>/argocd-prune-check
# where <key> hashes every build input (go.mod, go.sum, *.go with their names, go version,
# GOOS/GOARCH, ldflags and the recipe stamp below); see scripts/lib/go-cached-build.sh.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=lib/go-cached-build.sh
. "$here/lib/go-cached-build.sh"
cd "$here/../tools/argocd-prune-check"
gcb_setup argocd-prune-check-build -mod=readonly

# Recipe stamp: change it when the build changes in a way the key does not see.
recipe=43e96f06783507533156fce2f83b6ad1f74390eb2486d8572ba8faa05c80bedd
gcb_build_module argocd-prune-check argocd-prune-check "-s -w" "$recipe" \
  "the gitops-engine prune checker" "~3-4 min"
