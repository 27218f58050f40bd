"""The scheduled backup (config backupSchedule, docs/operations.md "Scheduled backups"): its
config is checked before anything exists; it is one singleton process per stack (a Swarm
service in prod, a container in dev) running the pre-migration step's backup script from an
image built on the Postgres image, with its secrets as files, a route out only when it copies
to a repository, and the policy pack's approval."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from conftest import (
    CONTAINER,
    IMAGE,
    PROD_TLS,
    SECRETS,
    SERVICE,
    by_role,
    failure,
    holder_files,
    holder_of,
    network_names,
    problem_line,
    run,
)

from components import app, jobs, scheduledbackup
from components.config import BACKUP_PROCESS_ENV
from policy import rules
from policy.evaluate import evaluate
from tests.program import ProgramResult, Registration

REPOSITORY = "rest:http://10.231.9.2:8000/shop"
PASSWORD = "unit-test-restic-password"
KEYS = {"AWS_ACCESS_KEY_ID": "unit-test-key-id", "AWS_SECRET_ACCESS_KEY": "unit-test-key"}
OFFSITE_SECRETS = {
    **SECRETS,
    "backupRepositoryPassword": PASSWORD,
    "backupRepositoryEnv": KEYS,
}


def with_backups(stack: str, **extra: Any) -> ProgramResult:
    config = {**(PROD_TLS if stack == "prod" else {}), "backupSchedule": "6h", **extra}
    secrets = OFFSITE_SECRETS if "backupRepository" in extra else SECRETS
    return run(stack, config, secrets)


def process(result: ProgramResult) -> Registration:
    (found,) = by_role(result, "backup")
    return found


def env_of(r: Registration) -> dict[str, str]:
    if r.type == CONTAINER:
        items = r.plain_inputs["envs"]
    else:
        items = r.plain_inputs["taskSpec"]["containerSpec"]["env"]
        items = [f"{k}={v}" for k, v in items.items()]
    return dict(item.split("=", 1) for item in items)


@pytest.mark.parametrize(
    ("config", "secrets", "key", "what"),
    [
        ({"backupSchedule": "daily"}, SECRETS, "backupSchedule", "whole h/m/s units"),
        ({"backupSchedule": "30s"}, SECRETS, "backupSchedule", "from 1m to 168h"),
        ({"backupSchedule": "200h"}, SECRETS, "backupSchedule", "from 1m to 168h"),
        ({"backupRepository": REPOSITORY}, SECRETS, "backupSchedule", "is required by"),
        (
            {"backupSchedule": "6h", "backupRepository": "sftp:backup@host:/srv/restic"},
            OFFSITE_SECRETS,
            "backupRepository",
            "sftp: is not supported",
        ),
        (
            {"backupSchedule": "6h", "backupRepository": "rest:https://u:pw@host:8000/"},
            OFFSITE_SECRETS,
            "backupRepository",
            "pulumi config set --secret backupRepository",
        ),
        (
            {"backupSchedule": "6h", "backupRepository": REPOSITORY},
            SECRETS,
            "backupRepositoryPassword",
            "pulumi config set --secret backupRepositoryPassword",
        ),
        (
            {"backupSchedule": "6h", "backupRepository": REPOSITORY, "backupRepositoryEnv": KEYS},
            {**SECRETS, "backupRepositoryPassword": PASSWORD},
            "backupRepositoryEnv",
            "it must be a secret",
        ),
        (
            {"backupSchedule": "6h", "backupRepository": REPOSITORY},
            {**OFFSITE_SECRETS, "backupRepositoryEnv": {"PGPASSWORD": "x"}},
            "backupRepositoryEnv",
            "set by the scheduled backup itself",
        ),
    ],
)
def test_bad_backup_config_fails_before_any_resource(config, secrets, key, what):
    line = problem_line(failure("dev", config, secrets).message, key)
    assert what in line


def test_without_a_schedule_there_is_no_backup_process():
    result = run("dev")
    assert by_role(result, "backup") == []
    assert [i.name for i in result.of_type(IMAGE) if "scheduled-backup" in i.name] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_process_runs_the_steps_backup_on_the_schedule(stack):
    result = with_backups(stack)
    found = process(result)
    prefix = f"djangostack-{stack}"
    # prod: a Swarm service with one task that stops before its successor starts; dev: a container.
    if stack == "prod":
        assert found.type == SERVICE
        assert found.plain_inputs["mode"]["replicated"]["replicas"] == 1
        assert found.plain_inputs["updateConfig"]["order"] == "stop-first"
        spec = found.plain_inputs["taskSpec"]["containerSpec"]
        command, health = spec["args"], spec["healthcheck"]["tests"]
        assert found.plain_inputs["taskSpec"]["placement"]["constraints"] == [
            "node.role == manager"
        ]
    else:
        assert found.type == CONTAINER
        command, health = found.plain_inputs["command"], found.plain_inputs["healthcheck"]["tests"]
    assert found.plain_inputs["name"] == f"{prefix}-scheduled-backup"
    assert command == [app.ENTRYPOINT, scheduledbackup.BACKUPD]
    assert health == ["CMD", scheduledbackup.BACKUPD, "health"]
    env = env_of(found)
    # The pre-migration step's environment (backup.sh's, its secret file included), the
    # interval in seconds, the restic host.
    (step,) = [c for c in result.of_type(CONTAINER) if c.name.endswith("-backup-run")]
    assert env.items() >= env_of(step).items()
    assert env["BACKUP_KEEP"] == "7" and env["MEDIA_DIR"] == app.MEDIA_DIR
    assert env["BACKUP_INTERVAL"] == str(6 * 3600)
    assert env["BACKUP_HOST"] == prefix
    assert env["PGPASSWORD_FILE"] == "/run/secrets/PGPASSWORD"
    assert "RESTIC_REPOSITORY_FILE" not in env
    # Only the backend: no route out without a repository.
    assert network_names(result, found) == {f"{prefix}-backend"}
    # The image: the Postgres image plus restic, with the product's entrypoint.
    (image,) = [i for i in result.of_type(IMAGE) if i.name.endswith("-scheduled-backup-image")]
    build_args = image.plain_inputs["buildArgs"]
    assert build_args["POSTGRES_IMAGE"] == "postgres:16-bookworm"
    assert build_args["SUPPORT_IMAGE"].startswith("djangostack/web-support:")
    assert image.plain_inputs["context"]["location"] == str(jobs.BACKUP_CONTEXT)


def test_a_repository_adds_its_secrets_as_files_and_a_route_out():
    result = with_backups("dev", backupRepository=REPOSITORY)
    found = process(result)
    env = env_of(found)
    # restic reads RESTIC_REPOSITORY_FILE and RESTIC_PASSWORD_FILE; the entrypoint exports the
    # backupRepositoryEnv names from their files.
    assert env["RESTIC_REPOSITORY_FILE"] == "/run/secrets/RESTIC_REPOSITORY"
    assert env["RESTIC_PASSWORD_FILE"] == "/run/secrets/RESTIC_PASSWORD"
    assert env[app.SECRET_ENV_VAR] == "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
    assert env["AWS_SECRET_ACCESS_KEY_FILE"] == "/run/secrets/AWS_SECRET_ACCESS_KEY"
    values = [REPOSITORY, PASSWORD, *KEYS.values()]
    assert not [v for v in values if any(v in item for item in found.plain_inputs["envs"])]
    files = holder_files(holder_of(result, found))
    assert files["RESTIC_REPOSITORY"] == REPOSITORY
    assert files["RESTIC_PASSWORD"] == PASSWORD
    assert files["AWS_ACCESS_KEY_ID"] == KEYS["AWS_ACCESS_KEY_ID"]
    assert network_names(result, found) == {"djangostack-dev-backend", "djangostack-dev-egress"}


def test_the_reserved_names_cover_what_the_process_sets():
    result = with_backups("dev", backupRepository=REPOSITORY)
    names = {name.removesuffix("_FILE") for name in env_of(process(result))}
    assert names - {app.SECRET_ENV_VAR, *KEYS} <= BACKUP_PROCESS_ENV


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_policy_pack_accepts_the_process(stack):
    result = with_backups(stack, backupRepository=REPOSITORY, publicBindAddress="192.0.2.10")
    records = [
        rules.StackResource(r.type, r.name, r.urn, r.plain_inputs, r.property_dependencies)
        for r in result.resources
        if r.custom
    ]
    assert process(result)  # the pack saw it
    assert [str(v) for v in evaluate(records, {rules.DAEMON_NNP_KEY: True})] == []


def health(tmp_path, **stamps: int) -> tuple[int, str]:
    """`backupd health` over a backup directory holding `stamps` (epoch seconds)."""
    for name, value in stamps.items():
        (tmp_path / f".djangostack-{name.replace('_', '-')}").write_text(f"{value}\n")
    done = subprocess.run(
        ["sh", str(jobs.BACKUP_CONTEXT / "backupd"), "health"],
        env={"PATH": "/usr/bin:/bin", "BACKUP_DIR": str(tmp_path), "BACKUP_INTERVAL": "60"},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout.strip()


def test_the_health_check_fails_when_the_last_good_backup_is_older_than_twice_the_schedule(
    tmp_path,
):
    now = int(time.time())
    # Just started, no backup yet: the first is one schedule away.
    assert health(tmp_path, backup_started=now)[0] == 0
    # A good backup within twice the schedule (120 s), then one older than that.
    assert health(tmp_path, last_backup=now - 100, backup_started=now - 1000) == (
        0,
        "healthy: the last good backup is 100s old",
    )
    code, said = health(tmp_path, last_backup=now - 200)
    assert code == 1
    assert said == (
        "unhealthy: the last good backup is 200s old, more than twice the schedule (120s)"
    )
    # Never a good backup, started long ago.
    (tmp_path / ".djangostack-last-backup").unlink()
    code, said = health(tmp_path, backup_started=now - 500)
    assert code == 1 and said.startswith("unhealthy: no good backup in the 500s since the start")
