#!/usr/bin/env bash
# The whole test suite, set-up included (the README's test command; .ci/run calls it).
#   bash scripts/test.sh          unit layer, static checks, then the Docker layer
#   bash scripts/test.sh unit     unit layer only (seconds, no Docker)
#   bash scripts/test.sh lint     static checks only (ruff, hadolint, checkov, yamllint, actionlint)
#   bash scripts/test.sh docker   Docker layer only (minutes; installs and starts Docker), then
#                                 the vulnerability scan of the runtime image (scripts/audit.py)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
layer="${1:-all}"
bash scripts/venv.sh
py=.venv/bin/python

run_unit() { "$py" -m pytest tests/unit -q -p no:cacheprovider; }
run_docker() {
  bash scripts/testbed.sh
  "$py" -m pytest tests/docker -q -p no:cacheprovider -rs
  # Known vulnerabilities of the Python distributions in the runtime image the layer just built
  # (tests/docker/conftest.py RUNTIME_TAG); reviewed exceptions: security/pip-audit-ignore.txt.
  "$py" scripts/audit.py djangostack/web:test
}

case "$layer" in
  unit) run_unit ;;
  lint) bash scripts/lint.sh ;;
  docker) run_docker ;;
  all) run_unit; bash scripts/lint.sh; run_docker ;;
  *) echo "usage: $0 [unit|lint|docker|all]" >&2; exit 2 ;;
esac
