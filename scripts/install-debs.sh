#!/usr/bin/env bash
# Installs the Debian packages the tests use, pinned to an exact version, without root:
# `apt-get download` of that version (apt checks it against the signed archive index), a
# sha256 check of the .deb on amd64, and `dpkg -x` into .local/debs/<package>. Without apt's
# lists or dpkg-deb, and as root, it falls back to `apt-get install <package>=<version>`.
#
# Writes .local/debs.env, which scripts/test.sh sources: PROMTOOL and PROMETHEUS, the paths the
# `tasks serve` tests (tests/e2e/serve.rs) run.
set -euo pipefail
cd "$(dirname "$0")/.."

PROMETHEUS_VERSION="2.42.0+ds-5+b6"   # Debian bookworm: `apt-cache policy prometheus`
PROMETHEUS_SHA256_AMD64="3b0e0255b059a7696bd4a139a4a4eb24d71df067936a61ece5093559cbc7991c"

dest=.local/debs
root="$dest/prometheus"
mkdir -p "$dest"

installed() {
    [ -x "$root/usr/bin/promtool" ] && [ -x "$root/usr/bin/prometheus" ] &&
        [ "$(cat "$root/VERSION" 2>/dev/null)" = "$PROMETHEUS_VERSION" ]
}

if ! installed; then
    download="$dest/download"
    rm -rf "$download" "$root"
    mkdir -p "$download"
    if (cd "$download" && apt-get download "prometheus=$PROMETHEUS_VERSION" >/dev/null 2>&1) &&
        command -v dpkg-deb >/dev/null; then
        deb=$(ls "$download"/prometheus_*.deb)
        if [ "$(dpkg --print-architecture)" = amd64 ]; then
            echo "$PROMETHEUS_SHA256_AMD64  $deb" | sha256sum --check --quiet
        fi
        dpkg-deb -x "$deb" "$root"
        echo "$PROMETHEUS_VERSION" > "$root/VERSION"
        rm -rf "$download"
    elif [ "$(id -u)" = 0 ]; then
        echo "apt-get download failed; installing prometheus=$PROMETHEUS_VERSION with apt-get" >&2
        apt-get install -y --no-install-recommends "prometheus=$PROMETHEUS_VERSION" >&2
        mkdir -p "$root/usr/bin"
        ln -sf /usr/bin/promtool "$root/usr/bin/promtool"
        ln -sf /usr/bin/prometheus "$root/usr/bin/prometheus"
        echo "$PROMETHEUS_VERSION" > "$root/VERSION"
    else
        echo "cannot fetch prometheus=$PROMETHEUS_VERSION: run \`apt-get update\` (or this script as root)" >&2
        exit 1
    fi
fi

"$root/usr/bin/promtool" --version 2>&1 | head -1 >&2
cat > .local/debs.env <<ENV
export PROMTOOL="$PWD/$root/usr/bin/promtool"
export PROMETHEUS="$PWD/$root/usr/bin/prometheus"
ENV
