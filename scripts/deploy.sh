#!/usr/bin/env bash
# Deploys one stack with Pulumi, set-up included (the README's deploy command):
#   bash scripts/deploy.sh <dev|prod> [extra `pulumi up` flags, e.g. --diff]
# Ensures the Pulumi toolchain (scripts/toolchain.sh: CLI, Python language host, provider plugins;
# fails in seconds with a report when a piece cannot be had), the Python venv, the Docker engine
# with BuildKit and a single-node swarm, then runs `pulumi up` with the project's policy pack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
stack="${1:-}"
[ -n "$stack" ] || { echo "usage: bash scripts/deploy.sh <dev|prod> [pulumi up flags]" >&2; exit 2; }
shift

if ! toolchain=$(bash scripts/toolchain.sh); then
  echo "Nothing was deployed. To run the same program without Pulumi, through the test harness:" >&2
  echo "  bash scripts/up-local.sh $stack" >&2
  exit 3
fi
export PATH="$toolchain:$PATH"
# Every piece found locally: never let the CLI try (and wait on) a plugin download.
[ "$toolchain" = "$HOME/.pulumi/bin" ] || export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
bash scripts/venv.sh
bash scripts/testbed.sh engine
# Use whatever backend the operator logged in to; otherwise a local file backend in ~/.pulumi.
pulumi whoami >/dev/null 2>&1 || pulumi login --local
pulumi stack select --create "$stack"
exec pulumi up --stack "$stack" --policy-pack policy --policy-pack-config policy/config.json "$@"
