#!/usr/bin/env bash
# The Pulumi toolchain this program needs: the CLI, the Python language host and the provider
# plugins of the pinned SDKs (requirements.txt). Idempotent; prints the directory to put on PATH.
#   bash scripts/toolchain.sh          ensure everything; exit 3 with a report when a piece is missing
#
# Where each piece comes from, first match wins:
#   1. already on PATH (Pulumi uses "ambient" plugins whatever their version);
#   2. Pulumi's installer, where it is reachable (what a user with internet gets; plugins are then
#      downloaded by the CLI on first use);
#   3. offline: built with `go build` from the Go module proxy, cached by version outside the
#      repository (DJANGOSTACK_TOOLCHAIN_DIR, default ~/.cache/djangostack/toolchain).
# Offline, nothing is downloaded at run time: a piece that is neither on PATH nor buildable is
# reported (with the proxy's answer) before anything is built, and the script exits 3.
set -euo pipefail

PULUMI_VERSION=3.274.1  # nearest the SDK's 3.272.0 that the module proxy serves (see below)
CACHE="${DJANGOSTACK_TOOLCHAIN_DIR:-$HOME/.cache/djangostack/toolchain}"
BIN="$CACHE/bin"

log() { printf '[toolchain] %s\n' "$*" >&2; }

# binary | module@version whose availability decides whether it can be had offline. Only the CLI
# has a build recipe here: on 2026-11-24 the module proxy refused the language host and the
# provider modules, and docker-build's own dependencies (pulumi-java, pulumi-dotnet codegen), so
# those come from PATH or the installer; the probe reports the proxy's answer each run.
CLI_MODULE=github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION
PIECES=(
  "pulumi|$CLI_MODULE"
  "pulumi-language-python|github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3@v3.0.0-20260820084410-a05d88f24d05"
  "pulumi-resource-docker|github.com/pulumi/pulumi-docker/provider/v5@v5.0.0-20260626165050-e944612c4c97"
  "pulumi-resource-docker-build|github.com/pulumi/pulumi-java@v1.29.0"
  "pulumi-resource-command|github.com/pulumi/pulumi-command/provider@v0.0.0-20260303235922-7f3eb6f3b77c"
  "pulumi-resource-random|github.com/pulumi/pulumi-random/provider/v4@v4.0.0-20260722185042-f2d8b029d0f7"
  "pulumi-resource-tls|github.com/pulumi/pulumi-tls/provider/v5@v5.0.0-20260722185624-c3b9a61e7075"
)

have() { PATH="$BIN:$HOME/.pulumi/bin:$PATH" command -v "$1" >/dev/null 2>&1; }

installer_reachable() { curl -fsS --max-time 5 -o /dev/null https://get.pulumi.com 2>/dev/null; }

# The CLI, built in a throwaway module that requires pkg/v3 and sdk/v3 at one version: pkg's
# go.mod replaces sdk/v3 with a local path and pins a clipboard fork, which a dependent module
# must repeat (`go install pkg@version` refuses modules with replace directives).
build_cli() {
  local work
  work=$(mktemp -d)
  cat >"$work/go.mod" <<MOD
module local/pulumi-cli

go 1.26

require (
	github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >"$work/tools.go"
  log "building the pulumi CLI $PULUMI_VERSION with go build (about 5 minutes the first time)"
  (cd "$work" && export GOFLAGS=-mod=mod CGO_ENABLED=0 && go mod tidy 2>"$work/log" &&
    go build -o "$BIN/pulumi" \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>>"$work/log") ||
    { tail -n 20 "$work/log" >&2; rm -rf "$work"; return 1; }
  rm -rf "$work"
}

main() {
  mkdir -p "$BIN"
  local missing=() piece binary module answer
  for piece in "${PIECES[@]}"; do
    IFS='|' read -r binary _ <<<"$piece"
    have "$binary" || missing+=("$piece")
  done
  if [ ${#missing[@]} -eq 0 ]; then echo "$BIN"; return 0; fi

  if installer_reachable; then
    log "installing Pulumi $PULUMI_VERSION with Pulumi's installer (plugins download on first use)"
    curl -fsSL https://get.pulumi.com | sh -s -- --version "$PULUMI_VERSION" >&2
    echo "$HOME/.pulumi/bin"
    return 0
  fi

  # Offline: probe every missing piece first, so an impossible toolchain fails in seconds.
  local unavailable=()
  for piece in "${missing[@]}"; do
    IFS='|' read -r binary module <<<"$piece"
    if ! answer=$(GOFLAGS=-mod=mod go list -m "$module" 2>&1); then
      unavailable+=("  $binary: not on PATH; the module proxy: $(printf '%s' "$answer" | tr '\n' ' ' | cut -c1-400)")
    elif [ "$binary" != pulumi ]; then
      unavailable+=("  $binary: not on PATH; $module is served now, but no build recipe exists here yet")
    fi
  done
  if [ ${#unavailable[@]} -gt 0 ]; then
    {
      echo "The Pulumi toolchain is incomplete and Pulumi's installer is unreachable:"
      printf '%s\n' "${unavailable[@]}"
      echo "Put those binaries on PATH (for example copied from ~/.pulumi/bin and ~/.pulumi/plugins"
      echo "of a machine with internet access), then run this again; the rest is built here."
    } >&2
    return 3
  fi
  build_cli  # the only piece that can be missing here
  echo "$BIN"
}

main "$@"
