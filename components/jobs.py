"""One-shot deploy steps, each a hardened container run to completion (renderers.run_once):
Backup (pg_dump and the media archive before migrating, docker/backup/backup.sh) and
Migration, which run again whenever anything the migration runs with changes (image,
environment, secrets: one run key for both, so a backup accompanies every migration run), and
StaticFiles (static volume sync, on every new image).
A failed step fails the deploy; the next one runs only after it succeeded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import hardening, postgres, renderers
from components.app import ENTRYPOINT, MEDIA_DIR, PIDS, AppEnv
from components.app import USER as APP_USER
from components.config import StackConfig
from components.configreader import ROOT
from components.networks import Networks
from components.spec import TMP, Limits, Mount, ServiceSpec

STATIC_DIR = "/srv/static"  # the image's mount point for the static volume (owned by 10001)
# The image links the project's STATIC_ROOT, whatever it is, at /opt/djangostack/static
# (docker/support/collectstatic.py): the sync copies from there.
STATIC_SYNC = ("cp", "-R", "/opt/djangostack/static/.", f"{STATIC_DIR}/")


# The backup step's secret: the database password as a file. pg_dump reads no
# PGPASSWORD_FILE, and libpq ignores a password file others may read (the files volume's files
# are 0444), so the backup exports PGPASSWORD from it into its own process environment only.
PASSWORD_SECRET = "PGPASSWORD"  # noqa: S105 - a file name
# docker/backup: the backup image (components/scheduledbackup.py) and its scripts.
BACKUP_CONTEXT = ROOT / "docker" / "backup"
# One backup (dump, media archive, retention): the single source of the pre-migration step,
# which runs its text in the Postgres image, and of the scheduled backup, whose image holds it.
BACKUP_SCRIPT = (BACKUP_CONTEXT / "backup.sh").read_text()
# The backup volume's mount point: a fresh volume first mounted at /tmp inherits its mode 1777,
# so the Postgres image's user (999) writes into it (renderers.WRITABLE_VOLUME_TARGET).
BACKUP_DIR = renderers.WRITABLE_VOLUME_TARGET


def backup_environment(cfg: StackConfig) -> dict[str, str]:
    """What docker/backup/backup.sh reads besides PGPASSWORD_FILE, for both backups."""
    return {
        "PGHOST": postgres.HOST,
        "PGUSER": cfg.postgres_user,
        "PGDATABASE": cfg.postgres_db,
        "BACKUP_DIR": BACKUP_DIR,
        "MEDIA_DIR": MEDIA_DIR,
        "BACKUP_KEEP": str(cfg.backup_retention),
    }


def backup_mounts(volume: pulumi.Input[str], media_volume: pulumi.Input[str]) -> tuple[Mount, ...]:
    """The backup volume (written) and the media volume (archived, read-only)."""
    return (Mount(BACKUP_DIR, volume), Mount(MEDIA_DIR, media_volume, read_only=True))


@dataclass(frozen=True)
class BackupArgs:
    cfg: StackConfig
    run_key: pulumi.Input[str]  # the migration's (Migration.run_key): a backup before each run
    backend_network: docker.Network
    password: pulumi.Input[str]
    postgres: pulumi.Resource  # the (healthy) Postgres container
    media_volume: pulumi.Input[str]  # archived next to each dump
    # What else runs first: maintenance mode switched on in the same deploy.
    after: Sequence[pulumi.Input[pulumi.Resource]] = ()


class Backup(pulumi.ComponentResource):
    """`pg_dump -Fc` into the backup volume, timestamped, with a tar of the media volume under
    the same name (`.media.tar`), keeping the newest `backupRetention` pairs
    (docker/backup/backup.sh). Restore: docs/operations.md ("Backups and restore")."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Backup", name, None, opts)
        cfg = args.cfg
        self.volume = renderers.stack_volume(
            f"{name}-volume",
            f"{cfg.name_prefix}-backups",
            cfg.stack,
            pulumi.ResourceOptions(parent=self),
            cfg.is_prod,
        )
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-backup",
            role="job",
            image=cfg.postgres_image,
            user=postgres.USER,
            limits=Limits(memory_mb=256, cpus=1.0, pids=64),
            command=("sh", "-c", BACKUP_SCRIPT),
            env=backup_environment(cfg),
            secret_env={PASSWORD_SECRET: args.password},
            mounts=backup_mounts(self.volume.name, args.media_volume),
            networks=(Networks.attach(args.backend_network),),
        )
        self.job = renderers.run_once(
            f"{name}-run",
            spec,
            args.run_key,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.postgres, *args.after]),
        )
        self.register_outputs({"volume": self.volume.name})


MIGRATIONS_LABEL = "djangostack.migrations"


def migration_labels(migrations: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """One label per project app, `djangostack.migrations.<app>` = its migration names: the
    preview of a release that adds a migration shows that app's label change, which names it."""
    return {f"{MIGRATIONS_LABEL}.{app}": " ".join(names) for app, names in migrations.items()}


def app_step_spec(
    cfg: StackConfig,
    step: str,
    command: Sequence[str],
    image_ref: pulumi.Input[str],
    app_env: AppEnv,
    backend: docker.Network,
    labels: Mapping[str, str] | None = None,
) -> ServiceSpec:
    """A one-shot step of the project's own (`<prefix>-<step>`): `command` with the new image,
    web's environment, secrets, uploads and memory, on the backend network."""
    return hardening.harden(
        ServiceSpec(
            name=f"{cfg.name_prefix}-{step}",
            role="job",
            image=image_ref,
            user=APP_USER,
            limits=Limits(memory_mb=cfg.memory_mb["web"], cpus=1.0, pids=PIDS),
            # The entrypoint exports the secretEnv names from their files first.
            command=(ENTRYPOINT, *command),
            env=app_env.env,
            secret_env=app_env.secret_env,
            tmpfs=(TMP,),
            mounts=app_env.mounts,  # a data migration or release command may write uploads
            networks=(Networks.attach(backend),),
            labels=dict(labels or {}),
        ),
        long_running=False,
    )


# The migration step's container is `<namePrefix>-migrate`; one-off commands (automation/run.py)
# take their run spec from it.
MIGRATION_STEP = "migrate"


def migration_spec(
    cfg: StackConfig, image_ref: pulumi.Input[str], app_env: AppEnv, backend: docker.Network
) -> ServiceSpec:
    """`manage.py migrate --noinput` with the new image; `renderers.fingerprint` of it is the
    run key the backup before it shares."""
    command = ("python", "manage.py", "migrate", "--noinput")
    labels = migration_labels(cfg.migrations)
    return app_step_spec(cfg, MIGRATION_STEP, command, image_ref, app_env, backend, labels)


@dataclass(frozen=True)
class MigrationArgs:
    spec: ServiceSpec  # migration_spec()
    run_key: pulumi.Input[str]  # renderers.fingerprint(spec), the backup's run key too
    # Healthy Postgres and Redis, and the backup's success (its Job.done()).
    depends_on: Sequence[pulumi.Input[pulumi.Resource]]


class Migration(pulumi.ComponentResource):
    """The migration step, after the backup succeeded and before web and the processes change
    (they wait for `job.done()`): a failing backup or migration fails the deploy and nothing
    after it changes."""

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Migration", name, None, opts)
        self.job = renderers.run_once(
            f"{name}-run",
            args.spec,
            args.run_key,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({})


@dataclass(frozen=True)
class StaticFilesArgs:
    cfg: StackConfig
    image_ref: pulumi.Input[str]


class StaticFiles(pulumi.ComponentResource):
    """Copies the image's collected static files into the static volume nginx serves. Files are
    only added, never deleted: pages rendered by the previous release keep their hashed
    names working during and after the switch."""

    def __init__(
        self, name: str, args: StaticFilesArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("djangostack:index:StaticFiles", name, None, opts)
        cfg = args.cfg
        self.volume = renderers.stack_volume(
            f"{name}-volume",
            f"{cfg.name_prefix}-static",
            cfg.stack,
            pulumi.ResourceOptions(parent=self),
        )
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-static-sync",
            role="job",
            image=args.image_ref,
            user=APP_USER,
            limits=Limits(memory_mb=128, cpus=1.0, pids=64),
            command=STATIC_SYNC,
            mounts=(Mount(STATIC_DIR, self.volume.name),),
        )
        self.job = renderers.run_once(
            f"{name}-run", spec, args.image_ref, opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"volume": self.volume.name})


@dataclass(frozen=True)
class ReleaseCommandsArgs:
    cfg: StackConfig
    image_ref: pulumi.Input[str]
    app_env: AppEnv
    backend: docker.Network
    after: pulumi.Input[pulumi.Resource]  # the migration's success (its Job.done())


class ReleaseCommands(pulumi.ComponentResource):
    """The project's release commands (config releaseCommands: loading initial data,
    createcachetable...), each a one-shot step `<prefix>-release-<n>` after the migration and
    the one before it, before web and the processes change; each runs again when anything it
    runs with changes (a new image included), and a failing one fails the deploy like a
    migration. `done` is the last one's success (the migration's when there are none)."""

    def __init__(
        self, name: str, args: ReleaseCommandsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("djangostack:index:ReleaseCommands", name, None, opts)
        done = args.after
        for number, command in enumerate(args.cfg.release_commands, start=1):
            spec = app_step_spec(
                args.cfg, f"release-{number}", command, args.image_ref, args.app_env, args.backend
            )
            job = renderers.run_once(
                f"{name}-{number}",
                spec,
                renderers.fingerprint(spec),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[done]),
            )
            done = job.done()
        self.done = done
        self.register_outputs({})
