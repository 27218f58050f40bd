"""Networks, volumes and Swarm secrets: named Docker objects replaced when their inputs change."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import docker.errors

from .kinds import Context, Kind
from .spec import Spec
from .state import Record


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
        with contextlib.suppress(docker.errors.NotFound):
            ctx.client.networks.get(record.id).remove()


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
