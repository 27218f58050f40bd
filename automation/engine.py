"""Stacks of this project on the Pulumi engine, through the Automation API.

The program is the project's own `__main__.py`, run inline: the Python SDK serves the language
runtime itself, so no Python language host is needed (the Go module proxy does not serve one).
The CLI and both provider plugins come from scripts/toolchain.sh; the plugins sit next to the
CLI on PATH, where the engine takes them as ambient plugins.
"""

from __future__ import annotations

import functools
import os
import runpy
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from pulumi import automation as auto

ROOT = Path(__file__).resolve().parents[1]  # the directory of Pulumi.yaml
PROJECT = "djangostack"
POLICY_PACK = ROOT / "policy" / "analyzer"  # an executable pack: no language host needed
POLICY_CONFIG = ROOT / "policy" / "config.json"


def program() -> None:
    """The inline program: the project's `__main__.py`, exactly as `pulumi up` would run it."""
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@functools.cache
def toolchain() -> Path:
    """The directory holding the CLI and the plugins (scripts/toolchain.sh: cached, else
    installed or built; its report goes to stderr)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "toolchain.sh")],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/toolchain.sh failed (exit {done.returncode}); see above")
    return Path(done.stdout.strip().splitlines()[-1])


def engine_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment: the toolchain first on PATH, no update checks, no plugin
    downloads (every plugin is local), plus `extra` (backend URL, passphrase, DOCKER_HOST)."""
    bin_dir = toolchain()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        **(extra or {}),
    }


def open_stack(
    stack: str,
    work_dir: Path = ROOT,
    env: Mapping[str, str] | None = None,
    inline: Callable[[], None] = program,
    create: bool = True,
) -> auto.Stack:
    """Select `stack` of the project in `work_dir` (its Pulumi.yaml and Pulumi.<stack>.yaml),
    creating it when new unless `create` is false (then auto.errors.StackNotFoundError), with
    the inline program (`inline`: the project's own, unless a test runs another)."""
    bin_dir = toolchain()
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        env_vars=engine_env(env),
        pulumi_command=auto.PulumiCommand(root=str(bin_dir.parent)),
    )
    # PulumiCommand(root=R) runs R/bin/pulumi.
    select = auto.create_or_select_stack if create else auto.select_stack
    return select(stack_name=stack, project_name=PROJECT, program=inline, opts=options)


def policy_args() -> dict[str, list[str]]:
    """`up` / `preview` keyword arguments that run the policy pack."""
    return {"policy_packs": [str(POLICY_PACK)], "policy_pack_configs": [str(POLICY_CONFIG)]}


def run_cli(stack: auto.Stack, *args: str) -> str:
    """A CLI command on `stack` that the Automation API does not wrap; returns its stdout."""
    workspace = stack.workspace
    done = subprocess.run(
        [str(toolchain() / "pulumi"), *args, "--stack", stack.name],
        cwd=workspace.work_dir,
        env={**os.environ, **(workspace.env_vars or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
