#!/usr/bin/env bash
# Builds heapscope-bench's allocation-heavy real programs for wasm32-wasip1:
#   target/bench-programs/wasm32-wasip1/release/js.wasm     Boa, a JavaScript engine in Rust, running a script
#   target/bench-programs/wasm32-wasip1/release/serde.wasm  serde_json writing and parsing records
# Their crates are pinned in bench/programs/Cargo.lock (from crates.io).
# A first build takes a few minutes; the benchmark's `programs` row runs them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 \
  || rustup target add wasm32-wasip1
cd "$here"
CARGO_TARGET_DIR="$repo/target/bench-programs" cargo build --locked --quiet --release --target wasm32-wasip1
