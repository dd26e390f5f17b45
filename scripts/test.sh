#!/usr/bin/env bash
# Installs everything the tests need, pinned, then runs every check and test.
# Called by `make test` (the README's test command) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== tests"
cargo test --workspace --all-features
