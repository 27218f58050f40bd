"""Networks, volumes and Swarm secrets: named Docker objects replaced when their inputs change."""

from __future__ import annotations

import base64
import contextlib
import time
from typing import Any

import docker
import docker.errors

from .kinds import Context, Kind
from .spec import Spec
from .state import Record

REMOVE_TIMEOUT_SECONDS = 60


class Network(Kind):
    def prepare(self, spec: Spec) -> dict[str, Any]:
        spec.expect("ingress", False)
        spec.expect("ipv6", False)
        spec.expect("ipamDriver", "default")
        return {
            "name": spec.auto_name(),
            "driver": spec.get("driver", "bridge"),
            "internal": spec.get("internal", False),
            "attachable": spec.get("attachable", False),
            "options": spec.get("options", {}),
            "labels": spec.labels(),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        plan["labels"] = {**plan["labels"], **ctx.labels}
        network = ctx.client.networks.create(check_duplicate=True, **plan)
        network.reload()
        return network.id, {
            "name": plan["name"],
            "driver": network.attrs["Driver"],
            "scope": network.attrs["Scope"],
        }

    def delete(self, record: Record, ctx: Context) -> None:
        remove_network(ctx.client, record.id)


def remove_network(client: docker.DockerClient, network_id: str) -> None:
    """Remove a network and wait until the engine no longer lists it (Swarm removes
    overlay networks asynchronously)."""
    deadline = time.monotonic() + REMOVE_TIMEOUT_SECONDS
    while True:
        try:
            client.api.remove_network(network_id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            if "not found" in str(err):
                return
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


class Volume(Kind):
    def prepare(self, spec: Spec) -> dict[str, Any]:
        spec.expect("cluster", None)
        return {
            "name": spec.auto_name(),
            "driver": spec.get("driver", "local"),
            "driver_opts": spec.get("driverOpts", {}),
            "labels": spec.labels(),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        plan["labels"] = {**plan["labels"], **ctx.labels}
        volume = ctx.client.volumes.create(**plan)
        return volume.name, {
            "name": volume.name,
            "driver": volume.attrs["Driver"],
            "mountpoint": volume.attrs["Mountpoint"],
        }

    def delete(self, record: Record, ctx: Context) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            ctx.client.volumes.get(record.id).remove()


class Secret(Kind):
    """A Swarm secret; `data` is base64 on the wire, as in the provider's schema."""

    def prepare(self, spec: Spec) -> dict[str, Any]:
        return {
            "name": spec.auto_name(),
            "data": base64.b64decode(spec.require("data")),
            "labels": spec.labels(),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        plan["labels"] = {**plan["labels"], **ctx.labels}
        secret = ctx.client.secrets.create(**plan)
        return secret.id, {"name": plan["name"]}

    def delete(self, record: Record, ctx: Context) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            ctx.client.secrets.get(record.id).remove()
