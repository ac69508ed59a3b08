#!/usr/bin/env bash
# Builds (or reuses) kubelet and kube-scheduler for scripts/node-up.sh, from a copy of
# tools/testcp's go.mod and go.sum, so they are the same Kubernetes version as the test control
# plane; prints only the directory holding them. Cache:
# ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/node/<key>/, <key> hashing go.mod, go.sum,
# `go version` and this script. Warm Go cache: about 66 s + 18 s on 2 cores.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
command -v go >/dev/null || { echo "node-build: Go is required" >&2; exit 1; }
key=$( { cat tools/testcp/go.mod tools/testcp/go.sum "$0"; go version; } | sha256sum | cut -c1-16)
root="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/node"
out="$root/$key"
if [[ -x $out/kubelet && -x $out/kube-scheduler ]]; then
  printf '%s\n' "$out"
  exit 0
fi
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
tmp=$(mktemp -d "$root/build.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
cp tools/testcp/go.mod tools/testcp/go.sum "$tmp/"
sed -i 's#^module .*#module node#' "$tmp/go.mod"
printf '//go:build tools\npackage node\n' >"$tmp/tools.go"
kver=$(sed -n 's#^\s*k8s.io/kubernetes v\(.*\)$#\1#p' tools/testcp/go.mod | head -n1)
p=k8s.io/component-base/version
ld="-s -w -X $p.gitVersion=v$kver -X $p.gitMajor=${kver%%.*} -X $p.gitMinor=$(cut -d. -f2 <<<"$kver") -X $p.gitTreeState=clean"
for c in kubelet kube-scheduler; do
  echo "node-build: building $c v$kver (Go module cache; a few minutes cold)" >&2
  (cd "$tmp" && GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS='-mod=mod -buildvcs=false' \
    go build -trimpath -ldflags "$ld" -o "$tmp/bin/$c" "k8s.io/kubernetes/cmd/$c" >&2)
done
mkdir -p "$out"
mv "$tmp/bin/kubelet" "$tmp/bin/kube-scheduler" "$out/"
printf '%s\n' "$out"
