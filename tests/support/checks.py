"""Checks shared by the Docker layer's tests of deployed stacks: probes run inside containers,
hardening as `docker inspect` reports it, and what a second `up` and `destroy` must do."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import docker

from components.hardening import HOLDER_ROLE, ROLE_LABEL
from tests.support.engine import EngineStack, leftovers


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    every: float = 1.0,
    ignore: tuple[type[Exception], ...] = (),
) -> Any:
    """Poll `check` every `every` seconds until it returns something truthy, and return that;
    fail naming `what` after `timeout` seconds. `ignore`: errors that mean "not yet" (a
    server still starting refuses connections)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except ignore:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(every)


def docker_time(stamp: str) -> datetime.datetime:
    """A Docker timestamp (RFC 3339 in UTC, nanoseconds) to the microsecond."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}+00:00")


def exec_python(container: docker.models.containers.Container, code: str) -> tuple[int, str]:
    """Run `python -c code` inside a running container; (exit code, combined output)."""
    code_, output = container.exec_run(["python", "-c", code])
    return code_, output.decode(errors="replace")


def http_get_in(
    container: docker.models.containers.Container, url: str, headers: dict | None = None
) -> tuple[int, str]:
    """GET `url` from inside a container (over its own networks): (status or -1, body)."""
    request = f"u.Request({url!r}, headers={headers or {}!r})"
    code, output = exec_python(
        container,
        "import urllib.request as u, urllib.error as e\n"
        "try:\n"
        f"    r = u.urlopen({request}, timeout=5); print(r.status); print(r.read().decode())\n"
        "except e.HTTPError as x:\n"
        "    print(x.code)\n"
        "except Exception as x:\n"
        "    print(-1); print(repr(x))\n",
    )
    status, _, body = output.partition("\n")
    return int(status) if code == 0 and status.lstrip("-").isdigit() else -1, body


def assert_hardened_and_healthy(
    stack: EngineStack, client: docker.DockerClient, minimum: int
) -> None:
    """Every running container of the stack: read-only root, non-root user, all capabilities
    dropped and none added, healthy. The files holders exist but never ran."""
    containers = stack.all_containers(client)
    running = [c for c in containers if c.status == "running"]
    assert len(running) >= minimum, [c.name for c in running]
    for container in running:
        host, user = container.attrs["HostConfig"], container.attrs["Config"]["User"]
        assert host["ReadonlyRootfs"] is True, container.name
        assert user not in ("", "0", "root") and not user.startswith(("0:", "root:")), (
            container.name
        )
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], container.name
        assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name
    for holder in (c for c in containers if c.labels.get(ROLE_LABEL) == HOLDER_ROLE):
        assert holder.attrs["State"]["StartedAt"].startswith("0001-"), holder.name


def assert_second_up_changes_nothing(stack: EngineStack, client: docker.DockerClient) -> None:
    """An unchanged program: the engine reports no change, no container is touched, and a
    preview that expects no changes passes."""
    before = {c.id for c in stack.all_containers(client)}
    again = stack.up()
    assert again.changed == 0, again.changes
    assert {c.id for c in stack.all_containers(client)} == before
    stack.stack.preview(expect_no_changes=True)


def assert_destroy_keeps_data_then_removes_all(stack: EngineStack) -> None:
    """`destroy` removes everything but the protected data volumes (prod); the documented route
    (unprotect, destroy) removes those too, and nothing of the stack is left."""
    first = stack.destroy(include_data=False)
    assert first.changes.get("delete", 0) > 0, first.changes
    left = leftovers(stack.name)
    if stack.profile == "prod":
        assert left and all(item.startswith("volume ") for item in left), left
    stack.destroy(include_data=True)
    assert leftovers(stack.name) == []
