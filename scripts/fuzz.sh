#!/usr/bin/env bash
# Run every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 30; CI: 20; a long run: 3600
#   FUZZ_TARGETS="condition_regex" scripts/fuzz.sh 60   only some targets
#
# Installs cargo-fuzz 0.13.2 into ~/.cache/guardrail-operator/cargo-fuzz when it is missing.
# Uses the nightly toolchain (AddressSanitizer) when there is one, else stable with
# RUSTC_BOOTSTRAP=1 and no sanitizer. Builds into fuzz/target (never the main target dir).
# Seeds (fuzz/seeds/<target>, committed) are read only; what the fuzzer finds goes to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>/, logs to fuzz/logs/ (all ignored).
# Exits non-zero when any target crashes, times out (-timeout) or runs out of memory.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

secs=${1:-30}
[[ $secs =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (a positive integer, default 30)" >&2
  exit 2
}
targets=${FUZZ_TARGETS:-admission_review manifest_reader condition_regex}
# One input slower than this (seconds) is a failure: every target must finish fast.
unit_timeout=${FUZZ_UNIT_TIMEOUT:-10}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# cargo-fuzz, pinned, cached outside the repository.
CARGO_FUZZ_VERSION=0.13.2
root="$HOME/.cache/guardrail-operator/cargo-fuzz"
if ! "$root/bin/cargo-fuzz" --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $root" >&2
  cargo install --root "$root" cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
export PATH="$root/bin:$PATH"

# Nightly (with AddressSanitizer), else stable with RUSTC_BOOTSTRAP=1 and no sanitizer
# (FUZZ_STABLE=1 forces the fallback). The fallback builds into its own target dir.
# (Asks rustup's list rather than trying `cargo +nightly`, which some rustups would install.)
has_nightly() { command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^nightly'; }
if [ "${FUZZ_STABLE:-0}" != 1 ] && has_nightly; then
  fuzz=(cargo +nightly fuzz)
  flags=(--fuzz-dir fuzz)
  env_prefix=""
  echo "fuzz: nightly toolchain ($(rustc +nightly --version)), AddressSanitizer" >&2
else
  if [ "${FUZZ_STABLE:-0}" != 1 ]; then
    echo "fuzz: no nightly toolchain is installed (rustup toolchain install nightly adds one)." >&2
  fi
  echo "fuzz: using stable ($(rustc --version)) with RUSTC_BOOTSTRAP=1 and no sanitizer (-s none):" \
    "panics, stack overflows, timeouts and out-of-memory are still found; memory errors in" \
    "dependencies' unsafe code are not" >&2
  export RUSTC_BOOTSTRAP=1
  env_prefix="RUSTC_BOOTSTRAP=1 "
  fuzz=(cargo fuzz)
  flags=(--fuzz-dir fuzz -s none --target-dir fuzz/target/stable)
fi

start=$(date +%s)
for t in $targets; do
  "${fuzz[@]}" build "${flags[@]}" "$t"
done
echo "fuzz: built $targets in $(($(date +%s) - start)) s" >&2

mkdir -p fuzz/logs
total=0
crashes=0
failed=()
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/logs/$t.log"
  echo "fuzz: $t for ${secs} s (log: $log)" >&2
  set +e
  "${fuzz[@]}" run "${flags[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout="$unit_timeout" \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's final stats; on a crash it prints them too, else the last "#N" status line.
  execs=$(awk '/^stat::number_of_executed_units:/ {n = $2} END {print n + 0}' "$log")
  if [ "$execs" -eq 0 ]; then
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)
    execs=${execs:-0}
  fi
  total=$((total + execs))
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $t: $execs executions in ${secs} s, no crash"
  else
    crashes=$((crashes + 1))
    failed+=("$t")
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "fuzz: $t: CRASH after $execs executions (exit $rc)"
    grep -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|^SUMMARY' "$log" | head -n 5 | sed 's/^/    /' || true
    if [ -n "$artifact" ]; then
      echo "    input: $artifact"
      echo "    reproduce: ${env_prefix}${fuzz[*]} run ${flags[*]} $t $artifact"
    else
      echo "    no input was written; see $log"
    fi
    echo "    This input must become a regression test (tests/hostile.rs or the module's unit tests) before the fix lands."
  fi
done

echo "fuzz: $total executions, $crashes crashes"
if [ "$crashes" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (logs in fuzz/logs/)" >&2
  exit 1
fi
