#!/usr/bin/env bash
# Builds and tests the contracts with forge's native binary from npm (never `npx forge`:
# the npm wrapper exits 0 even when tests fail), then checks that the artifacts the Rust
# side compiles in (artifacts/*.json) match this build and that the reward test vectors
# (test/vectors/rewards_v1.json) match their generator (tools/rewards-vectors.mjs).
#   contracts/test.sh                     build, test, check artifacts
#   contracts/test.sh --update-artifacts  build, test, rewrite artifacts
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
forge="$here/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
if [ ! -x "$forge" ]; then
    echo "contracts/test.sh: $forge is missing; run scripts/setup.sh (npm ci in contracts/)" >&2
    exit 1
fi
export FOUNDRY_SOLC="$here/tools/solc"
"$forge" build --sizes
"$forge" test
if [ "${1:-}" = "--update-artifacts" ]; then
    node tools/export-artifacts.mjs
    node tools/rewards-vectors.mjs
else
    node tools/export-artifacts.mjs --check
    node tools/rewards-vectors.mjs --check
fi
