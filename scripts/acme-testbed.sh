#!/usr/bin/env bash
# An ACME CA for the tests (tests/docker/test_acme.py): Debian's pebble and its
# pebble-challtestsrv (DNS) in a network namespace of their own, so the CA reaches the stack
# the way a public CA would: over a network, at the stack's published HTTP port.
#
#   bash scripts/acme-testbed.sh up HTTP_PORT [VALIDITY_SECONDS]   (re)start the CA; idempotent
#   bash scripts/acme-testbed.sh down                              remove all of it; idempotent
#   bash scripts/acme-testbed.sh env                               ACME_TESTBED_* lines for tests
#   bash scripts/acme-testbed.sh refuse on|off                     the CA refuses connections
#
# Layout: namespace dsacme joined to the host by a veth pair (host side dsacme0 10.231.21.1/24,
# the namespace's eth0 10.231.21.2/24). In it, challtestsrv answers every DNS A query with the
# host's address (10.231.21.1, where the stack publishes nginx) and no AAAA, and pebble
# (directory https://10.231.21.2:14000/dir, management https://10.231.21.2:15000, roots at
# /roots/0) resolves names with it and validates HTTP-01 on HTTP_PORT (the stack's httpPort),
# issuing certificates valid VALIDITY_SECONDS (default 120: renewals come quickly). Pebble's
# own HTTPS certificate is signed by a CA made here with openssl (ca.crt: the stack's
# acmeCaBundleFile), for its address. Files, pids and logs under /run/dsacme.
set -euo pipefail

NS=dsacme
HOST_IF=dsacme0
HOST_IP=10.231.21.1
CA_IP=10.231.21.2
NET_BITS=24
DIR=/run/dsacme
ACME_PORT=14000
MANAGEMENT_PORT=15000
DNS_PORT=8053
START_SECONDS=30

log() { printf '[acme-testbed] %s\n' "$*" >&2; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
in_ns() { nsenter --net="/var/run/netns/$NS" "$@"; }

need_tools() {  # scripts/testbed.sh installs them
  local tool
  for tool in pebble pebble-challtestsrv openssl ip iptables nsenter curl; do
    command -v "$tool" >/dev/null || { log "$tool is missing: run bash scripts/testbed.sh"; exit 1; }
  done
}

network_up() {
  # Another test bed on this machine may route the same addresses: say so instead of
  # sending the CA's traffic there.
  local routes
  routes=$(ip -o route show to match "$CA_IP" | grep -v -e '^default' -e " dev $HOST_IF " || true)
  if [ -n "$routes" ]; then
    log "$CA_IP is already routed elsewhere: $routes"; exit 1
  fi
  [ -e "/var/run/netns/$NS" ] || ip netns add "$NS"
  ip link show "$HOST_IF" >/dev/null 2>&1 || ip link add "$HOST_IF" type veth peer name eth0 netns "$NS"
  local addrs
  addrs=$(ip addr show dev "$HOST_IF")
  [[ "$addrs" == *" $HOST_IP/"* ]] || ip addr add "$HOST_IP/$NET_BITS" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip -n "$NS" link set lo up
  addrs=$(ip -n "$NS" addr show dev eth0)
  [[ "$addrs" == *" $CA_IP/"* ]] || ip -n "$NS" addr add "$CA_IP/$NET_BITS" dev eth0
  ip -n "$NS" link set eth0 up
}

certificates() {  # the CA that signs pebble's HTTPS certificate, and that certificate
  [ -s "$DIR/pebble.crt" ] && return 0
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj "/CN=djangostack ACME test bed CA" -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$CA_IP" \
    -keyout "$DIR/pebble.key" -out "$DIR/pebble.csr" 2>/dev/null
  openssl x509 -req -in "$DIR/pebble.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 7 -extfile <(printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$CA_IP") \
    -out "$DIR/pebble.crt" 2>/dev/null
}

stop() {  # $1: pid file
  if alive "$1"; then kill "$(cat "$1")"; fi
  rm -f "$1"
}

up() {
  local http_port=${1:?usage: up HTTP_PORT [VALIDITY_SECONDS]} validity=${2:-120}
  need_tools
  mkdir -p "$DIR"
  network_up
  certificates
  stop "$DIR/pebble.pid"  # a new port or validity: pebble reads its config at start only
  cat >"$DIR/pebble.json" <<JSON
{"pebble": {"listenAddress": "$CA_IP:$ACME_PORT", "managementListenAddress": "$CA_IP:$MANAGEMENT_PORT",
  "certificate": "$DIR/pebble.crt", "privateKey": "$DIR/pebble.key",
  "httpPort": $http_port, "tlsPort": 5001, "ocspResponderURL": "",
  "externalAccountBindingRequired": false, "certificateValidityPeriod": $validity}}
JSON
  if ! alive "$DIR/challtestsrv.pid"; then
    in_ns setsid pebble-challtestsrv -defaultIPv4 "$HOST_IP" -defaultIPv6 "" \
      -dns01 "$CA_IP:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
      -management "$CA_IP:8055" >"$DIR/challtestsrv.log" 2>&1 </dev/null &
    echo $! >"$DIR/challtestsrv.pid"
  fi
  # No artificial validation delay (the test measures issuance, not pebble's sleeps).
  in_ns setsid env PEBBLE_VA_NOSLEEP=1 pebble -config "$DIR/pebble.json" \
    -dnsserver "$CA_IP:$DNS_PORT" >"$DIR/pebble.log" 2>&1 </dev/null &
  echo $! >"$DIR/pebble.pid"
  local deadline=$((SECONDS + START_SECONDS))
  until curl -fsS --max-time 2 --cacert "$DIR/ca.crt" "https://$CA_IP:$ACME_PORT/dir" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "pebble did not start; its log:"; tail -n 20 "$DIR/pebble.log" >&2; exit 1
    fi
    sleep 0.5
  done
  log "pebble up: https://$CA_IP:$ACME_PORT/dir, HTTP-01 on $HOST_IP:$http_port, certificates valid $validity s"
}

refuse() {  # on: every connection to pebble's ACME port is refused, as by a CA that is down
  local rule=(INPUT -p tcp --dport "$ACME_PORT" -j REJECT --reject-with tcp-reset)
  case "${1:-}" in
    on) in_ns iptables -C "${rule[@]}" 2>/dev/null || in_ns iptables -I "${rule[@]}" ;;
    off) while in_ns iptables -D "${rule[@]}" 2>/dev/null; do :; done ;;
    *) echo "usage: refuse on|off" >&2; exit 2 ;;
  esac
}

down() {
  stop "$DIR/pebble.pid"
  stop "$DIR/challtestsrv.pid"
  ip link del "$HOST_IF" 2>/dev/null || true
  if [ -e "/var/run/netns/$NS" ]; then ip netns del "$NS"; fi
  rm -rf "$DIR"
}

env_lines() {
  echo "ACME_TESTBED_DIRECTORY=https://$CA_IP:$ACME_PORT/dir"
  echo "ACME_TESTBED_ROOTS=https://$CA_IP:$MANAGEMENT_PORT/roots/0"
  echo "ACME_TESTBED_CA_BUNDLE=$DIR/ca.crt"
  echo "ACME_TESTBED_HOST_IP=$HOST_IP"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  env) env_lines ;;
  refuse) shift; refuse "$@" ;;
  *) echo "usage: $0 up HTTP_PORT [VALIDITY_SECONDS] | down | env | refuse on|off" >&2; exit 2 ;;
esac
