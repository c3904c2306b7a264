#!/usr/bin/env bash
# Install what a fresh Linux (Debian/Ubuntu) machine needs to build, test and
# run GridShare. Idempotent: a second run only checks, and finishes in seconds.
#
# Needs: a Rust toolchain from rustup (https://rustup.rs), Node.js with npm,
# Python 3 with pip. Installs: PostgreSQL server, Mosquitto, socat (Debian
# packages); a wasm32 target (rustup, else Debian's rustc-web); Foundry
# (forge/anvil) and solc from npm; Python test tools (schemathesis, pymodbus) from PyPI;
# chromium (Debian) and playwright-core (npm) for the dashboard's browser tests; the
# wasm-bindgen CLI (crates.io) for the dashboard's wasm.
# Nothing is downloaded at run time; nothing here reaches past the package
# registries.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_missing=()
need_apt() { apt_missing+=("$1"); }

have_pg_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; }
have_pg_server || need_apt postgresql
command -v psql >/dev/null || need_apt postgresql-client
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt mosquitto
command -v mosquitto_pub >/dev/null || need_apt mosquitto-clients
command -v socat >/dev/null || need_apt socat
command -v openssl >/dev/null || need_apt openssl
command -v make >/dev/null || need_apt make
command -v curl >/dev/null || need_apt curl
command -v docker-compose >/dev/null || need_apt docker-compose
# the dashboard's browser tests: Debian's chromium, driven by playwright-core (no browser download)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need_apt chromium

# wasm32: rustup's target where it can be downloaded; Debian's rustc-web (with
# the std sources for -Z build-std) where it cannot.
wasm_ready() {
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
        { [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ] && command -v wasm-ld >/dev/null; }
}
if ! wasm_ready; then
    log "adding the wasm32 target with rustup (falls back to Debian's toolchain if that cannot download)"
    if ! timeout 60 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
        need_apt rustc-web; need_apt cargo-web; need_apt rust-web-src; need_apt lld
    fi
fi

if [ ${#apt_missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${apt_missing[*]}"
    sudo_ apt-get update -qq
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
# Debian starts services it installs; tests start their own throwaway instances.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
    sudo_ systemctl stop mosquitto || true
fi

# Python test tools from PyPI: schemathesis (API fuzzing, scripts/api-check.sh), peers for
# interop tests and independent test-vector generators.
py_reqs=()
py_files=()
for f in scripts/requirements-test.txt gateway/tests/interop/requirements.txt contracts/test-vectors/requirements.txt; do
    if [ -f "$f" ]; then
        py_reqs+=(-r "$f")
        py_files+=("$f")
    fi
done
if [ ${#py_reqs[@]} -gt 0 ]; then
    stamp=.setup-python.stamp
    sum=$(cat "${py_files[@]}" | sha256sum | cut -c1-16)
    if [ "$(cat "${CARGO_TARGET_DIR:-target}/$stamp" 2>/dev/null)" != "$sum" ]; then
        log "installing Python test packages"
        python3 -m pip install --quiet --disable-pip-version-check "${py_reqs[@]}"
        mkdir -p "${CARGO_TARGET_DIR:-target}" && echo "$sum" >"${CARGO_TARGET_DIR:-target}/$stamp"
    fi
fi

# The dashboard's wasm post-processor, the same version as the crate (ui/Cargo.toml pins it).
# Without --locked: the crate registry here lacks one locked dependency version (webpki-roots
# 1.0.11); the newest compatible one is used.
wbg=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' ui/Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg" ]; then
    log "installing wasm-bindgen-cli $wbg from crates.io"
    cargo install --quiet wasm-bindgen-cli --version "$wbg"
fi

# playwright-core for the browser tests, pinned by e2e/package-lock.json.
if [ ! -d e2e/node_modules ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
    log "installing playwright-core from npm (e2e/)"
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

# Foundry (forge, anvil, cast) and solc from npm, pinned by contracts/package-lock.json.
if [ -f contracts/package-lock.json ]; then
    if [ ! -d contracts/node_modules ] || [ contracts/package-lock.json -nt contracts/node_modules/.package-lock.json ]; then
        log "installing Foundry and solc from npm (contracts/)"
        (cd contracts && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi

log "ready"
