#!/usr/bin/env bash
# Run the whole GridShare test suite on this machine: installs what is missing
# (scripts/setup.sh), starts throwaway PostgreSQL and Mosquitto on free
# loopback ports unless GRIDSHARE_TEST_POSTGRES_URL / GRIDSHARE_TEST_MQTT_URL
# are already set, then runs `make check` (format, lints, tests, wasm32
# check, contract tests) and stops the services again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

if [ -z "${GRIDSHARE_TEST_POSTGRES_URL:-}" ] || [ -z "${GRIDSHARE_TEST_MQTT_URL:-}" ]; then
    svc=$(mktemp -d /tmp/gridshare-services.XXXXXX)
    chmod 755 "$svc"
    trap 'scripts/services.sh stop "$svc"; rm -rf "$svc"' EXIT
    scripts/services.sh start "$svc"
    # shellcheck disable=SC1091
    source "$svc/env.sh"
fi

# Foundry's native binaries from npm (see scripts/setup.sh).
for b in contracts/node_modules/@foundry-rs/*-linux-*/bin; do
    [ -d "$b" ] && PATH="$PWD/$b:$PATH"
done
export PATH

make check
