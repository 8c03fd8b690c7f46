#!/usr/bin/env bash
# Re-records the golden outputs of the actor samples under the real Extism
# host (the `extism` crate 1.30.0 in reference/extism-host, which pins
# wasmtime 43 and is built outside heapscope's workspace, into
# target/reference). The test suite compares heapscope's Extism host with
# these files (tests/actor.rs); rerun this after changing the actor sample or
# the golden messages:
#   scripts/reference-extism.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash samples/build.sh
echo "reference-extism: building the Extism reference host (wasmtime 43; several minutes the first time)" >&2
CARGO_TARGET_DIR="$PWD/target/reference" cargo build --quiet --release \
  --manifest-path reference/extism-host/Cargo.toml
ref=target/reference/release/extism-reference
g=samples/actor/golden
{ samples/actor/gen-messages.sh 300; cat "$g/extra-messages.jsonl"; } > "$g/messages.jsonl"
for twin in leaky fixed; do
  "$ref" "samples/build/actor/actor-$twin.wasm" --function process --messages "$g/messages.jsonl" \
    --config greeting=hej --outputs "$g/$twin.outputs.jsonl"
  echo "reference-extism: recorded $g/$twin.outputs.jsonl ($(wc -l < "$g/$twin.outputs.jsonl") lines)" >&2
done
