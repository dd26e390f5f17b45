#!/usr/bin/env bash
# Supply-chain check: `cargo deny check` (advisories, licenses, bans, sources) against the
# offline RustSec snapshot in ../shared/rustsec-advisory-db (these machines reach no advisory
# database online). Installs the pinned cargo-deny into .tools/ once; later runs reuse it.
# Called by scripts/test.sh; runs alone as `bash scripts/deny.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
TOOLS=.tools
DENY=$TOOLS/bin/cargo-deny
# CI has the shared folder beside the clone; RUSTSEC_SNAPSHOT overrides it (a worktree elsewhere).
SNAPSHOT=${RUSTSEC_SNAPSHOT:-../shared/rustsec-advisory-db}

if [[ -x $DENY ]] && "$DENY" --version | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  echo "cargo-deny $CARGO_DENY_VERSION: already in $TOOLS"
else
  echo "cargo-deny $CARGO_DENY_VERSION: installing into $TOOLS (a few minutes, once)"
  cargo install --locked --root "$TOOLS" cargo-deny --version "=$CARGO_DENY_VERSION"
fi

if [[ ! -f $SNAPSHOT/install.sh ]]; then
  echo "the RustSec advisory snapshot is missing: expected at $SNAPSHOT (beside the clone)" >&2
  exit 1
fi
# Copies the snapshot to where cargo-deny looks for the default database (idempotent).
bash "$SNAPSHOT/install.sh"

cargo fetch --locked
"$DENY" --offline --all-features check advisories licenses bans sources
