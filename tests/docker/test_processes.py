"""Process types deployed by the Pulumi engine (prod, Swarm): a project's own
`python manage.py <command>` runs as a process with the stack's settings and database; a
singleton is never two tasks at once, even while a release rolls it; only the process that
opts in to `egress` has a route out, the others stay on the internal backend alone."""

from __future__ import annotations

import errno
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from tests.support.checks import exec_python
from tests.support.prodstack import ROOT, ProdStack, prod_stack

TICK_COMMAND = ROOT / "tests" / "fixtures" / "commands" / "tick.py"
# Fails once the heartbeat file of `manage.py tick` is older than 20 s (or missing).
HEALTH = [
    "CMD",
    "python",
    "-c",
    "import os, sys, time; sys.exit(time.time() - os.path.getmtime('/tmp/tick') > 20)",
]
SERVICE_LABEL = "com.docker.swarm.service.name"
POLL_SECONDS = 0.2
LOG_TIMEOUT_SECONDS = 60


def processes(ticker_interval: str) -> dict[str, Any]:
    """`ticker`: a singleton without egress; `fetcher`: egress. Changing `ticker_interval`
    changes only the ticker's command, so a release rolls the singleton alone."""
    tick = ["python", "manage.py", "tick", "--interval"]
    return {
        "ticker": {
            "command": [*tick, ticker_interval],
            "health": HEALTH,
            "singleton": True,
            "memoryMb": 256,
        },
        "fetcher": {"command": [*tick, "5"], "health": HEALTH, "egress": True, "memoryMb": 256},
    }


def add_tick_command(app_dir: Path) -> None:
    """Install tests/fixtures/commands/tick.py as the project's `manage.py tick`."""
    commands = app_dir / "core" / "management" / "commands"
    commands.mkdir(parents=True)
    (commands.parent / "__init__.py").write_text("")
    (commands / "__init__.py").write_text("")
    shutil.copy(TICK_COMMAND, commands / "tick.py")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    overrides = {"processes": processes("2")}
    workdir = tmp_path_factory.mktemp("processes")
    with prod_stack(workdir, "procs", overrides=overrides, prepare=add_tick_command) as deployed:
        yield deployed


def task_container(stack: ProdStack, process: str) -> Container:
    """The one running task container of the process's Swarm service."""
    service = f"{stack.name}-{process}"
    (found,) = [c for c in stack.containers("process") if c.labels.get(SERVICE_LABEL) == service]
    return found


def default_gateway(container: Container) -> str | None:
    """The default route's gateway inside the container (/proc/net/route: destination and mask
    0, little-endian hex), or None when it has no default route."""
    code, output = container.exec_run(["cat", "/proc/net/route"])
    assert code == 0, output.decode()
    for line in output.decode().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000" and fields[7] == "00000000":
            return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return None


def connect_from(container: Container, host: str, port: int) -> str:
    """Open a TCP connection from inside the container: "connected" or the errno's name."""
    code, output = exec_python(
        container,
        "import errno, socket\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout=5).close(); print('connected')\n"
        "except OSError as x:\n"
        "    print(errno.errorcode.get(x.errno, repr(x)))\n",
    )
    assert code == 0, output
    return output.strip()


def test_custom_processes_run_the_projects_management_command(stack: ProdStack) -> None:
    assert stack.outputs["processNames"] == {
        "ticker": [f"{stack.name}-ticker"],
        "fetcher": [f"{stack.name}-fetcher"],
    }
    # Declaring `processes` replaces the default Celery worker.
    assert stack.outputs["celeryNames"] == []
    assert stack.containers("celery") == []
    for process in ("ticker", "fetcher"):
        container = task_container(stack, process)
        deadline = time.monotonic() + LOG_TIMEOUT_SECONDS
        while "db=postgresql" not in container.logs().decode():
            assert time.monotonic() < deadline, container.logs().decode()[-2000:]
            time.sleep(1)
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True


def test_only_the_egress_process_has_a_route_out(stack: ProdStack) -> None:
    fetcher, ticker = task_container(stack, "fetcher"), task_container(stack, "ticker")
    assert default_gateway(ticker) is None
    gateway = default_gateway(fetcher)
    assert gateway is not None
    # A listener on the host, reached through the egress route (the gateway is the host's
    # end of Swarm's gateway bridge); the accepted connection proves it arrived here.
    with socket.create_server(("0.0.0.0", 0)) as listener:  # noqa: S104 - the test's own port
        listener.settimeout(10)
        port = listener.getsockname()[1]
        assert connect_from(fetcher, gateway, port) == "connected"
        listener.accept()[0].close()
        assert connect_from(ticker, gateway, port) == errno.errorcode[errno.ENETUNREACH]


def test_a_restore_stops_and_restarts_every_process(stack: ProdStack) -> None:
    """scripts/restore.sh replaces the live database: no process may write meanwhile. It
    scales each process service to 0 (its task container goes) and back (a new one)."""
    before = {p: task_container(stack, p).id for p in ("ticker", "fetcher")}
    stack.script("restore.sh")
    for process, old_id in before.items():
        assert task_container(stack, process).id != old_id, f"{process} kept running"
        service = stack.client.services.get(f"{stack.name}-{process}")
        assert service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 1


@dataclass
class SingletonWatch:
    """What polling the singleton's service saw: the most tasks (or task containers) running
    at one instant, and every task id seen running."""

    most_running: int = 0
    task_ids: set[str] = field(default_factory=set)


def _watch(client: docker.DockerClient, service: str, stop: threading.Event) -> SingletonWatch:
    seen = SingletonWatch()

    def poll() -> None:
        while not stop.is_set():
            tasks = client.api.tasks(filters={"service": service})
            running = [t["ID"] for t in tasks if t["Status"]["State"] == "running"]
            containers = client.containers.list(filters={"label": f"{SERVICE_LABEL}={service}"})
            seen.most_running = max(seen.most_running, len(running), len(containers))
            seen.task_ids.update(running)
            time.sleep(POLL_SECONDS)

    threading.Thread(target=poll, daemon=True).start()
    return seen


def test_a_release_never_runs_two_singleton_tasks_at_once(stack: ProdStack) -> None:
    service = f"{stack.name}-ticker"
    before = task_container(stack, "ticker")
    stop = threading.Event()
    seen = _watch(stack.client, service, stop)
    try:
        release = stack.up(processes=processes("3"))
    finally:
        stop.set()
    assert release.op("docker:index/service:Service", "djangostack-ticker") == "update"
    after = task_container(stack, "ticker")
    assert after.id != before.id
    assert after.attrs["Args"][-2:] == ["--interval", "3"]
    assert len(seen.task_ids) >= 2, "the poll did not span the rollout"
    assert seen.most_running == 1
