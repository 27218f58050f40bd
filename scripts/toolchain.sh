#!/usr/bin/env bash
# The Pulumi toolchain this program runs on: the CLI and the two resource providers it uses
# (docker, docker-build), at the versions the pinned Python SDKs expect (requirements.txt).
# Idempotent. Prints the directory of the CLI (put it first on PATH); the plugins are installed
# into the Pulumi home (PULUMI_HOME, default ~/.pulumi) where the engine looks for them by version.
# A report of each piece goes to stderr.
#   bash scripts/toolchain.sh
#
# Where each piece comes from, first match wins:
#   1. the cache: binaries built before by the same recipe (a hash of versions, the wrapper
#      module's files and the Go version), in DJANGOSTACK_TOOLCHAIN_DIR
#      (default ~/.cache/djangostack/toolchain), outside the repository;
#   2. Pulumi's official binaries, where its installer and plugin downloads are reachable (what
#      a user with internet access gets);
#   3. built here with `go build` from the Go module proxy, through the wrapper modules in
#      toolchain/ (go.mod and go.sum pin every dependency; toolchain/README.md says why each
#      local replacement exists).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECIPES="$ROOT/toolchain"
CACHE="${DJANGOSTACK_TOOLCHAIN_DIR:-$HOME/.cache/djangostack/toolchain}"
BIN="$CACHE/bin"
PLUGINS="$CACHE/plugins"  # the built plugins, installed into the Pulumi home from here

PULUMI_VERSION=3.260.0  # = the pulumi SDK in requirements.txt
DOCKER_VERSION=5.2.0  # = pulumi-docker
DOCKER_BUILD_VERSION=0.0.22  # = pulumi-docker-build
# The upstream Terraform provider the docker plugin bridges (toolchain/docker/go.mod replaces
# its module path with this module unpacked, plus the re-export package of _upstream-shim/).
UPSTREAM_MODULE=github.com/kreuzwerker/terraform-provider-docker
UPSTREAM_VERSION=v0.0.0-20260916201441-96d331c98ff4

log() { printf '[toolchain] %s\n' "$*" >&2; }
# One line of the report: piece, version, where it came from, time taken.
report() { printf '[toolchain] %-16s %-8s %-34s %s\n' "$@"; }

recipe_hash() {  # piece version: hash of everything that decides the binary
  local piece="$1" version="$2"
  {
    printf '%s %s %s\n' "$piece" "$version" "$(go env GOVERSION 2>/dev/null || echo no-go)"
    [ "$piece" = docker ] && printf '%s@%s\n' "$UPSTREAM_MODULE" "$UPSTREAM_VERSION"
    (cd "$RECIPES/$piece" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

gobuild() {  # output package ldflags...
  local out="$1" pkg="$2"
  shift 2
  CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$out" -ldflags "-s -w $*" "$pkg"
}

build_cli() {  # work out
  (cd "$1" && gobuild "$2/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION")
}

# A module from the proxy (verified against go.sum, or the checksum database), unpacked into
# work/upstream, where the wrapper's go.mod replaces the module with it.
unpack_module() {  # work module version
  local work="$1" dir
  dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$2@$3" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  cp -R "$dir" "$work/upstream"
  chmod -R u+w "$work/upstream"
}

build_docker_build() {  # work out
  local work="$1"
  # Our small patch: a failed build's last lines reach the engine (toolchain/README.md).
  unpack_module "$work" github.com/pulumi/pulumi-docker-build "v$DOCKER_BUILD_VERSION"
  patch -d "$work/upstream" -p1 <"$work/dump-failed-build-log.patch" || return 1
  (cd "$work" && gobuild "$2/pulumi-resource-docker-build" \
    github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build \
    "-X github.com/pulumi/pulumi-docker-build/provider.Version=$DOCKER_BUILD_VERSION")
}

build_docker() {  # work out
  local work="$1" out="$2"
  # The upstream module with the re-export package and our one-line patch (toolchain/README.md).
  unpack_module "$work" "$UPSTREAM_MODULE" "$UPSTREAM_VERSION"
  patch -d "$work/upstream" -p1 <"$work/sorted-env.patch" || return 1
  mkdir -p "$work/upstream/shim"
  cp "$work/_upstream-shim/shim.go" "$work/upstream/shim/"
  # The schema the plugin serves is generated from the same ProviderInfo, then embedded.
  (cd "$work" && gobuild "$work/tfgen" ./cmd/pulumi-tfgen-docker &&
    ./tfgen schema --skip-docs --out cmd/pulumi-resource-docker >"$work/tfgen.log" 2>&1 &&
    gobuild "$out/pulumi-resource-docker" ./cmd/pulumi-resource-docker)
}

# Built binaries live in $CACHE/<piece>-<hash>/; $BIN and $PLUGINS link the current ones.
ensure_built() {  # piece version binary...
  local piece="$1" version="$2"
  shift 2
  local hash dir start work
  hash=$(recipe_hash "$piece" "$version")
  dir="$CACHE/$piece-$hash"
  if [ -f "$dir/.complete" ]; then
    report "$piece" "$version" "cache ($dir)" "0 s"
  else
    command -v go >/dev/null || { log "no Go toolchain: cannot build $piece"; return 1; }
    log "building $piece $version from the Go module proxy (15 to 25 minutes the first time)"
    start=$(date +%s)
    work=$(mktemp -d "$CACHE/work-$piece.XXXXXX")
    cp -R "$RECIPES/$piece/." "$work/"
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! "build_${piece//-/_}" "$work" "$dir" >"$work/build.log" 2>&1; then
      log "building $piece failed; the last lines of its log:"
      tail -n 30 "$work/build.log" "$work/tfgen.log" 2>/dev/null >&2 || true
      rm -rf "$work" "$dir"
      return 1
    fi
    rm -rf "$work"
    touch "$dir/.complete"
    report "$piece" "$version" "built from the Go module proxy" "$(($(date +%s) - start)) s"
  fi
  local binary old
  for binary in "$@"; do
    case "$binary" in
      pulumi) ln -sfn "$dir/$binary" "$BIN/$binary" ;;
      *) ln -sfn "$dir/$binary" "$PLUGINS/$binary" ;;
    esac
  done
  # Builds of older recipes of this piece (about 120 MB each) go.
  for old in "$CACHE/$piece"-????????????????; do
    [ "$old" = "$dir" ] || rm -rf "$old"
  done
}

# A built plugin into the Pulumi home, unless the same binary is there already.
install_plugin() {  # name version
  local name="$1" version="$2" source target
  source="$PLUGINS/pulumi-resource-$name"
  target="${PULUMI_HOME:-$HOME/.pulumi}/plugins/resource-$name-v$version/pulumi-resource-$name"
  cmp -s "$source" "$target" 2>/dev/null && return 0
  # --reinstall: the same version built by another recipe replaces the one there.
  "$BIN/pulumi" plugin install resource "$name" "$version" --file "$source" --reinstall >&2
}

cli_version_ok() { [ "$("$1" version 2>/dev/null)" = "v$PULUMI_VERSION" ]; }

installer_reachable() { curl -fsS --max-time 5 -o /dev/null https://get.pulumi.com 2>/dev/null; }

# Pulumi's own binaries: the CLI from its installer, the plugins from Pulumi's download host.
install_official() {
  local start home
  start=$(date +%s)
  home="$CACHE/official-$PULUMI_VERSION"
  if [ -f "$home/.complete" ]; then
    report "pulumi + plugins" "$PULUMI_VERSION" "cache ($home)" "0 s" >&2
    return 0
  fi
  curl -fsSL https://get.pulumi.com | sh -s -- --version "$PULUMI_VERSION" --install-root "$home" >&2
  "$home/bin/pulumi" plugin install resource docker "$DOCKER_VERSION" >&2
  "$home/bin/pulumi" plugin install resource docker-build "$DOCKER_BUILD_VERSION" >&2
  ln -sfn "$home/bin/pulumi" "$BIN/pulumi"
  touch "$home/.complete"
  report "pulumi + plugins" "$PULUMI_VERSION" "Pulumi's installer and plugin host" "$(($(date +%s) - start)) s" >&2
}

main() {
  mkdir -p "$BIN" "$PLUGINS"
  # One run at a time per cache (parallel test sessions, a deploy beside them).
  exec 9>"$CACHE/.lock"
  flock 9
  local total
  total=$(date +%s)
  # DJANGOSTACK_TOOLCHAIN_BUILD=1 builds even where the installer is reachable.
  if [ -z "${DJANGOSTACK_TOOLCHAIN_BUILD:-}" ] &&
    { [ -f "$CACHE/official-$PULUMI_VERSION/.complete" ] || installer_reachable; }; then
    install_official
  else
    # The three builds share nothing but the module cache: run them side by side, each
    # printing its report line when done.
    local pids=() failed=0 pid
    ensure_built cli "$PULUMI_VERSION" pulumi >&2 &
    pids+=($!)
    ensure_built docker-build "$DOCKER_BUILD_VERSION" pulumi-resource-docker-build >&2 &
    pids+=($!)
    ensure_built docker "$DOCKER_VERSION" pulumi-resource-docker >&2 &
    pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ "$failed" = 0 ] || { log "the toolchain is incomplete (see above)"; return 3; }
    install_plugin docker "$DOCKER_VERSION"
    install_plugin docker-build "$DOCKER_BUILD_VERSION"
  fi
  log "ready in $(($(date +%s) - total)) s: $BIN"

  cli_version_ok "$BIN/pulumi" || { log "$BIN/pulumi does not report v$PULUMI_VERSION"; return 3; }
  echo "$BIN"
}

main "$@"
