#!/usr/bin/env bash
# Quick start, step 1: profile the bundled leaky C sample and print its leaks,
# then run the leaky actor sample (an Extism plugin) over 5,000 messages and
# show how much its heap grows per message, and from where.
#
# It installs only what that needs (scripts/setup.sh --demo: clang, lld,
# wasi-libc and the wasm32-unknown-unknown rust target) and builds only those
# two samples; building heapscope itself (wasmtime included) is most of the
# time, and it starts first, while the rest is installed. It builds the
# `quick` profile (unoptimised, no debug info: half the build time of
# --release); install with `cargo install --path .` for daily use.
set -euo pipefail
cd "$(dirname "$0")/.."
hs=target/quick/heapscope
mkdir -p target/demo
if [ ! -x "$hs" ] || [ -n "$(find src collector instrument trace viewer Cargo.toml Cargo.lock -newer "$hs" -print -quit 2>/dev/null)" ]; then
  echo "demo: building heapscope (unoptimised: quicker to build) and the two samples it profiles; on a 2-core machine with nothing built this takes about 6 minutes, 7 if crates and apt packages must be downloaded (README, Quick start)" >&2
fi
start=$(date +%s)
# heapscope builds in the background while apt and rustup install what the
# samples need; its log is target/demo-build.log.
cargo build --profile quick --locked --quiet --bin heapscope >target/demo-build.log 2>&1 &
build=$!
scripts/setup.sh --demo
samples/build.sh --demo
if ! wait $build; then
  echo "demo: error: cargo build --profile quick failed; log: target/demo-build.log" >&2
  tail -20 target/demo-build.log >&2
  exit 1
fi
echo "demo: built in $(( $(date +%s) - start )) s" >&2
echo
echo "== a C program: samples/c/leaky.c"
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
echo "demo: done in $(( $(date +%s) - start )) s" >&2
