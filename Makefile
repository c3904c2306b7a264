# `make check` is exactly what CI runs (via scripts/test.sh, which also starts
# the test services). Each step can be run alone.
.PHONY: check fmt-check module-cycles clippy ui test wasm-check contracts-check compose-check api-check bench

CARGO ?= cargo

check: fmt-check module-cycles clippy ui test wasm-check contracts-check compose-check api-check

fmt-check:
	$(CARGO) fmt --all -- --check

module-cycles:
	python3 scripts/module_cycles.py

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The dashboard's browser part (wasm), which the browser tests load.
ui:
	scripts/build-ui.sh

test:
	$(CARGO) test --workspace --locked

wasm-check:
	scripts/wasm-check.sh

contracts-check:
	@if [ -x contracts/test.sh ]; then contracts/test.sh; else echo "contracts/test.sh not present yet"; fi

# No container engine runs in CI: validate the compose file offline.
compose-check:
	POSTGRES_PASSWORD=check MQTT_MARKET_PASSWORD=check MQTT_GATEWAY_PASSWORD=check SETTLER_KEY=0x00 docker-compose -f docker-compose.yml config -q

# schemathesis against a live server: no 5xx, every documented response matches its schema.
api-check:
	scripts/api-check.sh

bench:
	$(CARGO) bench --workspace
