"""The one place that holds the fixed hardening every service gets, and the rules a spec must
meet. Renderers call `harden()` and apply the constants below, so every engine gets them.

Bar: CIS Docker Benchmark 1.6 sections 4 and 5 (see docs/design.md and HARDENING-NOTES).
"""

from __future__ import annotations

import dataclasses
import posixpath

import pulumi

from components.spec import ROLES, ServiceSpec

CAP_DROP = ("ALL",)
SECURITY_OPTS = ("no-new-privileges:true",)
LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": "10m", "max-file": "3"}  # rotation: at most 30 MB of logs per container
RESTART = "unless-stopped"  # containers (CIS 5.15 accepts it); Swarm: SWARM_RESTART
SWARM_RESTART = {"condition": "any", "delay": "5s", "window": "60s"}
# ulimit (CIS 5.19); below the common dockerd hard limit (20000 on ours) so containers start.
NOFILE = 16384
TMPFS_OPTIONS = "rw,noexec,nosuid,nodev,size=64m,mode=1777"

ROLE_LABEL = "djangostack.role"
# The role of a files holder: a container created only to receive a service's files as uploads
# into its files volume, never started (renderers._files).
HOLDER_ROLE = "files"
# The role of a one-off command's container (scripts/run.sh, automation/run.py): no resource of
# the program, so no spec role; it runs to completion and is removed.
RUN_ROLE = "run"
PROCESS_LABEL = "djangostack.process"  # a process type's name (config `processes`)
STACK_LABEL = "djangostack.stack"
PROJECT_LABEL = "djangostack.project"

# Capabilities a spec may add back after dropping ALL, each with the reason it is allowed. None
# of the services needs one today; the list stays explicit so an addition is a reviewed change
# with a reason. policy/rules.py enforces the same list.
ALLOWED_CAPABILITIES = {
    "NET_BIND_SERVICE": "binds a port below 1024 inside the container without running as root",
}

# Host paths a bind mount must never expose (CIS 5.6, 5.32).
FORBIDDEN_BIND_SOURCES = (
    "/",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/proc",
    "/sys",
    "/usr",
    "/var/run/docker.sock",
    "/run/docker.sock",
)


class HardeningError(ValueError):
    """A service spec breaks a hardening rule."""


def _is_root(user: str) -> bool:
    uid = user.split(":", 1)[0].strip()
    return uid in ("", "0", "root")


def check(spec: ServiceSpec, *, long_running: bool = True) -> list[str]:
    """Every rule `spec` breaks (empty when it is fine)."""
    problems = []
    if spec.role not in ROLES:
        problems.append(f"role {spec.role!r} is not one of {', '.join(ROLES)}")
    if _is_root(spec.user):
        problems.append(f"user {spec.user!r} is root; set a non-root uid:gid")
    if long_running and spec.health is None:
        problems.append("a long-running service needs a health check")
    if spec.limits.memory_mb <= 0 or spec.limits.cpus <= 0 or spec.limits.pids <= 0:
        problems.append(f"limits must all be positive: {spec.limits}")
    for cap in spec.capabilities:
        if cap.name not in ALLOWED_CAPABILITIES:
            problems.append(f"capability {cap.name} is not on the allow-list")
        if not cap.reason.strip():
            problems.append(f"capability {cap.name} has no reason")
    paths = [*spec.tmpfs, *(m.target for m in spec.mounts), *spec.uploads]
    problems += [f"path {p!r} must be absolute" for p in paths if not posixpath.isabs(p)]
    for mount in spec.mounts:
        if mount.type not in ("volume", "bind"):
            problems.append(f"mount type {mount.type!r} must be volume or bind")
        if mount.type == "bind" and not mount.read_only:
            problems.append(f"bind mount at {mount.target} must be read-only")
        if mount.type == "bind" and isinstance(mount.source, str):
            source = posixpath.normpath(mount.source)
            if source in FORBIDDEN_BIND_SOURCES:
                problems.append(f"bind mount of sensitive host path {source}")
    if spec.replicas < 1:
        problems.append("replicas must be at least 1")
    if spec.singleton and spec.replicas != 1:
        problems.append("a singleton has exactly one replica")
    if spec.stop_grace_seconds < 1:
        problems.append("stop grace period must be at least 1 second")
    return problems


def harden(spec: ServiceSpec, *, long_running: bool = True) -> ServiceSpec:
    """`spec` with the fixed labels added, or HardeningError listing every broken rule."""
    problems = check(spec, long_running=long_running)
    if problems:
        raise HardeningError(f"service {spec.name}: " + "; ".join(problems))
    labels = {
        **spec.labels,
        ROLE_LABEL: spec.role,
        STACK_LABEL: pulumi.get_stack(),
        PROJECT_LABEL: pulumi.get_project(),
    }
    return dataclasses.replace(spec, labels=labels)
