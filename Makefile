# The two commands of the README, and the pieces of the test run.
.PHONY: run test lint unit

# The main job on the embedded default: no AWS account, no Docker, no network.
run:
	cargo run --release -- local --days 30

# Installs what the tests need (pinned) and runs every test.
test:
	bash scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
