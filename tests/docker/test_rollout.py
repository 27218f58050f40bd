"""Releases on the real engine, under continuous HTTPS load through nginx (loopback only).

One prod stack for the module, tests in file order: a good release rolls out with zero failed
requests; a release whose migration raises stops before web changes; a release whose web
never turns healthy is rolled back by Swarm; deploying the previous version tag rolls back.
Each release runs the harness's in-place `docker service update`: the rollout is Docker's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.program import ProgramFailed
from tests.support.load import LoadResult
from tests.support.prodstack import ProdStack, prod_stack

SERVICE = "docker:index/service:Service"
CONTAINER = "docker:index/container:Container"
STATIC_RE = re.compile(r"/static/core/site\.[0-9a-f]{12}\.css")
LOAD_WORKERS = 3
LOAD_MAX_SECONDS = 600  # bound: no release here takes that long
BROKEN_MIGRATION = """from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("deliberately broken migration")


class Migration(migrations.Migration):
    dependencies = [("core", "{latest}")]
    operations = [migrations.RunPython(fail)]
"""
# A release whose Gunicorn runs but never answers the health probe on port 8000 (the project's
# own gunicorn.conf.py overrides the image's defaults), whatever health endpoint is probed.
NEVER_HEALTHY = """
bind = "127.0.0.1:8001"  # deliberately broken release: nothing answers on 8000
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    with prod_stack(tmp_path_factory.mktemp("rollout"), "rollout") as realized:
        yield realized


def _versions(result: LoadResult) -> set[str]:
    return {json.loads(body)["version"] for body in result.bodies}


def _report(capsys: pytest.CaptureFixture[str], what: str, result: LoadResult) -> None:
    # Printed past pytest's capture so the figures appear in every CI log.
    with capsys.disabled():
        print(f"\n[rollout] {what}: {result.summary()} versions={result.bodies}")


def _assert_no_failed_request(result: LoadResult) -> None:
    assert result.failures == [], result.summary()
    assert set(result.statuses) == {200}, result.statuses


@pytest.fixture
def edit(stack: ProdStack) -> Iterator[Callable[[str, str], None]]:
    """`edit(relative_path, new_text)` changes the stack's app copy; undone after the test."""
    originals: dict[Path, str | None] = {}

    def change(relative: str, text: str) -> None:
        path = stack.app_dir / relative
        originals.setdefault(path, path.read_text() if path.exists() else None)
        path.write_text(text)

    yield change
    for path, text in originals.items():
        if text is None:
            path.unlink()
        else:
            path.write_text(text)


def test_web_update_under_load_drops_no_request(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.version() == "1.0.0"
    old_page = stack.get("/").text
    old_css = STATIC_RE.search(old_page).group(0)
    css = stack.app_dir / "core" / "static" / "core" / "site.css"
    css.write_text(css.read_text() + "\n/* release 1.1.0 */\n")
    postgres_before = stack.container("postgres").id

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    realization = stack.realize(imageTag="1.1.0")
    result = load.stop()
    _report(capsys, "web 1.0.0 -> 1.1.0", result)

    _assert_no_failed_request(result)
    # Both generations answered while the load ran: the switch happened under load.
    assert _versions(result) == {"1.0.0", "1.1.0"}
    assert {stack.version() for _ in range(10)} == {"1.1.0"}
    assert realization.action(SERVICE, "djangostack-web") == "updated"  # in place, by Swarm
    assert realization.action(CONTAINER, "djangostack-postgres-container") == "unchanged"
    assert stack.container("postgres").id == postgres_before
    # Pages rendered by the old release keep their hashed static names working.
    new_css = STATIC_RE.search(stack.get("/").text).group(0)
    assert new_css != old_css
    assert stack.get(old_css).status_code == 200
    assert stack.get(new_css).status_code == 200


def test_failed_migration_stops_the_release_and_old_web_keeps_serving(
    stack: ProdStack, edit: Callable[[str, str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = stack.app_dir / "core" / "migrations"
    latest = max(path.stem for path in migrations.glob("[0-9]*.py"))
    # Named and placed after every real migration: the graph stays linear.
    edit("core/migrations/9999_broken.py", BROKEN_MIGRATION.replace("{latest}", latest))
    web, celery = stack.service("web"), stack.service("celery")
    nginx_before = stack.container("nginx").id

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    with pytest.raises(ProgramFailed) as failure:
        stack.realize(imageTag="1.2.0")
    result = load.stop()
    _report(capsys, "release 1.2.0 with a failing migration", result)

    assert "deliberately broken migration" in str(failure.value)
    _assert_no_failed_request(result)
    assert _versions(result) == {"1.1.0"}
    # Nothing after the migration ran: web, Celery and nginx are untouched.
    for service, before in ((web, web.attrs), (celery, celery.attrs)):
        service.reload()
        assert service.attrs["Version"] == before["Version"]
    assert stack.container("nginx").id == nginx_before
    applied = stack.psql("SELECT count(*) FROM django_migrations WHERE name = '9999_broken'")
    assert applied == "0"


def test_web_that_never_turns_healthy_is_rolled_back(
    stack: ProdStack, edit: Callable[[str, str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    config = stack.app_dir / "gunicorn.conf.py"
    edit("gunicorn.conf.py", config.read_text() + NEVER_HEALTHY)
    image_before = stack.service("web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    with pytest.raises(ProgramFailed) as failure:
        stack.realize(imageTag="1.3.0")
    result = load.stop()
    _report(capsys, "release 1.3.0 whose web never turns healthy", result)

    message = str(failure.value)
    assert f"{stack.name}-web" in message and "rollback" in message, message
    _assert_no_failed_request(result)
    # The unhealthy generation never received traffic.
    assert _versions(result) == {"1.1.0"}
    web = stack.service("web")
    assert web.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image_before
    assert {c.attrs["Config"]["Image"] for c in stack.containers("web")} == {image_before}
    assert {stack.version() for _ in range(10)} == {"1.1.0"}


def test_deploying_the_previous_version_tag_rolls_back_without_downtime(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    css = stack.app_dir / "core" / "static" / "core" / "site.css"
    css.write_text(css.read_text().replace("\n/* release 1.1.0 */\n", ""))

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    stack.realize(imageTag="1.0.0")
    result = load.stop()
    _report(capsys, "rollback 1.1.0 -> 1.0.0", result)

    _assert_no_failed_request(result)
    assert {stack.version() for _ in range(10)} == {"1.0.0"}
    assert stack.get("/health/").json() == {"database": "ok", "redis": "ok"}
