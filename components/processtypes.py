"""Process types (config `processes`): the long-running non-web processes of a stack, how
an entry is validated, and the default Celery worker when `processes` is unset.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from components.configreader import MAX_MEMORY_MB, MIN_MEMORY_MB, PROJECT, _Reader

# Process types (config `processes`): the name ends up in Docker and Pulumi names.
PROCESS_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
PROCESS_FIELDS = ("command", "replicas", "memoryMb", "health", "singleton", "egress")
# `<namePrefix>-<name>` of a process must not be another Docker object of the stack.
RESERVED_PROCESS_NAMES = frozenset(
    {
        "web", "migrate", "static", "postgres", "pgdata", "redis", "redisdata", "backup",
        "backups", "nginx", "prometheus", "edge", "backend", "egress", "media",
        "scheduled-backup",
    }
)  # fmt: skip
CELERY_PROCESS = "celery"  # the default process: today's Celery worker, same names
MAX_PROCESS_REPLICAS = 64


@dataclass(frozen=True)
class ProcessConfig:
    """One long-running non-web process type (config `processes`, docs/config.md)."""

    name: str  # Docker name `<namePrefix>-<name>`, Pulumi name `djangostack-<name>`
    command: tuple[str, ...]
    replicas: int
    memory_mb: int
    # Docker CMD form (("CMD", ...) or ("CMD-SHELL", "...")); empty: the product's default
    # (`celery_worker_app` finds it for a Celery worker).
    health: tuple[str, ...]
    singleton: bool  # never two tasks at once, even during a rollout
    egress: bool  # also on the `egress` network (a route out)


def celery_worker_app(command: tuple[str, ...], celery_app: str) -> str | None:
    """What a `celery ... worker` command loads (its `-A`/`--app`, else the project's
    `celery_app`): the product has a health check for such a worker. None for any other
    command, or a worker whose app is unknown."""
    if command[:1] != ("celery",) or "worker" not in command:
        return None
    for index, arg in enumerate(command):
        if arg in ("-A", "--app") and index + 1 < len(command):
            return command[index + 1]
        if arg.startswith("--app="):
            return arg.removeprefix("--app=")
    return celery_app or None


def _default_processes(
    celery_app: str, concurrency: int, memory_mb: int
) -> tuple[ProcessConfig, ...]:
    """Without `processes`: today's Celery worker when the project has a Celery app."""
    if not celery_app:
        return ()
    command = ("celery", "-A", celery_app, "worker", "--loglevel", "INFO")
    return (
        ProcessConfig(
            name=CELERY_PROCESS,
            command=(*command, "--concurrency", str(concurrency)),
            replicas=1,
            memory_mb=memory_mb,
            health=(),  # the product's Celery ping (components/processes.py)
            singleton=False,
            egress=False,
        ),
    )


def _strings(value: Any) -> tuple[str, ...] | None:
    """`value` as a non-empty tuple of non-empty strings, else None."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(item, str) and item for item in value):
        return None
    return tuple(value)


def _process_integer(r: _Reader, path: str, value: Any, low: int, high: int, example: str) -> int:
    # YAML numbers arrive as int; text ("2", as `pulumi config set --path ... --type string`
    # or a quoted YAML value stores it) is accepted the way flat integer keys accept it.
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        r.problem_at(path, f"must be a whole number, got {value!r}", example)
        return low
    if not low <= value <= high:
        r.problem_at(path, f"must be between {low} and {high}, got {value}", example)
        return low
    return value


def _process_boolean(r: _Reader, path: str, value: Any) -> bool:
    # Text "true"/"false" too, like the flat boolean keys.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        r.problem_at(path, f"must be true or false, got {value!r}", "true")
        return False
    return value


def _process(
    r: _Reader, name: str, spec: Any, celery_app: str, default_memory_mb: int
) -> ProcessConfig | None:
    """One entry of `processes`, validated; None when it is unusable (problems recorded)."""
    base = f"processes.{name}"
    problem = ""
    if not PROCESS_NAME_RE.match(name):
        problem = f"process name {name!r} must match [a-z][a-z0-9-]* (max 30)"
    elif name in RESERVED_PROCESS_NAMES or re.fullmatch(r"release-\d+", name):
        problem = f"process name {name!r} is taken by the stack's own <namePrefix>-{name}"
    if problem:
        r.problems.append(
            f"{PROJECT}:{base}: {problem}. Fix: pulumi config rm --path '{base}' && "
            "pulumi config set --path 'processes.worker.command[0]' python (and its other fields)"
        )
        return None
    if not isinstance(spec, dict):
        r.problem_at(f"{base}.command[0]", f"must be an object, got {spec!r}", "python")
        return None
    for unknown in sorted(set(spec) - set(PROCESS_FIELDS)):
        close = difflib.get_close_matches(unknown, PROCESS_FIELDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        r.problems.append(
            f"{PROJECT}:{base}.{unknown}: unknown field{hint}; known: "
            f"{', '.join(PROCESS_FIELDS)}. Fix: pulumi config rm --path '{base}.{unknown}'"
        )
    command = _strings(spec.get("command"))
    if command is None:
        what = f"command must be a non-empty list of strings, got {spec.get('command')!r}"
        r.problem_at(f"{base}.command[0]", what, "python")
        command = ("python",)
    replicas = _process_integer(
        r, f"{base}.replicas", spec.get("replicas", 1), 1, MAX_PROCESS_REPLICAS, "1"
    )
    memory_mb = _process_integer(
        r,
        f"{base}.memoryMb",
        spec.get("memoryMb", default_memory_mb),
        MIN_MEMORY_MB,
        MAX_MEMORY_MB,
        "512",
    )
    health: tuple[str, ...] = ()
    if "health" in spec:
        health = _strings(spec["health"]) or ()
        if not health or health[0] not in ("CMD", "CMD-SHELL") or len(health) < 2:
            what = (
                "health must be a Docker health check in CMD form: "
                f'["CMD", "program", ...] or ["CMD-SHELL", "shell line"], got {spec["health"]!r}'
            )
            r.problem_at(f"{base}.health[0]", what, "CMD")
    elif celery_worker_app(command, celery_app) is None:
        what = (
            "health is required: only a Celery worker has a default health check; "
            "give a command that fails when the process is unhealthy"
        )
        r.problem_at(f"{base}.health[0]", what, "CMD")
    singleton = _process_boolean(r, f"{base}.singleton", spec.get("singleton", False))
    if singleton and replicas != 1:
        what = "a singleton runs exactly one task: replicas must be 1 (or singleton false)"
        r.problem_at(f"{base}.replicas", what, "1")
    egress = _process_boolean(r, f"{base}.egress", spec.get("egress", False))
    return ProcessConfig(name, command, replicas, memory_mb, health, singleton, egress)


def _processes(
    r: _Reader, celery_app: str, concurrency: int, default_memory_mb: int
) -> tuple[ProcessConfig, ...]:
    """Config `processes` (an object: name -> process), or the default Celery worker."""
    raw = r.values.get("processes")
    # Unset: absent, or Pulumi.yaml's default "" that the CLI passes to every program.
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return _default_processes(celery_app, concurrency, default_memory_mb)
    value: Any = raw
    if isinstance(raw, str):
        with contextlib.suppress(json.JSONDecodeError):  # not JSON: reported below
            value = json.loads(raw)
    if not isinstance(value, dict):
        r.problem_at(
            "processes.worker.command[0]",
            f"processes must be an object of name -> process, got {raw!r}",
            "python",
        )
        return ()
    found = [_process(r, name, spec, celery_app, default_memory_mb) for name, spec in value.items()]
    return tuple(p for p in found if p is not None)
