"""DjangoStack: wires image, networks, data services, deploy steps, app services and nginx.

Order of a deploy (enforced by dependencies, and by inputs for the steps' success): image
build -> Postgres and Redis healthy -> backup -> migration -> web and the processes, e.g.
Celery -> nginx in prod (the static sync before web in prod; the maintenance switch before
the backup when on, after web and the processes when off). Web, the processes and nginx
change only once the steps before them succeeded (`Job.done()`): a failed step leaves them as
they were. The scheduled backup (config backupSchedule) waits for Postgres only: no release
replaces it."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components import app, jobs, postgres, redis, renderers
from components.acme import Acme, AcmeArgs
from components.app import AppArgs, AppEnv, Process, ProcessArgs, Web
from components.config import STACK_VALUES, StackConfig
from components.image import Image, ImageArgs
from components.jobs import (
    Backup,
    BackupArgs,
    Migration,
    MigrationArgs,
    ReleaseCommands,
    ReleaseCommandsArgs,
    StaticFiles,
    StaticFilesArgs,
)
from components.maintenance import Maintenance, MaintenanceArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.networks import Networks, NetworksArgs
from components.nginx import HTTP_PORT, Nginx, NginxArgs, container_name
from components.postgres import Postgres, PostgresArgs
from components.redis import Redis, RedisArgs
from components.scheduledbackup import ScheduledBackup, ScheduledBackupArgs
from components.spec import Mount


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


def _after(dependency: pulumi.Resource) -> pulumi.ResourceTransformation:
    """A transformation making each resource it reaches (children included) wait for
    `dependency`."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        opts = pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(depends_on=[dependency])
        )
        return pulumi.ResourceTransformationResult(args.props, opts)

    return transform


def plain_stack_values(cfg: StackConfig) -> dict[str, str]:
    """The plain (non-secret) stack values of config.STACK_VALUES, all known at preview."""
    if cfg.acme:  # every name of the certificate reaches the app through nginx
        hosts = list(cfg.acme.names)
    elif cfg.is_prod:
        hosts = [cfg.domain]
    else:
        hosts = sorted({cfg.domain, "localhost", "127.0.0.1"})
    return {
        "postgresHost": postgres.HOST,
        "postgresPort": str(postgres.PORT),
        "postgresDb": cfg.postgres_db,
        "postgresUser": cfg.postgres_user,
        "redisUrl": redis.URL,
        "redisHost": redis.HOST,
        "redisPort": str(redis.PORT),
        "allowedHosts": ",".join(hosts),
        "csrfTrustedOrigins": public_url(cfg)
        if cfg.is_prod
        else f"http://localhost:{cfg.dev_port}",
        "domain": cfg.domain,
        "url": public_url(cfg),
        "staticUrl": cfg.static_url,
        "mediaRoot": app.MEDIA_DIR,
        "mediaUrl": cfg.media_url,
    }


# Stand-in for secrets while the image is built: build args are readable in the image's
# history, so a real secret never goes there.
BUILD_STAND_IN = "collectstatic-only"


def build_secret_stand_ins(cfg: StackConfig) -> dict[str, str]:
    """The secret stack values as the build sees them: stand-ins of the right shape, enough for
    settings that read them strictly to import (collectstatic connects to nothing)."""
    return {
        "postgresPassword": BUILD_STAND_IN,
        "secretKey": f"{BUILD_STAND_IN}-{'0123456789abcdef' * 3}",  # 50+ characters
        "databaseUrl": f"postgres://{cfg.postgres_user}:{BUILD_STAND_IN}"
        f"@{postgres.HOST}:{postgres.PORT}/{cfg.postgres_db}",
    }


def build_environment(cfg: StackConfig) -> dict[str, str]:
    """Config `env` and `secretEnv` as the build's collectstatic sees them
    (DJANGOSTACK_BUILD_ENV, docker/support/collectstatic.py): `env` with the real plain values,
    `secretEnv` over stand-ins for the secret stack values, and a value holding literal text
    (itself a secret) replaced whole by a stand-in."""
    values = {**plain_stack_values(cfg), **build_secret_stand_ins(cfg)}
    built = {name: template.text(values) for name, template in cfg.env.items()}
    for name, template in cfg.secret_env.items():
        built[name] = BUILD_STAND_IN if template.has_literal else template.text(values)
    return built


def app_environment(
    cfg: StackConfig,
    env: Mapping[str, pulumi.Input[str]],
    secret_env: Mapping[str, pulumi.Input[str]],
    values: Mapping[str, pulumi.Input[str]],
    mounts: tuple[Mount, ...] = (),
) -> AppEnv:
    """The built-in `env` / `secret_env` with config `env` and `secretEnv` rendered over the
    stack `values` (one per STACK_VALUES name) and merged in: a mapped name replaces a built-in
    one of the same name, in either map. The secretEnv names go in DJANGOSTACK_SECRET_ENV, so
    the product's entrypoint exports each NAME from its NAME_FILE for projects that read NAME."""
    if set(values) != set(STACK_VALUES):
        raise ValueError(f"stack values {sorted(values)} differ from {sorted(STACK_VALUES)}")
    plain = dict(env)
    secret = dict(secret_env)
    for name, template in cfg.env.items():
        plain[name] = template.render(values)
        secret.pop(name, None)
    for name, template in cfg.secret_env.items():
        # Literal text of a secretEnv value is secret too, not only the secret stack values.
        secret[name] = pulumi.Output.secret(template.render(values))
        plain.pop(name, None)
    if cfg.secret_env:
        plain[app.SECRET_ENV_VAR] = " ".join(sorted(cfg.secret_env))
    return AppEnv(env=plain, secret_env=secret, mounts=mounts)


class DjangoStack(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: DjangoStackArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("djangostack:index:DjangoStack", name, None, opts)
        cfg = args.cfg
        child = pulumi.ResourceOptions(parent=self)

        # Config secrets (the deploy command generates them on a stack's first deploy).
        password = cfg.postgres_password
        secret_key = cfg.django_secret_key

        self.image = Image(f"{name}-image", ImageArgs(cfg, build_environment(cfg)), child)
        # Every Docker object of the stack waits for the build: a project whose dependencies do
        # not install stops the deploy with nothing created (a transformation, because
        # `depends_on` on a component does not reach the resources inside it).
        child = pulumi.ResourceOptions(parent=self, transformations=[_after(self.image)])
        self.networks = Networks(f"{name}-networks", NetworksArgs(cfg), child)
        backend = self.networks.backend
        self.postgres = Postgres(f"{name}-postgres", PostgresArgs(cfg, backend, password), child)
        self.redis = Redis(f"{name}-redis", RedisArgs(cfg, backend), child)

        # Uploaded files: written by every app container, served read-only by nginx, kept
        # across releases and protected in prod like the database (docs/operations.md).
        self.media_volume = renderers.stack_volume(
            f"{name}-media", f"{cfg.name_prefix}-media", cfg.stack, child, protect=cfg.is_prod
        )

        self.url = public_url(cfg)
        self.database_url = database_url(cfg, password)
        plain = plain_stack_values(cfg)
        # Every stack value config `env` / `secretEnv` may reference (config.STACK_VALUES).
        values: dict[str, pulumi.Input[str]] = {
            **plain,
            "postgresPassword": pulumi.Output.secret(password),
            "databaseUrl": self.database_url,
            "secretKey": pulumi.Output.secret(secret_key),
        }
        app_env = app_environment(
            cfg,
            env={
                # Also the image's ENV (a build arg): explicit here so every container, and a
                # `docker run` of the image, agree with the stack's config.
                "DJANGO_SETTINGS_MODULE": cfg.django_settings_module,
                "REDIS_URL": self.redis.url,
                "ALLOWED_HOSTS": plain["allowedHosts"],
                "CSRF_TRUSTED_ORIGINS": plain["csrfTrustedOrigins"],
            },
            secret_env={"SECRET_KEY": secret_key, "DATABASE_URL": self.database_url},
            values=values,
            mounts=(Mount(app.MEDIA_DIR, self.media_volume.name),),
        )

        # Maintenance mode (prod): switched on before this deploy's backup and migration,
        # switched off only once web and the processes run the release (below).
        self.maintenance: Maintenance | None = None
        if cfg.is_prod and cfg.maintenance:
            self.maintenance = Maintenance(f"{name}-maintenance", MaintenanceArgs(cfg), child)
        first = [self.maintenance.job.done()] if self.maintenance else []

        image_ref = self.image.ref
        # One run key for the backup and the migration: a backup before every migration run.
        migration_spec = jobs.migration_spec(cfg, image_ref, app_env, backend)
        run_key = renderers.fingerprint(migration_spec)
        self.backup = Backup(
            f"{name}-backup",
            BackupArgs(
                cfg,
                run_key,
                backend,
                password,
                self.postgres.container,
                self.media_volume.name,
                after=first,
            ),
            child,
        )
        # config backupSchedule: the same backup, on a schedule, copied offsite with a repository.
        self.scheduled_backup: ScheduledBackup | None = None
        if cfg.scheduled_backup is not None:
            networks = [Networks.attach(backend)]
            if self.networks.egress is not None and cfg.scheduled_backup.repository is not None:
                networks.append(Networks.attach(self.networks.egress))
            self.scheduled_backup = ScheduledBackup(
                f"{name}-scheduled-backup",
                ScheduledBackupArgs(
                    cfg,
                    self.image.support,
                    self.backup.volume.name,
                    self.media_volume.name,
                    password,
                    networks,
                    self.postgres.container,
                ),
                child,
            )
        self.migration = Migration(
            f"{name}-migration",
            MigrationArgs(
                migration_spec,
                run_key,
                depends_on=[self.postgres.container, self.redis.container, self.backup.job.done()],
            ),
            child,
        )
        # prod: the new static files are in the volume nginx serves before any web task of the
        # release answers (the sync only adds files: the running release keeps its own).
        self.static: StaticFiles | None = None
        if cfg.is_prod:
            self.static = StaticFiles(f"{name}-static", StaticFilesArgs(cfg, image_ref), child)
        self.release_commands = ReleaseCommands(
            f"{name}-release",
            ReleaseCommandsArgs(cfg, image_ref, app_env, backend, self.migration.job.done()),
            child,
        )
        # Web and the processes change only after the deploy steps succeeded.
        release_steps = [self.release_commands.done]
        if self.static is not None:
            release_steps.append(self.static.job.done())
        web_networks = (Networks.attach(self.networks.edge, app.HOST), Networks.attach(backend))
        web_args = AppArgs(cfg, image_ref, app_env, web_networks, release_steps)
        self.web = Web(f"{name}-web", web_args, child)
        # Pulumi names `<name>-<process>`: the default `celery` keeps today's worker's names.
        self.processes: dict[str, Process] = {}
        for process in cfg.processes:
            networks = [Networks.attach(backend)]
            if process.egress and self.networks.egress is not None:
                networks.append(Networks.attach(self.networks.egress))
            process_args = ProcessArgs(
                cfg, process, image_ref, app_env, tuple(networks), release_steps
            )
            self.processes[process.name] = Process(f"{name}-{process.name}", process_args, child)
        # Output processNames: every process type's Docker names.
        self.process_names = {name: process.names for name, process in self.processes.items()}

        self.monitoring: Monitoring | None = None
        if cfg.monitoring:
            self.monitoring = Monitoring(
                f"{name}-monitoring",
                MonitoringArgs(cfg, backend, self.web.names),
                pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.web])),
            )

        if cfg.is_prod and not cfg.maintenance:
            after = [self.web, *self.processes.values()]
            self.maintenance = Maintenance(
                f"{name}-maintenance", MaintenanceArgs(cfg, after), child
            )

        self.acme: Acme | None = None
        if cfg.acme:
            nginx_address = f"{container_name(cfg)}:{HTTP_PORT}"
            self.acme = Acme(
                f"{name}-acme", AcmeArgs(cfg, self.networks.edge, nginx_address), child
            )

        self.nginx: Nginx | None = None
        if self.static is not None and self.maintenance is not None:
            self.nginx = Nginx(
                f"{name}-nginx",
                NginxArgs(
                    cfg,
                    self.networks.edge,
                    self.static.volume.name,
                    self.media_volume.name,
                    self.maintenance.volume.name,
                    # With acme: a certificate is in place (the process is healthy).
                    depends_on=[self.web, self.static.job.done()]
                    + ([self.acme.container] if self.acme else []),
                    acme_mounts=self.acme.nginx_mounts if self.acme else (),
                ),
                child,
            )
        self.register_outputs({"url": self.url, "imageRef": image_ref})
