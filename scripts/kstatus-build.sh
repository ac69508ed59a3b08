#!/usr/bin/env bash
# Build the kstatus checker (tools/kstatus-check: sigs.k8s.io/cli-utils kstatus on stdin
# objects) or reuse a cached binary, and print only the binary's path on stdout. Build output
# goes to stderr.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/kstatus/<key>/kstatus-check, where
# <key> hashes every build input (go.mod, go.sum, *.go with their names, go version,
# GOOS/GOARCH, ldflags and the recipe stamp below); see scripts/lib/go-cached-build.sh.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=lib/go-cached-build.sh
. "$here/lib/go-cached-build.sh"
cd "$here/../tools/kstatus-check"
gcb_setup kstatus-build -mod=readonly

# Recipe stamp: change it when the build changes in a way the key does not see.
recipe=9ea53a32ec4c8ec96f40b9a6428693c87ad0d02c370682c4d42c78bb4838abe0
gcb_build_module kstatus kstatus-check "-s -w" "$recipe" \
  "sigs.k8s.io/cli-utils kstatus checker" "~1-2 min"
