#!/usr/bin/env bash
# A multi-node Swarm test bed on this one machine: three Docker engines, each in a network
# namespace of its own, joined into one Swarm (one manager, two workers), plus a registry
# every node reaches. Nothing of it touches the host engine or its single-node Swarm.
#
#   bash scripts/multinode.sh up       create (or complete) the test bed; idempotent
#   bash scripts/multinode.sh down     remove everything `up` created; idempotent
#   bash scripts/multinode.sh status   what exists right now (exit 1 when not fully up)
#   bash scripts/multinode.sh env      shell lines: MULTINODE_* addresses for tests
#
# Layout (docs/multinode.md): bridge dsmn-br0 (10.231.7.1/24, the host's side) joins the
# namespaces dsmn-n1..n3 (10.231.7.11..13) by veths; each namespace runs its own dockerd
# (data root /var/lib/dsmn/<node>, exec root, socket and pid file under /run/dsmn/<node>,
# cgroup parent /dsmn-<node>, no docker0). n1 is the manager. The registry (Debian's
# docker-registry) listens on 10.231.7.1:5123; a socat forwarder gives every namespace, and
# the host, the same registry at 127.0.0.1:5123, so one image reference works everywhere and
# no engine needs an insecure-registries entry (Docker trusts plain HTTP on loopback only).
# The host engine's stand-in images (postgres, redis, nginx) are copied into the manager,
# which runs the stack's plain containers; the app image reaches every node through the
# registry. Traffic stays on the bridge, the namespaces and loopback.
set -euo pipefail

PREFIX=dsmn
BRIDGE=${PREFIX}-br0
HOST_IP=10.231.7.1
NET_BITS=24
NODES=(n1 n2 n3)
declare -A NODE_IP=([n1]=10.231.7.11 [n2]=10.231.7.12 [n3]=10.231.7.13)
MANAGER=n1
REGISTRY_PORT=5123
# Overlay subnets of this Swarm, away from the bridge and from the host Swarm's 10.0.0.0/8 use.
ADDR_POOL=10.232.0.0/16
DATA=/var/lib/${PREFIX}
RUN=/run/${PREFIX}
# Node labels the placement tests and docs/multinode.md use: the manager holds the data
# (Postgres, Redis volumes) and the edge (nginx); every node may run app tasks.
declare -A NODE_LABELS=(
  [n1]="djangostack.node=n1 djangostack.data=true djangostack.edge=true djangostack.app=true"
  [n2]="djangostack.node=n2 djangostack.app=true"
  [n3]="djangostack.node=n3 djangostack.app=true"
)
STAND_INS=(djangostack-testbed/postgres:latest djangostack-testbed/redis:latest djangostack-testbed/nginx:latest)
START_SECONDS=60

log() { printf '[multinode] %s\n' "$*" >&2; }
sock() { printf 'unix://%s/%s/docker.sock' "$RUN" "$1"; }
dk() { local node=$1; shift; docker -H "$(sock "$node")" "$@"; }
netns_path() { printf '/var/run/netns/%s-%s' "$PREFIX" "$1"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

need_tools() {
  local missing=()
  command -v socat >/dev/null || missing+=(socat)
  command -v curl >/dev/null || missing+=(curl)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  fi
}

bridge_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  # Output captured first: `grep -q` closing the pipe early would fail it under pipefail.
  local addrs
  addrs=$(ip addr show dev "$BRIDGE")
  [[ "$addrs" == *" $HOST_IP/"* ]] || ip addr add "$HOST_IP/$NET_BITS" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The host engine sets FORWARD's policy to DROP: let the nodes talk to each other.
  iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

namespace_up() {
  local node=$1 ns="${PREFIX}-$1" veth="${PREFIX}-v$1"
  [ -e "$(netns_path "$node")" ] || ip netns add "$ns"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$ns" link set lo up
  local addrs
  addrs=$(ip -n "$ns" addr show dev eth0)
  [[ "$addrs" == *" ${NODE_IP[$node]}/"* ]] || ip -n "$ns" addr add "${NODE_IP[$node]}/$NET_BITS" dev eth0
  ip -n "$ns" link set eth0 up
}

engine_up() {
  local node=$1 dir="$RUN/$1"
  mkdir -p "$dir" "$DATA/$node"
  alive "$dir/docker.pid" && return 0
  # The product relies on the daemon-wide no-new-privileges (Swarm has no per-service flag).
  cat >"$dir/daemon.json" <<'JSON'
{"no-new-privileges": true, "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}
JSON
  # nsenter, not `ip netns exec`: the latter remounts /sys and dockerd then finds no cgroups.
  nsenter --net="$(netns_path "$node")" setsid dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$DATA/$node" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
    -H "$(sock "$node")" --cgroup-parent "/${PREFIX}-$node" --bridge none \
    >"$dir/dockerd.log" 2>&1 </dev/null &
}

wait_engine() {
  local node=$1 deadline=$((SECONDS + START_SECONDS))
  until dk "$node" info >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "engine $node did not start; its log:"; tail -n 30 "$RUN/$node/dockerd.log" >&2; exit 1
    fi
    sleep 0.5
  done
}

forwarder_up() {  # $1: node, or "host" for the host's own loopback
  local where=$1 pidfile="$RUN/registry-fwd-$1.pid"
  alive "$pidfile" && return 0
  local cmd=(socat "TCP-LISTEN:$REGISTRY_PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:$HOST_IP:$REGISTRY_PORT")
  if [ "$where" = host ]; then
    setsid "${cmd[@]}" </dev/null >/dev/null 2>&1 &
  else
    nsenter --net="$(netns_path "$where")" setsid "${cmd[@]}" </dev/null >/dev/null 2>&1 &
  fi
  echo $! >"$pidfile"
}

registry_up() {
  mkdir -p "$RUN" "$DATA/registry"
  if ! alive "$RUN/registry.pid"; then
    cat >"$RUN/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $DATA/registry
  delete:
    enabled: true
http:
  addr: $HOST_IP:$REGISTRY_PORT
YAML
    setsid /usr/bin/docker-registry serve "$RUN/registry.yml" </dev/null >"$RUN/registry.log" 2>&1 &
    echo $! >"$RUN/registry.pid"
  fi
  forwarder_up host
  for node in "${NODES[@]}"; do forwarder_up "$node"; done
  local deadline=$((SECONDS + START_SECONDS))
  until curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "registry not answering"; tail -n 20 "$RUN/registry.log" >&2; exit 1; }
    sleep 0.3
  done
}

swarm_up() {
  local manager_ip=${NODE_IP[$MANAGER]}
  if [ "$(dk "$MANAGER" info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
    dk "$MANAGER" swarm init --advertise-addr "$manager_ip" --listen-addr "$manager_ip:2377" \
      --default-addr-pool "$ADDR_POOL" >/dev/null
  fi
  local token
  token=$(dk "$MANAGER" swarm join-token -q worker)
  for node in "${NODES[@]}"; do
    [ "$node" = "$MANAGER" ] && continue
    if [ "$(dk "$node" info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
      dk "$node" swarm join --advertise-addr "${NODE_IP[$node]}" --listen-addr "${NODE_IP[$node]}:2377" \
        --token "$token" "$manager_ip:2377" >/dev/null
    fi
  done
  for node in "${NODES[@]}"; do
    local id args=()
    id=$(dk "$node" info -f '{{.Swarm.NodeID}}')
    for label in ${NODE_LABELS[$node]}; do args+=(--label-add "$label"); done
    dk "$MANAGER" node update --availability active "${args[@]}" "$id" >/dev/null
  done
}

images_up() {
  local missing=()
  for image in "${STAND_INS[@]}"; do
    dk "$MANAGER" image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "copying ${missing[*]} into the manager"
    docker save "${missing[@]}" | dk "$MANAGER" load >/dev/null
  fi
}

up() {
  [ "$(id -u)" = 0 ] || { log "run as root (network namespaces, dockerd)"; exit 1; }
  need_tools
  mkdir -p "$RUN" "$DATA" /var/run/netns
  bridge_up
  for node in "${NODES[@]}"; do namespace_up "$node"; done
  for node in "${NODES[@]}"; do engine_up "$node"; done
  for node in "${NODES[@]}"; do wait_engine "$node"; done
  registry_up
  swarm_up
  images_up
  status >/dev/null || { status; exit 1; }
  log "up: manager $(sock "$MANAGER"), registry 127.0.0.1:$REGISTRY_PORT"
}

stop_pid() {  # stop the process in pid file $1 (and wait for it), then drop the file
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

down() {
  for pidfile in "$RUN"/registry-fwd-*.pid "$RUN/registry.pid"; do stop_pid "$pidfile"; done
  for node in "${NODES[@]}"; do
    # Engines stop their containers on SIGTERM; the Swarm goes with the data roots.
    stop_pid "$RUN/$node/docker.pid"
    # Whatever a killed engine left mounted under its roots.
    { grep -oE " ($DATA/$node|$RUN/$node)[^ ]*" /proc/mounts || true; } | sort -r | while read -r mnt; do
      umount -l "$mnt" 2>/dev/null || true
    done
    ip link del "${PREFIX}-v$node" 2>/dev/null || true
    ip netns del "${PREFIX}-$node" 2>/dev/null || true
    rmdir "/sys/fs/cgroup/"*"/${PREFIX}-$node" 2>/dev/null || true
  done
  while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$DATA" "$RUN"
  log "down"
}

status() {
  local ok=0
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE: up" || { echo "bridge $BRIDGE: missing"; ok=1; }
  for node in "${NODES[@]}"; do
    if alive "$RUN/$node/docker.pid" && dk "$node" info >/dev/null 2>&1; then
      echo "engine $node (${NODE_IP[$node]}): $(dk "$node" info -f '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}')"
    else
      echo "engine $node: down"; ok=1
    fi
  done
  if alive "$RUN/registry.pid" && curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1; then
    echo "registry: 127.0.0.1:$REGISTRY_PORT (-> $HOST_IP:$REGISTRY_PORT)"
  else
    echo "registry: down"; ok=1
  fi
  if [ $ok = 0 ]; then
    dk "$MANAGER" node ls --format '{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' | sed 's/^/node /'
    [ "$(dk "$MANAGER" node ls -q --filter role=worker | wc -l)" = 2 ] || ok=1
  fi
  return $ok
}

env_lines() {
  echo "MULTINODE_MANAGER_HOST=$(sock "$MANAGER")"
  for node in "${NODES[@]}"; do
    echo "MULTINODE_HOST_${node^^}=$(sock "$node")"
    echo "MULTINODE_IP_${node^^}=${NODE_IP[$node]}"
  done
  echo "MULTINODE_REGISTRY=127.0.0.1:$REGISTRY_PORT"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
