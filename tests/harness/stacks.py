"""A stack of the real program realized once for a test module, and always torn down."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from tests.docker.stack_config import SECRET_KEYS, config_for
from tests.program import ROOT

from .kinds import LABEL
from .realize import Realization, destroy, realize
from .teardown import leftovers, teardown


@dataclass
class LiveStack:
    name: str  # realization name, label value and name prefix
    stack: str  # dev or prod
    app_dir: Path  # a private copy of app/ that tests may edit
    state_dir: Path
    config: dict[str, Any]
    first: Realization | None = None  # the module's realization from nothing

    def realize(self) -> Realization:
        return realize(self.name, self.stack, self.config, SECRET_KEYS, self.state_dir)

    def destroy(self) -> dict[tuple[str, str], str]:
        return destroy(self.name, self.state_dir)

    def containers(self, client: docker.DockerClient) -> list:
        """Every container of the stack (plain ones and Swarm tasks), running or not."""
        return client.containers.list(all=True, filters={"label": f"{LABEL}={self.name}"})


@contextmanager
def live_stack(stack: str, workdir: Path) -> Iterator[LiveStack]:
    """Config and an editable app/ copy for `stack`; removes everything labelled on exit."""
    name = f"e2e-{stack}-{uuid.uuid4().hex[:6]}"
    app_dir = workdir / "app"
    shutil.copytree(ROOT / "app", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    live = LiveStack(name, stack, app_dir, workdir / "state", config_for(stack, name, app_dir))
    try:
        yield live
    finally:
        teardown(name)


def assert_hardened_and_healthy(live: LiveStack, client: docker.DockerClient, minimum: int) -> None:
    """Every running container of the stack: read-only root, non-root user, all capabilities
    dropped and none added, healthy, as `docker inspect` reports them."""
    running = [c for c in live.containers(client) if c.status == "running"]
    assert len(running) >= minimum, [c.name for c in running]
    for container in running:
        host, user = container.attrs["HostConfig"], container.attrs["Config"]["User"]
        assert host["ReadonlyRootfs"] is True, container.name
        assert user not in ("", "0", "root") and not user.startswith(("0:", "root:")), (
            container.name
        )
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], container.name
        assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name


def assert_unchanged_realization_touches_nothing(
    live: LiveStack, client: docker.DockerClient
) -> None:
    before = {c.id for c in live.containers(client)}
    again = live.realize()
    assert set(again.events.values()) == {"unchanged"}, again.events
    assert {c.id for c in live.containers(client)} == before


def assert_destroy_leaves_nothing(live: LiveStack) -> None:
    events = live.destroy()
    assert events and set(events.values()) == {"deleted"}, events
    assert leftovers(live.name) == []
