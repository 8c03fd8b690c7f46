#!/usr/bin/env bash
# Renders the two demo reports (target/demo/leaky.html, actor.html, written
# by scripts/demo.sh) in headless Chromium into docs/screenshots/, the
# pictures the README links, and the top of the actor's report into
# docs/report-actor.png. Review them before committing.
#
# With HEAPSCOPE=path/to/heapscope it first writes those reports itself,
# with that binary, from the demo's runs (the bundled leaky C sample; the
# leaky actor over 5,000 messages), so no `quick` build is needed:
#   cargo build && HEAPSCOPE=target/debug/heapscope scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "screenshots: error: chromium is missing (apt-get install chromium)" >&2; exit 1; }
if [ -n "${HEAPSCOPE:-}" ]; then
  hs=$HEAPSCOPE
  mkdir -p target/demo
  for m in samples/build/c/leaky.wasm samples/build/actor/actor-leaky.wasm samples/build/actor/messages-5000.jsonl; do
    [ -e "$m" ] || { echo "screenshots: error: $m is missing: run samples/build.sh --demo first" >&2; exit 1; }
  done
  "$hs" run samples/build/c/leaky.wasm --trace target/demo/leaky.trace >/dev/null 2>&1 || true
  "$hs" run samples/build/actor/actor-leaky.wasm --extism process \
    --messages samples/build/actor/messages-5000.jsonl --outputs target/demo/actor.outputs.jsonl \
    --trace target/demo/actor.trace >/dev/null 2>&1 || true
  "$hs" report target/demo/leaky.trace -o target/demo/leaky.html
  "$hs" report target/demo/actor.trace -o target/demo/actor.html
fi
# shot HTML PNG WIDTH,HEIGHT
shot() {
  local profile
  profile=$(mktemp -d)
  "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --hide-scrollbars --virtual-time-budget=5000 --window-size="$3" \
    --user-data-dir="$profile" --screenshot="$2" \
    "file://$PWD/$1" 2>/dev/null
  rm -rf "$profile"
  echo "screenshots: $2" >&2
}
for r in leaky actor; do
  [ -e "target/demo/$r.html" ] || { echo "screenshots: error: target/demo/$r.html is missing: run scripts/demo.sh first (or set HEAPSCOPE)" >&2; exit 1; }
  shot "target/demo/$r.html" "docs/screenshots/$r.png" 1400,3200
done
# The top of the actor's report: headline, summary and timeline.
shot target/demo/actor.html docs/report-actor.png 1400,1100
