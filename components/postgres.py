"""Postgres: a hardened container with its data on a named volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import renderers
from components.config import StackConfig
from components.networks import Networks
from components.spec import TMP, HealthCheck, Limits, Mount, ServiceSpec

HOST = "postgres"  # alias on the backend network
PORT = 5432
USER = "999:999"  # the image's postgres user: its entrypoint then needs no capability
DATA_DIR = "/var/lib/postgresql/data"


@dataclass(frozen=True)
class PostgresArgs:
    cfg: StackConfig
    backend_network: docker.Network
    password: pulumi.Input[str]


class Postgres(pulumi.ComponentResource):
    """Postgres on the backend network only (alias `postgres`). The data volume is protected
    in prod: `pulumi destroy` refuses to delete it, and renaming it needs an alias."""

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Postgres", name, None, opts)
        cfg = args.cfg
        child = pulumi.ResourceOptions(parent=self)
        self.volume = renderers.stack_volume(
            f"{name}-data",
            f"{cfg.name_prefix}-pgdata",
            cfg.stack,
            pulumi.ResourceOptions(parent=self),
            protect=cfg.is_prod,
        )
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-postgres",
            role="postgres",
            image=cfg.postgres_image,
            user=USER,
            limits=Limits(memory_mb=cfg.memory_mb["postgres"], cpus=1.0, pids=256),
            health=HealthCheck(
                test=(
                    "CMD",
                    "pg_isready",
                    "-U",
                    cfg.postgres_user,
                    "-d",
                    cfg.postgres_db,
                    "-h",
                    "127.0.0.1",
                ),
                interval="5s",
                retries=10,
            ),
            env={"POSTGRES_USER": cfg.postgres_user, "POSTGRES_DB": cfg.postgres_db},
            secret_env={"POSTGRES_PASSWORD": args.password},
            # Socket and lock file, and scratch space: the root filesystem is read-only.
            tmpfs=("/var/run/postgresql", TMP),
            mounts=(Mount(DATA_DIR, self.volume.name),),
            networks=(Networks.attach(args.backend_network, HOST),),
            stop_signal="SIGINT",  # fast shutdown: abort transactions, checkpoint, exit
            stop_grace_seconds=60,
        )
        self.container = renderers.render_container(f"{name}-container", spec, child)
        self.host = HOST
        self.register_outputs({"host": HOST, "volume": self.volume.name})
