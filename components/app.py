"""The Django application's long-running services: web (gunicorn / runserver) and the
process types of config `processes` (by default the Celery worker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pulumi

from components import renderers
from components.config import CELERY_PROCESS, ProcessConfig, StackConfig, celery_worker_app
from components.spec import (
    TMP,
    HealthCheck,
    Limits,
    Mount,
    NetworkAttachment,
    Port,
    RegistryAuth,
    ServiceSpec,
)

USER = "10001:10001"  # the image's django user (docs/design.md)
PORT = 8000
HOST = "web"  # alias on the edge network; nginx proxies to it
GRACEFUL_TIMEOUT = 30  # gunicorn drains requests this long on SIGTERM
# The product's health endpoint in front of every project's app (docker/support/djangostack_wsgi.py
# HEALTH_PATH; the image's HEALTHCHECK probes it too): database and Redis, no view needed.
HEALTH_PATH = "/_djangostack/health/"


def web_health(path: str) -> HealthCheck:
    """An HTTP probe of `path` on the web container (HEALTH_PATH, or the project's own view
    when config `healthPath` is set)."""
    url = f"http://127.0.0.1:{PORT}{path}"
    return HealthCheck(
        test=(
            "CMD",
            "python",
            "-c",
            f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)",
        ),
        interval="10s",
        timeout="5s",
        retries=3,
        start_period="30s",
    )


def celery_health(celery_app: str) -> HealthCheck:
    """Celery's own liveness, never web's HTTP check (HOSTNAME is the node name's host part);
    `celery_app` is the project's (cfg.celery_app, detected or configured)."""
    return HealthCheck(
        test=(
            "CMD-SHELL",
            f"celery -A {celery_app} inspect ping --destination celery@$HOSTNAME --timeout 5",
        ),
        interval="30s",
        timeout="15s",
        retries=3,
        start_period="30s",
    )


@dataclass(frozen=True)
class AppEnv:
    """Environment shared by web, the processes and the migration job (docs/design.md)."""

    env: Mapping[str, pulumi.Input[str]]
    secret_env: Mapping[str, pulumi.Input[str]]


@dataclass(frozen=True)
class AppArgs:
    cfg: StackConfig
    image_ref: pulumi.Input[str]
    app_env: AppEnv
    networks: Sequence[NetworkAttachment]
    depends_on: Sequence[pulumi.Resource]  # the migration step


def registry_auth(cfg: StackConfig) -> RegistryAuth | None:
    """The pushing credentials, when the image lives in a registry that needs them."""
    if not cfg.registry or cfg.registry_password is None:
        return None
    return RegistryAuth(cfg.registry, cfg.registry_username, cfg.registry_password)


def render(
    name: str, cfg: StackConfig, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> list[str]:
    """Render `spec` with the engine the stack uses; return the Docker names created.
    Swarm: one service with native replicas. Containers: one container per replica."""
    if cfg.orchestrator == "swarm":
        renderers.render_service(name, spec, opts, registry_auth(cfg))
        return [spec.name]
    if spec.replicas == 1:
        renderers.render_container(name, spec, opts)
        return [spec.name]
    names = []
    for index in range(1, spec.replicas + 1):
        replica = replace(spec, name=f"{spec.name}-{index}", replicas=1)
        renderers.render_container(f"{name}-{index}", replica, opts)
        names.append(replica.name)
    return names


class Web(pulumi.ComponentResource):
    """prod: gunicorn (image CMD), `webReplicas` replicas, reachable only through nginx.
    dev: runserver from the development image with ./app bind-mounted read-only, published
    on 127.0.0.1:devPort only."""

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Web", name, None, opts)
        cfg = args.cfg
        dev = not cfg.is_prod
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-web",
            role="web",
            image=args.image_ref,
            user=USER,
            limits=Limits(memory_mb=cfg.memory_mb["web"], cpus=1.0, pids=256),
            health=web_health(cfg.health_path or HEALTH_PATH),
            env=args.app_env.env,
            secret_env=args.app_env.secret_env,
            tmpfs=(TMP,),
            mounts=(Mount("/app", str(cfg.app_dir), type="bind", read_only=True),) if dev else (),
            networks=tuple(args.networks),
            ports=(Port(PORT, cfg.dev_port, "127.0.0.1"),) if dev else (),
            stop_grace_seconds=GRACEFUL_TIMEOUT + 15,  # above gunicorn's graceful timeout
            replicas=1 if dev else cfg.web_replicas,
        )
        opts_child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.names = render(name, cfg, spec, opts_child)
        self.register_outputs({"names": self.names})


# The component type of the Celery worker before process types existed: the default process
# `celery` aliases it, so a deployed stack updates its worker in place instead of replacing it.
LEGACY_CELERY_TYPE = "djangostack:index:Celery"
CELERY_STOP_GRACE = 120  # a Celery worker's warm shutdown lets current tasks finish
PROCESS_STOP_GRACE = 30


def process_health(process: ProcessConfig, celery_app: str) -> HealthCheck:
    """The process's own health check, else the product's default (a Celery worker's ping;
    config validation guarantees one of the two exists)."""
    if process.health:
        return HealthCheck(test=process.health)
    app = celery_worker_app(process.command, celery_app)
    if app is None:
        raise ValueError(f"process {process.name}: no health check and no default for it")
    return celery_health(app)


@dataclass(frozen=True)
class ProcessArgs:
    cfg: StackConfig
    process: ProcessConfig
    image_ref: pulumi.Input[str]
    app_env: AppEnv
    networks: Sequence[NetworkAttachment]  # backend, plus egress when the process opts in
    depends_on: Sequence[pulumi.Resource]  # the migration step


class Process(pulumi.ComponentResource):
    """One long-running non-web process type (config `processes`; by default the Celery
    worker): the web image with its own command, no published port, no edge network. Docker
    name `<namePrefix>-<name>`; `singleton` never runs two tasks at once."""

    def __init__(self, name: str, args: ProcessArgs, opts: pulumi.ResourceOptions | None = None):
        process = args.process
        if process.name == CELERY_PROCESS:
            legacy = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=LEGACY_CELERY_TYPE)])
            opts = pulumi.ResourceOptions.merge(opts, legacy)
        super().__init__("djangostack:index:Process", name, None, opts)
        cfg = args.cfg
        worker = celery_worker_app(process.command, cfg.celery_app) is not None
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-{process.name}",
            role="celery" if process.name == CELERY_PROCESS else "process",
            image=args.image_ref,
            user=USER,
            limits=Limits(memory_mb=process.memory_mb, cpus=1.0, pids=256),
            health=process_health(process, cfg.celery_app),
            command=process.command,
            env=args.app_env.env,
            secret_env=args.app_env.secret_env,
            tmpfs=(TMP,),
            networks=tuple(args.networks),
            stop_grace_seconds=CELERY_STOP_GRACE if worker else PROCESS_STOP_GRACE,
            replicas=process.replicas,
            singleton=process.singleton,
        )
        opts_child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.names = render(name, cfg, spec, opts_child)
        self.register_outputs({"names": self.names})
