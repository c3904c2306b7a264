#!/usr/bin/env bash
# Build the dashboard's browser part: gridshare-ui for wasm32 with the `hydrate` feature, then
# wasm-bindgen, into ui/pkg/ (gridshare_ui.js and gridshare_ui_bg.wasm), where the market
# service finds it (or set GRIDSHARE_UI_DIR). Without it the pages still work, unhydrated.
#
# Uses rustup's wasm32 target when installed, else Debian's rustc-web with -Z build-std (see
# scripts/wasm-check.sh), and the wasm-bindgen CLI of the crate's pinned version (installed from
# crates.io by scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}/wasm32-ui
out=ui/pkg
args=(build --profile ui-release --target wasm32-unknown-unknown -p gridshare-ui --lib
      --no-default-features --features hydrate --target-dir "$target_dir")

if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    cargo "${args[@]}"
elif [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
    env PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 HOME="$HOME" \
        CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
        /usr/bin/cargo "${args[@]}" -Z build-std=std,panic_abort
else
    echo "no wasm32 toolchain: 'rustup target add wasm32-unknown-unknown', or scripts/setup.sh installs Debian's rustc-web" >&2
    exit 1
fi

want=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' ui/Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ "$want" != "$have" ]; then
    echo "wasm-bindgen CLI $want needed (have: ${have:-none}): cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name gridshare_ui \
    "$target_dir/wasm32-unknown-unknown/ui-release/gridshare_ui.wasm"
ls -l "$out"
