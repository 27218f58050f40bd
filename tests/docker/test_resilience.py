"""Crashes, restarts, a Postgres upgrade, backups and isolation, on one prod stack deployed by
the Pulumi engine.

Tests run in file order against the module's stack. Crashes are real: the main process of a
container (or of a Swarm task) is SIGKILLed from the host, and recovery is left entirely to
the restart policy or to Swarm. Recovery times are printed (figures, not asserted).
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support import figures
from tests.support.checks import docker_time, http_get_in
from tests.support.prodstack import ROOT, ProdStack, prod_stack

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
SCRIPTS = ROOT / "scripts"
UPGRADE_BASE = "djangostack-testbed/postgres:latest"
POLL_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def postgres_upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new Postgres image tag (a distinct image on the same major version), removed after
    the stack that runs it is gone."""
    client = docker.from_env(timeout=300)
    tag = f"djangostack-testbed/postgres:upgrade-{tmp_path_factory.mktemp('tag').name}"
    dockerfile = f"FROM {UPGRADE_BASE}\nLABEL djangostack.test.upgrade={tag}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    yield tag
    client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_upgrade: str) -> Iterator[ProdStack]:
    with prod_stack(tmp_path_factory.mktemp("resilience"), "resil") as deployed:
        yield deployed


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    figures.report(capsys, "resilience", line)


def _wait_site_healthy(stack: ProdStack) -> float:
    """Poll /health/ through nginx until it answers 200; seconds waited."""
    began = time.monotonic()
    while True:
        try:
            if stack.get("/health/", timeout=5).status_code == 200:
                return time.monotonic() - began
        except OSError:
            pass  # nginx itself may be restarting
        assert time.monotonic() - began < POLL_TIMEOUT_SECONDS, "site not healthy again"
        time.sleep(0.5)


def _ids(stack: ProdStack, role: str) -> set[str]:
    return {c.id for c in stack.containers(role)}


# Exact row count of every table of the public schema, in one statement.
ROW_COUNTS_SQL = """
SELECT table_name, (xpath('/row/c/text()', query_to_xml(
    format('SELECT count(*) AS c FROM %I', table_name), false, true, '')))[1]::text
FROM information_schema.tables
WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1
"""


def _row_counts(stack: ProdStack, database: str | None = None) -> dict[str, int]:
    rows = (line.split("|") for line in stack.psql(ROW_COUNTS_SQL, database).splitlines())
    return {table: int(count) for table, count in rows}


def test_rows_written_before_killing_postgres_are_still_there(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = [f"before the crash {i}" for i in range(5)]
    for text in texts:
        assert stack.post("/api/messages/", {"text": text}).status_code == 201
    app_before = _ids(stack, "web") | _ids(stack, "celery")

    seconds = stack.kill_main_process("postgres")
    site = _wait_site_healthy(stack)
    _report(capsys, f"postgres SIGKILL -> healthy in {seconds:.1f}s, site ok {site:.1f}s later")

    listed = stack.get("/api/messages/").json()
    assert set(texts) <= {m["text"] for m in listed["messages"]}
    # Web and Celery rode out the outage: no task was restarted or replaced.
    assert _ids(stack, "web") | _ids(stack, "celery") == app_before


def test_redis_data_with_persistence_survives_a_restart(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    redis = stack.container("redis")
    assert redis.exec_run(["redis-cli", "CONFIG", "GET", "appendonly"]).output.split() == [
        b"appendonly",
        b"yes",
    ]
    assert redis.exec_run(["redis-cli", "SET", "resilience:key", "kept"]).output.strip() == b"OK"
    celery_before = _ids(stack, "celery")

    began = time.monotonic()
    redis.restart(timeout=30)  # SIGTERM: Redis writes its append-only file and exits
    stack.wait_healthy("redis", 1)
    _report(capsys, f"redis restart -> healthy in {time.monotonic() - began:.1f}s")

    assert redis.exec_run(["redis-cli", "GET", "resilience:key"]).output.strip() == b"kept"
    # Celery reconnected to the broker by itself and still completes tasks.
    task_id = stack.post("/api/tasks/word-count/", {"text": "one two three"}).json()["task_id"]
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while (result := stack.get(f"/api/tasks/{task_id}/").json())["state"] != "SUCCESS":
        assert time.monotonic() < deadline, result
        time.sleep(0.5)
    assert result["result"] == 3
    assert _ids(stack, "celery") == celery_before


@pytest.mark.parametrize("role", ["redis", "nginx", "web", "celery"])
def test_sigkill_of_the_main_process_comes_back_healthy(
    stack: ProdStack, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seconds = stack.kill_main_process(role)
    site = _wait_site_healthy(stack)
    _report(capsys, f"{role} SIGKILL -> healthy in {seconds:.1f}s, site ok {site:.1f}s later")
    assert stack.get("/health/").json() == {"database": "ok", "redis": "ok"}


def test_postgres_replaced_by_a_new_image_tag_keeps_all_data(
    stack: ProdStack, postgres_upgrade: str
) -> None:
    counts = _row_counts(stack)
    assert counts["core_message"] >= 5
    old_id = stack.container("postgres").id

    result = stack.up(postgresImage=postgres_upgrade)

    assert result.op(CONTAINER, "djangostack-postgres-container") == "replace"
    assert result.op(VOLUME, "djangostack-postgres-data") == "same"
    postgres = stack.container("postgres")
    assert postgres.id != old_id and postgres.attrs["Config"]["Image"] == postgres_upgrade
    assert _row_counts(stack) == counts
    _wait_site_healthy(stack)  # web found the new container through Docker DNS


def _restore(stack: ProdStack, *args: str) -> str:
    return stack.script("restore.sh", *args)


def test_backup_taken_before_a_migration_restores_with_identical_row_counts(
    stack: ProdStack,
) -> None:
    for i in range(3):
        stack.post("/api/messages/", {"text": f"before the release {i}"})
    counts = _row_counts(stack)
    backups_before = _restore(stack, "--list").split()

    result = stack.up(imageTag="1.0.1")  # a release: backup, then migrate

    assert result.op(CONTAINER, "djangostack-backup-run") == "replace"
    assert result.op(CONTAINER, "djangostack-migration-run") == "replace"
    # The steps' containers stay after they exit: the backup had finished before the
    # migration started.
    backup, migration = (
        stack.client.containers.get(f"{stack.name}-{step}").attrs["State"]
        for step in ("backup", "migrate")
    )
    assert backup["ExitCode"] == 0 and migration["ExitCode"] == 0
    assert docker_time(backup["FinishedAt"]) <= docker_time(migration["StartedAt"])
    backups = _restore(stack, "--list").split()
    new = set(backups) - set(backups_before)
    step_output = stack.client.containers.get(f"{stack.name}-backup").logs().decode()
    assert len(new) == 1, f"backups {backups_before} -> {backups}; the step said:\n{step_output}"
    (new_backup,) = new
    assert backups[0] == new_backup  # newest first

    # Into a fresh database: every table has exactly the rows of the live one at backup time.
    _restore(stack, "--into", "restore_check", new_backup)
    assert _row_counts(stack, "restore_check") == counts
    assert counts["core_message"] >= 8

    # Into the live database: a row written after the backup is gone, the app comes back.
    stack.post("/api/messages/", {"text": "after the backup"})
    _restore(stack)  # the newest backup
    assert _row_counts(stack) == counts
    stack.wait_healthy("web", 2)
    _wait_site_healthy(stack)


def _outside_url() -> str:
    """An HTTP server outside Docker that this machine reaches: its own Debian mirror (read
    from the apt sources, never named here)."""
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1].rstrip("/") + "/"
    raise AssertionError("no apt mirror configured on this machine")


def _tcp_from(container: docker.models.containers.Container, host: str, port: int) -> str:
    """'open' or 'shut': a TCP connect from inside `container` (bash's /dev/tcp)."""
    probe = f"timeout 5 bash -c '</dev/tcp/{host}/{port}' 2>/dev/null && echo open || echo shut"
    return container.exec_run(["bash", "-c", probe]).output.decode().strip()


def test_only_nginx_is_reachable_and_the_backend_has_no_way_out(stack: ProdStack) -> None:
    nginx, postgres, redis = (stack.container(r) for r in ("nginx", "postgres", "redis"))
    web, celery = stack.containers("web")[0], stack.container("celery")
    # From the host: only nginx publishes ports, and Postgres and Redis sit on the internal
    # backend network only. (Connecting to overlay addresses from the host proves nothing
    # here: the host's default gateway accepts any TCP connection.)
    for container in (postgres, redis, web, celery):
        assert not any(container.ports.values()), container.name
    assert {k for k, v in nginx.ports.items() if v} == {"8080/tcp", "8443/tcp"}
    backend = f"{stack.name}-backend"
    assert stack.client.networks.get(backend).attrs["Internal"] is True
    for container in (postgres, redis, celery):
        assert set(container.attrs["NetworkSettings"]["Networks"]) == {backend}, container.name
    # From nginx (edge network): web answers, Postgres and Redis do not.
    assert _tcp_from(nginx, "web", 8000) == "open"
    assert _tcp_from(nginx, "postgres", 5432) == "shut"
    assert _tcp_from(nginx, "redis", 6379) == "shut"
    # From the backend: the outside server that web reaches through the edge network does
    # not answer Celery (backend only), nor does nginx on the edge network.
    outside = _outside_url()
    assert http_get_in(web, outside)[0] > 0, "positive control: web reaches the outside"
    assert http_get_in(celery, outside)[0] == -1
    (nginx_ip,) = [n["IPAddress"] for n in nginx.attrs["NetworkSettings"]["Networks"].values()]
    assert http_get_in(web, f"http://{nginx_ip}:8080/nginx-health")[0] == 200
    assert http_get_in(celery, f"http://{nginx_ip}:8080/nginx-health")[0] == -1


def test_backup_by_hand_restores_with_identical_row_counts(stack: ProdStack) -> None:
    counts = _row_counts(stack)
    made = stack.script("backup.sh", "--keep", "2").strip()
    assert _restore(stack, "--list").split()[:1] == [made]
    assert len(_restore(stack, "--list").split()) == 2  # retention applied
    _restore(stack, "--into", "by_hand", made)
    assert _row_counts(stack, "by_hand") == counts


def test_restore_refuses_a_file_outside_the_backup_volume(stack: ProdStack) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPTS / "restore.sh"), "--prefix", stack.name, "--into", "x", "../p"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "file name from --list" in done.stderr
