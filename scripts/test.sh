#!/usr/bin/env bash
# Installs everything the tests need, pinned, then runs every check and test.
# Called by `make test` (the README's test command) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== template: cfn-lint and checkov (pinned, project venvs)"
bash scripts/check-template.sh

echo "== AWS emulator (moto, pinned, loopback)"
bash infra/moto.sh install
bash infra/moto.sh start
# Stopped whatever happens to the test run.
trap 'bash infra/moto.sh stop' EXIT
# AWS_ENDPOINT_URL and dummy credentials: the adapter tests talk to moto only.
# shellcheck disable=SC1091
source .local/moto.env

echo "== supply chain (cargo-deny, offline advisory snapshot)"
bash scripts/deny.sh

echo "== cargo-lambda (pinned) and the Lambda binaries for its emulator (tests/lambda_emulator.rs)"
bash infra/pytools.sh install cargo-lambda
PATH="$(bash infra/pytools.sh bin cargo-lambda):$PATH"
export PATH
# The binaries exactly as `cargo lambda watch` runs them (default features, debug), built here
# so the emulator test does not build them while it waits for an invocation.
cargo build -p artist-monitoring -p data-sync -p track-analysis -p streaming-metrics -p social-media-sync -p playlist-update

echo "== ai-content-generation: the local model (pinned, sha256-verified, cached outside the repo) and the Bedrock fake's botocore"
LOCAL_MODEL_PATH=$(bash scripts/fetch-model.sh)
export LOCAL_MODEL_PATH
bash infra/pytools.sh install botocore

echo "== Debian packages (pinned): prometheus (promtool, the scrape of \`tasks serve\`) and chromium-headless-shell (the dashboard in a browser)"
bash scripts/install-debs.sh
# PROMTOOL and PROMETHEUS, which tests/e2e/serve.rs runs; CHROMIUM, which tests/e2e/dashboard.rs drives.
# shellcheck disable=SC1091
source .local/debs.env

echo "== tests"
# The output is kept and scanned: no fixture token or secret may reach a log line.
cargo test --workspace --all-features 2>&1 | tee .local/test-output.log
bash scripts/scan-secrets.sh .local/test-output.log
