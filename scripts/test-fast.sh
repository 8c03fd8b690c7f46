#!/usr/bin/env bash
# The fast tier of the test suite, for the edit-build-test loop: every unit
# and end-to-end test except the slow tier, which needs Node or Chromium,
# Valgrind or another peer tool, the real-module corpus, or is the fuzz
# pass. `scripts/test.sh` (and a plain `cargo test --workspace`) runs every
# tier; run it before you commit.
#
# Skipped here: the test binaries that are all slow tier (the corpus, the
# JavaScript collector's js_*, the fuzz crate's pass), and in the other
# binaries each test that calls `common::slow_tier` (it returns at once
# under HEAPSCOPE_FAST=1, saying "skipped (slow tier: ...)").
#
# Needs what scripts/test.sh installs (samples/build.sh has been run).
# Extra arguments go to the test binaries (a test-name filter,
# --nocapture).
set -euo pipefail
cd "$(dirname "$0")/.."
export HEAPSCOPE_FAST=1
slow_binaries=" corpus js_collector js_side_module js_table_calls js_workers "
targets=(--lib --bins)
for f in tests/*.rs */tests/*.rs; do
    case "$f" in fuzz/*) continue ;; esac
    name=$(basename "$f" .rs)
    case "$slow_binaries" in *" $name "*) continue ;; esac
    targets+=(--test "$name")
done
echo "test-fast: skipping the slow tier (binaries:$slow_binaries, the fuzz crate, and tests marked common::slow_tier)" >&2
cargo test --no-fail-fast --workspace --exclude heapscope-fuzz "${targets[@]}" -- "$@"
