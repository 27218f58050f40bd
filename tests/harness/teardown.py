"""Remove every Docker object carrying a realization's harness label, whatever state says."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import docker
import docker.errors

from .kinds import LABEL
from .objects import remove_network
from .services import remove_service


def teardown(realization: str, client: docker.DockerClient | None = None) -> None:
    """Services first (their tasks hold networks and secrets), then containers, networks,
    volumes and secrets. Safe after a failed run and when nothing exists."""
    client = client or docker.from_env(timeout=300)
    selector = {"label": f"{LABEL}={realization}"}
    for service in client.services.list(filters=selector):
        remove_service(client, service.id)
    for container in client.containers.list(all=True, filters=selector):
        _ignore_missing(lambda c=container: c.remove(force=True, v=True))
    for network in client.networks.list(filters=selector):
        remove_network(client, network.id)
    for volume in client.volumes.list(filters=selector):
        _ignore_missing(lambda v=volume: v.remove(force=True))
    for secret in client.secrets.list(filters=selector):
        _ignore_missing(secret.remove)


def leftovers(realization: str, client: docker.DockerClient | None = None) -> list[str]:
    """Names of the labelled objects that still exist (empty after a clean teardown)."""
    client = client or docker.from_env()
    selector = {"label": f"{LABEL}={realization}"}
    found = [f"service {s.name}" for s in client.services.list(filters=selector)]
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=selector)]
    found += [f"network {n.name}" for n in client.networks.list(filters=selector)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=selector)]
    found += [f"secret {s.name}" for s in client.secrets.list(filters=selector)]
    return found


def _ignore_missing(remove: Callable[[], object]) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        remove()
