#!/usr/bin/env bash
# Quick start, step 1: profile the bundled leaky C sample and print its leaks,
# then run the leaky actor sample (an Extism plugin) over 5,000 messages and
# show how much its heap grows per message, and from where.
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
$hs report target/demo/leaky.trace -o target/demo/leaky.html
echo
echo "== an actor: samples/actor (Extism plugin) over 5,000 messages"
$hs run samples/build/actor/actor-leaky.wasm --extism process \
  --messages samples/build/actor/messages-5000.jsonl --outputs target/demo/actor.outputs.jsonl \
  --trace target/demo/actor.trace --summary-json target/demo/actor.summary.json
echo
$hs summary target/demo/actor.trace
$hs report target/demo/actor.trace -o target/demo/actor.html
echo
echo "HTML reports (open in a browser): target/demo/leaky.html, target/demo/actor.html"
echo "summary JSON: target/demo/leaky.summary.json, target/demo/actor.summary.json; traces: target/demo/*.trace"
