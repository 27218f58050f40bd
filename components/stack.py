"""DjangoStack: wires image, networks, data services, deploy steps, app services and nginx.

Order of a deploy (enforced by dependencies): image build -> Postgres and Redis healthy ->
backup -> migration -> web and the processes, e.g. Celery (-> static sync -> nginx in prod)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components import app, postgres
from components.app import AppArgs, AppEnv, Process, ProcessArgs, Web
from components.config import StackConfig
from components.image import Image, ImageArgs
from components.jobs import (
    Backup,
    BackupArgs,
    Migration,
    MigrationArgs,
    StaticFiles,
    StaticFilesArgs,
)
from components.monitoring import Monitoring, MonitoringArgs
from components.networks import Networks, NetworksArgs
from components.nginx import Nginx, NginxArgs
from components.postgres import Postgres, PostgresArgs
from components.redis import Redis, RedisArgs


@dataclass(frozen=True)
class DjangoStackArgs:
    cfg: StackConfig


def database_url(cfg: StackConfig, password: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(
        pulumi.Output.from_input(password).apply(
            lambda pw: (
                f"postgres://{cfg.postgres_user}:{urllib.parse.quote(pw, safe='')}"
                f"@{postgres.HOST}:{postgres.PORT}/{cfg.postgres_db}"
            )
        )
    )


def public_url(cfg: StackConfig) -> str:
    if not cfg.is_prod:
        return f"http://127.0.0.1:{cfg.dev_port}"
    port = "" if cfg.https_port == 443 else f":{cfg.https_port}"
    return f"https://{cfg.domain}{port}"


class DjangoStack(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: DjangoStackArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("djangostack:index:DjangoStack", name, None, opts)
        cfg = args.cfg
        child = pulumi.ResourceOptions(parent=self)

        # Generated secrets live (encrypted) in the state, so they stay stable across deploys.
        password = (
            cfg.postgres_password
            or random.RandomPassword(
                f"{name}-postgres-password", length=32, special=False, opts=child
            ).result
        )
        secret_key = (
            cfg.django_secret_key
            or random.RandomPassword(
                f"{name}-secret-key", length=64, special=False, opts=child
            ).result
        )

        self.image = Image(f"{name}-image", ImageArgs(cfg), child)
        self.networks = Networks(f"{name}-networks", NetworksArgs(cfg), child)
        backend = self.networks.backend
        self.postgres = Postgres(f"{name}-postgres", PostgresArgs(cfg, backend, password), child)
        self.redis = Redis(f"{name}-redis", RedisArgs(cfg, backend), child)

        self.url = public_url(cfg)
        self.database_url = database_url(cfg, password)
        hosts = [cfg.domain] if cfg.is_prod else sorted({cfg.domain, "localhost", "127.0.0.1"})
        app_env = AppEnv(
            env={
                # Also the image's ENV (a build arg): explicit here so every container, and a
                # `docker run` of the image, agree with the stack's config.
                "DJANGO_SETTINGS_MODULE": cfg.django_settings_module,
                "REDIS_URL": self.redis.url,
                "ALLOWED_HOSTS": ",".join(hosts),
                "CSRF_TRUSTED_ORIGINS": self.url
                if cfg.is_prod
                else f"http://localhost:{cfg.dev_port}",
                "GUNICORN_WORKERS": str(cfg.web_workers),
                "GUNICORN_GRACEFUL_TIMEOUT": str(app.GRACEFUL_TIMEOUT),
            },
            secret_env={"SECRET_KEY": secret_key, "DATABASE_URL": self.database_url},
        )

        image_ref = self.image.ref
        self.backup = Backup(
            f"{name}-backup",
            BackupArgs(cfg, image_ref, backend, password, self.postgres.container),
            child,
        )
        self.migration = Migration(
            f"{name}-migration",
            MigrationArgs(
                cfg,
                image_ref,
                app_env,
                backend,
                depends_on=[self.postgres.container, self.redis.container, self.backup],
            ),
            child,
        )
        web_networks = (Networks.attach(self.networks.edge, app.HOST), Networks.attach(backend))
        web_args = AppArgs(cfg, image_ref, app_env, web_networks, [self.migration])
        self.web = Web(f"{name}-web", web_args, child)
        # Pulumi names `<name>-<process>`: the default `celery` keeps today's worker's names.
        self.processes: dict[str, Process] = {}
        for process in cfg.processes:
            networks = [Networks.attach(backend)]
            if process.egress and self.networks.egress is not None:
                networks.append(Networks.attach(self.networks.egress))
            process_args = ProcessArgs(
                cfg, process, image_ref, app_env, tuple(networks), [self.migration]
            )
            self.processes[process.name] = Process(f"{name}-{process.name}", process_args, child)

        self.monitoring: Monitoring | None = None
        if cfg.monitoring:
            self.monitoring = Monitoring(
                f"{name}-monitoring",
                MonitoringArgs(cfg, backend, self.web.names, image_ref),
                pulumi.ResourceOptions(parent=self, depends_on=[self.web]),
            )

        self.static: StaticFiles | None = None
        self.nginx: Nginx | None = None
        if cfg.is_prod:
            self.static = StaticFiles(f"{name}-static", StaticFilesArgs(cfg, image_ref), child)
            self.nginx = Nginx(
                f"{name}-nginx",
                NginxArgs(
                    cfg,
                    self.networks.edge,
                    self.static.volume.name,
                    depends_on=[self.web, self.static],
                ),
                child,
            )
        self.register_outputs({"url": self.url, "imageRef": image_ref})
