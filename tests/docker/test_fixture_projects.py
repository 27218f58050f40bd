"""Three realistic Django projects (tests/fixtures/projects) shipped unchanged: nothing in them
knows the product (no djangostack import, no NAME_FILE handling); only the stack config maps
their own variable names (`env`, `secretEnv`) and their background processes (`processes`).

- cookiecutter: `config/` package, django-environ, Celery worker + beat (a periodic task writes
  a row), an upload model and view; reads DATABASE_URL, REDIS_URL, CELERY_BROKER_URL,
  DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DJANGO_CSRF_TRUSTED_ORIGINS.
- single-settings: `project/settings.py` with its own DB_* and SECRET_KEY names, a
  `requirements/` directory with `-r` includes, a `manage.py run_worker` loop, python-ldap
  compiled against libldap-dev.
- pyproject: pyproject.toml + uv.lock (dev group kept out), flat layout, DATABASE_URL.

Each is deployed through the program by the Pulumi engine, with config alone: a prod stack per
project (HTTPS page, static files from nginx, migrations, healthy processes doing their work, an
upload surviving a release), and the single-settings project in dev too.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest
import requests
from docker.models.containers import Container
from test_image import wait_for

from components import project
from components.hardening import ROLE_LABEL, STACK_LABEL
from tests.support.engine import deployed
from tests.support.prodstack import ProdStack, prod_stack

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = ROOT / "tests" / "fixtures" / "projects"
# Celery beat keeps its schedule in a file (on the /tmp tmpfs: the root is read-only) and
# rewrites it about every 3 minutes (beat's sync_every) while it runs: not written for 400 s, beat
# has stopped ticking.
BEAT_SCHEDULE = "/tmp/celerybeat-schedule"
BEAT_HEALTH = [
    "CMD",
    "python",
    "-c",
    "import glob, os, sys, time; f = glob.glob('/tmp/celerybeat-schedule*'); "
    "sys.exit(not f or time.time() - max(map(os.path.getmtime, f)) > 400)",
]
# run_worker touches this file after every poll of the job table.
WORKER_HEALTH = [
    "CMD",
    "python",
    "-c",
    "import os, sys, time; sys.exit(time.time() - os.path.getmtime('/tmp/run_worker.alive') > 30)",
]
WORK_TIMEOUT_SECONDS = 120
SQL = Callable[[str], str]  # runs SQL in the stack's database, returns psql's unaligned output


def heartbeat_recorded(sql: SQL) -> None:
    """cookiecutter: beat sends record_heartbeat every 10 s; only a worker writes the row."""
    wait_for(
        lambda: int(sql("SELECT count(*) FROM documents_heartbeat")) >= 1,
        WORK_TIMEOUT_SECONDS,
        "a heartbeat row (beat scheduled it, the worker ran it)",
    )


def job_processed(sql: SQL) -> None:
    """single-settings: a pending job is turned into its result by run_worker."""
    payload = f"job {secrets.token_hex(4)}"  # hex: safe inside the SQL below
    insert = "INSERT INTO board_job (payload, status, result) VALUES ('{}', 'pending', '')"
    sql(insert.format(payload))
    done_sql = "SELECT result FROM board_job WHERE payload = '{}' AND status = 'done'"
    done_sql = done_sql.format(payload)
    done = wait_for(lambda: sql(done_sql), WORK_TIMEOUT_SECONDS, "run_worker to process the job")
    assert done == payload.upper()


@dataclass(frozen=True)
class Fixture:
    """One fixture project and the stack config that deploys it unchanged."""

    name: str  # folder under tests/fixtures/projects
    settings: str  # its production settings module (DJANGO_SETTINGS_MODULE)
    heading: str  # what its home page shows
    static_file: str  # a static file, relative to STATIC_ROOT (and STATIC_URL)
    app_label: str  # its app whose 0001_initial migration must be applied
    env: Mapping[str, str]  # config `env`: its own names -> literal or ${stack value}
    secret_env: Mapping[str, str]  # config `secretEnv`
    processes: Mapping[str, Mapping[str, Any]]  # config `processes` ({}: none)
    build_packages: tuple[str, ...] = ()
    runtime_packages: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # other config keys
    # What its processes are for, observed in its database (None: it has none).
    work: Callable[[SQL], None] | None = None

    @property
    def source(self) -> Path:
        return PROJECTS / self.name

    def stack_config(self, **env: str) -> dict[str, Any]:
        """The config keys that deploy this project (on top of tests/docker/stack_config.py);
        `env` adds variables (dev's DEBUG...)."""
        return {
            "djangoSettingsModule": self.settings,
            "env": {**self.env, **env},
            "secretEnv": dict(self.secret_env),
            "processes": {name: dict(spec) for name, spec in self.processes.items()},
            "buildPackages": list(self.build_packages),
            "runtimePackages": list(self.runtime_packages),
            **self.extra,
        }


CELERY_APP = "config.celery_app"
COOKIECUTTER = Fixture(
    name="cookiecutter",
    settings="config.settings.production",
    heading="Acme documents",
    static_file="css/project.css",
    app_label="documents",
    env={
        "DJANGO_ALLOWED_HOSTS": "${allowedHosts}",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "${csrfTrustedOrigins}",
        "REDIS_URL": "${redisUrl}",
        "CELERY_BROKER_URL": "${redisUrl}",
    },
    secret_env={"DATABASE_URL": "${databaseUrl}", "DJANGO_SECRET_KEY": "${secretKey}"},
    processes={
        # The product's default health check for a Celery worker applies (no `health`).
        "celery": {
            "command": [
                *("celery", "-A", CELERY_APP, "worker"),
                *("--loglevel", "INFO", "--concurrency", "1"),
            ],
        },
        # Two beats would run every periodic task twice: never two at once.
        "beat": {
            "command": [
                *("celery", "-A", CELERY_APP, "beat"),
                *("--loglevel", "INFO", "--schedule", BEAT_SCHEDULE),
            ],
            "singleton": True,
            "health": BEAT_HEALTH,
        },
    },
    extra={"celeryApp": CELERY_APP},  # config/celery_app.py, not a celery.py to detect
    work=heartbeat_recorded,
)
SINGLE_SETTINGS = Fixture(
    name="single-settings",
    settings="project.settings",
    heading="Board",
    static_file="board/site.css",
    app_label="board",
    env={
        "DB_HOST": "${postgresHost}",
        "DB_PORT": "${postgresPort}",
        "DB_NAME": "${postgresDb}",
        "DB_USER": "${postgresUser}",
        "ALLOWED_HOSTS": "${allowedHosts}",
        "CSRF_TRUSTED_ORIGINS": "${csrfTrustedOrigins}",
    },
    secret_env={"DB_PASSWORD": "${postgresPassword}", "SECRET_KEY": "${secretKey}"},
    processes={
        "worker": {"command": ["python", "manage.py", "run_worker"], "health": WORKER_HEALTH}
    },
    # python-ldap has no wheel: it compiles against libldap-dev and libsasl2-dev. python3-dev:
    # the stand-in base runs Debian's Python, whose Python.h comes from it (the official
    # python:3.x-slim ships its headers). libldap2: what the extension loads at run time.
    build_packages=("libldap-dev", "libsasl2-dev", "python3-dev"),
    runtime_packages=("libldap2",),
    work=job_processed,
)
PYPROJECT = Fixture(
    name="pyproject",
    settings="pollster.settings",
    heading="Pollster",
    static_file="polls/style.css",
    app_label="polls",
    # Its own formats: space-separated lists, so one host and one origin.
    env={"ALLOWED_HOSTS": "${domain}", "CSRF_TRUSTED_ORIGINS": "${url}"},
    secret_env={"DATABASE_URL": "${databaseUrl}", "SECRET_KEY": "${secretKey}"},
    processes={},  # no background work: not even the default Celery worker
)
FIXTURES = (COOKIECUTTER, SINGLE_SETTINGS, PYPROJECT)
WITH_PROCESSES = tuple(f for f in FIXTURES if f.work)
T = TypeVar("T")


def fixture_id(fixture: Fixture) -> str:
    return fixture.name


def psql_in(db: Container, user: str, database: str) -> SQL:
    def run(sql: str) -> str:
        code, out = db.exec_run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database, "-tAc", sql]
        )
        assert code == 0, out.decode()
        return out.decode().strip()

    return run


def assert_processes_work(fixture: Fixture, sql: SQL) -> None:
    assert fixture.work is not None, f"{fixture.name} has no background work to check"
    fixture.work(sql)


def assert_migrated(fixture: Fixture, sql: SQL) -> None:
    """The project's own migration is recorded as applied, and its tables exist."""
    label = fixture.app_label  # the test's own constants in the SQL below
    applied = sql(f"SELECT name FROM django_migrations WHERE app = '{label}'")  # noqa: S608
    assert applied.split() == ["0001_initial"]
    tables = sql(f"SELECT tablename FROM pg_tables WHERE tablename LIKE '{label}_%'")  # noqa: S608
    assert tables, f"no {fixture.app_label}_* table"


@contextlib.contextmanager
def once_each(
    deploy: Callable[[Fixture], contextlib.AbstractContextManager[T]],
) -> Iterator[Callable[[Fixture], T]]:
    """`get(fixture)`: `deploy(fixture)` entered on its first use, the same value afterwards;
    every deployment exits with this. Tests of one fixture then share one deployment whatever
    order pytest runs them in (a parametrized module fixture would be set up again whenever
    indirect parametrizations of different tests interleave)."""
    with contextlib.ExitStack() as exits:
        made: dict[str, T] = {}

        def get(fixture: Fixture) -> T:
            if fixture.name not in made:
                made[fixture.name] = exits.enter_context(deploy(fixture))
            return made[fixture.name]

        yield get


# ---------------------------------------------------------------------------------------------
# Through the program: stacks deployed by the Pulumi engine on the local Docker engine.


@dataclass
class Deployed:
    fixture: Fixture
    stack: ProdStack


@contextlib.contextmanager
def deploy_prod(fixture: Fixture, workdir: Path) -> Iterator[Deployed]:
    """A prod stack of a private copy of `fixture`, with the config that maps its names."""
    with prod_stack(
        workdir,
        f"fx-{fixture.name}",
        source=fixture.source,
        overrides=fixture.stack_config(),  # secretEnv is stored as a secret
    ) as stack:
        yield Deployed(fixture, stack)


@pytest.fixture(scope="module")
def prod_of(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Fixture], Deployed]]:
    def deploy(fixture: Fixture) -> contextlib.AbstractContextManager[Deployed]:
        return deploy_prod(fixture, tmp_path_factory.mktemp(f"prod-{fixture.name}"))

    with once_each(deploy) as get:
        yield get


@pytest.fixture
def prod(fixture: Fixture, prod_of: Callable[[Fixture], Deployed]) -> Deployed:
    return prod_of(fixture)


@pytest.mark.parametrize("fixture", FIXTURES, ids=fixture_id)
def test_prod_serves_the_home_page_over_https(prod: Deployed) -> None:
    fixture, stack = prod.fixture, prod.stack
    home = stack.get("/")
    assert home.status_code == 200, home.text[-2000:]
    assert f"<h1>{fixture.heading}</h1>" in home.text
    assert home.url.startswith("https://")


@pytest.mark.parametrize("fixture", FIXTURES, ids=fixture_id)
def test_prod_nginx_serves_the_static_files(prod: Deployed) -> None:
    fixture, stack = prod.fixture, prod.stack
    static_url = project.static_url(stack.app_dir, fixture.settings)
    response = stack.get(static_url + fixture.static_file)
    assert response.status_code == 200
    static_source = next(fixture.source.rglob(f"static/{fixture.static_file}"))
    assert response.text == static_source.read_text()
    # nginx's static location, not the app (DEBUG is off: Django serves no static files).
    assert "immutable" in response.headers["Cache-Control"]


@pytest.mark.parametrize("fixture", FIXTURES, ids=fixture_id)
def test_prod_migrations_applied(prod: Deployed) -> None:
    assert_migrated(prod.fixture, prod.stack.psql)


@pytest.mark.parametrize("fixture", WITH_PROCESSES, ids=fixture_id)
def test_prod_processes_healthy_and_working(prod: Deployed) -> None:
    fixture, stack = prod.fixture, prod.stack
    # Each process type's containers carry its name (label djangostack.process).
    for name, spec in fixture.processes.items():
        stack.wait_healthy(name, int(spec.get("replicas", 1)))
    assert_processes_work(fixture, stack.psql)


@pytest.mark.parametrize("fixture", [PYPROJECT], ids=fixture_id)
def test_prod_without_processes_runs_web_only(prod: Deployed) -> None:
    # processes = {}: no default Celery worker either (pollster/ has no Celery app).
    running = prod.stack.client.containers.list(
        filters={"label": f"{STACK_LABEL}={prod.stack.name}"}
    )
    roles = {container.labels.get(ROLE_LABEL) for container in running}
    assert "web" in roles
    # Besides web only the backing services (and a one-shot job still finishing), no worker.
    assert not roles - {"web", "postgres", "redis", "nginx", "prometheus", "job"}, roles


@pytest.mark.parametrize("fixture", [COOKIECUTTER], ids=fixture_id)
def test_prod_upload_survives_a_release(prod: Deployed) -> None:
    stack = prod.stack
    session = requests.Session()
    session.verify = str(stack.ca_file)
    session.trust_env = False  # loopback only
    form = session.get(stack.url + "/", timeout=10)
    assert form.status_code == 200
    title, content = f"report {secrets.token_hex(4)}", secrets.token_bytes(2048)
    uploaded = session.post(
        stack.url + "/upload/",
        data={"title": title, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        files={"file": ("report.pdf", content, "application/pdf")},
        headers={"Origin": stack.url, "Referer": stack.url + "/"},
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text[-2000:]  # after the redirect home
    link = re.search(rf'<a href="([^"]+)">{re.escape(title)}</a>', uploaded.text)
    assert link, uploaded.text
    media_url = link.group(1)
    assert media_url.startswith("/media/documents/")
    before = stack.get(media_url)
    assert before.status_code == 200 and before.content == content

    # A new release: a new image (build arg VERSION), web and every process roll to it.
    image_before = web_image(stack)
    stack.up(imageTag="1.0.1")
    assert web_image(stack) != image_before
    after = stack.get(media_url)
    assert after.status_code == 200 and after.content == content
    assert title in stack.get("/").text


def web_image(stack: ProdStack) -> str:
    return stack.service("web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def test_single_settings_project_in_dev(tmp_path: Path, docker_client: docker.DockerClient) -> None:
    fixture = SINGLE_SETTINGS
    # Its own development switches: DEBUG on (runserver serves static files), no HTTPS redirect.
    with deployed(
        tmp_path,
        f"fx-dev-{fixture.name}",
        "dev",
        source=fixture.source,
        overrides=fixture.stack_config(DEBUG="1", SECURE_SSL_REDIRECT="0"),
    ) as dev:
        url = dev.outputs["url"]
        session = requests.Session()
        session.trust_env = False
        home = session.get(url + "/", timeout=10)
        assert home.status_code == 200, home.text[-2000:]
        assert f"<h1>{fixture.heading}</h1>" in home.text
        static_url = project.static_url(dev.app_dir, fixture.settings)
        css = session.get(url + static_url + fixture.static_file, timeout=10)
        assert css.status_code == 200
        assert css.text == (fixture.source / "board" / "static" / fixture.static_file).read_text()
        (db,) = docker_client.containers.list(
            filters={"label": [f"{STACK_LABEL}={dev.name}", f"{ROLE_LABEL}=postgres"]}
        )
        sql = psql_in(db, "app", "app")
        assert_migrated(fixture, sql)
        assert_processes_work(fixture, sql)
