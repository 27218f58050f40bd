#!/usr/bin/env bash
# Bring a stack up on this machine's Docker engine without Pulumi installed: the program's own
# resource graph realized by the test harness (docs/harness.md). Prints the URL.
#   bash scripts/up-local.sh dev|prod
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
case "${1:-}" in dev|prod) ;; *) echo "usage: $0 dev|prod" >&2; exit 2 ;; esac
bash scripts/venv.sh
bash scripts/testbed.sh
exec .venv/bin/python -m tests.harness up "$1"
