"""Redis: broker and result backend for Celery, cache; append-only persistence on a volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import renderers
from components.config import StackConfig
from components.networks import Networks
from components.spec import TMP, HealthCheck, Limits, Mount, ServiceSpec

HOST = "redis"
PORT = 6379
URL = f"redis://{HOST}:{PORT}/0"  # broker, result backend and cache of every app container
USER = "999:999"  # always set: started as root without setuid it would stay root


@dataclass(frozen=True)
class RedisArgs:
    cfg: StackConfig
    backend_network: docker.Network


class Redis(pulumi.ComponentResource):
    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Redis", name, None, opts)
        cfg = args.cfg
        self.volume = renderers.stack_volume(
            f"{name}-data",
            f"{cfg.name_prefix}-redisdata",
            cfg.stack,
            pulumi.ResourceOptions(parent=self),
            protect=cfg.is_prod,
        )
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-redis",
            role="redis",
            image=cfg.redis_image,
            user=USER,
            limits=Limits(memory_mb=cfg.memory_mb["redis"], cpus=0.5, pids=128),
            health=HealthCheck(test=("CMD-SHELL", "redis-cli ping | grep -q PONG"), interval="5s"),
            # Protected mode would refuse every non-loopback client when no password is set;
            # Redis is reachable only on the internal backend network.
            command=(
                "redis-server",
                "--appendonly",
                "yes",
                "--dir",
                "/data",
                "--protected-mode",
                "no",
            ),
            tmpfs=(TMP,),
            mounts=(Mount("/data", self.volume.name),),
            networks=(Networks.attach(args.backend_network, HOST),),
            stop_grace_seconds=30,  # SIGTERM: Redis flushes the append-only file, then exits
        )
        self.container = renderers.render_container(
            f"{name}-container", spec, pulumi.ResourceOptions(parent=self)
        )
        self.host = HOST
        self.url = URL
        self.register_outputs({"host": HOST, "url": self.url, "volume": self.volume.name})
