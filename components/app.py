"""The Django application's long-running services: web (gunicorn / runserver) and the
process types of config `processes` (by default the Celery worker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pulumi

from components import hardening, renderers
from components.config import CELERY_PROCESS, ProcessConfig, StackConfig, celery_worker_app
from components.spec import (
    TMP,
    HealthCheck,
    Limits,
    Mount,
    NetworkAttachment,
    Placement,
    Port,
    RegistryAuth,
    Rollout,
    ServiceSpec,
)

USER = "10001:10001"  # the image's django user (docs/design.md)
PORT = 8000
HOST = "web"  # alias on the edge network; nginx proxies to it
# The media volume's mount point in every app container (owned by 10001 in the image, so a fresh
# volume is writable for the app user); the image links the project's MEDIA_ROOT to it
# (docker/support/collectstatic.py). Also the stack value mediaRoot.
MEDIA_DIR = "/srv/media"
GRACEFUL_TIMEOUT = 30  # gunicorn drains requests this long on SIGTERM
# The product's health endpoint in front of every project's app (docker/support/djangostack_wsgi.py
# HEALTH_PATH; the image's HEALTHCHECK probes it too): database and Redis, no view needed.
HEALTH_PATH = "/_djangostack/health/"
# The product's entrypoint (docker/support/entrypoint), first word of every app command: it
# exports each name listed in SECRET_ENV_VAR (config secretEnv) from its NAME_FILE, then execs
# the rest. The image's CMD (web) starts with it too.
ENTRYPOINT = "/opt/djangostack/entrypoint"
# The product's HTTP health probe (docker/support/probe.py): a bare request from `python -I -S`.
PROBE = "/opt/djangostack/probe.py"
SECRET_ENV_VAR = "DJANGOSTACK_SECRET_ENV"  # noqa: S105 - a variable name, no secret
# The pids limit of every app container: web, the processes, the project's one-shot steps and
# one-off commands (automation/run.py).
PIDS = 256


def http_probe(path: str, port: int = PORT) -> tuple[str, ...]:
    """A health probe command: `GET path` from Gunicorn on 127.0.0.1:`port`, healthy on an
    answer from 200 to 399: the product's probe (docker/support/probe.py), which the image's
    own HEALTHCHECK runs too."""
    return ("CMD", "python", "-I", "-S", PROBE, path, str(port))


def web_health(path: str, interval: str) -> HealthCheck:
    """An HTTP probe of `path` on the web container (HEALTH_PATH, or the project's own view
    when config `healthPath` is set), every `interval` (config `webHealthInterval`): a new
    task counts as healthy, and takes traffic in a release, at its first good answer after
    it (Docker 20.10 has no faster first probe)."""
    return HealthCheck(
        test=http_probe(path),
        interval=interval,
        timeout="5s",
        retries=3,
        start_period="30s",
    )


def rollout(cfg: StackConfig, replicas: int) -> Rollout:
    """The release settings of a service with `replicas` tasks (config releaseParallelism,
    releaseDelay, releaseMonitor): by default half the tasks at a time, at least one."""
    parallelism = cfg.release_parallelism or max(1, replicas // 2)
    return Rollout(min(parallelism, replicas), cfg.release_delay, cfg.release_monitor)


def celery_health(celery_app: str) -> HealthCheck:
    """Celery's own liveness, never web's HTTP check (HOSTNAME is the node name's host part);
    `celery_app` is the project's (cfg.celery_app, detected or configured). Through the
    entrypoint: loading the app loads the project's settings, which may read a secretEnv NAME."""
    return HealthCheck(
        test=(
            "CMD-SHELL",
            f"{ENTRYPOINT} celery -A {celery_app} inspect ping "
            "--destination celery@$HOSTNAME --timeout 5",
        ),
        interval="30s",
        timeout="15s",
        retries=3,
        start_period="30s",
    )


@dataclass(frozen=True)
class AppEnv:
    """What every app container shares, web, Celery (every process) and the migration job:
    environment, secrets and mounts (the media volume, read-write; docs/design.md)."""

    env: Mapping[str, pulumi.Input[str]]
    secret_env: Mapping[str, pulumi.Input[str]]
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class AppArgs:
    cfg: StackConfig
    image_ref: pulumi.Input[str]
    app_env: AppEnv
    networks: Sequence[NetworkAttachment]
    depends_on: Sequence[pulumi.Input[pulumi.Resource]]  # the deploy steps' success (Job.done())


def registry_auth(cfg: StackConfig) -> RegistryAuth | None:
    """The pushing credentials, when the image lives in a registry that needs them."""
    if not cfg.registry or cfg.registry_password is None:
        return None
    return RegistryAuth(cfg.registry, cfg.registry_username, cfg.registry_password)


def placement(cfg: StackConfig, max_replicas_per_node: int = 0) -> Placement | None:
    """Where web and Celery tasks may run on a multi-node Swarm (docs/multinode.md): only on
    nodes with `appNodeLabel`, at most `max_replicas_per_node` per node. None when nothing is
    configured, so single-host stacks keep the service spec they always had."""
    constraints: tuple[str, ...] = ()
    if cfg.app_node_label:
        key, _, value = cfg.app_node_label.partition("=")
        constraints = (f"node.labels.{key}=={value}",)
    if not constraints and not max_replicas_per_node:
        return None
    return Placement(constraints, max_replicas_per_node)


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
            limits=Limits(memory_mb=cfg.memory_mb["web"], cpus=1.0, pids=PIDS),
            health=web_health(cfg.health_path or HEALTH_PATH, cfg.web_health_interval),
            # Gunicorn's settings are web's alone: changing them touches no other service.
            env={
                **args.app_env.env,
                "GUNICORN_WORKERS": str(cfg.web_workers),
                "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
            },
            secret_env=args.app_env.secret_env,
            tmpfs=(TMP,),
            mounts=(
                *args.app_env.mounts,
                *((Mount("/app", str(cfg.app_dir), type="bind", read_only=True),) if dev else ()),
            ),
            networks=tuple(args.networks),
            ports=(Port(PORT, cfg.dev_port, "127.0.0.1"),) if dev else (),
            stop_grace_seconds=GRACEFUL_TIMEOUT + 15,  # above gunicorn's graceful timeout
            replicas=1 if dev else cfg.web_replicas,
            placement=placement(cfg, cfg.web_max_replicas_per_node),
            rollout=rollout(cfg, cfg.web_replicas),
        )
        opts_child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.names = render(name, cfg, spec, opts_child)
        self.register_outputs({"names": self.names})


# The component type of the Celery worker before process types existed: the default process
# `celery` aliases it, so a deployed stack updates its worker in place instead of replacing it.
LEGACY_CELERY_TYPE = "djangostack:index:Celery"
CELERY_STOP_GRACE = 120  # a Celery worker's warm shutdown lets current tasks finish
PROCESS_STOP_GRACE = 30


def through_entrypoint(test: tuple[str, ...]) -> tuple[str, ...]:
    """A project's health command run through the entrypoint, like its process: a command
    that loads the settings may read a secretEnv NAME."""
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ("CMD", ENTRYPOINT, "sh", "-c", *rest)
    return (kind, ENTRYPOINT, *rest)


def process_health(process: ProcessConfig, celery_app: str) -> HealthCheck:
    """The process's own health check, else the product's default (a Celery worker's ping;
    config validation guarantees one of the two exists)."""
    if process.health:
        return HealthCheck(test=through_entrypoint(process.health))
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
    depends_on: Sequence[pulumi.Input[pulumi.Resource]]  # the deploy steps' success (Job.done())


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
            labels={hardening.PROCESS_LABEL: process.name},
            image=args.image_ref,
            user=USER,
            limits=Limits(memory_mb=process.memory_mb, cpus=1.0, pids=PIDS),
            health=process_health(process, cfg.celery_app),
            command=(ENTRYPOINT, *process.command),
            env=args.app_env.env,
            secret_env=args.app_env.secret_env,
            tmpfs=(TMP,),
            mounts=args.app_env.mounts,
            networks=tuple(args.networks),
            stop_grace_seconds=CELERY_STOP_GRACE if worker else PROCESS_STOP_GRACE,
            replicas=process.replicas,
            singleton=process.singleton,
            placement=placement(cfg),
            rollout=rollout(cfg, process.replicas),
        )
        opts_child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.names = render(name, cfg, spec, opts_child)
        self.register_outputs({"names": self.names})
