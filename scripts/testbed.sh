#!/usr/bin/env bash
# Idempotent test bed: a running Docker engine with BuildKit (buildx), single-node Swarm,
# and local stand-ins for the official base images (registries are unreachable here).
# Safe to re-run: every step checks before it acts; images are cached by recipe hash.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECIPES="$ROOT/tests/testbed/images"
STATE_DIR="${TESTBED_STATE_DIR:-/var/tmp/djangostack-testbed}"
mkdir -p "$STATE_DIR"

log() { printf '[testbed] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The Debian mirror comes from the machine's own apt sources, never hard-coded.
debian_mirror() {
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"; exit 1; }
  printf '%s' "$uri"
}

APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_packages() {
  # A host whose engine already answers (Docker's own packages, a CI runner) keeps it.
  docker info >/dev/null 2>&1 || apt_install docker.io
  apt_install ca-certificates curl
  # Test-only tools: debootstrap (base images), wrk (load), docker-registry (push/pull by digest),
  # testssl.sh (TLS scan of the prod stack's nginx), pebble (the ACME CA of the automatic HTTPS
  # test, scripts/acme-testbed.sh), rclone (`rclone serve restic`: the restore drill's offsite
  # repository, tests/docker/test_backup_drill.py).
  [ "${1:-}" = engine ] || apt_install debootstrap wrk docker-registry iproute2 testssl.sh pebble \
    rclone
}

install_buildx() {
  local plugin="$HOME/.docker/cli-plugins/docker-buildx"
  if docker buildx version >/dev/null 2>&1; then return 0; fi
  log "installing docker-buildx from Debian trixie"
  local tmp mirror
  tmp=$(mktemp -d)
  mirror=$(debian_mirror)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  cat >"$tmp/trixie.sources" <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-trixie-stable.gpg /usr/share/keyrings/debian-archive-trixie-automatic.gpg
SRC
  local opts=(-o "Dir::Etc::sourcelist=-" -o "Dir::Etc::sourceparts=$tmp" -o "Dir::State::Lists=$tmp/lists"
    -o "Dir::Cache::Archives=$tmp/cache/archives" -o "Dir::State::status=/var/lib/dpkg/status")
  # A private sources dir holding only the trixie list (sourceparts reads *.sources files there).
  apt-get "${opts[@]}" update -qq >/dev/null
  (cd "$tmp" && apt-get "${opts[@]}" download docker-buildx >/dev/null)
  dpkg -x "$tmp"/docker-buildx_*.deb "$tmp/x"
  mkdir -p "$(dirname "$plugin")"
  cp "$tmp/x/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin"
  chmod +x "$plugin"
  rm -rf "$tmp"
  docker buildx version >/dev/null
}

start_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  # no-new-privileges daemon-wide: Swarm services have no per-service switch (CIS 5.26 accepts it).
  if [ ! -f /etc/docker/daemon.json ]; then
    as_root mkdir -p /etc/docker
    echo '{"no-new-privileges": true, "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}' |
      as_root tee /etc/docker/daemon.json >/dev/null
  fi
  log "starting dockerd"
  as_root setsid dockerd >/tmp/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not start; see /tmp/dockerd.log"
  tail -n 20 /tmp/dockerd.log >&2 || true
  exit 1
}

init_swarm() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  [ "$state" = active ] && return 0
  log "initialising single-node swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
}

recipe_hash() {  # hash of every file of a recipe folder plus extra strings
  local dir="$1"; shift
  { (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum); printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

image_has_hash() { [ "$(docker image inspect -f '{{index .Config.Labels "testbed.recipe"}}' "$1" 2>/dev/null || true)" = "$2" ]; }

# Official python images set PATH with the sbin dirs (groupadd, useradd live in /usr/sbin);
# an imported rootfs has no environment, so the trixie base sets it the same way.
IMPORT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

build_debian_base() {  # suite; prints the recipe hash
  local suite="$1" mirror hash tag="djangostack-testbed/debian:$1" changes=()
  mirror=$(debian_mirror)
  if [ "$suite" = bookworm ]; then
    hash=$(printf 'minbase bookworm %s v1' "$mirror" | sha256sum | cut -c1-16)
  else
    hash=$(printf 'minbase %s %s path v1' "$suite" "$mirror" | sha256sum | cut -c1-16)
    changes=(-c "ENV PATH=$IMPORT_PATH")
  fi
  if image_has_hash "$tag" "$hash"; then echo "$hash"; return 0; fi
  log "debootstrapping $suite minbase (1 to 2 minutes)"
  local dir="$STATE_DIR/rootfs-$suite"
  as_root rm -rf "$dir"
  as_root debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$mirror" >"$STATE_DIR/debootstrap-$suite.log" 2>&1 ||
    { tail -n 30 "$STATE_DIR/debootstrap-$suite.log" >&2; exit 1; }
  as_root rm -rf "$dir/var/cache/apt/archives"/*.deb "$dir/var/lib/apt/lists"/*
  as_root tar -C "$dir" -c . |
    docker import -c "LABEL testbed.recipe=$hash" "${changes[@]}" -c 'CMD ["bash"]' - "$tag" >/dev/null
  as_root rm -rf "$dir"
  echo "$hash"
}

build_standin() {  # name, tag, Debian suite of its base, base hash
  local name="$1" tag="djangostack-testbed/$1:$2" suite="$3" base_hash="$4" hash
  hash=$(recipe_hash "$RECIPES/$name" "$base_hash")
  if image_has_hash "$tag" "$hash"; then return 0; fi
  log "building stand-in image $tag"
  docker buildx build --load -q --label "testbed.recipe=$hash" -t "$tag" \
    --build-arg BASE="djangostack-testbed/debian:$suite" "$RECIPES/$name" >/dev/null
}

build_standins() {
  local bookworm trixie
  bookworm=$(build_debian_base bookworm)
  trixie=$(build_debian_base trixie)
  # python:3.13 stands in for python:3.13-slim (Debian 13): current Django needs Python >= 3.12.
  build_standin python 3.13 trixie "$trixie"
  for name in postgres redis nginx prometheus; do build_standin "$name" latest bookworm "$bookworm"; done
}

declared_default() {  # the default of a Pulumi.yaml config key
  awk -v key="  $1:" '$0 == key {found = 1} found && $1 == "default:" {print $2; exit}' "$ROOT/Pulumi.yaml"
}

# With no container registry reachable (an offline host), the stack's default images cannot be
# pulled: the local stand-ins are tagged with those references instead, so a deploy with the
# defaults runs here. A host that reaches the registry pulls the real images; nothing is tagged.
tag_standins_as_defaults() {
  local code
  code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null || true)
  [ "$code" = 000 ] || [ -z "$code" ] || return 0
  local pairs=(
    "python:3.13|python:3.13-slim"
    "postgres:latest|$(declared_default postgresImage)"
    "redis:latest|$(declared_default redisImage)"
    "nginx:latest|$(declared_default nginxImage)"
    "prometheus:latest|$(declared_default prometheusImage)"
  )
  local pair standin official built=0
  for pair in "${pairs[@]}"; do
    IFS='|' read -r standin official <<<"$pair"
    docker image inspect "$official" >/dev/null 2>&1 && continue
    if [ "$built" = 0 ]; then
      apt_install debootstrap
      build_standins
      built=1
    fi
    docker tag "djangostack-testbed/$standin" "$official"
    log "no registry reachable: $official is the local stand-in djangostack-testbed/$standin"
  done
}

main() {
  install_packages "${1:-}"
  start_docker
  install_buildx
  init_swarm
  # `engine`: what a deploy host needs (engine, BuildKit, swarm, images it cannot pull).
  if [ "${1:-}" = engine ]; then
    tag_standins_as_defaults
    return 0
  fi
  build_standins
  tag_standins_as_defaults
  log "ready: $(docker version -f 'engine {{.Server.Version}}'), buildx $(docker buildx version | awk '{print $2}')"
}

main "$@"
