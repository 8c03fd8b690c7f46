#!/usr/bin/env bash
# Renders the two demo reports (target/demo/leaky.html, actor.html, written
# by scripts/demo.sh) in headless Chromium into docs/screenshots/, the
# pictures the README links. Review them before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "screenshots: error: chromium is missing (apt-get install chromium)" >&2; exit 1; }
for r in leaky actor; do
  [ -e "target/demo/$r.html" ] || { echo "screenshots: error: target/demo/$r.html is missing: run scripts/demo.sh first" >&2; exit 1; }
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --hide-scrollbars --virtual-time-budget=5000 --window-size=1400,3200 \
    --user-data-dir="$profile" --screenshot="docs/screenshots/$r.png" \
    "file://$PWD/target/demo/$r.html" 2>/dev/null
  rm -rf "$profile"
  echo "screenshots: docs/screenshots/$r.png" >&2
done
