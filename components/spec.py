"""A neutral description of one service, independent of the engine that runs it.

Components describe each service once as a `ServiceSpec`; `hardening.harden` adds the fixed
hardening and checks the rules; a renderer (`renderers.render_container`,
`renderers.render_service`, `renderers.run_once`) turns it into engine resources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

# "celery": the default Celery worker process (its role label predates `processes`);
# "process": every other process type of config `processes`; "backup": the scheduled backup.
ROLES = (
    "web",
    "celery",
    "process",
    "postgres",
    "redis",
    "nginx",
    "prometheus",
    "acme",
    "job",
    "backup",
)
TMP = "/tmp"  # noqa: S108 - a tmpfs inside the container, not a host temporary file
DURATION_RE = re.compile(r"^(?:\d+h)?(?:\d+m)?(?:\d+s)?$")


def duration_seconds(value: str) -> int | None:
    """The seconds of a duration in whole h/m/s units ("3s", "1m30s", "24h"), else None."""
    if not value or not DURATION_RE.match(value):
        return None
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", value))


def whole_seconds(duration: str) -> int:
    """duration_seconds of a duration the program itself wrote; a bad one is a bug."""
    value = duration_seconds(duration)
    if value is None:
        raise ValueError(f"duration {duration!r} must be whole h/m/s units, like 90s or 2m")
    return value


@dataclass(frozen=True)
class Mount:
    target: str
    source: pulumi.Input[str]  # volume name, or host path for a bind mount
    type: str = "volume"  # "volume" | "bind"
    read_only: bool = False


@dataclass(frozen=True)
class Upload:
    """A file the service reads (config, certificate); `secret` files never reach an env var
    or a log. All uploads of one service live in one directory."""

    content: pulumi.Input[str]
    secret: bool = False


@dataclass(frozen=True)
class NetworkAttachment:
    name: pulumi.Input[str]
    id: pulumi.Input[str]  # Swarm services attach by id (by name the provider sees drift)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Port:
    internal: int
    external: int
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]  # ("CMD", ...) or ("CMD-SHELL", "...")
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 3
    start_period: str = "30s"

    def seconds_to_unhealthy(self) -> int:
        """How long Docker can take to call a task that never answers unhealthy: failures in
        the start period do not count, then `retries` probes of up to interval + timeout
        each, plus the probe under way."""
        probe = whole_seconds(self.interval) + whole_seconds(self.timeout)
        return whole_seconds(self.start_period) + (self.retries + 1) * probe


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpus: float = 1.0
    pids: int = 256


@dataclass(frozen=True)
class Capability:
    """A capability added back after `cap_drop ALL`, with the reason it is needed."""

    name: str
    reason: str


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials Swarm hands to every node that pulls a service's image from `server`."""

    server: str
    username: str
    password: pulumi.Input[str]


@dataclass(frozen=True)
class Placement:
    """Where Swarm may run a service's tasks (multi-node Swarms, docs/multinode.md). Plain
    containers have no placement: they run on the engine the provider talks to."""

    constraints: tuple[str, ...] = ()  # Swarm constraint expressions, e.g. node.labels.app==true
    max_replicas_per_node: int = 0  # 0: no limit


@dataclass(frozen=True)
class Rollout:
    """How Swarm replaces a service's tasks on a release (docs/operations.md, "Release
    speed"): `parallelism` tasks at a time, `delay` between batches (at least nginx's DNS
    cache, so it always knows a live task), each new task watched for `monitor` after it
    starts; a failure in that window rolls the service back."""

    parallelism: int = 1
    delay: str = "2s"
    monitor: str = "10s"


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # Docker object name (unique per stack)
    role: str  # one of ROLES; becomes the djangostack.role label
    image: pulumi.Input[str]
    user: str  # uid:gid, never root
    limits: Limits
    health: HealthCheck | None = None  # required for long-running services
    command: tuple[str, ...] = ()  # empty: the image's CMD
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The one place a service declares a secret. Never an env value: each KEY becomes the file
    # renderers.secret_file(KEY) (/run/secrets/KEY) and the container gets KEY_FILE=<path>.
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tmpfs: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    uploads: Mapping[str, Upload] = field(default_factory=dict)  # absolute path -> file
    networks: tuple[NetworkAttachment, ...] = ()
    ports: tuple[Port, ...] = ()
    stop_signal: str = "SIGTERM"
    stop_grace_seconds: int = 10
    capabilities: tuple[Capability, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    placement: Placement | None = None  # Swarm services only; None: Swarm's default spread
    # Never two tasks at once, even during a rollout (Swarm: stop-first updates and rollbacks).
    singleton: bool = False
    rollout: Rollout = field(default_factory=Rollout)  # Swarm services only
