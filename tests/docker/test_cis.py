"""CIS Docker Benchmark 1.6, sections 4 and 5, read from `docker inspect` of every
long-running container of a prod stack deployed by the Pulumi engine: the plain containers
(Postgres, Redis, nginx) and the containers of the web and Celery Swarm tasks. 4.6
(HEALTHCHECK in the image) is also checked on every image target the program builds (runtime
for prod, development for dev), each run alone from its own HEALTHCHECK until Docker reports
it healthy.

Where the kernel view is the real proof (no-new-privileges, seccomp, the user), the test also
reads /proc/1/status inside the container. Gaps the engine imposes on Swarm tasks (no
per-service pids limit or ulimits in pulumi-docker 5.2; restarts done by Swarm, not by the
container's policy) are asserted as the documented gap, so closing one fails here and points
at the documentation to update. CIS 5.29 (a pids limit) is not checked: neither pulumi-docker's
`Container` nor its Swarm `Service` has a pids-limit argument (docs, "Hardening gaps"). nginx
publishing 80/443 is the one documented exception (5.8); in tests its host ports are free
ports on 127.0.0.1.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import docker
import pytest
from docker.models.containers import Container
from docker.models.images import Image

from components.hardening import STACK_LABEL
from tests.support.prodstack import CONTAINER_ROLES, ROOT, SERVICE_ROLES, ProdStack, prod_stack

SENSITIVE_MOUNTS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
GAPS_DOC = ROOT / "docs" / "config.md"
BuildImage = Callable[..., str]  # conftest's build_image fixture


@dataclass
class Target:
    role: str
    container: Container
    service_spec: dict | None  # the Swarm service's spec for task containers

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def host(self) -> dict:
        return self.container.attrs["HostConfig"]

    @property
    def is_task(self) -> bool:
        return self.service_spec is not None

    @cached_property
    def proc_status(self) -> dict[str, str]:
        """/proc/1/status of the container's main process, as the kernel sees it."""
        code, out = self.container.exec_run(["cat", "/proc/1/status"])
        assert code == 0, out
        pairs = (line.split(":", 1) for line in out.decode().splitlines() if ":" in line)
        return {key: value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    with prod_stack(tmp_path_factory.mktemp("cis"), "cis") as deployed:
        yield deployed


@pytest.fixture(scope="module")
def targets(stack: ProdStack) -> list[Target]:
    found = []
    for role in CONTAINER_ROLES:
        found.append(Target(role, stack.container(role), None))
    for role in SERVICE_ROLES:
        spec = stack.service(role).attrs["Spec"]
        tasks = stack.containers(role)
        assert len(tasks) == spec["Mode"]["Replicated"]["Replicas"], role
        found += [Target(role, task, spec) for task in tasks]
    return found


def test_every_long_running_container_is_covered(stack: ProdStack, targets: list[Target]) -> None:
    running = stack.client.containers.list(filters={"label": f"{STACK_LABEL}={stack.name}"})
    assert {c.id for c in running} == {t.container.id for t in targets}
    assert {t.role for t in targets} == {*CONTAINER_ROLES, *SERVICE_ROLES}


def _user(t: Target) -> str | None:  # 4.1
    uid = t.container.attrs["Config"]["User"].split(":")[0]
    kernel_uid = t.proc_status["Uid"].split()[0]
    if uid in ("", "0", "root") or kernel_uid == "0":
        return f"runs as {t.container.attrs['Config']['User']!r} (kernel uid {kernel_uid})"
    return None


def _healthcheck(t: Target) -> str | None:  # 4.6 and 5.27
    test = (t.container.attrs["Config"].get("Healthcheck") or {}).get("Test") or []
    status = (t.container.attrs["State"].get("Health") or {}).get("Status")
    if not test or test == ["NONE"] or status != "healthy":
        return f"health check {test!r}, state {status!r}"
    return None


def _no_new_privileges(t: Target) -> str | None:  # 5.3 and 5.26
    if t.proc_status["NoNewPrivs"] != "1":
        return "NoNewPrivs is not set on the main process"
    # Swarm tasks get it daemon-wide (/etc/docker/daemon.json); containers also per container.
    if not t.is_task and "no-new-privileges" not in " ".join(t.host["SecurityOpt"] or []):
        return f"SecurityOpt {t.host['SecurityOpt']!r}"
    return None


def _capabilities(t: Target) -> str | None:  # 5.4
    if t.host["CapAdd"] or t.host["CapDrop"] != ["ALL"]:
        return f"CapAdd {t.host['CapAdd']!r}, CapDrop {t.host['CapDrop']!r}"
    if int(t.proc_status["CapEff"], 16) != 0:
        return f"effective capabilities {t.proc_status['CapEff']}"
    return None


def _not_privileged(t: Target) -> str | None:  # 5.5
    return "privileged" if t.host["Privileged"] else None


def _mounts(t: Target) -> str | None:  # 5.6, 5.20 and 5.32
    for mount in t.container.attrs["Mounts"]:
        source = mount.get("Source", "")
        if mount["Type"] == "bind" and (source in SENSITIVE_MOUNTS or source in DOCKER_SOCKETS):
            return f"bind mount of {source}"
        if mount.get("Propagation") in ("shared", "rshared"):
            return f"{mount['Destination']} has {mount['Propagation']} propagation"
    return None


def _ports(t: Target, stack: ProdStack) -> str | None:  # 5.8, 5.9 and 5.14
    bindings = t.host["PortBindings"] or {}
    if t.role != "nginx":
        return f"publishes {bindings}" if bindings else None
    # The documented exception: nginx's HTTP and HTTPS, bound to the configured address.
    expected = {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.config["httpPort"])}],
        "8443/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.config["httpsPort"])}],
    }
    return None if bindings == expected else f"publishes {bindings}"


def _namespaces(t: Target) -> str | None:  # 5.10, 5.16, 5.17, 5.21 and 5.31
    modes = {k: t.host.get(k) for k in ("NetworkMode", "PidMode", "IpcMode", "UTSMode")}
    modes["UsernsMode"] = t.host.get("UsernsMode")
    shared = [k for k, v in modes.items() if v == "host"]
    return f"host namespaces: {shared}" if shared else None


def _limits(t: Target) -> str | None:  # 5.11 and 5.12
    if not t.host["Memory"]:
        return "no memory limit"
    if not (t.host["NanoCpus"] or t.host["CpuShares"]):
        return "no CPU limit"
    return None


def _read_only(t: Target) -> str | None:  # 5.13
    return None if t.host["ReadonlyRootfs"] else "writable root filesystem"


def _restart(t: Target) -> str | None:  # 5.15
    policy = t.host["RestartPolicy"]
    if t.is_task:
        # Swarm, not the container, restarts a task: the container's own policy stays "no"
        # and the service's restart policy replaces a failed task.
        condition = t.service_spec["TaskTemplate"]["RestartPolicy"]["Condition"]
        if policy["Name"] not in ("", "no") or condition != "any":
            return f"container policy {policy}, service condition {condition!r}"
        return None
    if policy["Name"] == "unless-stopped":
        return None
    if policy["Name"] == "on-failure" and 0 < policy["MaximumRetryCount"] <= 5:
        return None
    return f"restart policy {policy}"


def _seccomp(t: Target) -> str | None:  # 5.22
    if any("unconfined" in opt for opt in t.host["SecurityOpt"] or []):
        return f"SecurityOpt {t.host['SecurityOpt']!r}"
    if t.proc_status["Seccomp"] != "2":  # 2: filtered by the default profile
        return f"seccomp mode {t.proc_status['Seccomp']}"
    return None


def _default_bridge(t: Target) -> str | None:  # 5.30
    networks = t.container.attrs["NetworkSettings"]["Networks"]
    return "on the default bridge" if "bridge" in networks else None


CHECKS: dict[str, Callable[..., str | None]] = {
    "4.1 non-root user": _user,
    "4.6/5.27 health check, healthy": _healthcheck,
    "5.3/5.26 no-new-privileges": _no_new_privileges,
    "5.4 no added capabilities": _capabilities,
    "5.5 not privileged": _not_privileged,
    "5.6/5.20/5.32 mounts": _mounts,
    "5.8/5.9/5.14 ports": _ports,
    "5.10/5.16/5.17/5.21/5.31 namespaces": _namespaces,
    "5.11/5.12 memory and CPU limits": _limits,
    "5.13 read-only root filesystem": _read_only,
    "5.15 restart policy": _restart,
    "5.22 seccomp": _seccomp,
    "5.30 not on docker0": _default_bridge,
}


@pytest.mark.parametrize("check", CHECKS)
def test_cis_check_holds_for_every_container(
    check: str, targets: list[Target], stack: ProdStack
) -> None:
    function = CHECKS[check]
    violations = []
    for target in targets:
        args = (target, stack) if function is _ports else (target,)
        problem = function(*args)
        if problem:
            violations.append(f"{target.name}: {problem}")
    assert violations == [], f"CIS {check}"


def test_ulimits_on_containers(targets: list[Target]) -> None:  # 5.19
    # No pids limit (5.29) here: pulumi-docker's Container cannot set one.
    for target in (t for t in targets if not t.is_task):
        assert target.host["Ulimits"], target.name


def test_ulimits_and_pids_limit_gap_of_swarm_tasks_is_the_documented_one(
    targets: list[Target],
) -> None:
    """pulumi-docker 5.2's Service has no pids limit or ulimits: tasks run with the daemon's
    defaults (the engine has no daemon-wide pids limit). Setting them beside Pulumi is not sound
    (docs/config.md: `docker service update --limit-pids` rolls the tasks a second time per
    release and the provider's next update drops it). Asserted, not skipped: when a renderer
    closes the gap, this fails and the documentation (docs/config.md, docs/operations.md) must
    be updated with it; tests/unit/test_swarm_pids_gap.py fails first, when the SDK gains the
    fields."""
    tasks = [t for t in targets if t.is_task]
    assert tasks
    for task in tasks:
        assert not task.host["PidsLimit"], task.name
        assert not task.host["Ulimits"], task.name
        # Swarm's own view: the service spec carries no pids limit or ulimits either.
        resources = task.service_spec["TaskTemplate"].get("Resources") or {}
        container_spec = task.service_spec["TaskTemplate"]["ContainerSpec"]
        assert "Pids" not in (resources.get("Limits") or {}), task.name
        assert not container_spec.get("Ulimits"), task.name
    gaps = GAPS_DOC.read_text()
    assert "pids limit and ulimits of web and Celery tasks are the daemon defaults" in gaps
    assert "docker service update --limit-pids" in gaps  # why not beside Pulumi


# --- 4.6 on every image target the program builds ----------------------------------------------

# components/image.py builds `runtime` for prod stacks and `development` for dev stacks.
IMAGE_TARGETS = ("runtime", "development")
HEALTH_TIMEOUT_SECONDS = 120  # start period 20 s + 3 retries at 10 s, with room on a busy host


@pytest.fixture(scope="module")
def target_images(
    runtime_image: Image, build_image: BuildImage, docker_client: docker.DockerClient
) -> dict[str, Image]:
    """Each target the program builds, from app/ (runtime: the session image)."""
    development = f"djangostack/web:cis-development-{secrets.token_hex(6)}"
    build_image(ROOT / "app", development, target="development")
    return {"runtime": runtime_image, "development": docker_client.images.get(development)}


@dataclass
class HealthDeps:
    """What /health/ checks, for an image run alone: Redis on a network of its own, and an
    in-memory SQLite database (the probe only runs `SELECT 1`)."""

    network: str
    environment: dict[str, str]


@pytest.fixture(scope="module")
def health_deps(docker_client: docker.DockerClient, labels: dict[str, str]) -> Iterator[HealthDeps]:
    network = docker_client.networks.create(f"cis-images-{secrets.token_hex(6)}", labels=labels)
    redis = docker_client.containers.run(
        "djangostack-testbed/redis:latest",
        detach=True,
        name=f"{network.name}-redis",
        network=network.name,
        user="999:999",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        labels=labels,
    )
    environment = {
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": "sqlite:///:memory:",
        "REDIS_URL": f"redis://{redis.name}:6379/0",
    }
    yield HealthDeps(network.name, environment)
    redis.remove(force=True)
    network.remove()


def _health_status(container: Container) -> str:
    """Docker's health status once it is settled (healthy, unhealthy, or the container gone)."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    status = None
    while time.monotonic() < deadline:
        container.reload()
        status = (container.attrs["State"].get("Health") or {}).get("Status")
        if status in ("healthy", "unhealthy") or container.status == "exited":
            return f"{status} ({container.status})"
        time.sleep(1)
    return f"{status} after {HEALTH_TIMEOUT_SECONDS} s"


@pytest.mark.parametrize("target", IMAGE_TARGETS)
def test_every_image_target_has_a_healthcheck_that_turns_healthy(  # 4.6
    target: str,
    target_images: dict[str, Image],
    health_deps: HealthDeps,
    docker_client: docker.DockerClient,
    labels: dict[str, str],
) -> None:
    """The image's own HEALTHCHECK (no override), the container run hardened with what the
    target's settings and /health/ need."""
    image = target_images[target]
    healthcheck = image.attrs["Config"].get("Healthcheck") or {}
    assert healthcheck.get("Test", ["NONE"]) != ["NONE"], f"{target}: no HEALTHCHECK"
    # One probe for every target: the same command as the runtime image's.
    assert healthcheck == target_images["runtime"].attrs["Config"]["Healthcheck"]
    container = docker_client.containers.run(
        image.id,
        detach=True,
        network=health_deps.network,
        environment=health_deps.environment,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        tmpfs={"/tmp": ""},
        labels=labels,
    )
    try:
        status = _health_status(container)
        assert status == "healthy (running)", f"{target}: {container.logs().decode()[-2000:]}"
    finally:
        container.remove(force=True)
