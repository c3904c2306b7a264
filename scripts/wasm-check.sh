#!/usr/bin/env bash
# Check that the domain crate compiles for wasm32-unknown-unknown (the browser UI shares it).
#
# Uses rustup's wasm32 target when it is installed; otherwise Debian's rustc-web
# toolchain, which ships the standard library sources, with -Z build-std
# (rustup cannot download targets on machines without general internet).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}/wasm32-check

if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    exec cargo check --target wasm32-unknown-unknown -p gridshare-domain --target-dir "$target_dir"
fi
if [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
    exec env PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 HOME="$HOME" \
        CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
        /usr/bin/cargo check -Z build-std=std,panic_abort --target wasm32-unknown-unknown \
        -p gridshare-domain --target-dir "$target_dir"
fi
echo "no wasm32 toolchain: 'rustup target add wasm32-unknown-unknown', or scripts/setup.sh installs Debian's rustc-web" >&2
exit 1
