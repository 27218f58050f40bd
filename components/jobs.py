"""One-shot deploy steps, each a hardened `docker run --rm` re-run whenever the image changes:
Backup (pg_dump before migrating), Migration, StaticFiles (static volume sync)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import postgres, renderers
from components.app import ENTRYPOINT, MEDIA_DIR, AppEnv
from components.app import USER as APP_USER
from components.config import StackConfig
from components.networks import Networks
from components.spec import TMP, Limits, Mount, ServiceSpec

STATIC_DIR = "/srv/static"  # the image's mount point for the static volume (owned by 10001)
# The image links the project's STATIC_ROOT, whatever it is, at /opt/djangostack/static
# (docker/support/collectstatic.py): the sync copies from there.
STATIC_SYNC = ("cp", "-R", "/opt/djangostack/static/.", f"{STATIC_DIR}/")


PGPASS = "PGPASS"  # the backup job's secret: a .pgpass file (pg_dump reads no PGPASSWORD_FILE)


def pgpass_line(cfg: StackConfig, password: str) -> str:
    """The one `.pgpass` line for the stack's database (libpq escapes `:` and `\\` with a
    backslash)."""
    fields = [postgres.HOST, str(postgres.PORT), cfg.postgres_db, cfg.postgres_user, password]
    return ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields)


@dataclass(frozen=True)
class BackupArgs:
    cfg: StackConfig
    image_ref: pulumi.Input[str]  # the new app image: a backup is taken before each release
    backend_network: docker.Network
    password: pulumi.Input[str]
    postgres: pulumi.Resource  # the (healthy) Postgres container
    media_volume: pulumi.Input[str]  # archived next to each dump


MEDIA_ARCHIVE_SUFFIX = ".media.tar"  # scripts/lib/backups.sh pairs it with its dump the same way


def media_archive(dump: str) -> str:
    """The media archive taken with a dump (`<db>-<ts>.dump` -> `<db>-<ts>.media.tar`), as a
    shell word expansion of the variable named `dump`."""
    return f'"${{{dump}%.dump}}{MEDIA_ARCHIVE_SUFFIX}"'


class Backup(pulumi.ComponentResource):
    """`pg_dump -Fc` into the backup volume, timestamped, with a tar of the media volume under
    the same name (`.media.tar`), keeping the newest `backupRetention` pairs. Restore:
    docs/operations.md ("Backups and restore")."""

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
        target = renderers.WRITABLE_VOLUME_TARGET
        # The media archive is complete before the dump gets its final name: a listed dump
        # always has its media next to it. Uncompressed: uploads are mostly compressed already.
        script = (
            "set -eu; "
            f'f="{target}/$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump"; '
            f"m={media_archive('f')}; "
            f'tar -C {MEDIA_DIR} -cf "$m.partial" . && mv "$m.partial" "$m"; '
            'pg_dump --format=custom --file="$f.partial" && mv "$f.partial" "$f"; '
            f"ls -1t {target}/*.dump | tail -n +{cfg.backup_retention + 1} | "
            f'while read -r old; do rm -f -- "$old" {media_archive("old")}; done'
        )
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-backup",
            role="job",
            image=cfg.postgres_image,
            user=postgres.USER,
            limits=Limits(memory_mb=256, cpus=1.0, pids=64),
            command=("sh", "-c", script),
            env={
                "PGHOST": postgres.HOST,
                "PGUSER": cfg.postgres_user,
                "PGDATABASE": cfg.postgres_db,
                # A 0400 file written by the job's prologue (renderers.run_once).
                "PGPASSFILE": renderers.secret_file(PGPASS),
            },
            secret_env={
                PGPASS: pulumi.Output.from_input(args.password).apply(
                    lambda password: pgpass_line(cfg, password)
                )
            },
            mounts=(
                Mount(target, self.volume.name),
                Mount(MEDIA_DIR, args.media_volume, read_only=True),
            ),
            networks=(Networks.attach(args.backend_network),),
        )
        self.command = renderers.run_once(
            f"{name}-run",
            spec,
            triggers=[args.image_ref],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.postgres]),
        )
        self.register_outputs({"volume": self.volume.name})


@dataclass(frozen=True)
class MigrationArgs:
    cfg: StackConfig
    image_ref: pulumi.Input[str]
    app_env: AppEnv
    backend_network: docker.Network
    depends_on: Sequence[pulumi.Resource]  # healthy Postgres and Redis, the backup


class Migration(pulumi.ComponentResource):
    """`manage.py migrate --noinput` with the new image, before web and Celery change; a
    failing migration fails the deploy and nothing after it runs."""

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Migration", name, None, opts)
        cfg = args.cfg
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-migrate",
            role="job",
            image=args.image_ref,
            user=APP_USER,
            limits=Limits(memory_mb=cfg.memory_mb["web"], cpus=1.0, pids=256),
            # After run_once's secrets prologue (it execs this command): the entrypoint then
            # exports the secretEnv names from the files the prologue wrote.
            command=(ENTRYPOINT, "python", "manage.py", "migrate", "--noinput"),
            env=args.app_env.env,
            secret_env=args.app_env.secret_env,
            tmpfs=(TMP,),
            mounts=args.app_env.mounts,  # a data migration may write uploads
            networks=(Networks.attach(args.backend_network),),
        )
        self.command = renderers.run_once(
            f"{name}-run",
            spec,
            triggers=[args.image_ref],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"stdout": self.command.stdout})


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
        self.command = renderers.run_once(
            f"{name}-run", spec, triggers=[args.image_ref], opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"volume": self.volume.name})
