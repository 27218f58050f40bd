#!/usr/bin/env bash
# The whole test suite, set-up included (the README's test command; .ci/run calls it).
#   bash scripts/test.sh          unit layer, static checks, then the Docker layer
#   bash scripts/test.sh unit     unit layer only (seconds, no Docker)
#   bash scripts/test.sh lint     static checks only (ruff, hadolint, checkov, yamllint, actionlint)
#   bash scripts/test.sh docker   Docker layer only (installs and starts Docker, ensures the
#                                 Pulumi toolchain), then the vulnerability scan of the runtime
#                                 image (scripts/audit.py)
# The Docker layer runs the real Pulumi engine (docs/testing.md). On a machine without the
# toolchain in its cache, its build (about 15 minutes) starts first, in the background, while
# the other layers and the test bed run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
layer="${1:-all}"
bash scripts/venv.sh
py=.venv/bin/python
TOOLCHAIN_LOG="${TMPDIR:-/tmp}/djangostack-toolchain.log"

start_toolchain() {
  bash scripts/toolchain.sh >"$TOOLCHAIN_LOG" 2>&1 &
  TOOLCHAIN_PID=$!
}

wait_toolchain() {
  if ! wait "$TOOLCHAIN_PID"; then
    cat "$TOOLCHAIN_LOG" >&2
    echo "the Pulumi toolchain could not be had; the Docker layer needs it" >&2
    exit 1
  fi
  grep '^\[toolchain\]' "$TOOLCHAIN_LOG" >&2 || true
}

run_unit() { "$py" -m pytest tests/unit -q -p no:cacheprovider; }
# The Docker layer in DOCKER_WORKERS parallel workers, a whole module each (its shared stack
# stays in one worker): most of a deploy is waiting on health checks and Swarm, not CPU, so
# three workers fit two cores (docs/testing.md).
DOCKER_WORKERS="${DOCKER_WORKERS:-3}"
run_docker() {
  bash scripts/testbed.sh
  wait_toolchain
  # Workers' prints never reach the terminal: the figures the tests measure are collected in a
  # file (tests/support/figures.py) and printed after the run, pass or fail.
  export DJANGOSTACK_FIGURES="${TMPDIR:-/tmp}/djangostack-figures.$$.log"
  : >"$DJANGOSTACK_FIGURES"
  local status=0
  "$py" -m pytest tests/docker -q -p no:cacheprovider -rs --durations=15 \
    -n "$DOCKER_WORKERS" --dist loadfile || status=$?
  echo "--- figures measured by the Docker layer"
  cat "$DJANGOSTACK_FIGURES"
  rm -f "$DJANGOSTACK_FIGURES"
  [ "$status" = 0 ] || return "$status"
  # Known vulnerabilities of the Python distributions in the runtime image the layer just built
  # (tests/docker/conftest.py RUNTIME_TAG); reviewed exceptions: security/pip-audit-ignore.txt.
  "$py" scripts/audit.py djangostack/web:test
}

case "$layer" in
  unit) run_unit ;;
  lint) bash scripts/lint.sh ;;
  docker) start_toolchain; run_docker ;;
  all) start_toolchain; run_unit; bash scripts/lint.sh; run_docker ;;
  *) echo "usage: $0 [unit|lint|docker|all]" >&2; exit 2 ;;
esac
