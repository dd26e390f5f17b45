#!/usr/bin/env bash
# Installs the accuracy harness's virtualenv .venv/audio from the pinned freeze
# scripts/accuracy/requirements-audio.txt (librosa, pyloudnorm, soundfile, numpy and their whole
# dependency closure). Idempotent: a venv built from the same file is kept.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv/audio
REQUIREMENTS=scripts/accuracy/requirements-audio.txt
PYTHON=${PYTHON:-python3}
stamp=$VENV/.requirements.sha256
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [[ -x $VENV/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "audio: $VENV is up to date"
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# --no-deps: the file pins the whole closure; `pip check` fails if anything is missing.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS"
"$VENV/bin/pip" check --disable-pip-version-check
echo "$want" > "$stamp"
echo "audio: installed $VENV"
