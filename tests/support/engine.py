"""Stacks of the real program on the real Pulumi engine, for the Docker layer.

Each `EngineStack` is a Pulumi stack of its own (unique name, also the Docker name prefix and
the `djangostack.stack` label of everything it creates) in a per-session local file backend,
driven through the Automation API exactly as the deploy command drives it (automation/): the
same inline program (the project's `__main__.py`), the same toolchain, the same policy pack,
the same generated secrets. A test edits the stack's private copy of the project or its config
and runs `up` again, as a user would; `destroy` removes what the engine made.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml
from pulumi import automation as auto

from automation import deploy
from automation.engine import ROOT, open_stack, policy_args, run_cli
from components.configreader import SECRET_KEYS  # the program refuses them in plain text
from components.hardening import STACK_LABEL

SESSION = uuid.uuid4().hex[:6]
BACKEND_DIR = Path(tempfile.gettempdir()) / "djangostack-tests" / "state"
PASSPHRASE = "djangostack-tests"  # a test backend's secrets; nothing real is encrypted with it
REPLACING = frozenset({"replace", "create-replacement", "delete-replaced"})


@dataclass(frozen=True)
class Result:
    """One engine operation: its change summary, each resource's operation and the outputs."""

    changes: dict[str, int]  # the engine's summary, e.g. {"same": 30, "update": 2}
    ops: dict[tuple[str, str], str]  # (type token, resource name) -> same/create/update/replace...
    outputs: dict[str, Any]
    stdout: str
    migrations: tuple[str, ...] = ()  # app.name of each migration the release adds
    timeline: tuple[Timed, ...] = ()  # when each resource step started and ended

    def op(self, type_token: str, name: str) -> str:
        return self.ops[(type_token, name)]

    @property
    def changed(self) -> int:
        return deploy.changed(self.changes)


class DeployFailed(Exception):
    """An engine operation failed; `output` is what the engine printed (its diagnostics say
    which step and why), `ops` the operations it reached."""

    def __init__(self, output: str, ops: dict[tuple[str, str], str]):
        super().__init__(output[-6000:])
        self.output = output
        self.ops = ops


@dataclass(frozen=True)
class Timed:
    """A resource step's start ("pre"), end ("outputs") or failure ("failed"), stamped with
    `time.time()` when the event arrived (the SDK tails the CLI's event log every 0.1 s; the
    events' own timestamps are whole seconds): for benchmarks, next to Docker's events."""

    at: float
    kind: str
    type_token: str
    name: str
    op: str


class _Ops:
    """Collects each resource's operation, the migrations a release adds and the timeline of
    the resource steps, from the engine's events."""

    def __init__(self) -> None:
        self.ops: dict[tuple[str, str], str] = {}
        self.migrations = deploy.MigrationWatch()
        self.timeline: list[Timed] = []

    def __call__(self, event: auto.EngineEvent) -> None:
        self.migrations(event)
        for kind, step in (
            ("pre", event.resource_pre_event),
            ("outputs", event.res_outputs_event),
            ("failed", event.res_op_failed_event),
        ):
            if step is not None and not step.metadata.type.startswith("pulumi:providers:"):
                name = step.metadata.urn.rsplit("::", 1)[-1]
                op = str(getattr(step.metadata.op, "value", step.metadata.op))
                self.timeline.append(Timed(time.time(), kind, step.metadata.type, name, op))
        pre = event.resource_pre_event
        if pre is None or pre.metadata.type.startswith("pulumi:providers:"):
            return
        key = (pre.metadata.type, pre.metadata.urn.rsplit("::", 1)[-1])
        op = str(getattr(pre.metadata.op, "value", pre.metadata.op))
        if self.ops.get(key) != "replace":
            self.ops[key] = "replace" if op in REPLACING else op


@dataclass
class EngineStack:
    name: str  # stack name, Docker name prefix and label value
    profile: str  # dev | prod
    work_dir: Path  # Pulumi.yaml (a copy) and Pulumi.<name>.yaml
    app_dir: Path  # the stack's private copy of the project: tests may edit it
    config: dict[str, Any]  # djangostack: keys without the prefix; others (docker:host) whole
    # The engine's environment. Not DOCKER_HOST for a remote Swarm manager: docker-build's
    # `docker buildx` would build there too; config `docker:host` moves only the provider.
    env: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # of the last successful `up`
    _stack: auto.Stack | None = None

    @property
    def engine_env(self) -> dict[str, str]:
        """The environment that reaches this stack's backend (for scripts/run.sh too)."""
        return {
            "PULUMI_BACKEND_URL": BACKEND_DIR.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            **self.env,
        }

    @property
    def stack(self) -> auto.Stack:
        if self._stack is None:
            BACKEND_DIR.mkdir(parents=True, exist_ok=True)
            self._stack = open_stack(self.name, self.work_dir, self.engine_env)
        return self._stack

    def _configure(self, config: Mapping[str, Any]) -> None:
        """The stack's config file holds exactly `config` (secret keys encrypted) plus the
        secrets the deploy generates."""
        # A key with a namespace (docker:host) is another package's config, set as it is.
        values = {
            key if ":" in key else f"djangostack:{key}": auto.ConfigValue(
                _text(value), secret=key in SECRET_KEYS
            )
            for key, value in config.items()
            if value is not None and not isinstance(value, list)
        }
        # Pulumi.yaml types buildPackages/runtimePackages as arrays: the CLI refuses JSON text
        # for them, so a list is set item by item, as `pulumi config set --path 'key[0]'` does
        # (removed first, below, so no item of a longer old list stays; [] is the default).
        items = {
            f"djangostack:{key}[{index}]": auto.ConfigValue(str(item))
            for key, value in config.items()
            if isinstance(value, list)
            for index, item in enumerate(value)
        }
        stack = self.stack
        settings = self.work_dir / f"Pulumi.{self.name}.yaml"
        present = (
            yaml.safe_load(settings.read_text()).get("config") or {} if settings.exists() else {}
        )
        generated = {f"djangostack:{key}" for key in deploy.GENERATED_SECRETS}
        stale = sorted(set(present) - set(values) - generated)
        if stale:
            stack.remove_all_config(stale)
        stack.set_all_config(values)
        if items:
            stack.set_all_config(items, path=True)
        deploy.generate_secrets(stack, say=lambda _: None)

    def _run(self, operation: str, **kwargs: Any) -> tuple[Any, _Ops, str]:
        ops = _Ops()
        lines: list[str] = []
        try:
            result = getattr(self.stack, operation)(on_output=lines.append, on_event=ops, **kwargs)
        except auto.errors.CommandError as error:
            raise DeployFailed("\n".join(lines) + "\n" + str(error), ops.ops) from error
        return result, ops, "\n".join(lines)

    def up(self, *, replace: list[str] | None = None, **overrides: Any) -> Result:
        """`pulumi up` with the policy pack, `overrides` on top of the current config; they
        become the current config only when the deploy succeeds (a failed release does not
        change what the next deploy starts from)."""
        config = {**self.config, **overrides}
        self._configure(config)
        replace = replace or [urn for urn, _ in deploy.failed_steps(self.stack)] or None
        try:
            result, ops, out = self._run("up", replace=replace, **policy_args())
        except DeployFailed as failed:
            # What the deploy command prints after a failed release: failed tasks' last lines.
            failed.output += "\n" + deploy.failed_task_logs(self.stack)
            raise
        # As the deploy command: done when Swarm has finished the release, not before.
        unfinished = deploy.wait_for_rollouts(self.stack)
        if unfinished:
            raise DeployFailed(
                out + "\n" + "\n".join(unfinished) + "\n" + deploy.failed_task_logs(self.stack),
                ops.ops,
            )
        self.config = config
        self.outputs = {k: v.value for k, v in result.outputs.items()}
        added = tuple(ops.migrations.added)
        changes = result.summary.resource_changes or {}
        return Result(changes, ops.ops, self.outputs, out, added, tuple(ops.timeline))

    def preview(self, *, diff: bool = False, **overrides: Any) -> Result:
        """`pulumi preview` with the policy pack; the config is left as it was."""
        self._configure({**self.config, **overrides})
        try:
            result, ops, out = self._run("preview", diff=diff, **policy_args())
        finally:
            self._configure(self.config)
        added = tuple(ops.migrations.added)
        return Result(dict(result.change_summary), ops.ops, {}, out, added, tuple(ops.timeline))

    def destroy(self, *, include_data: bool = True) -> Result:
        """`pulumi destroy`; with `include_data` the protected volumes go too (the documented
        route: unprotect, then destroy). Where the engine fails on a Swarm service being torn
        down (a known provider race), refresh and destroy again."""
        if include_data:
            run_cli(self.stack, "state", "unprotect", "--all", "--yes")
        try:
            result, ops, out = self._run("destroy", exclude_protected=not include_data)
        except DeployFailed:
            self._run("refresh")
            result, ops, out = self._run("destroy", exclude_protected=not include_data)
        return Result(result.summary.resource_changes or {}, ops.ops, {}, out)

    def remove(self) -> None:
        """Destroy everything and forget the stack; anything the engine could not remove is
        removed by label, and reported."""
        leftover: list[str] = []
        try:
            with contextlib.suppress(DeployFailed, RuntimeError):
                self.destroy(include_data=True)
            client = self.docker_client()
            leftover = leftovers(self.name, client)
            sweep(self.name, client)
        finally:
            with contextlib.suppress(auto.errors.CommandError):
                self.stack.workspace.remove_stack(self.name, force=True)
        if leftover:
            print(f"[engine] destroy of {self.name} left {leftover}; removed by label")

    def docker_client(self) -> docker.DockerClient:
        """A client of the engine the stack's Docker provider talks to: config `docker:host`
        (e.g. a Swarm manager's socket), else this machine's."""
        host = self.config.get("docker:host")
        if host:
            return docker.DockerClient(base_url=host, timeout=300)
        return docker.from_env(timeout=300)

    def all_containers(self, client: docker.DockerClient) -> list:
        """Every container of the stack (plain ones, jobs, holders and Swarm tasks)."""
        return client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={self.name}"})


def _text(value: Any) -> str:
    """A config value as the CLI stores it: booleans lowercase, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def leftovers(name: str, client: docker.DockerClient | None = None) -> list[str]:
    """Names of the Docker objects labelled with stack `name` that still exist."""
    client = client or docker.from_env()
    selector = {"label": f"{STACK_LABEL}={name}"}
    found = [f"service {s.name}" for s in client.services.list(filters=selector)]
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=selector)]
    found += [f"network {n.name}" for n in client.networks.list(filters=selector)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=selector)]
    found += [f"secret {s.name}" for s in client.secrets.list(filters=selector)]
    return found


def sweep(name: str, client: docker.DockerClient | None = None) -> None:
    """Remove what a failed destroy left of stack `name` (services first: their tasks hold
    networks and secrets)."""
    client = client or docker.from_env(timeout=300)
    selector = {"label": f"{STACK_LABEL}={name}"}
    removals = [s.remove for s in client.services.list(filters=selector)]
    removals += [
        lambda c=c: c.remove(force=True, v=True)
        for c in client.containers.list(all=True, filters=selector)
    ]
    removals += [n.remove for n in client.networks.list(filters=selector)]
    removals += [lambda v=v: v.remove(force=True) for v in client.volumes.list(filters=selector)]
    removals += [s.remove for s in client.secrets.list(filters=selector)]
    for remove in removals:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            remove()


def copy_project(target: Path, source: Path = ROOT / "app") -> Path:
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "db.sqlite3")
    )
    return target


def new_stack(
    workdir: Path,
    label: str,
    profile: str,
    *,
    source: Path = ROOT / "app",
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> EngineStack:
    """A new stack `<label>-<random>` of `profile` for a private copy of `source` (the reference
    app or a fixture project), with the test config (tests/docker/stack_config.py) and
    `overrides`; nothing deployed yet."""
    from tests.docker.stack_config import config_for

    name = f"{label}-{uuid.uuid4().hex[:6]}"
    app_dir = copy_project(workdir / "app", source)
    work_dir = workdir / "pulumi"
    work_dir.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", work_dir / "Pulumi.yaml")
    config = {**config_for(profile, name, app_dir, workdir / "tls"), **(overrides or {})}
    return EngineStack(name, profile, work_dir, app_dir, config, dict(env or {}))


@contextlib.contextmanager
def deployed(
    workdir: Path,
    label: str,
    profile: str,
    *,
    source: Path = ROOT / "app",
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[EngineStack]:
    """`new_stack` deployed with `up`, removed afterwards (even when the deploy failed)."""
    stack = new_stack(workdir, label, profile, source=source, overrides=overrides, env=env)
    try:
        stack.up()
        yield stack
    finally:
        stack.remove()
