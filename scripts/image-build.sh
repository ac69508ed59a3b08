#!/usr/bin/env bash
# Builds the operator's OCI image without Docker and without pulling anything: the release
# binary built here, on a minimal root filesystem (the binary, the shared libraries it links,
# CA certificates, /etc/passwd with the non-root user, an empty /tmp), committed with buildah.
# User, entrypoint, command, ports and labels are read from the Dockerfile's final stage, so the
# two ways to build agree (tests/e2e/image.rs checks the result against the Dockerfile).
#
#   scripts/image-build.sh            # prints the image reference, e.g. localhost/guardrail-operator:0.1.0
#
# The image is tagged twice: localhost/guardrail-operator:<crate version> and the chart's own
# image reference (<image.repository>:<appVersion>), so `helm template` output names an image
# that exists locally. Progress goes to stderr; stdout gets only the reference.
# Environment: GUARDRAIL_BINARY=path skips the cargo build (a release binary built elsewhere).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
log() { printf 'image-build: %s\n' "$*" >&2; }

# buildah, podman and runc from Debian, installed once (root only; crun refuses this kernel's
# hybrid cgroups, so the tests run podman with --runtime runc).
need=()
for tool in buildah podman runc; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  [[ $(id -u) -eq 0 ]] || { log "needs ${need[*]} (apt-get install ${need[*]}), or run as root"; exit 1; }
  log "installing ${need[*]} from Debian"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
. scripts/lib/chart-image.sh
chart_ref=$(chart_image_ref) || chart_ref=""
[[ -n $version && -n $chart_ref ]] || { log "cannot read the crate version, appVersion or image.repository"; exit 1; }
ref="localhost/guardrail-operator:$version"

binary=${GUARDRAIL_BINARY:-}
if [[ -z $binary ]]; then
  log "release build (cargo build --release --locked --bin guardrail-operator)"
  cargo build --release --locked --bin guardrail-operator >&2
  binary=${CARGO_TARGET_DIR:-target}/release/guardrail-operator
fi
[[ -x $binary ]] || { log "no binary at $binary"; exit 1; }

rootfs=$(mktemp -d)
container=""
cleanup() {
  [[ -n $container ]] && buildah rm "$container" >/dev/null 2>&1 || true
  rm -rf -- "$rootfs"
}
trap cleanup EXIT

# The root filesystem: only what the binary needs.
install -d -m 0755 "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs"
install -d -m 1777 "$rootfs/tmp"
install -m 0755 "$binary" "$rootfs/usr/local/bin/guardrail-operator"
strip "$rootfs/usr/local/bin/guardrail-operator"
# Shared libraries, at the paths the dynamic linker looks for them (ldd prints the interpreter
# as an absolute path and every other library as `name => path`).
while read -r lib; do
  [[ -e $lib ]] || continue
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done < <(ldd "$binary" | awk '/=>/ && $3 ~ /^\// {print $3} !/=>/ && $1 ~ /^\// {print $1}')
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
install -d -m 0700 "$rootfs/home/nonroot"
chown 65532:65532 "$rootfs/home/nonroot"

# User, entrypoint, command, ports and labels from the Dockerfile's final stage.
mapfile -t config < <(python3 - Dockerfile <<'PY'
import json, re, shlex, sys
lines, cur = [], ""
for raw in open(sys.argv[1], encoding="utf-8"):
    line = raw.rstrip("\n")
    if line.lstrip().startswith("#") and not cur:
        continue
    if line.endswith("\\"):
        cur += line[:-1] + " "
        continue
    lines.append(cur + line)
    cur = ""
final = []
for line in lines:
    if re.match(r"\s*FROM\s", line, re.I):
        final = []
    elif line.strip():
        final.append(line.strip())
for line in final:
    word, _, rest = line.partition(" ")
    word, rest = word.upper(), rest.strip()
    if word == "USER":
        print(f"--user={rest}")
    elif word == "EXPOSE":
        for port in rest.split():
            print(f"--port={port if '/' in port else port + '/tcp'}")
    elif word in ("ENTRYPOINT", "CMD"):
        print(f"--{word.lower()}={json.dumps(json.loads(rest))}")
    elif word == "LABEL":
        for pair in shlex.split(rest):
            print(f"--label={pair}")
PY
)
((${#config[@]} >= 4)) || { log "could not read USER, EXPOSE, ENTRYPOINT and CMD from the Dockerfile"; exit 1; }

log "committing $ref from $(du -sh "$rootfs" | cut -f1) of files"
container=$(buildah from --quiet scratch)
buildah copy --quiet "$container" "$rootfs/" / >/dev/null
buildah config "${config[@]}" \
  --label "org.opencontainers.image.version=$version" \
  --workingdir / "$container" >&2
buildah commit --quiet --format oci --rm "$container" "$ref" >/dev/null
container=""
buildah tag "$ref" "$chart_ref"
log "$ref ($(podman image inspect --format '{{.Size}}' "$ref") bytes), also tagged $chart_ref"
printf '%s\n' "$ref"
