# shellcheck shell=bash
# Cached Go builds, sourced by scripts/testcp-build.sh, helm-build.sh, kstatus-build.sh and
# argocd-prune-check-build.sh. Each builds one Go program, or reuses the binary it built before,
# and prints nothing but the binary's path on stdout; build output and messages go to stderr.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator/<kind>/<entry>/<binary>. <entry> is
#   * for a module in this repository (gcb_build_module): a key, the first 16 hex digits of a
#     sha256 over every *.go, go.mod and go.sum of the module (with their names), `go version`,
#     `go env GOOS GOARCH`, the ldflags and the caller's recipe stamp;
#   * for `go install module@version` (gcb_install): <version>-<go version>.
# One build per <kind> at a time (flock on <kind>/.lock; a second caller waits, then finds the
# binary). The binary is built in a temporary directory beside its final place and moved in, so
# a half-written binary is never found. GOCACHE and GOMODCACHE stay at their defaults, so a kept
# machine rebuilds warm.
#
# The recipe stamp stands for what the hashed inputs do not show: the build command line below,
# GOFLAGS, CGO_ENABLED and anything else that changes the binary. Give it a new value whenever
# such a thing changes, or an old binary will be reused. The stamps in use are the sha256 sums of
# the build scripts as they were before this file existed (their key hashed the script itself,
# as the line `sha256sum <script`, which is what `gcb_module_key` reproduces), so binaries cached
# before the change are still hits.

gcb_cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/guardrail-operator"
gcb_name=go-cached-build
gcb_tmp=

# gcb_setup NAME [GOFLAG...]: NAME prefixes every message; Go must be on PATH; sets the build
# environment (the GOFLAGS given are added after -buildvcs=false).
gcb_setup() {
  gcb_name=$1
  shift
  command -v go >/dev/null || { echo "$gcb_name: Go 1.26 is required (go not found on PATH)" >&2; exit 1; }
  export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false${*:+ $*}"
}

# gcb_module_key LDFLAGS STAMP: the cache key of the Go module in the current directory.
gcb_module_key() {
  { find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
    go version
    go env GOOS GOARCH
    printf '%s\n' "$1"
    printf '%s  -\n' "$2"          # what `sha256sum <file` printed for the old scripts
  } | sha256sum | cut -c1-16
}

# gcb_build_module KIND BINARY LDFLAGS STAMP WHAT COLD: `go build` the module in the current
# directory into <kind>/<key>/<binary> unless it is there; print the binary's path. WHAT and
# COLD only go into the message: "building WHAT into PATH (cold: COLD)".
gcb_build_module() {
  local kind=$1 bin=$2 ld=$3 stamp=$4 what=$5 cold=$6 key
  key=$(gcb_module_key "$ld" "$stamp")
  gcb_cached "$kind" "$key" "$bin" "$what" "$cold" gcb_go_build "$ld"
}

# gcb_install KIND ENTRY PACKAGE@VERSION LDFLAGS WHAT COLD: `go install` a published module (with
# its own go.mod, so its pins never mix with ours) into <kind>/<entry>/<binary>, the binary being
# the last element of the package path; print the binary's path.
gcb_install() {
  local kind=$1 entry=$2 pkg=$3 ld=$4 what=$5 cold=$6 bin
  bin=${pkg%@*}
  bin=${bin##*/}
  gcb_cached "$kind" "$entry" "$bin" "$what" "$cold" gcb_go_install "$pkg" "$ld"
}

gcb_go_build() { # LDFLAGS OUT
  go build -trimpath -ldflags "$1" -o "$2" .
}

gcb_go_install() { # PACKAGE@VERSION LDFLAGS OUT
  local dir
  dir=$(dirname "$3")
  (cd "$dir" && GOBIN="$dir" go install -trimpath -ldflags "$2" "$1")
}

# gcb_cached KIND ENTRY BINARY WHAT COLD COMMAND ARG...: unless <kind>/<entry>/<binary> is an
# executable, run COMMAND ARG... TMP_BINARY under the lock and move TMP_BINARY into place. Prints
# the binary's path.
gcb_cached() {
  local kind=$1 entry=$2 bin=$3 what=$4 cold=$5
  shift 5
  local cache="$gcb_cache_root/$kind"
  local out="$cache/$entry/$bin"
  if [ ! -x "$out" ]; then
    mkdir -p "$cache/$entry"
    exec 9>"$cache/.lock"
    flock 9                                 # one build at a time
    if [ ! -x "$out" ]; then                # someone else may have built it meanwhile
      echo "$gcb_name: building $what into $out (cold: $cold)" >&2
      local start=$SECONDS
      gcb_tmp=$(mktemp -d "$cache/$entry/.build.XXXXXX")
      trap 'rm -rf "$gcb_tmp"' EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM
      "$@" "$gcb_tmp/$bin" >&2
      mv -f "$gcb_tmp/$bin" "$out"          # never leave a half-written binary
      rm -rf "$gcb_tmp"
      trap - EXIT INT TERM
      echo "$gcb_name: built in $((SECONDS - start))s" >&2
    fi
    exec 9>&-
  fi
  printf '%s\n' "$out"
}
