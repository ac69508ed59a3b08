#!/usr/bin/env bash
# Build the test control plane (tools/testcp) or reuse a cached binary, and print only the
# binary's path on stdout. Build output goes to stderr.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/testcp/<key>/testcp, where <key>
# hashes every build input (go.mod, go.sum, *.go with their names, go version, GOOS/GOARCH,
# ldflags and the recipe stamp below); see scripts/lib/go-cached-build.sh.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=lib/go-cached-build.sh
. "$here/lib/go-cached-build.sh"
cd "$here/../tools/testcp"
gcb_setup testcp-build -mod=readonly

# /version reports the pinned Kubernetes release, so Helm kubeVersion constraints work.
k8s=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' go.mod)
[ -n "$k8s" ] || { echo "testcp-build: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
minor=$(cut -d. -f2 <<<"$k8s")
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitCommit=testcp"
  ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

# Recipe stamp: change it when the build changes in a way the key does not see.
recipe=fc18efa2d5c91c6e5632d47a256a06d5586ef11205c848e14a43bc2760d68126
gcb_build_module testcp testcp "$ld" "$recipe" "the $k8s control plane" "~15-20 min on 2 cores"
