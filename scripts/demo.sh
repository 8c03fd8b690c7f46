#!/usr/bin/env bash
# Quick start, step 1: profile the bundled leaky C sample and print its leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
samples/build.sh
cargo build --release --quiet
mkdir -p target/demo
hs=target/release/heapscope
$hs run samples/build/c/leaky.wasm --trace target/demo/leaky.trace --summary-json target/demo/leaky.summary.json
echo
$hs leaks target/demo/leaky.trace
echo
echo "summary JSON: target/demo/leaky.summary.json; trace: target/demo/leaky.trace"
