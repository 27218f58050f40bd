"""One-off commands (scripts/run.sh runs it after the set-up, and deploys nothing):

  python -m automation.run <stack> [--env NAME=VALUE | --env NAME ...] -- <command...>

runs <command> once in a fresh container `<namePrefix>-run-<6 hex>` of the stack's current
release (stack output imageRef) with the environment, secret files and uploads volume of the
app, on the backend network, hardened like every container of the stack; interactive (-it)
when stdin and stdout are terminals, removed afterwards. `--env NAME` passes NAME from the
caller's environment (its value stays off the command line). The exit code is the command's,
125 when the container could not start (as `docker run`). Nothing of the stack changes: no
engine update, no container or service of it touched.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import docker
import docker.errors
from pulumi import automation as auto

from automation import deploy
from automation.engine import open_stack
from components import app, hardening, jobs

# `docker run`'s own code when the container did not start; ours when it cannot be set up.
CANNOT_START = 125
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Args:
    stack: str
    env: tuple[str, ...]  # NAME=VALUE, or NAME (its value from the caller's environment)
    command: tuple[str, ...]


def parse(argv: Sequence[str]) -> Args:
    parser = argparse.ArgumentParser(
        prog="scripts/run.sh",
        usage="%(prog)s <stack> [--env NAME=VALUE | --env NAME ...] -- <command...>",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("stack")
    parser.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]")
    argv = list(argv)
    # Everything after `--` is the command, options included (`python -c ...`).
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    command = tuple(argv[split + 1 :])
    if not command:
        parser.error("the command goes after `--`, e.g. -- python manage.py createsuperuser")
    for item in args.env:
        if not _NAME.fullmatch(item.split("=", 1)[0]):
            parser.error(f"--env {item!r}: NAME=VALUE or NAME, NAME a variable name")
    return Args(args.stack, tuple(args.env), command)


@dataclass(frozen=True)
class RunSpec:
    """What one-off containers of a stack run with: the stack's values and, from the template
    (the migration step's container), what the deploy gave the app."""

    name_prefix: str
    image: str
    network: str
    user: str
    env: tuple[str, ...]  # NAME=VALUE, not those the image sets itself
    mounts: tuple[str, ...]  # `--mount` values
    tmpfs: tuple[str, ...]  # paths
    memory: int  # bytes
    memory_swap: int
    nano_cpus: int
    labels: Mapping[str, str]


def run_spec(
    outputs: Mapping[str, Any], template: Mapping[str, Any], image_env: Sequence[str]
) -> RunSpec:
    """The run spec from the stack's outputs, the inspected template container and the `Env`
    of its image (left out: the image sets it by itself).

    The template is the migration step's container: the program's own spec of a command of the
    project (jobs.app_step_spec: web's environment, secret files, uploads volume and memory, on
    the backend network), deployed as a plain container, which is what `docker run` makes, in
    dev and prod alike. Web itself is no template: in prod it is a Swarm service whose secrets
    are Docker secrets, which only a service can mount; the step's files volume holds the same
    files. The fixed hardening is not read back from it but applied from components/hardening
    (docker_command), the one place it is defined."""
    config, host = template["Config"], template["HostConfig"]
    mounts = []
    for mount in host.get("Mounts") or []:
        value = f"type={mount['Type']},source={mount['Source']},target={mount['Target']}"
        mounts.append(value + (",readonly" if mount.get("ReadOnly") else ""))
    labels = config.get("Labels") or {}
    own_env = set(image_env)
    return RunSpec(
        name_prefix=outputs["namePrefix"],
        image=outputs["imageRef"],
        network=outputs["backendNetwork"],
        user=config["User"],
        env=tuple(e for e in config.get("Env") or [] if e not in own_env),
        mounts=tuple(mounts),
        tmpfs=tuple(sorted(host.get("Tmpfs") or {})),
        memory=host["Memory"],
        memory_swap=host["MemorySwap"],
        nano_cpus=host.get("NanoCpus") or 0,
        labels={
            **{k: labels[k] for k in (hardening.STACK_LABEL, hardening.PROJECT_LABEL)},
            hardening.ROLE_LABEL: hardening.RUN_ROLE,
        },
    )


def docker_command(
    spec: RunSpec,
    command: Sequence[str],
    env: Sequence[str] = (),
    *,
    tty: bool,
    host: str = "",
    suffix: str = "",
) -> list[str]:
    """The `docker run` of `command` (through the app's entrypoint, which exports the secretEnv
    names from their files) with `spec`, `env` over its environment, and the hardening every
    container of the stack gets (components/hardening.py)."""
    overridden = {item.split("=", 1)[0] for item in env}
    kept = [e for e in spec.env if e.split("=", 1)[0] not in overridden]
    name = f"{spec.name_prefix}-run-{suffix or secrets.token_hex(3)}"
    argv = ["docker", *(["-H", host] if host else []), "run", "--rm", "--name", name]
    # stdin always reaches the command (a script piped into `manage.py shell`); a terminal
    # only when there is one on both sides.
    argv += ["--interactive", *(["--tty"] if tty else [])]
    argv += [f"--label={k}={v}" for k, v in sorted(spec.labels.items())]
    argv += ["--network", spec.network, "--user", spec.user]
    argv += [f"--env={e}" for e in [*kept, *env]]
    argv += [f"--mount={m}" for m in spec.mounts]
    argv += ["--read-only", *(f"--cap-drop={c}" for c in hardening.CAP_DROP)]
    argv += [f"--security-opt={o}" for o in hardening.SECURITY_OPTS]
    argv += [f"--tmpfs={path}:{hardening.TMPFS_OPTIONS}" for path in spec.tmpfs]
    argv += [f"--ulimit=nofile={hardening.NOFILE}:{hardening.NOFILE}"]
    argv += [f"--memory={spec.memory}", f"--memory-swap={spec.memory_swap}"]
    argv += [f"--cpus={spec.nano_cpus / 1e9:g}"] if spec.nano_cpus else []
    argv += [f"--pids-limit={app.PIDS}", f"--log-driver={hardening.LOG_DRIVER}"]
    argv += [f"--log-opt={k}={v}" for k, v in sorted(hardening.LOG_OPTS.items())]
    # The image's health check probes web's port: nothing a one-off command serves.
    argv += ["--no-healthcheck", spec.image, app.ENTRYPOINT, *command]
    return argv


def fail(message: str) -> NoReturn:
    print(f"run: {message}", file=sys.stderr)
    raise SystemExit(CANNOT_START)


def prepare(args: Args) -> list[str]:
    """The `docker run` command line for `args`, from the deployed stack."""
    env = deploy.backend_env(say=lambda message: print(message, file=sys.stderr))
    try:
        stack = open_stack(args.stack, env=env, create=False)
    except auto.errors.StackNotFoundError:
        fail(f"no stack {args.stack}: deploy it first (bash scripts/deploy.sh {args.stack})")
    outputs = {key: value.value for key, value in stack.outputs().items()}
    missing = [k for k in ("namePrefix", "imageRef", "backendNetwork") if k not in outputs]
    if missing:
        fail(
            f"stack {args.stack} has no output {', '.join(missing)}: deploy it with this "
            f"version first (bash scripts/deploy.sh {args.stack})"
        )
    host = deploy.docker_host(stack)
    client = docker.DockerClient(base_url=host) if host else docker.from_env()
    name = f"{outputs['namePrefix']}-{jobs.MIGRATION_STEP}"
    try:
        template = client.containers.get(name).attrs
        image_env = client.images.get(template["Image"]).attrs["Config"].get("Env") or []
    except docker.errors.NotFound as missing_object:
        fail(f"{missing_object.explanation}: deploy stack {args.stack} again")
    spec = run_spec(outputs, template, image_env)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    return docker_command(spec, args.command, args.env, tty=tty, host=host)


def main(argv: Sequence[str]) -> None:
    argv = prepare(parse(argv))
    # The docker CLI itself: a terminal works, signals reach the command, and its exit code is
    # this process's.
    os.execvp(argv[0], argv)  # noqa: S606 - a fixed program, arguments as a list


if __name__ == "__main__":
    main(sys.argv[1:])
