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

log=$(mktemp /tmp/gridshare-test-log.XXXXXX)
make check 2>&1 | tee "$log"

# One closing line over every runner (cargo test and forge), so the run's
# result does not hang on whichever suite happened to print last.
awk '
    /^test result: /        { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
    /tests passed, .* failed/ { for (i = 1; i <= NF; i++) { if ($i == "tests" && $(i+1) == "passed,") p += $(i-1); if ($i ~ /^failed,?$/) f += $(i-1) } }
    END { printf "Summary: %d passed, %d failed\n", p, f }
' "$log"
rm -f "$log"
