"""pulumi-docker `Service`: a Swarm service created and updated in place by the engine itself.

An update sends the whole new spec; Swarm then rolls the tasks out (and back) by its own
`updateConfig`/`rollbackConfig`. With `convergeConfig` set, the registration waits, as the
provider does, until the service has converged, and fails if Swarm rolled the update back.
"""

from __future__ import annotations

import time
from typing import Any

import docker.errors

from .kinds import Context, Kind
from .spec import Spec, UnsupportedInput, nanoseconds
from .state import Record

REMOVE_TIMEOUT_SECONDS = 120


class ServiceFailed(Exception):
    pass


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _mount(m: Spec) -> dict:
    bind, volume, tmpfs = m.obj("bindOptions"), m.obj("volumeOptions"), m.obj("tmpfsOptions")
    return {
        "Target": m.require("target"),
        "Source": m.get("source"),
        "Type": m.get("type", "volume"),
        "ReadOnly": m.get("readOnly", False),
        "BindOptions": {"Propagation": bind.get("propagation")} if bind else None,
        "VolumeOptions": {
            "NoCopy": volume.get("noCopy", False),
            "Labels": volume.labels(),
            "DriverConfig": {
                "Name": volume.get("driverName"),
                "Options": volume.get("driverOptions"),
            }
            if volume.get("driverName")
            else None,
        }
        if volume
        else None,
        "TmpfsOptions": {"SizeBytes": tmpfs.int("sizeBytes"), "Mode": tmpfs.int("mode")}
        if tmpfs
        else None,
    }


def _container_spec(c: Spec, labels: dict[str, str]) -> dict:
    health = c.obj("healthcheck")
    for unsupported in ("configs", "dnsConfig", "privileges", "isolation"):
        c.expect(unsupported)
    return {
        "Image": c.require("image"),
        "Command": c.get("commands"),
        "Args": c.get("args"),
        "Env": [f"{k}={v}" for k, v in sorted(c.get("env", {}).items())] or None,
        "Dir": c.get("dir"),
        "User": c.get("user"),
        "Groups": c.get("groups"),
        "Hostname": c.get("hostname"),
        "Hosts": [f"{h.require('ip')} {h.require('host')}" for h in c.objs("hosts")] or None,
        "Init": c.get("init"),
        "ReadOnly": c.get("readOnly", False),
        "CapabilityAdd": c.get("capAdds"),
        "CapabilityDrop": c.get("capDrops"),
        "Sysctls": c.get("sysctl"),
        "Labels": {**c.labels(), **labels},
        "Mounts": [_mount(m) for m in c.objs("mounts")] or None,
        "StopSignal": c.get("stopSignal"),
        "StopGracePeriod": nanoseconds(c.get("stopGracePeriod")),
        "HealthCheck": {
            "Test": health.require("tests"),
            "Interval": nanoseconds(health.get("interval", "0s")),
            "Timeout": nanoseconds(health.get("timeout", "0s")),
            "StartPeriod": nanoseconds(health.get("startPeriod", "0s")),
            "Retries": health.int("retries", 0),
        }
        if health
        else None,
        "Secrets": [
            {
                "SecretID": s.require("secretId"),
                "SecretName": s.get("secretName"),
                "File": {
                    "Name": s.require("fileName"),
                    "UID": s.get("fileUid", "0"),
                    "GID": s.get("fileGid", "0"),
                    "Mode": s.int("fileMode", 0o444),
                },
            }
            for s in c.objs("secrets")
        ]
        or None,
    }


def _rollout(r: Spec | None) -> dict | None:
    if r is None:
        return None
    return {
        "Parallelism": r.int("parallelism", 1),
        "Delay": nanoseconds(r.get("delay", "0s")),
        "FailureAction": r.get("failureAction", "pause"),
        "Monitor": nanoseconds(r.get("monitor", "5s")),
        "MaxFailureRatio": float(r.get("maxFailureRatio", "0.0")),
        "Order": r.get("order", "stop-first"),
    }


def _placement(p: Spec) -> dict:
    """Constraints, spread preferences (`spread=<descriptor>`) and the per-node task limit."""
    preferences = []
    for pref in p.get("prefs") or []:
        strategy, _, descriptor = pref.partition("=")
        if strategy != "spread" or not descriptor:
            raise UnsupportedInput(f"placement preference {pref!r}: only spread=<descriptor>")
        preferences.append({"Spread": {"SpreadDescriptor": descriptor}})
    return {
        "Constraints": p.get("constraints"),
        "Preferences": preferences or None,
        "MaxReplicas": p.int("maxReplicas", 0) or None,
    }


class Service(Kind):
    def in_place(self, old: Record, new_inputs: dict) -> bool:
        return True

    def prepare(self, spec: Spec) -> dict[str, Any]:
        spec.expect("auth")
        task = spec.require("taskSpec") and spec.obj("taskSpec")
        task.expect("runtime")
        placement = task.obj("placement")
        if placement:
            placement.expect("platforms")
        resources, restart, log = (
            task.obj("resources"),
            task.obj("restartPolicy"),
            task.obj("logDriver"),
        )
        limits = resources.obj("limits") if resources else None
        reservation = resources.obj("reservation") if resources else None
        if reservation:
            reservation.expect("genericResources")
        mode, endpoint, converge = (
            spec.obj("mode"),
            spec.obj("endpointSpec"),
            spec.obj("convergeConfig"),
        )
        replicated = mode.obj("replicated") if mode else None
        if mode:
            mode.expect("global", False)
        template = {
            "ContainerSpec": _container_spec(task.obj("containerSpec"), {}),
            "Resources": {
                "Limits": {
                    "MemoryBytes": limits.int("memoryBytes"),
                    "NanoCPUs": limits.int("nanoCpus"),
                }
                if limits
                else None,
                "Reservations": {
                    "MemoryBytes": reservation.int("memoryBytes"),
                    "NanoCPUs": reservation.int("nanoCpus"),
                }
                if reservation
                else None,
            },
            "RestartPolicy": {
                "Condition": restart.get("condition", "any"),
                "Delay": nanoseconds(restart.get("delay", "5s")),
                "MaxAttempts": restart.int("maxAttempts", 0),
                "Window": nanoseconds(restart.get("window", "0s")),
            }
            if restart
            else None,
            "Networks": [
                {
                    "Target": n.get("id") or n.require("name"),
                    "Aliases": n.get("aliases"),
                    "DriverOpts": n.get("driverOpts"),
                }
                for n in task.objs("networksAdvanceds")
            ]
            or None,
            "LogDriver": {"Name": log.require("name"), "Options": log.get("options")}
            if log
            else None,
            "ForceUpdate": task.int("forceUpdate", 0),
            "Placement": _placement(placement) if placement else None,
        }
        return {
            "name": spec.auto_name(),
            "labels": spec.labels(),
            "template": template,
            "replicas": replicated.int("replicas", 1) if replicated else 1,
            "update": _rollout(spec.obj("updateConfig")),
            "rollback": _rollout(spec.obj("rollbackConfig")),
            "endpoint": {
                "Mode": endpoint.get("mode", "vip"),
                "Ports": [
                    {
                        "Name": p.get("name"),
                        "Protocol": p.get("protocol", "tcp"),
                        "TargetPort": p.int("targetPort"),
                        "PublishedPort": p.int("publishedPort"),
                        "PublishMode": p.get("publishMode", "ingress"),
                    }
                    for p in endpoint.objs("ports")
                ]
                or None,
            }
            if endpoint
            else None,
            "converge": {
                "delay": nanoseconds(converge.get("delay", "7s")) / 1e9,
                "timeout": nanoseconds(converge.get("timeout", "3m")) / 1e9,
            }
            if converge
            else None,
        }

    def _body(self, plan: dict[str, Any], ctx: Context) -> dict[str, Any]:
        template = dict(plan["template"])
        # Task containers carry the harness label too, so teardown finds them.
        template["ContainerSpec"] = {**template["ContainerSpec"]}
        template["ContainerSpec"]["Labels"] = {**template["ContainerSpec"]["Labels"], **ctx.labels}
        return _drop_none(
            {
                "task_template": template,
                "name": plan["name"],
                "labels": {**plan["labels"], **ctx.labels},
                "mode": {"Replicated": {"Replicas": plan["replicas"]}},
                "update_config": plan["update"],
                "rollback_config": plan["rollback"],
                "endpoint_spec": plan["endpoint"],
            }
        )

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        service_id = ctx.client.api.create_service(**self._body(plan, ctx))["ID"]
        if plan["converge"]:
            _converge(ctx, service_id, plan, updating=False)
        return service_id, {"name": plan["name"]}

    def update(self, old: Record, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        api = ctx.client.api
        version = api.inspect_service(old.id)["Version"]["Index"]
        api.update_service(old.id, version, fetch_current_spec=False, **self._body(plan, ctx))
        if plan["converge"]:
            _converge(ctx, old.id, plan, updating=True)
        return old.id, {"name": plan["name"]}

    def delete(self, record: Record, ctx: Context) -> None:
        remove_service(ctx.client, record.id)


def remove_service(client: docker.DockerClient, service_id: str) -> None:
    """Remove a service and wait until its task containers are gone (networks free up)."""
    try:
        client.api.remove_service(service_id)
    except docker.errors.NotFound:
        return
    deadline = time.monotonic() + REMOVE_TIMEOUT_SECONDS
    label = f"com.docker.swarm.service.id={service_id}"
    while client.containers.list(all=True, filters={"label": label}):
        if time.monotonic() > deadline:
            raise ServiceFailed(
                f"task containers of service {service_id} still exist after removal"
            )
        time.sleep(0.5)


def _converge(ctx: Context, service_id: str, plan: dict[str, Any], updating: bool) -> None:
    """Wait until every replica of the current spec runs (healthy, if it has a health check)."""
    api = ctx.client.api
    deadline = time.monotonic() + plan["converge"]["timeout"]
    poll = min(plan["converge"]["delay"], 1.0)
    while True:
        info = api.inspect_service(service_id)
        status = (info.get("UpdateStatus") or {}) if updating else {}
        state = status.get("State")
        if state in ("rollback_completed", "rollback_paused", "paused"):
            what = state.replace("_", " ")
            raise ServiceFailed(
                f"service {plan['name']}: update {what}: {status.get('Message', '')}\n"
                + _task_errors(ctx, service_id)
            )
        # Tasks of the current spec only: during a start-first rollout old ones still run.
        current = info["Spec"]["TaskTemplate"]
        running = [
            t
            for t in api.tasks({"service": service_id, "desired-state": "running"})
            if t["Status"]["State"] == "running"
            and all(
                t["Spec"].get(k) == current.get(k)
                for k in ("ContainerSpec", "Resources", "ForceUpdate")
            )
        ]
        settled = state in (None, "completed")
        if settled and len(running) >= plan["replicas"]:
            return
        if time.monotonic() > deadline:
            raise ServiceFailed(
                f"service {plan['name']} did not converge within "
                f"{plan['converge']['timeout']:.0f}s ({len(running)}/{plan['replicas']} running, "
                f"update state {state})\n" + _task_errors(ctx, service_id)
            )
        time.sleep(poll)


def _task_errors(ctx: Context, service_id: str) -> str:
    tasks = sorted(ctx.client.api.tasks({"service": service_id}), key=lambda t: t["UpdatedAt"])
    lines = []
    for task in tasks[-6:]:
        status = task["Status"]
        detail = status.get("Err") or status.get("Message")
        lines.append(f"task {task['ID'][:12]} {status['State']}: {detail}")
    return "\n".join(lines)
