#!/usr/bin/env bash
# The Python tools of the deployment checks, each in its own project-local virtualenv with its
# whole dependency closure pinned (infra/requirements-<tool>.txt, a `pip freeze`):
#
#   cfn-lint      CloudFormation/SAM linter          .venv/cfn-lint/bin/cfn-lint
#   checkov       infrastructure-as-code scanner     .venv/checkov/bin/checkov
#   cargo-lambda  cargo-lambda (and its zig)         .venv/cargo-lambda/bin/cargo-lambda
#   botocore      AWS service models (Bedrock fake)  .venv/botocore/bin/python
#
#   infra/pytools.sh install TOOL [--refresh]   create .venv/TOOL from the pins (idempotent);
#                                               --refresh re-resolves from the tool's own pin
#                                               and rewrites the freeze
#   infra/pytools.sh bin TOOL                   print the venv's bin directory
#
# Separate venvs: checkov and cfn-lint pin different versions of shared dependencies, and
# neither shares the moto venv (which pins its own cfn-lint).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

tool=${2:-}
case "$tool" in
  cfn-lint | checkov | cargo-lambda | botocore) ;;
  *) echo "usage: $0 install|bin cfn-lint|checkov|cargo-lambda|botocore [--refresh]" >&2; exit 2 ;;
esac
VENV=.venv/$tool
REQUIREMENTS=infra/requirements-$tool.txt

install() {
  local stamp=$VENV/.requirements.sha256
  local want
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [[ "${1:-}" != "--refresh" && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    echo "$tool: $VENV is up to date"
    return
  fi
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  if [[ "${1:-}" == "--refresh" ]]; then
    local pin
    pin=$(grep "^$tool==" "$REQUIREMENTS")
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$pin"
    {
      sed -n '/^#/p' "$REQUIREMENTS"
      echo "$pin"
      "$VENV/bin/pip" freeze --disable-pip-version-check | grep -v "^$tool=="
    } > "$REQUIREMENTS.new"
    mv "$REQUIREMENTS.new" "$REQUIREMENTS"
    want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  else
    # --no-deps: the file pins the whole closure; `pip check` fails if something is missing.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS"
    "$VENV/bin/pip" check --disable-pip-version-check
  fi
  echo "$want" > "$stamp"
  echo "$tool: installed $("$VENV/bin/pip" show "$tool" 2>/dev/null | sed -n 's/^Version: //p') into $VENV"
}

case "${1:-}" in
  install) install "${3:-}" ;;
  bin) echo "$PWD/$VENV/bin" ;;
  *) echo "usage: $0 install|bin cfn-lint|checkov|cargo-lambda|botocore [--refresh]" >&2; exit 2 ;;
esac
