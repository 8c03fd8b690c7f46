#!/usr/bin/env bash
# The heapscope job of examples/ci/github-actions.yml, as one script that CI
# and the tests (tests/ci_example.rs) run the same way:
#
#   heapscope-gate.sh MODULE OUT_DIR [heapscope run options...]
#
# It instruments MODULE (and checks the output), runs it with the leak gate
# on (plus any gate you pass: --max-peak 64MiB, --max-growth 0, ...), and
# writes into OUT_DIR: instrumented.wasm, heapscope.trace, summary.json,
# heapscope-junit.xml (each gate a test case) and heapscope-report.html.
# The report is written whether or not a gate failed. Exit status: the
# run's (0 passed, 1 a gate failed, 3 not decided, 2 heapscope's error, ...).
# Set HEAPSCOPE to the binary if `heapscope` is not on PATH.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: heapscope-gate.sh MODULE OUT_DIR [heapscope run options...]" >&2
  exit 2
fi
module=$1 out=$2
shift 2
hs=${HEAPSCOPE:-heapscope}
mkdir -p "$out" || exit 2
"$hs" instrument "$module" -o "$out/instrumented.wasm" --validate || exit $?
status=0
"$hs" run "$out/instrumented.wasm" \
  --trace "$out/heapscope.trace" --summary-json "$out/summary.json" \
  --junit "$out/heapscope-junit.xml" --fail-on-leak "$@" || status=$?
if [ -s "$out/heapscope.trace" ]; then
  "$hs" report "$out/heapscope.trace" -o "$out/heapscope-report.html" || true
fi
exit $status
