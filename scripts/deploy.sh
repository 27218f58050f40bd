#!/usr/bin/env bash
# Deploys one stack with Pulumi, set-up included (the README's deploy command):
#   bash scripts/deploy.sh <dev|prod> [extra `pulumi up` flags, e.g. --diff]
# Installs the Python venv, the Docker engine with BuildKit and a single-node swarm when missing,
# the Pulumi CLI when missing, then runs `pulumi up` with the project's policy pack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
stack="${1:-}"
[ -n "$stack" ] || { echo "usage: bash scripts/deploy.sh <dev|prod> [pulumi up flags]" >&2; exit 2; }
shift

bash scripts/venv.sh
bash scripts/testbed.sh engine

if ! command -v pulumi >/dev/null 2>&1; then
  export PATH="$HOME/.pulumi/bin:$PATH"
  if ! command -v pulumi >/dev/null 2>&1; then
    echo "Installing the Pulumi CLI with Pulumi's official installer" >&2
    curl -fsSL https://get.pulumi.com | sh
  fi
fi
# Use whatever backend the operator logged in to; otherwise a local file backend in ~/.pulumi.
pulumi whoami >/dev/null 2>&1 || pulumi login --local
pulumi stack select --create "$stack"
exec pulumi up --stack "$stack" --policy-pack policy --policy-pack-config policy/config.json "$@"
