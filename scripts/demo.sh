#!/usr/bin/env bash
# Run the demo neighbourhood: builds the dashboard's browser part when the wasm tools are there
# (scripts/setup.sh installs them), then `gridshare demo` in release mode. Arguments go to the
# demo: --homes N, --speed S, --data-dir DIR, --listen ADDR.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! scripts/build-ui.sh >/dev/null 2>&1; then
    echo "note: the dashboard's browser part could not be built (run scripts/setup.sh); pages work without it, unhydrated" >&2
fi
exec cargo run --release -p gridshare -- demo "$@"
