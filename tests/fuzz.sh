#!/usr/bin/env bash
# Runs each fuzz target in tests/fuzz for a bounded time with cargo fuzz
# (libFuzzer): rule files, agent and collector configs, summary templates,
# the protocol's message decoding, and the spool and journal segments read
# back after a crash.
#
#   tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# Installs cargo-fuzz from crates.io if missing. Uses the nightly toolchain
# with AddressSanitizer when one is installed; otherwise the stable
# compiler with RUSTC_BOOTSTRAP=1 and no sanitizer (coverage-guided all
# the same). Seeds come from examples/ and tests/fuzz/seeds; what libFuzzer
# adds goes to target/fuzz-corpus, crashes to tests/fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(rules configs template protocol segments)
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if rustup run nightly rustc --version >/dev/null 2>&1; then
  run=(cargo +nightly fuzz run)
  echo "fuzz: nightly toolchain, AddressSanitizer"
else
  export RUSTC_BOOTSTRAP=1
  run=(cargo fuzz run -s none)
  echo "fuzz: stable toolchain (RUSTC_BOOTSTRAP=1), no sanitizer"
fi
seeds_for() {
  case "$1" in
    rules) echo examples/rules examples/dev-rules ;;
    configs) echo tests/fuzz/seeds/configs ;;
    template) echo tests/fuzz/seeds/template ;;
    protocol) echo tests/fuzz/seeds/protocol ;;
    segments) echo tests/fuzz/seeds/segments ;;
  esac
}
status=0
for t in "${targets[@]}"; do
  corpus="target/fuzz-corpus/$t"
  mkdir -p "$corpus"
  echo "== $t: ${secs}s"
  # shellcheck disable=SC2046
  if ! timeout $((secs + 900)) "${run[@]}" --fuzz-dir tests/fuzz "$t" "$corpus" $(seeds_for "$t") -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10; then
    echo "== $t: FAILED (see tests/fuzz/artifacts/$t)"
    status=1
  fi
done
exit $status
