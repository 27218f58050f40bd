"""The scheduled backup (config backupSchedule): a singleton long-running process that takes the
pre-migration step's backup (docker/backup/backup.sh, one source for both: dump, media archive,
backupRetention) every interval and, with backupRepository, copies each one to a restic
repository (docker/backup/backupd). Its image is the stack's Postgres image (pg_dump of the
server's version) plus Debian's restic, built like the support image
(components/image.py product_image). docs/operations.md, "Scheduled backups"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components import app, jobs, postgres
from components.config import ScheduledBackupConfig, StackConfig
from components.image import ProductImage, product_image
from components.spec import (
    HealthCheck,
    Limits,
    Mount,
    NetworkAttachment,
    Placement,
    ServiceSpec,
)

BACKUPD = "/opt/djangostack/backup/backupd"
# The restic snapshots of a stack carry this tag and the stack's namePrefix as their host:
# retention forgets only the stack's own snapshots, and a restore can tell whose they are.
SNAPSHOT_TAG = "djangostack"
STOP_GRACE_SECONDS = 60  # a backup under way finishes before the process stops


def backup_spec(
    cfg: StackConfig,
    schedule: ScheduledBackupConfig,
    image: pulumi.Input[str],
    password: pulumi.Input[str],
    mounts: tuple[Mount, ...],
    networks: Sequence[NetworkAttachment],
) -> ServiceSpec:
    """The process: backupd through the product's entrypoint (it exports backupRepositoryEnv's
    names from their files), as the Postgres image's user, with the step's environment and
    mounts; restic reads RESTIC_REPOSITORY_FILE and RESTIC_PASSWORD_FILE itself."""
    env = {
        **jobs.backup_environment(cfg),
        "BACKUP_INTERVAL": str(schedule.interval_seconds),
        "BACKUP_HOST": cfg.name_prefix,
        "BACKUP_TAG": SNAPSHOT_TAG,
    }
    secret_env: dict[str, pulumi.Input[str]] = {jobs.PASSWORD_SECRET: password}
    if schedule.repository is not None and schedule.password is not None:
        secret_env["RESTIC_REPOSITORY"] = schedule.repository
        secret_env["RESTIC_PASSWORD"] = schedule.password
        secret_env.update(schedule.repository_env)
        if schedule.repository_env:
            env[app.SECRET_ENV_VAR] = " ".join(sorted(schedule.repository_env))
    return ServiceSpec(
        name=f"{cfg.name_prefix}-scheduled-backup",
        role="backup",
        image=image,
        user=postgres.USER,
        limits=Limits(memory_mb=512, cpus=1.0, pids=256),
        # Healthy while the last good backup is at most twice the schedule old (backupd health).
        health=HealthCheck(test=("CMD", BACKUPD, "health"), interval="10s", retries=3),
        command=(app.ENTRYPOINT, BACKUPD),
        env=env,
        secret_env=secret_env,
        mounts=mounts,
        networks=tuple(networks),
        stop_grace_seconds=STOP_GRACE_SECONDS,
        singleton=True,
        # The backup and media volumes are the manager's, where Postgres runs.
        placement=Placement(("node.role == manager",)) if cfg.orchestrator == "swarm" else None,
    )


@dataclass(frozen=True)
class ScheduledBackupArgs:
    cfg: StackConfig
    support: ProductImage  # what the build copies the entrypoint from (Image.support)
    backup_volume: pulumi.Input[str]  # the pre-migration step's (jobs.Backup.volume)
    media_volume: pulumi.Input[str]
    password: pulumi.Input[str]  # the database's
    networks: Sequence[NetworkAttachment]  # backend, plus egress with a repository
    postgres: pulumi.Resource  # the (healthy) Postgres container


class ScheduledBackup(pulumi.ComponentResource):
    """The backup image and the singleton process `<namePrefix>-scheduled-backup` (prod: a
    Swarm service with one task, stop-first; dev: a container)."""

    def __init__(
        self, name: str, args: ScheduledBackupArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("djangostack:index:ScheduledBackup", name, None, opts)
        cfg = args.cfg
        schedule = cfg.scheduled_backup
        if schedule is None:
            raise ValueError("ScheduledBackup needs config backupSchedule")
        # The Postgres image (pg_dump of the server's version) plus restic and the scripts.
        self.image = product_image(
            f"{name}-image",
            cfg,
            jobs.BACKUP_CONTEXT,
            "backup",
            pulumi.ResourceOptions(parent=self),
            build_args={"POSTGRES_IMAGE": cfg.postgres_image},
            images={"SUPPORT_IMAGE": args.support},
        )
        spec = backup_spec(
            cfg,
            schedule,
            self.image.ref,
            args.password,
            jobs.backup_mounts(args.backup_volume, args.media_volume),
            args.networks,
        )
        child = pulumi.ResourceOptions(parent=self, depends_on=[args.postgres])
        self.names = app.render(name, cfg, spec, child)
        self.register_outputs({"imageRef": self.image.ref, "names": self.names})
