# shellcheck shell=bash
# The chart's default image reference, <image.repository>:<appVersion>, read from the chart
# (sourced by scripts/image-build.sh, which tags the local image with it, and scripts/node-up.sh).
# Run from the repository root; prints nothing and returns 1 when either value is missing.
chart_image_ref() {
  local app_version repo
  app_version=$(sed -n 's/^appVersion: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/guardrail-operator/Chart.yaml)
  repo=$(sed -n 's/^  repository: //p' charts/guardrail-operator/values.yaml | head -n1)
  [[ -n $app_version && -n $repo ]] || return 1
  printf '%s:%s\n' "$repo" "$app_version"
}
