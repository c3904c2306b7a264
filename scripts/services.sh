#!/usr/bin/env bash
# Start or stop throwaway test services on free loopback ports:
# a PostgreSQL cluster and a Mosquitto broker with a password file and ACL.
#
#   scripts/services.sh start DIR   # writes DIR/env.sh with the URLs to source
#   scripts/services.sh stop DIR
#
# Nothing here listens on anything but 127.0.0.1, and DIR holds all state.
set -euo pipefail

cmd=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
    local b
    for b in /usr/lib/postgresql/*/bin; do
        [ -x "$b/initdb" ] && { echo "$b"; return; }
    done
    command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
    echo "PostgreSQL server binaries not found: run scripts/setup.sh" >&2
    exit 1
}

# initdb refuses to run as root: run PostgreSQL as the 'postgres' system user then.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    mkdir -p "$dir"
    local bin pgport mqport
    bin=$(pg_bin)
    pgport=$(free_port)
    mkdir -p "$dir/pg"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/pg"
    as_pg "$bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 >"$dir/pg-initdb.log" 2>&1
    # fsync off: a test cluster, thrown away after the run.
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -w -t 60 -l "$dir/pg/log" \
        -o "-p $pgport -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null
    echo "export GRIDSHARE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$pgport/postgres" >"$dir/env.sh"

    mqport=$(free_port)
    mqtlsport=$(free_port)
    local mq="$dir/mosquitto"
    mkdir -p "$mq"
    # a throwaway CA and a certificate for localhost, for the TLS listener
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=GridShare test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$mq/ca.key" -out "$mq/ca.pem" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$mq/server.key" -out "$mq/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$mq/server.ext"
    openssl x509 -req -in "$mq/server.csr" -CA "$mq/ca.pem" -CAkey "$mq/ca.key" -CAcreateserial -days 30 \
        -extfile "$mq/server.ext" -out "$mq/server.pem" >/dev/null 2>&1
    # one test superuser shared by many test clients with their own ids, so no
    # use_username_as_clientid here; the shipped deploy/mosquitto config (which has it, with the
    # per-gateway ACL) is run and attacked by service/tests/broker_acl.rs itself
    mosquitto_passwd -b -c "$mq/passwd" gridshare gridshare-test >/dev/null 2>&1
    cat >"$mq/acl" <<ACL
user gridshare
topic readwrite #
ACL
    cat >"$mq/mosquitto.conf" <<CONF
listener $mqport 127.0.0.1
allow_anonymous false
password_file $mq/passwd
acl_file $mq/acl
persistence false
log_dest file $mq/log
# the market service acknowledges telemetry after its batch commits: let it have many in flight
max_inflight_messages 1000
max_queued_messages 100000
# MQTT over TLS (same logins)
listener $mqtlsport 127.0.0.1
cafile $mq/ca.pem
certfile $mq/server.pem
keyfile $mq/server.key
CONF
    [ "$(id -u)" = 0 ] && chown -R mosquitto: "$mq" 2>/dev/null || true
    chmod 0700 "$mq/passwd" "$mq/acl" 2>/dev/null || true
    mosquitto -c "$mq/mosquitto.conf" -d
    # wait until it listens
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$mqport") 2>/dev/null && break
        sleep 0.1
    done
    pgrep -f "mosquitto -c $mq/mosquitto.conf" >"$mq/pid" || { echo "mosquitto did not start: $(cat "$mq/log" 2>/dev/null)" >&2; exit 1; }
    echo "export GRIDSHARE_TEST_MQTT_URL=mqtt://gridshare:gridshare-test@127.0.0.1:$mqport" >>"$dir/env.sh"
    echo "export GRIDSHARE_TEST_MQTTS_URL=mqtts://gridshare:gridshare-test@localhost:$mqtlsport" >>"$dir/env.sh"
    echo "export GRIDSHARE_TEST_MQTT_CA=$mq/ca.pem" >>"$dir/env.sh"
    echo "services up: PostgreSQL on $pgport, Mosquitto on $mqport (TLS on $mqtlsport) (state in $dir)"
}

stop() {
    if [ -d "$dir/pg/data" ]; then
        as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m fast stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/mosquitto/pid" ]; then
        kill "$(cat "$dir/mosquitto/pid")" 2>/dev/null || true
    fi
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: services.sh start|stop DIR" >&2; exit 2 ;;
esac
