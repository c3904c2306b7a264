#!/bin/sh
# One-shot set-up for the compose deployment, run by its `init` service (market image) after
# the gateways' keys exist: the two example homes, an operator, and the gateways commissioned
# with their public keys; the market's public key goes beside the gateways' keys, where their
# configurations read it (mqtt.market_key_file). Safe to run again: what exists is updated, not
# duplicated.
set -eu
keys=/var/lib/gridshare-gateway/keys
gridshare participant --id 1 --name "Home 1" --role homeowner --node 1
gridshare participant --id 2 --name "Home 2" --role homeowner --node 2
gridshare participant --id 100 --name "Grid operator" --role operator
for n in 1 2; do
    gridshare gateway --id "$n" --owner "$n" --public-key "$(cat "$keys/$n.pub")" \
        || echo "gateway $n: already commissioned"
done
gridshare market-key >"$keys/market.pub"
