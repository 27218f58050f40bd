"""Changing only the app source changes the image and what runs it (backup, migration, static
sync, web, Celery) and nothing else: data services, nginx, networks and volumes stay as they
are, so `pulumi up` after a code change replaces no database and no network."""

from __future__ import annotations

from pathlib import Path

from conftest import COMMAND, PROD_SECRETS, app_image, run

from tests.program import ProgramResult

IMAGE_CONSUMERS = ("-backup-run", "-migration-run", "-static-run", "-web", "-celery")


def run_with_app(app: Path) -> ProgramResult:
    return run("prod", {"appDir": str(app), "tlsSelfSigned": True}, PROD_SECRETS)


def changed(before: ProgramResult, after: ProgramResult) -> set[str]:
    old = {r.urn: r.plain_inputs for r in before.resources}
    new = {r.urn: r.plain_inputs for r in after.resources}
    assert old.keys() == new.keys(), "a source change must not add or remove resources"
    return {urn.rsplit("::", 1)[1] for urn in old if old[urn] != new[urn]}


def test_source_edit_changes_only_the_image_and_its_consumers(app_copy: Path):
    before = run_with_app(app_copy)
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
    migration = next(r for r in after.resources if r.name == "djangostack-migration-run")
    assert migration.plain_inputs["triggers"] == [after.outputs["imageRef"]]


def test_files_excluded_by_dockerignore_change_nothing(app_copy: Path):
    before = run_with_app(app_copy)
    (app_copy / "README.md").write_text("notes\n")
    (app_copy / "core" / "__pycache__").mkdir(exist_ok=True)
    (app_copy / "core" / "__pycache__" / "views.cpython-312.pyc").write_bytes(b"\0")
    after = run_with_app(app_copy)
    assert changed(before, after) == set()


def test_config_only_change_leaves_every_job_trigger_alone(app_copy: Path):
    """A new webWorkers reaches the migration's environment: pulumi-command would run `create`
    again on that change unless `update` is set, i.e. migrate without a backup first. Every job
    has a no-op `update`, so jobs run only when their triggers change (backup and migration
    alike: on a new image)."""
    before = run_with_app(app_copy)
    after = run(
        "prod", {"appDir": str(app_copy), "tlsSelfSigned": True, "webWorkers": 7}, PROD_SECRETS
    )
    assert "djangostack-migration-run" in changed(before, after)
    jobs = [r for r in after.of_type(COMMAND) if r.plain_inputs["create"].startswith("docker run")]
    assert {r.name for r in jobs} >= {"djangostack-backup-run", "djangostack-migration-run"}
    for job in jobs:
        assert job.plain_inputs["update"] == ":", job.name
        old = next(r for r in before.resources if r.urn == job.urn)
        assert old.plain_inputs["triggers"] == job.plain_inputs["triggers"], job.name
