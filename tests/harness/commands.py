"""pulumi-command `local.Command`: shell commands run on this machine."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from .kinds import Context, Kind
from .spec import Spec
from .state import Record

TIMEOUT_SECONDS = 1800


class CommandFailed(Exception):
    pass


class LocalCommand(Kind):
    """`create` on creation; `update` (or `create` again) on a change; `delete` on removal.

    As in the provider, a change of `triggers` replaces the command (the new `create` runs
    before the old `delete`), any other change updates it in place; the interpreter defaults
    to `/bin/sh -c` and the environment extends this process's own.
    """

    delete_before_replace = False

    def in_place(self, old: Record, new_inputs: dict) -> bool:
        return old.inputs.get("triggers") == new_inputs.get("triggers")

    def prepare(self, spec: Spec) -> dict[str, Any]:
        spec.get("triggers")  # part of the inputs: a change forces a re-run
        spec.get("logging")  # only decides what the engine logs
        spec.expect("assetPaths")
        spec.expect("archivePaths")
        return {
            "create": spec.get("create"),
            "update": spec.get("update"),
            "delete": spec.get("delete"),
            "interpreter": spec.get("interpreter", ["/bin/sh", "-c"]),
            "dir": spec.get("dir"),
            "env": {**os.environ, **spec.get("environment", {})},
            "stdin": spec.get("stdin"),
            "previous_in_env": spec.get("addPreviousOutputInEnv", True),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        return "command", _run(plan, "create", plan["create"], {})

    def update(self, old: Record, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        return "command", _run(plan, "update", plan["update"] or plan["create"], old.outputs)

    def delete(self, record: Record, ctx: Context) -> None:
        plan = self.prepare(Spec(record.inputs, f"command {record.name}", record.name))
        _run(plan, "delete", plan["delete"], record.outputs)


def _run(plan: dict[str, Any], phase: str, script: str | None, previous: dict) -> dict:
    if not script:
        return {"stdout": previous.get("stdout", ""), "stderr": previous.get("stderr", "")}
    env = dict(plan["env"])
    if plan["previous_in_env"] and previous:
        env["PULUMI_COMMAND_STDOUT"] = previous.get("stdout", "")
        env["PULUMI_COMMAND_STDERR"] = previous.get("stderr", "")
    proc = subprocess.run(
        [*plan["interpreter"], script],
        cwd=plan["dir"],
        env=env,
        input=plan["stdin"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if proc.returncode != 0:
        raise CommandFailed(
            f"{phase} command exited {proc.returncode}: {script}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    # The provider trims one trailing newline.
    return {"stdout": proc.stdout.removesuffix("\n"), "stderr": proc.stderr.removesuffix("\n")}
