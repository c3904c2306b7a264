#!/bin/sh
# One-shot: a signing key for each example gateway (gateway image), kept in the keys volume.
set -eu
keys=/var/lib/gridshare-gateway/keys
mkdir -p "$keys"
for n in 1 2; do
    if [ ! -f "$keys/$n.hex" ]; then
        gateway keygen --out "$keys/$n.hex" | sed -n 's/^public key: *//p' >"$keys/$n.pub"
    fi
done
