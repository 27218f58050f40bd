#!/usr/bin/env bash
# Deploys one stack with the Pulumi engine, set-up included (the README's deploy command):
#   bash scripts/deploy.sh <stack> [--preview | --expect-no-changes | --destroy [--include-data]] [--diff]
# Set-up: the Pulumi toolchain (scripts/toolchain.sh: the CLI and the docker and docker-build
# plugins, cached, else installed or built), the Python venv, the Docker engine with BuildKit and
# a single-node Swarm (scripts/testbed.sh engine). Then the project's __main__.py runs as an
# inline Automation API program with the policy pack (python -m automation, which says more).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ $# -ge 1 ] || { sed -n '2,3p' "$0" | sed 's/^# *//' >&2; exit 2; }
bash scripts/venv.sh
bash scripts/testbed.sh engine
bash scripts/toolchain.sh >/dev/null
exec .venv/bin/python -m automation "$@"
