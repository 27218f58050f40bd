"""What a change re-runs and replaces: an app source change changes the image and what runs it
(backup, migration, static sync, web, Celery, and the holders of their files) and nothing
else, so `pulumi up` after a code change replaces no database and no network. Backup and
migration share one run key: they run again together, exactly when the migration's inputs
change (image, environment, secrets), and a new migration in the source is named in the
migration step's labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PROD_TLS, SECRETS, app_image, labels_of, run, step

from components import jobs, renderers
from tests.program import ProgramResult

# Pulumi names of what runs the new image (holders: the image's files volumes' fillers).
IMAGE_CONSUMERS = (
    "-backup-run",
    "-migration-run",
    "-migration-run-files",
    "-static-run",
    "-web",
    "-celery",
)


def run_with_app(app: Path, **settings) -> ProgramResult:
    return run("prod", {"appDir": str(app), **PROD_TLS, **settings})


def changed(before: ProgramResult, after: ProgramResult) -> set[str]:
    old = {r.urn: r.plain_inputs for r in before.resources}
    new = {r.urn: r.plain_inputs for r in after.resources}
    assert old.keys() == new.keys(), "the change must not add or remove resources"
    return {urn.rsplit("::", 1)[1] for urn in old if old[urn] != new[urn]}


def run_key(result: ProgramResult, suffix: str) -> str:
    return labels_of(step(result, suffix))[renderers.RUN_KEY_LABEL]


@pytest.fixture
def before(app_copy: Path) -> ProgramResult:
    return run_with_app(app_copy)


def test_source_edit_changes_only_the_image_and_its_consumers(app_copy: Path, before):
    views = app_copy / "core" / "views.py"
    views.write_text(views.read_text() + "\n# a change\n")
    after = run_with_app(app_copy)

    names = changed(before, after)
    image = app_image(before)
    assert image.name in names
    assert before.outputs["imageRef"] != after.outputs["imageRef"]
    assert before.outputs["imageDigest"] != after.outputs["imageDigest"]
    expected = {n for n in (r.name for r in before.resources) if n.endswith(IMAGE_CONSUMERS)}
    assert {"djangostack-migration-run", "djangostack-web", "djangostack-celery"} <= expected
    assert names == {image.name} | expected
    # A new image runs backup, migration and static sync again.
    for suffix in ("-backup-run", "-migration-run", "-static-run"):
        assert run_key(before, suffix) != run_key(after, suffix), suffix
    assert run_key(after, "-backup-run") == run_key(after, "-migration-run")
    assert run_key(after, "-static-run") == after.outputs["imageRef"]


def test_files_excluded_by_dockerignore_change_nothing(app_copy: Path, before):
    (app_copy / "README.md").write_text("notes\n")
    (app_copy / "core" / "__pycache__").mkdir(exist_ok=True)
    (app_copy / "core" / "__pycache__" / "views.cpython-312.pyc").write_bytes(b"\0")
    after = run_with_app(app_copy)
    assert changed(before, after) == set()


def test_a_config_change_outside_the_migrations_inputs_runs_no_step(prod):
    """webWorkers reaches web alone: no backup, no migration, no static sync runs for it."""
    before, after = prod, run("prod", {**PROD_TLS, "webWorkers": 7})
    assert changed(before, after) == {"djangostack-web"}
    for suffix in ("-backup-run", "-migration-run", "-static-run"):
        assert run_key(before, suffix) == run_key(after, suffix), suffix


@pytest.mark.parametrize(
    ("settings", "secrets"),
    [
        ({"env": {"FEATURE_FLAG": "on"}}, None),  # reaches every app container and the step
        ({}, {**SECRETS, "djangoSecretKey": SECRETS["djangoSecretKey"][::-1]}),  # rotated
    ],
)
def test_a_change_of_the_migrations_inputs_runs_backup_and_migration_together(
    prod, settings, secrets
):
    before, after = prod, run("prod", {**PROD_TLS, **settings}, secrets)
    names = changed(before, after)
    assert {"djangostack-backup-run", "djangostack-migration-run"} <= names
    key = run_key(after, "-migration-run")
    assert key != run_key(before, "-migration-run")
    assert run_key(after, "-backup-run") == key


def test_a_rotated_secret_runs_no_static_sync_and_builds_nothing(prod):
    rotated = {**SECRETS, "postgresPassword": "rotated-" + SECRETS["postgresPassword"]}
    before, after = prod, run("prod", PROD_TLS, rotated)
    names = changed(before, after)
    assert app_image(before).name not in names
    assert "djangostack-static-run" not in names


def test_a_build_input_change_reaches_what_runs_the_image(prod):
    """A rebuilt image (new Debian packages here; likewise a new base image or support files)
    must reach the containers and services: on the local engine the image is referenced by a
    tag, which must then differ too, or nothing that runs it is replaced."""
    before, after = prod, run("prod", {**PROD_TLS, "runtimePackages": ["gettext"]})
    names = changed(before, after)
    assert app_image(before).name in names
    assert before.outputs["imageRef"] != after.outputs["imageRef"]
    assert {"djangostack-web", "djangostack-celery", "djangostack-migration-run"} <= names


def test_a_new_migration_is_named_in_the_migration_steps_labels(app_copy: Path, before):
    migration = app_copy / "core" / "migrations" / "0003_add_flag.py"
    migration.write_text("from django.db import migrations\n")
    after = run_with_app(app_copy)
    label = f"{jobs.MIGRATIONS_LABEL}.core"
    old, new = labels_of(step(before, "-migration-run")), labels_of(step(after, "-migration-run"))
    assert old[label] == "0001_initial 0002_task_attempt_demo_effect"
    assert new[label] == "0001_initial 0002_task_attempt_demo_effect 0003_add_flag"
    assert run_key(after, "-backup-run") == run_key(after, "-migration-run")
