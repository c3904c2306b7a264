#!/usr/bin/env bash
# Runs schemathesis (from PyPI) against a live `gridshare serve` with seeded data: generated
# requests from /openapi.json must never get a 5xx, and every documented response must match
# its schema. Part of `make check`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v schemathesis >/dev/null || { echo "schemathesis not found: run scripts/setup.sh" >&2; exit 1; }
# The binary as `cargo test --workspace` builds it (same features, so after `make test` this
# compiles nothing; a plain `cargo build -p gridshare` would rebuild the tree with other features).
cargo test -q --workspace --locked --no-run 2>/dev/null
bin="${CARGO_TARGET_DIR:-target}/debug/gridshare"
dir=$(mktemp -d /tmp/gridshare-api-check.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port)
mqtt_port=$(free_port)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" --data-dir "$dir" participant --id 1 --name "Home one" --role homeowner --node 1 >/dev/null
"$bin" --data-dir "$dir" participant --id 2 --name "Home two" --role homeowner --node 2 >/dev/null
key=$("$bin" --data-dir "$dir" api-key --participant 1 --scopes read,trade)
key2=$("$bin" --data-dir "$dir" api-key --participant 2 --scopes read,trade)
printf '[market]\nhorizon = 8\n[http]\nrate_per_second = 10000.0\nrate_burst = 10000.0\n' >"$dir/api.toml"
RUST_LOG=warn "$bin" --data-dir "$dir" --config "$dir/api.toml" serve --listen "127.0.0.1:$port" --mqtt-listen "127.0.0.1:$mqtt_port" >"$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
# some market data: a resting order and a trade in the last open book
interval=$(curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/markets" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["interval"])')
for body in "{\"zone\":1,\"interval\":\"$interval\",\"side\":\"sell\",\"quantity_wh\":500,\"price\":120000}"; do
    curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' -d "$body" \
        "http://127.0.0.1:$port/api/v1/orders" >/dev/null
done
curl -sf -H "Authorization: Bearer $key2" -H 'content-type: application/json' \
    -d "{\"zone\":1,\"interval\":\"$interval\",\"side\":\"buy\",\"quantity_wh\":200,\"price\":130000}" \
    "http://127.0.0.1:$port/api/v1/orders" >/dev/null

status=0
schemathesis run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "${API_CHECK_EXAMPLES:-25}" \
    --generation-deterministic \
    --request-timeout 10 || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log" >&2
    tail -50 "$dir/serve.log" >&2
fi
exit "$status"
