#!/usr/bin/env bash
# Prints N actor messages, one JSON object per line, the same every time:
#   {"id":"m0000001","user":"u17","text":"..."}
# Usage: samples/actor/gen-messages.sh N > messages.jsonl
# Ids are unique (m0000001, m0000002, ...), so the leaky actor's cache gains
# one entry per message; texts are 8 to 63 words from a small vocabulary.
set -euo pipefail
n=${1:?usage: gen-messages.sh N}
case $n in ''|*[!0-9]*) echo "gen-messages.sh: N must be a number, not '$n'" >&2; exit 2;; esac
awk -v n="$n" 'BEGIN {
  nw = split("actor message queue memory page heap block stack grow leak cache bounded evict oldest insert lookup reply plugin host limit wasm linear frame", w, " ");
  s = 12345;
  for (i = 1; i <= n; i++) {
    s = (s * 75 + 74) % 65537; words = 8 + s % 56;
    s = (s * 75 + 74) % 65537; user = s % 50;
    text = "";
    for (j = 0; j < words; j++) {
      s = (s * 75 + 74) % 65537;
      text = text (j ? " " : "") w[1 + s % nw];
    }
    printf "{\"id\":\"m%07d\",\"user\":\"u%d\",\"text\":\"%s\"}\n", i, user, text;
  }
}'
