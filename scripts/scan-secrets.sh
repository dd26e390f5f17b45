#!/usr/bin/env bash
# Scans test log output for the credentials the tests use: the Spotify sandbox's client secret
# and refresh tokens, the recorded fixtures' tokens and the test task's credential. Any
# occurrence fails: secrets never reach logs, errors or Debug output.
#   scripts/scan-secrets.sh FILE...
set -euo pipefail
cd "$(dirname "$0")/.."

patterns=(
  "sandbox-client-secret"      # spotify-sandbox's default client secret
  "sandbox-refresh-token-"     # its refresh tokens (the first one and every rotation)
  "sk-live-very-secret-value"  # the e2e test task's credential
  "fixture-access-token"       # the decoder fuzzing's token response
  "fixture-refresh-token"
)
status=0
for file in "$@"; do
  for pattern in "${patterns[@]}"; do
    count=$(grep -cF -- "$pattern" "$file" || true)
    if [[ $count -gt 0 ]]; then
      echo "secret scan: $count line(s) of $file contain a fixture secret (${pattern:0:12}...)" >&2
      status=1
    fi
  done
done
if [[ $status -eq 0 ]]; then
  echo "secret scan: 0 occurrences of ${#patterns[@]} fixture secrets in $*"
fi
exit $status
