#!/usr/bin/env bash
# Runs a one-off command in a fresh container of a deployed stack's current release:
#   bash scripts/run.sh <stack> [--env NAME=VALUE | --env NAME ...] -- <command...>
# e.g. bash scripts/run.sh prod -- python manage.py createsuperuser
# The app's environment, secret files, uploads volume and backend network, the stack's
# hardening, a terminal when there is one; removed afterwards; exit code the command's. Set-up
# as scripts/deploy.sh, but nothing is deployed (python -m automation.run, which says more).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ $# -ge 1 ] || { sed -n '2,3p' "$0" | sed 's/^# *//' >&2; exit 2; }
# What the set-up prints goes to stderr: stdout is the command's (`-- python manage.py dumpdata`).
bash scripts/venv.sh >&2
bash scripts/testbed.sh engine >&2
bash scripts/toolchain.sh >/dev/null
exec .venv/bin/python -m automation.run "$@"
