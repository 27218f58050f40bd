"""Four realistic Django projects (tests/fixtures/projects) shipped unchanged: nothing in them
knows the product (no djangostack import, no NAME_FILE handling); only the stack config maps
their own variable names (`env`, `secretEnv`) and their background processes (`processes`).

- cookiecutter: `config/` package, django-environ, Celery worker + beat (a periodic task writes
  a row), an upload model and view; reads DATABASE_URL, REDIS_URL, CELERY_BROKER_URL,
  DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DJANGO_CSRF_TRUSTED_ORIGINS.
- single-settings: `project/settings.py` with its own DB_* and SECRET_KEY names, a
  `requirements/` directory with `-r` includes, a `manage.py run_worker` loop, python-ldap
  compiled against libldap-dev.
- pyproject: pyproject.toml + uv.lock (dev group kept out), flat layout, DATABASE_URL.
- newsroom: each pattern that once made a real project fail to deploy. No Gunicorn,
  Postgres driver or Redis client in its requirements.txt (the program adds them; celery without
  the redis extra), django-compressor with COMPRESS_OFFLINE (compress at build time), a
  `load_initial_data` release command, MEDIA_ROOT with a committed media/.gitkeep, STATIC_URL
  from an f-string, no CSRF_TRUSTED_ORIGINS at all (a form POST on a non-443 port), manage.py on
  dev settings and wsgi.py on prod settings (detected: no djangoSettingsModule), a Celery worker
  running the task a view queues.

Each is deployed through the program by the Pulumi engine, with config alone: a prod stack per
project (HTTPS page, static files from nginx, migrations, healthy processes doing their work, an
upload surviving a release), and the single-settings project in dev too.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import docker
import pytest
import requests
from docker.models.containers import Container
from test_image import wait_for

from components import deps, project
from components.hardening import ROLE_LABEL, STACK_LABEL
from components.renderers import STEP_LABEL
from tests.support.checks import docker_time
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
        "a heartbeat row (beat scheduled it, the worker ran it)",
        lambda: int(sql("SELECT count(*) FROM documents_heartbeat")) >= 1,
        WORK_TIMEOUT_SECONDS,
    )


def job_processed(sql: SQL) -> None:
    """single-settings: a pending job is turned into its result by run_worker."""
    payload = f"job {secrets.token_hex(4)}"  # hex: safe inside the SQL below
    insert = "INSERT INTO board_job (payload, status, result) VALUES ('{}', 'pending', '')"
    sql(insert.format(payload))
    done_sql = "SELECT result FROM board_job WHERE payload = '{}' AND status = 'done'"
    done_sql = done_sql.format(payload)
    done = wait_for("run_worker to process the job", lambda: sql(done_sql), WORK_TIMEOUT_SECONDS)
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
NEWSROOM_SETTINGS = "newsroom.settings.prod"  # its wsgi.py default; manage.py says .dev
NEWSROOM_RELEASE = "python manage.py load_initial_data"
NEWSROOM = Fixture(
    name="newsroom",
    settings=NEWSROOM_SETTINGS,  # what the program must detect: the config leaves it unset
    heading="The Newsroom",
    static_file="css/newsroom.css",
    app_label="stories",
    # No CSRF_TRUSTED_ORIGINS: the project reads none (a POST on the stack's port must pass).
    env={"ALLOWED_HOSTS": "${allowedHosts}", "CELERY_BROKER_URL": "${redisUrl}"},
    secret_env={"DATABASE_URL": "${databaseUrl}", "SECRET_KEY": "${secretKey}"},
    processes={
        "celery": {
            "command": [
                *("celery", "-A", "newsroom", "worker"),
                *("--loglevel", "INFO", "--concurrency", "1"),
            ],
        },
    },
    extra={
        # "": detected (prod: the server's entry point, wsgi.py, before manage.py's dev default).
        "djangoSettingsModule": "",
        "releaseCommands": [NEWSROOM_RELEASE],
        # buildCommands unset: `manage.py compress` detected from COMPRESS_OFFLINE = True.
    },
)
FIXTURES = (COOKIECUTTER, SINGLE_SETTINGS, PYPROJECT, NEWSROOM)
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


# ---------------------------------------------------------------------------------------------
# newsroom (issue 18): each pattern that once made a real project fail to deploy, on its prod
# stack (one deployment shared by these tests and the generic ones above).

NEWSROOM_SECTIONS = ["Politics", "Business", "Culture", "Sport"]  # load_initial_data's rows
# What the program adds to an image whose project lacks them (components/deps.py).
ADDED = {"gunicorn": deps.GUNICORN, "psycopg": deps.POSTGRES_DRIVER, "redis": deps.REDIS_CLIENT}


def step_container(stack: ProdStack, step: str) -> Container:
    """The container of a one-shot step (`<prefix>-<step>`), exited."""
    (found,) = stack.client.containers.list(
        all=True,
        filters={"label": [f"{STACK_LABEL}={stack.name}", f"{STEP_LABEL}={stack.name}-{step}"]},
    )
    return found


def session_of(stack: ProdStack) -> requests.Session:
    """A browser's session on the stack: its certificate trusted, on loopback (no proxy)."""
    session = requests.Session()
    session.verify = str(stack.ca_file)
    session.trust_env = False
    return session


def file_story(
    stack: ProdStack, headline: str, body: str = "", attachment: tuple[str, bytes] | None = None
) -> requests.Response:
    """What a reporter's browser does: GET the front page (its CSRF cookie and form), POST the
    form to /file/ with the token, the cookie and the page's Origin and Referer; the answer
    after the redirect."""
    session = session_of(stack)
    page = session.get(stack.url + "/", timeout=10)
    assert page.status_code == 200, page.text[-2000:]
    section = re.search(r'<option value="(\d+)">Politics</option>', page.text)
    assert section, page.text
    fields = {
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "section": section.group(1),
        "headline": headline,
        "body": body,
    }
    return session.post(
        stack.url + "/file/",
        data=fields,
        files={"attachment": (*attachment, "text/plain")} if attachment else None,
        headers={"Origin": stack.url, "Referer": stack.url + "/"},
        timeout=30,
    )


def installed_versions(container: Container, names: list[str]) -> dict[str, str]:
    """The installed versions of `names` (distributions) in a running container."""
    script = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    code, out = container.exec_run(["python", "-c", script, *names])
    assert code == 0, out.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_runs_on_the_server_driver_and_client_the_program_adds(prod: Deployed) -> None:
    """Pattern 1: requirements.txt names no WSGI server, no Postgres driver and celery without
    its Redis client; the image has the pinned ones the program adds, web serves through
    Gunicorn and Postgres, and both web and the worker carry the Redis client."""
    stack = prod.stack
    requirements = (NEWSROOM.source / "requirements.txt").read_text().splitlines()
    declared = set().union(*(deps.requirement_names(line) for line in requirements))
    assert "celery" in declared
    assert not declared & {"celery[redis]", *(n for item in ADDED.values() for n in item.names)}

    # Gunicorn and psycopg at the program's pins; the Redis client as kombu's redis extra
    # brings it (kombu[redis] at the project's kombu: a version kombu accepts).
    pinned = {
        name: item.requirement.rsplit("==", 1)[1]
        for name, item in ADDED.items()
        if "==" in item.requirement
    }
    assert set(pinned) == {"gunicorn", "psycopg"}
    for role in ("web", "celery"):
        container = stack.containers(role)[0]
        versions = installed_versions(container, [*pinned, "redis", "packaging"])
        assert {name: versions[name] for name in pinned} == pinned, role
        assert versions["redis"] and versions["packaging"], (role, versions)
    web = stack.containers("web")[0]
    assert any("gunicorn" in " ".join(p) for p in web.top()["Processes"])  # what serves
    home = stack.get("/")  # read from Postgres (the sections) through psycopg
    assert home.status_code == 200, home.text[-2000:]


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_offline_compressed_css_is_built_and_served_by_nginx(prod: Deployed) -> None:
    """Pattern 2: COMPRESS_OFFLINE = True and {% compress css %} in base.html; the build ran
    `manage.py compress` (without it every page is 500 OfflineGenerationError), the page links
    the bundle under STATIC_URL + CACHE/, and nginx serves it."""
    stack = prod.stack
    home = stack.get("/")
    assert home.status_code == 200, home.text[-2000:]
    bundle = re.search(r'<link rel="stylesheet" href="(/assets/CACHE/css/[^"]+\.css)"', home.text)
    assert bundle, home.text
    assert "/assets/css/newsroom.css" not in home.text  # the bundle, not the source file
    css = stack.get(bundle.group(1))
    assert css.status_code == 200
    assert "Georgia" in css.text and "text-transform" in css.text  # newsroom.css's rules
    assert "immutable" in css.headers["Cache-Control"]  # nginx's static location, not Django


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_release_command_loads_the_sections_after_migrations_before_web(
    prod: Deployed,
) -> None:
    """Pattern 3: config releaseCommands runs `manage.py load_initial_data` as its own step
    after the migration and before web starts; the front page lists its rows."""
    stack = prod.stack
    assert stack.config["releaseCommands"] == [NEWSROOM_RELEASE]
    listed = re.search(r'<ul id="sections">(.*?)</ul>', stack.get("/").text, re.S)
    assert listed, "no section list on the front page"
    assert re.findall(r"<li>([^<]+)</li>", listed.group(1)) == NEWSROOM_SECTIONS
    assert stack.psql("SELECT count(*) FROM stories_section") == str(len(NEWSROOM_SECTIONS))

    release, migrate = step_container(stack, "release-1"), step_container(stack, "migrate")
    assert NEWSROOM_RELEASE in " ".join(release.attrs["Config"]["Cmd"])
    assert release.attrs["State"]["ExitCode"] == 0
    assert "Sections: 4 created, 0 up to date" in release.logs().decode()
    state = {name: c.attrs["State"] for name, c in {"release": release, "migrate": migrate}.items()}
    assert docker_time(state["migrate"]["FinishedAt"]) <= docker_time(state["release"]["StartedAt"])
    released = docker_time(state["release"]["FinishedAt"])
    for web in stack.containers("web"):
        assert released <= docker_time(web.attrs["State"]["StartedAt"])


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_upload_under_media_root_with_gitkeep_is_served(prod: Deployed) -> None:
    """Pattern 4: MEDIA_ROOT = BASE_DIR / "media" holds a committed .gitkeep (the build once
    refused it); a story's attachment uploads and is served under MEDIA_URL."""
    stack = prod.stack
    assert (stack.app_dir / "media" / ".gitkeep").is_file()  # in what was built
    headline, content = f"Leaked memo {secrets.token_hex(4)}", secrets.token_bytes(2048)
    filed = file_story(stack, headline, attachment=("memo.txt", content))
    assert filed.status_code == 200, filed.text[-2000:]
    article = filed.text.split(f"<h2>{headline}</h2>", 1)
    assert len(article) == 2, filed.text
    link = re.search(r'<a href="([^"]+)">attachments/', article[1])
    assert link, article[1][:1000]
    assert link.group(1).startswith("/media/attachments/")
    served = stack.get(link.group(1))
    assert served.status_code == 200 and served.content == content


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_static_url_from_an_fstring_is_detected_and_served(prod: Deployed) -> None:
    """Pattern 5: STATIC_URL = f"/{STATIC_PREFIX}/" with STATIC_PREFIX = "assets"; the program
    reads it as /assets/ and nginx serves the collected files there."""
    stack = prod.stack
    base = (NEWSROOM.source / "newsroom" / "settings" / "base.py").read_text()
    assert 'STATIC_URL = f"/{STATIC_PREFIX}/"' in base
    assert project.static_url(stack.app_dir, NEWSROOM_SETTINGS) == "/assets/"
    css = stack.get("/assets/" + NEWSROOM.static_file)
    assert css.status_code == 200
    assert css.text == (NEWSROOM.source / "newsroom" / "static" / NEWSROOM.static_file).read_text()
    assert "immutable" in css.headers["Cache-Control"]


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_form_post_without_csrf_trusted_origins(prod: Deployed) -> None:
    """Pattern 6: the project sets no CSRF_TRUSTED_ORIGINS; a form POST over HTTPS on the
    stack's non-443 port passes Django's origin check (nginx passes Host with its port)."""
    stack = prod.stack
    settings = "".join(p.read_text() for p in (NEWSROOM.source / "newsroom").rglob("*.py"))
    assert "CSRF_TRUSTED_ORIGINS" not in settings
    assert not any("CSRF" in name for name in stack.config["env"])
    assert urlsplit(stack.url).port not in (None, 443)
    headline = f"Council passes budget {secrets.token_hex(4)}"
    filed = file_story(stack, headline, body="After a long debate.")
    assert filed.status_code == 200, filed.text[-2000:]
    assert [r.status_code for r in filed.history] == [302]  # the view's redirect, not a 403
    assert f"<h2>{headline}</h2>" in filed.text
    assert stack.psql(f"SELECT count(*) FROM stories_story WHERE headline = '{headline}'") == "1"  # noqa: S608


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_settings_module_detected_per_profile(prod: Deployed) -> None:
    """Pattern 7: manage.py defaults to newsroom.settings.dev, wsgi.py to .prod; with
    djangoSettingsModule unset the prod stack runs web and the worker on .prod."""
    stack = prod.stack
    assert stack.config["djangoSettingsModule"] == ""
    assert project.settings_module(stack.app_dir) == "newsroom.settings.dev"  # manage.py's
    for role in ("web", "celery"):
        spec = stack.service(role).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert f"DJANGO_SETTINGS_MODULE={NEWSROOM_SETTINGS}" in spec["Env"], role


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_celery_worker_runs_the_task_a_view_queues(prod: Deployed) -> None:
    """Pattern 8: filing a story queues count_words on Redis (web's Redis client); the worker
    (its own, and prod settings: dev's would write to SQLite) writes the count to Postgres."""
    stack = prod.stack
    stack.wait_healthy("celery", 1)
    headline, body = f"Floods {secrets.token_hex(4)}", "Rivers burst their banks overnight"
    filed = file_story(stack, headline, body=body)
    assert filed.status_code == 200, filed.text[-2000:]
    count_sql = f"SELECT word_count FROM stories_story WHERE headline = '{headline}'"  # noqa: S608
    counted = wait_for("count_words to run", lambda: stack.psql(count_sql), WORK_TIMEOUT_SECONDS)
    assert int(counted) == len(f"{headline} {body}".split())
    assert f'<p class="words">{counted} words</p>' in stack.get("/").text


@pytest.mark.parametrize("fixture", [NEWSROOM], ids=fixture_id)
def test_newsroom_release_command_runs_again_idempotently_on_a_release(prod: Deployed) -> None:
    """Pattern 3 again: a new release (a new image) runs load_initial_data again; it creates
    nothing twice and the site keeps its rows. Last of the newsroom tests: it redeploys."""
    stack = prod.stack
    first = step_container(stack, "release-1")
    stack.up(imageTag="1.0.1")
    again = step_container(stack, "release-1")
    assert again.id != first.id and again.attrs["State"]["ExitCode"] == 0
    assert "Sections: 0 created, 4 up to date" in again.logs().decode()
    assert stack.psql("SELECT count(*) FROM stories_section") == str(len(NEWSROOM_SECTIONS))
    home = stack.get("/")
    assert home.status_code == 200
    assert all(f"<li>{name}</li>" in home.text for name in NEWSROOM_SECTIONS)
