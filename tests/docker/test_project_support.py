"""A project that brings neither a health view nor a Gunicorn config (tests/fixtures/project)
runs in the runtime image: the product's Gunicorn config serves its WSGI_APPLICATION and the
product's health endpoint answers for the database and Redis (docker/support)."""

from __future__ import annotations

import secrets
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from docker.models.containers import Container
from test_image import HARDENED, start_backing, wait_for

from components import app, project
from components.jobs import STATIC_DIR, STATIC_SYNC

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "project"
# The reference app's pins (app/requirements.txt): the builds share BuildKit's pip cache.
REQUIREMENTS = "Django==5.2.19\ngunicorn==27.0.1\npsycopg==3.3.9\n"


@dataclass
class Running:
    db: Container
    web: Container
    url: str

    def health(self) -> requests.Response:
        return requests.get(self.url + app.HEALTH_PATH, timeout=10)

    def docker_health(self) -> str:
        self.web.reload()
        return (self.web.attrs["State"].get("Health") or {}).get("Status", "")


@pytest.fixture(scope="module")
def running(
    docker_client: docker.DockerClient,
    build_image: Any,
    tmp_path_factory: pytest.TempPathFactory,
    labels: dict[str, str],
) -> Iterator[Running]:
    context = tmp_path_factory.mktemp("fixture-project")
    shutil.copytree(FIXTURE, context, dirs_exist_ok=True)
    (context / "requirements.txt").write_text(REQUIREMENTS)
    assert not (context / "gunicorn.conf.py").exists()
    tag = f"djangostack/fixture-project:{secrets.token_hex(6)}"
    settings = project.settings_module(context)  # what the program passes
    build_image(context, tag, build_args={"DJANGO_SETTINGS_MODULE": settings})

    run_id = f"support-{secrets.token_hex(4)}"
    backing = start_backing(docker_client, run_id, labels)
    run, db, redis, password = backing.run, backing.db, backing.redis, backing.password
    web = run(
        tag,
        "web",
        user="10001:10001",
        ports={"8000/tcp": ("127.0.0.1", None)},
        environment={
            "SECRET_KEY": secrets.token_urlsafe(60),
            "PGHOST": f"{run_id}-db",
            "PGUSER": "app",
            "PGPASSWORD": password,
            "PGDATABASE": "app",
            "REDIS_URL": f"redis://{run_id}-redis:6379/0",
        },
    )
    web.reload()
    port = web.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    try:
        yield Running(db, web, f"http://127.0.0.1:{port}")
    finally:
        for container in (web, redis, db):
            container.remove(force=True)
        backing.network.remove()


def test_project_without_health_view_or_gunicorn_config_becomes_healthy(running: Running) -> None:
    status = wait_for(
        "a settled Docker health status",
        lambda: running.docker_health() in ("healthy", "unhealthy") and running.docker_health(),
        120,
    )
    assert status == "healthy", running.web.logs().decode()[-3000:]
    response = running.health()
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}
    # Served by the product's Gunicorn config, with the project's app behind the endpoint.
    logs = running.web.logs().decode()
    assert "Booting worker" in logs
    home = requests.get(running.url + "/", headers={"Host": "localhost"}, timeout=10)
    assert home.status_code == 404  # Django answered: the fixture has no URLs


def test_health_answers_503_when_postgres_stops(running: Running) -> None:
    running.db.stop()
    # A 503 Response is falsy (requests): wait on its JSON.
    checks = wait_for(
        "health 503 without Postgres",
        lambda: (r := running.health()).status_code == 503 and r.json(),
        30,
    )
    assert checks["redis"] == "ok"
    assert checks["database"].startswith("error: "), checks
    status = wait_for(
        "Docker: unhealthy", lambda: running.docker_health() == "unhealthy" and "unhealthy", 90
    )
    assert status == "unhealthy"


def _project_with_settings(root: Path, extra_settings: str) -> Path:
    """The fixture project with lines appended to its settings."""
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True)
    (root / "requirements.txt").write_text(REQUIREMENTS)
    settings = root / "config" / "settings" / "production.py"
    settings.write_text(settings.read_text() + extra_settings)
    return root


def test_static_files_land_where_the_sync_job_copies_from(
    docker_client: docker.DockerClient, build_image: Any, tmp_path: Path
) -> None:
    """collectstatic writes to the project's own STATIC_ROOT; the static sync job's command
    (components/jobs.py) finds the files at the image's fixed path."""
    context = _project_with_settings(
        tmp_path,
        'STATIC_ROOT = BASE_DIR / "public" / "assets"\nSTATICFILES_DIRS = [BASE_DIR / "front"]\n',
    )
    (context / "front").mkdir()
    (context / "front" / "site.css").write_text("body { color: #123; }\n")
    tag = f"djangostack/fixture-static:{secrets.token_hex(6)}"
    build_image(context, tag, build_args={"DJANGO_SETTINGS_MODULE": "config.settings.production"})
    copied = docker_client.containers.run(
        tag,
        ["sh", "-c", f"{shlex.join(STATIC_SYNC)} && cat {STATIC_DIR}/site.css"],
        user="10001:10001",
        remove=True,
        **{**HARDENED, "tmpfs": {STATIC_DIR: "uid=10001"}},
    )
    assert copied.decode() == "body { color: #123; }\n"


def test_build_without_static_root_fails_naming_the_setting(
    build_image: Any, tmp_path: Path
) -> None:
    context = _project_with_settings(tmp_path, "del STATIC_ROOT\n")
    with pytest.raises(AssertionError, match=r"STATIC_ROOT is not set in config\.settings\.pro"):
        build_image(context, f"djangostack/fixture-nostatic:{secrets.token_hex(6)}")
