#!/usr/bin/env bash
# Quick start, step 2: install what is needed, build the samples, run the
# whole test suite, and check formatting and lints.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --for-tests
samples/build.sh
scripts/corpus.sh   # the real-module corpus (tests/corpus.rs runs its CI rows)
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
