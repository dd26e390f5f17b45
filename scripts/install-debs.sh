#!/usr/bin/env bash
# Installs the Debian packages the tests use, pinned to an exact version, without root:
# `apt-get download` of that version (apt checks it against the signed archive index), a
# sha256 check of the .deb on amd64, and `dpkg -x` into .local/debs/<package>. Without apt's
# lists or dpkg-deb, and as root, it falls back to `apt-get install <package>=<version>`.
#
# Writes .local/debs.env, which scripts/test.sh sources: PROMTOOL and PROMETHEUS, the paths the
# `tasks serve` tests (tests/e2e/serve.rs) run, and CHROMIUM, a wrapper around Debian's
# chromium-headless-shell (with its dependencies unpacked beside it) that the dashboard's
# browser test (tests/e2e/dashboard.rs) drives.
set -euo pipefail
cd "$(dirname "$0")/.."

PROMETHEUS_VERSION="2.42.0+ds-5+b6"   # Debian bookworm: `apt-cache policy prometheus`
PROMETHEUS_SHA256_AMD64="3b0e0255b059a7696bd4a139a4a4eb24d71df067936a61ece5093559cbc7991c"

# chromium-headless-shell and the packages `apt-get install --simulate --no-install-recommends
# chromium-headless-shell` adds to a bookworm image, each at its exact version.
CHROMIUM_VERSION="148.0.7778.167-1~deb12u1"
CHROMIUM_SHA256_AMD64="4f80953dd6d466db149ef7cdd6613605150293aaa2730b97c54d3f20a27ac466"
CHROMIUM_PACKAGES=(
    "chromium-headless-shell=$CHROMIUM_VERSION" "chromium-common=$CHROMIUM_VERSION"
    libxnvctrl0=525.85.05-3~deb12u1 xdg-utils=1.1.3-4.1 libdouble-conversion3=3.2.1-1
    libogg0=1.3.5-3 libflac12=1.4.2+ds-2 libharfbuzz-subset0=6.0.0+dfsg-3
    libminizip1=1.1-8+deb12u1 libopenh264-7=2.3.1+dfsg-3+deb12u2 libopus0=1.3.1-3
    libasyncns0=0.8-6+b3 libmp3lame0=3.100-6 libmpg123-0=1.31.2-1+deb12u1 libvorbis0a=1.3.7-1
    libvorbisenc2=1.3.7-1 libsndfile1=1.2.0-1+deb12u1 libpulse0=16.1+dfsg1-2+b1
)

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

chromium="$dest/chromium"
chromium_installed() {
    [ -x "$chromium/run-chromium" ] && [ "$(cat "$chromium/VERSION" 2>/dev/null)" = "$CHROMIUM_VERSION" ]
}
if ! chromium_installed; then
    download="$dest/download-chromium"
    rm -rf "$download" "$chromium"
    mkdir -p "$download" "$chromium"
    if (cd "$download" && apt-get download "${CHROMIUM_PACKAGES[@]}" >/dev/null 2>&1) &&
        command -v dpkg-deb >/dev/null; then
        deb=$(ls "$download"/chromium-headless-shell_*.deb)
        if [ "$(dpkg --print-architecture)" = amd64 ]; then
            echo "$CHROMIUM_SHA256_AMD64  $deb" | sha256sum --check --quiet
        fi
        for deb in "$download"/*.deb; do dpkg-deb -x "$deb" "$chromium"; done
        bin="$PWD/$chromium/usr/lib/chromium/chromium-headless-shell"
        libs="$PWD/$chromium/usr/lib/x86_64-linux-gnu:$PWD/$chromium/usr/lib/x86_64-linux-gnu/pulseaudio:$PWD/$chromium/usr/lib/chromium"
    elif [ "$(id -u)" = 0 ]; then
        echo "apt-get download failed; installing chromium-headless-shell=$CHROMIUM_VERSION with apt-get" >&2
        apt-get install -y --no-install-recommends "${CHROMIUM_PACKAGES[@]}" >&2
        bin=/usr/lib/chromium/chromium-headless-shell
        libs=""
    else
        echo "cannot fetch chromium-headless-shell=$CHROMIUM_VERSION: run \`apt-get update\` (or this script as root)" >&2
        exit 1
    fi
    cat > "$chromium/run-chromium" <<WRAPPER
#!/bin/sh
# Debian's chromium-headless-shell $CHROMIUM_VERSION with its unpacked libraries.
LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$bin" "\$@"
WRAPPER
    chmod +x "$chromium/run-chromium"
    echo "$CHROMIUM_VERSION" > "$chromium/VERSION"
    rm -rf "$download"
fi

"$root/usr/bin/promtool" --version 2>&1 | head -1 >&2
cat > .local/debs.env <<ENV
export PROMTOOL="$PWD/$root/usr/bin/promtool"
export PROMETHEUS="$PWD/$root/usr/bin/prometheus"
export CHROMIUM="$PWD/$chromium/run-chromium"
ENV
