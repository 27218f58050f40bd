"""The deploy command (scripts/deploy.sh runs it after the set-up):

  python -m automation <stack> [--preview | --expect-no-changes | --destroy [--include-data]]
                               [--diff]

(no flag)            `pulumi up` with the policy pack; prints the changes and the URL
--preview            `pulumi preview` with the policy pack (what a pull request shows)
--expect-no-changes  `pulumi up` that fails if anything would change
--destroy            removes the stack's containers, services, networks and unprotected
                     volumes; the protected data volumes (prod: database, Redis, uploads,
                     backups) stay. With --include-data they go too.
--diff               print the property-level diff
"""

from __future__ import annotations

import argparse
import sys

from pulumi import automation as auto

from automation import deploy
from automation.engine import open_stack, policy_args, run_cli

OUTPUTS = ("url", "imageRef", "webNames", "processNames")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/deploy.sh", description=__doc__.split("\n")[0])
    parser.add_argument("stack")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--preview", action="store_true")
    mode.add_argument("--expect-no-changes", action="store_true")
    mode.add_argument("--destroy", action="store_true")
    parser.add_argument("--include-data", action="store_true")
    parser.add_argument("--diff", action="store_true")
    args = parser.parse_args(argv)
    if args.include_data and not args.destroy:
        parser.error("--include-data goes with --destroy")
    return args


def destroy(stack: auto.Stack, include_data: bool) -> None:
    if include_data:
        # Protected resources are the data volumes; unprotecting is the documented route.
        run_cli(stack, "state", "unprotect", "--all", "--yes")
    result = stack.destroy(on_output=print, exclude_protected=not include_data)
    print(f"\nDestroyed: {deploy.summary(result.summary.resource_changes)}")
    if deploy.deployed(stack):
        print("The protected data volumes stay; `--destroy --include-data` removes them too.")


def main(argv: list[str]) -> int:
    args = parse(argv)
    stack = open_stack(args.stack, env=deploy.backend_env())
    if args.destroy:
        destroy(stack, args.include_data)
        return 0
    deploy.generate_secrets(stack)
    deploy.ensure_self_signed(stack)
    migrations = deploy.MigrationWatch()
    if args.preview:
        result = stack.preview(
            on_output=print, on_event=migrations, diff=args.diff, **policy_args()
        )
        print(f"\nPreview: {deploy.summary(result.change_summary)}. {migrations.summary()}")
        return 0
    replace = [urn for urn, _ in deploy.failed_steps(stack)]
    for _, step in deploy.failed_steps(stack):
        print(f"The last deploy stopped at step {step}: it runs again.")
    try:
        up = stack.up(
            on_output=print,
            on_event=migrations,
            diff=args.diff,
            expect_no_changes=args.expect_no_changes or None,
            replace=replace or None,
            **policy_args(),
        )
    except auto.errors.CommandError:
        logs = deploy.failed_task_logs(stack)
        if logs:
            print(f"\nFailed tasks of the release, last lines:\n{logs}", file=sys.stderr)
        raise
    print(f"\nChanges: {deploy.summary(up.summary.resource_changes)}. {migrations.summary()}")
    failed = deploy.wait_for_rollouts(stack)
    if failed:
        print("Swarm did not complete the release:\n  " + "\n  ".join(failed), file=sys.stderr)
        print(deploy.failed_task_logs(stack), file=sys.stderr)
        return 1
    print(deploy.outputs_json(up.outputs, OUTPUTS))
    if "url" in up.outputs:
        print(f"\nThe site: {up.outputs['url'].value}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except auto.errors.CommandError as error:
        # The engine already printed what failed (streamed above); keep the exit code honest.
        print(f"\nDeploy failed: {str(error).strip().splitlines()[-1][:500]}", file=sys.stderr)
        sys.exit(1)
