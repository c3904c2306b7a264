# `make check` is exactly what CI runs (via scripts/test.sh, which also starts
# the test services). Each step can be run alone.
.PHONY: check fmt-check clippy test wasm-check contracts-check demo bench

CARGO ?= cargo

check: fmt-check clippy test wasm-check contracts-check

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test:
	$(CARGO) test --workspace --locked

wasm-check:
	scripts/wasm-check.sh

contracts-check:
	@if [ -x contracts/test.sh ]; then contracts/test.sh; else echo "contracts/test.sh not present yet"; fi

bench:
	$(CARGO) bench --workspace
