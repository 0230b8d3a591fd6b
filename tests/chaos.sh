#!/usr/bin/env bash
# Chaos run: agents with disk spools at a 1 s interval, the collector killed
# with `kill -9` again and again, the stream cut for a long stretch, then a
# check through the API that every sample arrived exactly once and every
# fault was recorded once (crates/collector-main/tests/chaos.rs).
#
#   tests/chaos.sh [KILLS] [CUT_SECONDS]     defaults: 10 kills, 120 s cut
#
# The test suite runs the same test with 3 kills and a 40 s cut. Bounded:
# the test itself gives up after its waits (at most a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export WATCHPOST_CHAOS_KILLS="${1:-10}"
export WATCHPOST_CHAOS_CUT_SECS="${2:-120}"
echo "chaos: ${WATCHPOST_CHAOS_KILLS} kill -9s, then a ${WATCHPOST_CHAOS_CUT_SECS} s cut"
exec timeout $((WATCHPOST_CHAOS_KILLS * 10 + WATCHPOST_CHAOS_CUT_SECS * 2 + 600)) \
  cargo test -p watchpost-collector-main --test chaos -- --nocapture
