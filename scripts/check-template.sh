#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and scans it with checkov, both pinned in project venvs
# (infra/pytools.sh). Skipped checkov checks carry their reason in the template itself
# (Metadata.checkov.skip[].comment). Called by scripts/test.sh; runs alone in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/pytools.sh install cfn-lint
bash infra/pytools.sh install checkov
echo "cfn-lint (with the serverless rules of cfn-lint-serverless): template.yaml"
# Suppressions sit on their resources (Metadata.cfn-lint.config.ignore_checks), each with its reason.
"$(bash infra/pytools.sh bin cfn-lint)/cfn-lint" --append-rules cfn_lint_serverless.rules -- template.yaml
echo "checkov: template.yaml"
# --skip-download: no calls home for guidelines (offline; the checks ship with the package).
"$(bash infra/pytools.sh bin checkov)/checkov" --file template.yaml --framework cloudformation \
  --quiet --compact --skip-download
