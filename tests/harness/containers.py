"""pulumi-docker `Container`: created, wired, started (and waited for) like the provider does."""

from __future__ import annotations

import base64
import io
import tarfile
import time
from typing import Any

import docker.errors
from docker.types import LogConfig, Mount, Ulimit

from .kinds import Context, Kind
from .spec import Spec, nanoseconds
from .state import Record

MIB = 1024 * 1024
RUNNING_TIMEOUT_SECONDS = 15  # how long `mustRun` gives a started container to be running


class ContainerFailed(Exception):
    pass


def _mount(m: Spec) -> Mount:
    bind, volume, tmpfs = m.obj("bindOptions"), m.obj("volumeOptions"), m.obj("tmpfsOptions")
    driver = None
    if volume and volume.get("driverName"):
        driver = docker.types.DriverConfig(volume.get("driverName"), volume.get("driverOptions"))
    if volume:
        volume.expect("subpath")
    return Mount(
        target=m.require("target"),
        source=m.get("source"),
        type=m.get("type", "volume"),
        read_only=m.get("readOnly", False),
        propagation=bind.get("propagation") if bind else None,
        no_copy=volume.get("noCopy", False) if volume else False,
        labels=volume.labels() if volume else None,
        driver_config=driver,
        tmpfs_size=tmpfs.int("sizeBytes") if tmpfs else None,
        tmpfs_mode=tmpfs.int("mode") if tmpfs else None,
    )


def _upload_tar(uploads: list[Spec]) -> bytes | None:
    if not uploads:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for up in uploads:
            up.expect("source")
            up.expect("sourceHash")
            if up.get("contentBase64") is not None:
                data = base64.b64decode(up.get("contentBase64"))
            else:
                data = up.require("content").encode()
            info = tarfile.TarInfo(up.require("file").lstrip("/"))
            info.size = len(data)
            info.mtime = int(time.time())
            permissions = up.get("permissions")
            info.mode = (
                int(permissions, 8) if permissions else 0o744 if up.get("executable") else 0o644
            )
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _healthcheck(h: Spec | None) -> dict | None:
    if h is None:
        return None
    h.expect("startInterval")  # needs Engine API 1.44; this engine speaks 1.41
    return {
        "test": h.require("tests"),
        "interval": nanoseconds(h.get("interval", "0s")),
        "timeout": nanoseconds(h.get("timeout", "0s")),
        "start_period": nanoseconds(h.get("startPeriod", "0s")),
        "retries": h.int("retries", 0),
    }


class Container(Kind):
    """Replaced on any change, the old one deleted first (the provider forces
    delete-before-replace for containers)."""

    def prepare(self, spec: Spec) -> dict[str, Any]:
        for off in ("privileged", "publishAllPorts", "attach", "logs", "tty", "stdinOpen"):
            spec.expect(off, False)
        spec.get("containerReadRefreshTimeoutMilliseconds")  # provider polling detail
        caps = spec.obj("capabilities")
        networks = spec.objs("networksAdvanced")
        for net in networks:
            for unsupported in (
                "driverOpts",
                "ipv4Address",
                "ipv6Address",
                "linkLocalIps",
                "macAddress",
                "gwPriority",
            ):
                net.expect(unsupported)
        ports = spec.objs("ports")
        binds = []
        for vol in spec.objs("volumes"):
            vol.expect("fromContainer")
            vol.expect("selinuxRelabel")
            source = vol.get("hostPath") or vol.require("volumeName")
            mode = "ro" if vol.get("readOnly", False) else "rw"
            binds.append(f"{source}:{vol.require('containerPath')}:{mode}")
        restart = spec.get("restart", "no")
        cpus = spec.get("cpus")
        host_config = {
            "binds": binds or None,
            "mounts": [_mount(m) for m in spec.objs("mounts")] or None,
            "tmpfs": spec.get("tmpfs"),
            "read_only": spec.get("readOnly", False),
            "cap_add": caps.get("adds") if caps else None,
            "cap_drop": caps.get("drops") if caps else None,
            "security_opt": spec.get("securityOpts"),
            "restart_policy": {
                "Name": "" if restart == "no" else restart,
                "MaximumRetryCount": spec.int("maxRetryCount", 0) if restart == "on-failure" else 0,
            },
            "mem_limit": spec.int("memory", 0) * MIB or None,
            "memswap_limit": spec.int("memorySwap", 0) * MIB or None,
            "mem_reservation": spec.int("memoryReservation", 0) * MIB or None,
            "shm_size": spec.int("shmSize", 0) * MIB or None,
            "cpu_shares": spec.int("cpuShares"),
            "nano_cpus": int(float(cpus) * 1e9) if cpus else None,
            "port_bindings": {
                f"{p.int('internal')}/{p.get('protocol', 'tcp')}": (
                    p.get("ip", "0.0.0.0"),  # noqa: S104 (the provider's default)
                    p.int("external"),
                )
                for p in ports
            }
            or None,
            "ulimits": [
                Ulimit(name=u.require("name"), soft=u.int("soft"), hard=u.int("hard"))
                for u in spec.objs("ulimits")
            ]
            or None,
            "log_config": LogConfig(
                type=spec.get("logDriver", "json-file"), config=spec.get("logOpts", {})
            ),
            "init": spec.get("init"),
            "auto_remove": spec.get("rm", False),
            "network_mode": spec.get("networkMode")
            or (networks[0].require("name") if networks else None),
            "ipc_mode": spec.get("ipcMode"),
            "pid_mode": spec.get("pidMode"),
            "userns_mode": spec.get("usernsMode"),
            "sysctls": spec.get("sysctls"),
            "dns": spec.get("dns"),
            "dns_opt": spec.get("dnsOpts"),
            "dns_search": spec.get("dnsSearches"),
            "group_add": spec.get("groupAdds"),
            "extra_hosts": {h.require("host"): h.require("ip") for h in spec.objs("hosts")} or None,
        }
        create = {
            "image": spec.require("image"),
            "name": spec.auto_name(),
            "command": spec.get("command"),
            "entrypoint": spec.get("entrypoints"),
            "environment": spec.get("envs"),
            "labels": spec.labels(),
            "hostname": spec.get("hostname"),
            "domainname": spec.get("domainname"),
            "user": spec.get("user"),
            "working_dir": spec.get("workingDir"),
            "healthcheck": _healthcheck(spec.obj("healthcheck")),
            "stop_signal": spec.get("stopSignal"),
            "stop_timeout": spec.int("stopTimeout"),
            "ports": [(p.int("internal"), p.get("protocol", "tcp")) for p in ports] or None,
        }
        return {
            "create": create,
            "host_config": host_config,
            "networks": [(n.require("name"), n.get("aliases")) for n in networks],
            "uploads": _upload_tar(spec.objs("uploads")),
            "start": spec.get("start", True),
            "must_run": spec.get("mustRun", True),
            "wait": spec.get("wait", False),
            "wait_timeout": spec.int("waitTimeout", 60),
            "grace": spec.int("destroyGraceSeconds"),
            "remove_volumes": spec.get("removeVolumes", True),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        api = ctx.client.api
        create = dict(plan["create"])
        create["labels"] = {**create["labels"], **ctx.labels}
        try:
            ctx.client.images.get(create["image"])
        except docker.errors.ImageNotFound as err:
            raise ContainerFailed(
                f"image {create['image']!r} is not in the local engine and no registry is reachable"
            ) from err
        networking = None
        if plan["networks"]:
            first, aliases = plan["networks"][0]
            networking = api.create_networking_config(
                {first: api.create_endpoint_config(aliases=aliases)}
            )
        host_config = api.create_host_config(**plan["host_config"])
        container_id = api.create_container(
            host_config=host_config, networking_config=networking, **create
        )["Id"]
        try:
            for name, aliases in plan["networks"][1:]:
                api.connect_container_to_network(container_id, name, aliases=aliases)
            if plan["uploads"]:
                # Like the provider: extracted at "/" before start, so Docker refuses it on a
                # read-only root filesystem ("container rootfs is marked read-only").
                api.put_archive(container_id, "/", plan["uploads"])
            if plan["start"]:
                api.start(container_id)
                _wait_started(ctx, container_id, plan)
        except Exception:
            _remove(ctx, container_id, grace=None, volumes=plan["remove_volumes"])
            raise
        info = api.inspect_container(container_id)
        networks = info["NetworkSettings"]["Networks"]
        return container_id, {
            "name": info["Name"].lstrip("/"),
            "networkDatas": [
                {
                    "networkName": n,
                    "ipAddress": d["IPAddress"],
                    "gateway": d["Gateway"],
                    "macAddress": d["MacAddress"],
                }
                for n, d in networks.items()
            ],
            "exitCode": info["State"]["ExitCode"] if not info["State"]["Running"] else None,
        }

    def delete(self, record: Record, ctx: Context) -> None:
        plan = self.prepare(Spec(record.inputs, f"container {record.name}", record.name))
        _remove(ctx, record.id, grace=plan["grace"], volumes=plan["remove_volumes"])


def _remove(ctx: Context, container_id: str, grace: int | None, volumes: bool) -> None:
    api = ctx.client.api
    try:
        if grace is not None:
            api.stop(container_id, timeout=grace)
        api.remove_container(container_id, force=True, v=volumes)
    except docker.errors.NotFound:
        pass


def _wait_started(ctx: Context, container_id: str, plan: dict[str, Any]) -> None:
    """`wait`: healthy within `waitTimeout`; else `mustRun`: still running shortly after start."""
    api = ctx.client.api
    timeout = plan["wait_timeout"] if plan["wait"] else RUNNING_TIMEOUT_SECONDS
    if not plan["wait"] and not plan["must_run"]:
        return
    deadline = time.monotonic() + timeout
    while True:
        state = api.inspect_container(container_id)["State"]
        health = (state.get("Health") or {}).get("Status")
        if not state["Running"]:
            raise ContainerFailed(
                _failure(ctx, container_id, f"exited with code {state['ExitCode']}")
            )
        if not plan["wait"] or health in (None, "healthy"):
            return
        if health == "unhealthy":
            raise ContainerFailed(_failure(ctx, container_id, "turned unhealthy"))
        if time.monotonic() > deadline:
            raise ContainerFailed(_failure(ctx, container_id, f"not healthy within {timeout}s"))
        time.sleep(0.5)


def _failure(ctx: Context, container_id: str, what: str) -> str:
    """A message with the container's last log lines and health probe output."""
    api = ctx.client.api
    info = api.inspect_container(container_id)
    logs = api.logs(container_id, tail=40).decode(errors="replace")
    probes = (info["State"].get("Health") or {}).get("Log") or []
    health = "\n".join(f"exit {p['ExitCode']}: {p['Output'].strip()}" for p in probes[-3:])
    name = info["Name"].lstrip("/")
    return f"container {name} {what}\n--- logs ---\n{logs}\n--- health ---\n{health}"
