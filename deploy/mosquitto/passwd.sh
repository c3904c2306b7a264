#!/bin/sh
# One-shot (mosquitto image): the broker's password file from the environment, for the market
# service and the example gateways (user names: their ids).
set -eu
f=/mosquitto/passwd/passwd
mosquitto_passwd -b -c "$f" market "$MQTT_MARKET_PASSWORD"
mosquitto_passwd -b "$f" 1 "$MQTT_GATEWAY_PASSWORD"
mosquitto_passwd -b "$f" 2 "$MQTT_GATEWAY_PASSWORD"
chmod 0640 "$f"
