#!/usr/bin/env bash
# Take down what scripts/up-local.sh brought up (both stacks unless one is named).
#   bash scripts/down-local.sh [dev|prod]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec .venv/bin/python -m tests.harness down "$@"
