#!/usr/bin/env bash
# Builds the samples into samples/build/ (run scripts/setup.sh first):
#   c/leaky.wasm c/fragment.wasm   wasm32-wasi, -g, name section kept (no -O:
#                                  with -O clang runs wasm-opt, which strips names)
#   c/leaky.stripped.wasm          no name section, no DWARF (error-path tests)
#   c/leaky.native c/fragment.native  gcc -g -O0, for Valgrind's reference counts
#   rust/leaky.wasm                wasm32-wasip1, release with line tables and names
#   rust/unknown.wasm              wasm32-unknown-unknown cdylib, Rust's default allocator
set -euo pipefail
cd "$(dirname "$0")"
out=build
mkdir -p "$out/c" "$out/rust"

fresh() { # fresh OUT SRC...: OUT exists and is newer than every SRC
  local o=$1 src; shift
  [ -e "$o" ] || return 1
  for src in "$@"; do [ "$src" -nt "$o" ] && return 1; done
  return 0
}

for s in leaky fragment; do
  fresh "$out/c/$s.wasm" "c/$s.c" || clang --target=wasm32-wasi -g "c/$s.c" -o "$out/c/$s.wasm"
  fresh "$out/c/$s.native" "c/$s.c" || gcc -g -O0 "c/$s.c" -o "$out/c/$s.native"
done
fresh "$out/c/leaky.stripped.wasm" c/leaky.c || clang --target=wasm32-wasi c/leaky.c -Wl,--strip-all -o "$out/c/leaky.stripped.wasm"

target_dir=$(cd .. && pwd)/target/samples
(cd rust/leaky && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip1)
cp "$target_dir/wasm32-wasip1/release/leaky.wasm" "$out/rust/leaky.wasm"
(cd rust/unknown && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown)
cp "$target_dir/wasm32-unknown-unknown/release/unknown.wasm" "$out/rust/unknown.wasm"
echo "samples: built into samples/$out/" >&2
