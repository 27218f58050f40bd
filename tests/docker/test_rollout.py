"""Releases deployed by the Pulumi engine, under continuous HTTPS load through nginx (loopback
only).

One prod stack for the module, tests in file order: a good release rolls out with zero failed
requests; a release whose migration raises stops before web changes, and once the cause is
fixed the next deploy runs the failed migration again; a release whose web never turns
healthy, or crashes soon after it does, is rolled back by Swarm; deploying the first release
again rolls back. Web and Celery are Swarm services that the engine updates in place: the
rollout itself is Swarm's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.models.containers import Container

from components.hardening import ROLE_LABEL, STACK_LABEL
from tests.support import figures
from tests.support.checks import docker_time, wait_for
from tests.support.engine import DeployFailed
from tests.support.load import LoadResult
from tests.support.prodstack import ProdStack, prod_stack

SERVICE = "docker:index/service:Service"
CONTAINER = "docker:index/container:Container"
STATIC_RE = re.compile(r"/static/core/site\.[0-9a-f]{12}\.css")
LOAD_WORKERS = 3
LOAD_MAX_SECONDS = 600  # bound: no release here takes that long
ROLLED_BACK_SECONDS = 120
# A data migration that raises on a row it cannot handle (as real ones do on unexpected data):
# fixing the data, not the code, lets the same release through, so only the deploy's
# `--replace` of the failed step (deploy.failed_steps) can run it again.
BLOCKING_TEXT = "a message migration 9999 cannot handle"
BROKEN_MIGRATION = """from django.db import migrations


def check(apps, schema_editor):
    Message = apps.get_model("core", "Message")
    if Message.objects.filter(text={blocking!r}).exists():
        raise RuntimeError("deliberately broken migration: a message it cannot handle")


class Migration(migrations.Migration):
    dependencies = [("core", "{latest}")]
    operations = [migrations.RunPython(check, migrations.RunPython.noop)]
"""
# A release whose Gunicorn runs but never answers the health probe on port 8000 (the project's
# own gunicorn.conf.py overrides the image's defaults), whatever health endpoint is probed.
NEVER_HEALTHY = """
bind = "127.0.0.1:8001"  # deliberately broken release: nothing answers on 8000
"""
# A release that turns healthy, takes traffic, then dies: its Gunicorn master (PID 1) exits
# CRASH_AFTER_READY seconds after it is ready, its workers with it, mid-request or not. Within
# the default releaseDelay (5 s) of turning healthy: Swarm rolls back before it replaces the
# next batch's old tasks (docs/operations.md, "Release speed").
CRASH_AFTER_READY = 3
CRASH_EXIT_CODE = 3
CRASH_CUT_SECONDS = 2  # a cut answer reaches the client this soon after its server died
CRASHES_SOON = f"""
import os
import threading


def when_ready(server):  # deliberately broken release: the server dies soon after it is ready
    threading.Timer({CRASH_AFTER_READY}, os._exit, ({CRASH_EXIT_CODE},)).start()
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    with prod_stack(tmp_path_factory.mktemp("rollout"), "rollout") as deployed:
        deployed.first_image = deployed.outputs["imageRef"]
        yield deployed


def _versions(result: LoadResult) -> set[str]:
    return {json.loads(body)["version"] for body in result.bodies}


def _report(capsys: pytest.CaptureFixture[str], what: str, result: LoadResult) -> None:
    figures.report(capsys, "rollout", f"{what}: {result.summary()} versions={result.bodies}")


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
    deploy = stack.up(imageTag="1.1.0")
    result = load.stop()
    _report(capsys, "web 1.0.0 -> 1.1.0", result)

    _assert_no_failed_request(result)
    # Both generations answered while the load ran: the switch happened under load.
    assert _versions(result) == {"1.0.0", "1.1.0"}
    assert {stack.version() for _ in range(10)} == {"1.1.0"}
    assert deploy.op(SERVICE, "djangostack-web") == "update"  # in place, rolled by Swarm
    assert deploy.op(CONTAINER, "djangostack-postgres-container") == "same"
    assert stack.container("postgres").id == postgres_before
    # Pages rendered by the old release keep their hashed static names working.
    new_css = STATIC_RE.search(stack.get("/").text).group(0)
    assert new_css != old_css
    assert stack.get(old_css).status_code == 200
    assert stack.get(new_css).status_code == 200


def test_failed_migration_stops_the_release_and_runs_again_once_fixed(
    stack: ProdStack, edit: Callable[[str, str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = stack.app_dir / "core" / "migrations"
    latest = max(path.stem for path in migrations.glob("[0-9]*.py"))
    # Named and placed after every real migration: the graph stays linear.
    edit(
        "core/migrations/9999_broken.py",
        BROKEN_MIGRATION.replace("{latest}", latest).replace("{blocking!r}", repr(BLOCKING_TEXT)),
    )
    assert stack.post("/api/messages/", {"text": BLOCKING_TEXT}).status_code == 201
    web, celery = stack.service("web"), stack.service("celery")
    tasks_before = {c.id for role in ("web", "celery") for c in stack.containers(role)}
    nginx_before = stack.container("nginx").id

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    with pytest.raises(DeployFailed) as failure:
        stack.up(imageTag="1.2.0")
    result = load.stop()
    _report(capsys, "release 1.2.0 with a failing migration", result)

    # The engine's error is the step's: its name, its exit code and its traceback's last lines.
    output = failure.value.output
    assert f"deploy step '{stack.name}-migrate' exited with code 1" in output, output[-3000:]
    assert "RuntimeError: deliberately broken migration" in output, output[-3000:]
    assert failure.value.ops[(CONTAINER, "djangostack-migration-run")] == "replace"
    _assert_no_failed_request(result)
    assert _versions(result) == {"1.1.0"}
    # Nothing after the migration ran: web, Celery and nginx are untouched.
    # (The spec, not the version index: Swarm bumps that itself when it marks the previous
    # rollout completed, one monitor period after its last task.)
    for service, before in ((web, web.attrs), (celery, celery.attrs)):
        service.reload()
        assert service.attrs["Spec"] == before["Spec"], service.name
    assert {c.id for role in ("web", "celery") for c in stack.containers(role)} == tasks_before
    assert stack.container("nginx").id == nginx_before
    applied = "SELECT count(*) FROM django_migrations WHERE name = '9999_broken'"
    assert stack.psql(applied) == "0"

    # The operator fixes the data and deploys the same release again: nothing the migration
    # runs with changed, yet the failed step runs again, then web and Celery roll forward.
    stack.psql(f"DELETE FROM core_message WHERE text = '{BLOCKING_TEXT}'")  # noqa: S608
    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    deploy = stack.up(imageTag="1.2.0")
    result = load.stop()
    _report(capsys, "release 1.2.0 again after fixing the data", result)

    assert deploy.op(CONTAINER, "djangostack-migration-run") == "replace"
    migrate = stack.client.containers.get(f"{stack.name}-migrate").attrs["State"]
    assert migrate["ExitCode"] == 0
    assert stack.psql(applied) == "1"
    assert deploy.op(SERVICE, "djangostack-web") == "update"
    _assert_no_failed_request(result)
    assert _versions(result) <= {"1.1.0", "1.2.0"}
    assert {stack.version() for _ in range(10)} == {"1.2.0"}


def _rolled_back_release(
    stack: ProdStack,
    edit: Callable[[str, str], None],
    capsys: pytest.CaptureFixture[str],
    tag: str,
    gunicorn_conf: str,
    what: str,
) -> tuple[LoadResult, str, list[Container]]:
    """Deploy `tag` with `gunicorn_conf` added to the project's gunicorn.conf.py, under load:
    the deploy fails, Swarm rolls web back (its spec, then every running task, on the image
    before: a stopping task may outlive the deploy's report, a crashed one is replaced after the
    restart delay). The load's result, the deploy's output and the failed
    release's web containers."""
    config = stack.app_dir / "gunicorn.conf.py"
    edit("gunicorn.conf.py", config.read_text() + gunicorn_conf)
    web = stack.service("web")
    image_before = web.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    serving = stack.version()
    existing = {c.id for c in _web_containers(stack)}

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    with pytest.raises(DeployFailed) as failure:
        stack.up(imageTag=tag)
    result = load.stop()
    _report(capsys, f"release {tag} whose web {what}", result)

    output = failure.value.output
    assert "djangostack-web" in output and "rollback" in output, output[-3000:]
    web.reload()
    assert web.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image_before
    wait_for(
        f"every web task on {image_before}",
        lambda: {c.attrs["Config"]["Image"] for c in stack.containers("web")} == {image_before},
        ROLLED_BACK_SECONDS,
    )
    assert {stack.version() for _ in range(10)} == {serving}
    # The failed release's containers that ran (Swarm may also have created one that the
    # rollback cancelled before it started).
    failed = [
        c for c in _web_containers(stack)
        if c.id not in existing and c.attrs["Config"]["Image"] != image_before
        and "Health" in c.attrs["State"]
    ]  # fmt: skip
    assert failed
    return result, output, failed


def _web_containers(stack: ProdStack) -> list[Container]:
    """Every web task container, running or exited."""
    selector = {"label": [f"{STACK_LABEL}={stack.name}", f"{ROLE_LABEL}=web"]}
    return stack.client.containers.list(all=True, filters=selector)


def _passed_a_probe(container: Container) -> bool:
    """Its health check passed at least once (Docker keeps the last probes)."""
    return any(probe["ExitCode"] == 0 for probe in container.attrs["State"]["Health"]["Log"])


def test_web_that_never_turns_healthy_is_rolled_back(
    stack: ProdStack, edit: Callable[[str, str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    result, output, failed = _rolled_back_release(
        stack, edit, capsys, "1.3.0", NEVER_HEALTHY, "never turns healthy"
    )
    _assert_no_failed_request(result)
    assert not any(_passed_a_probe(c) for c in failed)
    # The engine reports that web's update did not converge: Swarm rolled it back.
    assert "rollback completed" in output, output[-3000:]
    # The unhealthy generation never received traffic.
    assert _versions(result) == {stack.version()}


def test_web_that_crashes_soon_after_turning_healthy_is_rolled_back(
    stack: ProdStack, edit: Callable[[str, str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """Swarm sees the new task fail within releaseDelay of turning healthy and rolls back
    before it replaces the other old task."""
    result, _, failed = _rolled_back_release(
        stack, edit, capsys, "1.4.0", CRASHES_SOON, "crashes soon after turning healthy"
    )
    assert {c.attrs["State"]["Status"] for c in failed} == {"exited"}
    # A task of the release turned healthy, then crashed (not the never-healthy case). Others
    # may not have: a replacement Swarm started that the rollback stopped, or one that crashed
    # before its first probe on loaded cores.
    crashed = [c for c in failed if c.attrs["State"]["ExitCode"] == CRASH_EXIT_CODE]
    assert any(_passed_a_probe(c) for c in crashed), [c.attrs["State"] for c in failed]
    _assert_failed_only_where_the_crash_cut(result, crashed)


def _assert_failed_only_where_the_crash_cut(result: LoadResult, crashed: list[Container]) -> None:
    """The rollout fails no request; the crash itself may. A process that dies abruptly cuts the
    answers it is writing: nginx has already passed their headers on and cannot send them
    elsewhere. So a failure may only be a cut answer, received as a container crashed, and at most
    one per load thread and crash (each thread has one request in flight)."""
    assert set(result.statuses) == {200}, result.statuses
    assert set(result.failures) <= {"ChunkedEncodingError"}, result.summary()
    assert len(result.failures) <= LOAD_WORKERS * len(crashed), result.summary()
    exits = [docker_time(c.attrs["State"]["FinishedAt"]).timestamp() for c in crashed]
    for at in result.failed_at:
        assert min(abs(at - exited) for exited in exits) < CRASH_CUT_SECONDS, (at, exits)


def test_deploying_the_first_release_again_rolls_back_without_downtime(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first release's source (the broken changes were undone after their tests).
    css = stack.app_dir / "core" / "static" / "core" / "site.css"
    css.write_text(css.read_text().replace("\n/* release 1.1.0 */\n", ""))
    serving = stack.version()

    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS)
    deploy = stack.up(imageTag="1.0.0")
    result = load.stop()
    _report(capsys, f"rollback {serving} -> 1.0.0", result)

    _assert_no_failed_request(result)
    assert deploy.outputs["imageRef"] == stack.first_image  # the same source and tag
    assert deploy.op(SERVICE, "djangostack-web") == "update"
    assert {stack.version() for _ in range(10)} == {"1.0.0"}
    assert stack.get("/health/").json() == {"database": "ok", "redis": "ok"}
