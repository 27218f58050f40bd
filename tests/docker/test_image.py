"""The runtime image of docker/Dockerfile, against the real Docker engine: what is in it, how it
is built and cached, and how it runs hardened next to real Postgres and Redis containers."""

import json
import re
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import pytest
import requests
from conftest import INSTALL_STEP, step_cached
from docker.models.containers import Container
from docker.models.images import Image
from docker.models.networks import Network

from components.app import ENTRYPOINT, HEALTH_PATH, http_probe
from tests.support import checks

APP_DIR = Path(__file__).resolve().parents[2] / "app"
APP_UID = 10001
# Names of this module's images and containers (labels, from conftest, drive the cleanup).
RUN_ID = secrets.token_hex(6)
BuildImage = Callable[..., str]
HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "tmpfs": {"/tmp": ""},
}
# Things a careless build context would carry into the image (.dockerignore must keep them out).
PLANTED = {
    ".git/HEAD": "ref: refs/heads/main\n",
    ".env": "SECRET_KEY=planted\n",
    ".env.production": "SECRET_KEY=planted\n",
    "tests/test_planted.py": "def test_x():\n    pass\n",
    "core/tests/test_planted.py": "def test_x():\n    pass\n",
    "core/__pycache__/views.cpython-311.pyc": "planted",
    ".venv/bin/python": "planted",
    "node_modules/planted/index.js": "planted",
    "db.sqlite3": "planted",
    "debug.log": "planted",
    "docs/planted.md": "planted",
}


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """checks.wait_for, where a container still starting refuses connections or exec."""
    return checks.wait_for(
        what, check, timeout, every=0.5, ignore=(requests.ConnectionError, docker.errors.APIError)
    )


@dataclass
class Backing:
    """A labelled test network with healthy, hardened Postgres (database and user `app`) and
    Redis stand-ins, reachable as `<run_id>-db` and `<run_id>-redis`."""

    network: Network
    run: Callable[..., Container]  # run(image, role, tmpfs=None, **kwargs): on that network
    db: Container
    redis: Container
    password: str


def start_backing(client: docker.DockerClient, run_id: str, labels: dict[str, str]) -> Backing:
    network = client.networks.create(f"djangostack-test-{run_id}", labels=labels)

    def run(image: str, role: str, tmpfs: dict[str, str] | None = None, **kwargs: Any) -> Container:
        return client.containers.run(
            image,
            detach=True,
            name=f"{run_id}-{role}",
            network=network.name,
            labels=labels,
            **{**HARDENED, "tmpfs": {**HARDENED["tmpfs"], **(tmpfs or {})}},
            **kwargs,
        )

    password = secrets.token_hex(16)
    db = run(
        "djangostack-testbed/postgres:latest",
        "db",
        user="999:999",
        tmpfs={"/var/run/postgresql": ""},
        environment={"POSTGRES_DB": "app", "POSTGRES_USER": "app", "POSTGRES_PASSWORD": password},
    )
    redis = run("djangostack-testbed/redis:latest", "redis", user="999:999")
    pg_ready = "pg_isready -h 127.0.0.1 -U app -d app"
    wait_for("postgres", lambda: db.exec_run(pg_ready).exit_code == 0, 90)
    wait_for("redis", lambda: b"PONG" in redis.exec_run("redis-cli ping").output, 30)
    return Backing(network, run, db, redis, password)


def saved_image(tag: str) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Every member of `docker save TAG` (uncompressed layer tars, config, manifest), streamed."""
    with subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                yield member, archive.extractfile(member)
    assert proc.returncode == 0, f"docker save {tag} failed"


def layers_by_command(tag: str) -> list[tuple[str, str]]:
    """(command, layer diff id) for each history entry of the image that made a layer."""
    documents = {
        member.name: json.load(data)
        for member, data in saved_image(tag)
        if data is not None and member.name.endswith(".json") and "/" not in member.name
    }
    config = documents[documents["manifest.json"][0]["Config"]]
    made_layers = [entry for entry in config["history"] if not entry.get("empty_layer")]
    return [
        (entry.get("created_by", ""), diff_id)
        for entry, diff_id in zip(made_layers, config["rootfs"]["diff_ids"], strict=True)
    ]


def layer_made_by(layers: list[tuple[str, str]], command_fragment: str) -> str:
    found = [diff_id for command, diff_id in layers if command_fragment in command]
    assert len(found) == 1, f"expected one layer made by {command_fragment!r}, got {found}"
    return found[0]


def image_contains(tag: str, needle: bytes) -> bool:
    """Whether any byte of the saved image (every layer, the config, the history) holds needle."""
    overlap = len(needle) - 1
    for _member, data in saved_image(tag):
        tail = b""
        while data is not None and (chunk := data.read(1 << 20)):
            if needle in tail + chunk:
                return True
            tail = chunk[-overlap:]
    return False


def copy_of_app(destination: Path) -> Path:
    return Path(shutil.copytree(APP_DIR, destination, ignore=shutil.ignore_patterns("__pycache__")))


# --- what the image is ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_image(
    tmp_path_factory: pytest.TempPathFactory,
    build_image: BuildImage,
    runtime_build_args: dict[str, str],
) -> str:
    """The runtime image built from a copy of app/ that also holds files that must stay out."""
    context = copy_of_app(tmp_path_factory.mktemp("planted") / "app")
    for name, content in PLANTED.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(content)
    tag = f"djangostack/web:planted-{RUN_ID}"
    build_image(context, tag, build_args=runtime_build_args)
    return tag


@pytest.fixture(scope="module")
def image_files(
    docker_client: docker.DockerClient, planted_image: str, labels: dict[str, str]
) -> dict[str, tarfile.TarInfo]:
    """The flattened filesystem of the planted image: path (no leading slash) -> entry."""
    container = docker_client.containers.create(planted_image, labels=labels)
    try:
        export = ["docker", "export", container.id]
        with (
            subprocess.Popen(export, stdout=subprocess.PIPE) as proc,
            tarfile.open(fileobj=proc.stdout, mode="r|") as archive,
        ):
            files = {member.name.rstrip("/"): member for member in archive}
    finally:
        container.remove(force=True)
    return files


def test_configured_user_is_fixed_non_root(runtime_image: Image) -> None:
    assert runtime_image.attrs["Config"]["User"] == f"{APP_UID}:{APP_UID}"


def test_healthcheck_is_the_programs_probe_of_the_health_endpoint(runtime_image: Image) -> None:
    """A plain `docker run` of the image is probed as the program probes its web tasks."""
    healthcheck = runtime_image.attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"] == list(http_probe(HEALTH_PATH))


def test_labels_and_version_come_from_build_args(
    runtime_image: Image, runtime_build_args: dict[str, str]
) -> None:
    config = runtime_image.attrs["Config"]
    assert config["Labels"]["org.opencontainers.image.version"] == runtime_build_args["VERSION"]
    assert config["Labels"]["org.opencontainers.image.revision"] == runtime_build_args["REVISION"]
    assert config["Labels"]["org.opencontainers.image.source"] == runtime_build_args["SOURCE_URL"]
    assert f"APP_VERSION={runtime_build_args['VERSION']}" in config["Env"]
    assert config["ExposedPorts"] == {"8000/tcp": {}}
    # Gunicorn through the product's entrypoint (it exports the secretEnv names first).
    assert config["Cmd"][:2] == [ENTRYPOINT, "gunicorn"]


def test_static_files_are_collected_with_hashed_names(image_files: dict) -> None:
    manifest = "app/staticfiles/staticfiles.json"
    assert manifest in image_files
    css = re.compile(r"app/staticfiles/core/site\.[0-9a-f]{12}\.css")
    hashed = [name for name in image_files if css.fullmatch(name)]
    assert len(hashed) == 1


def test_static_volume_mount_point_belongs_to_app_user(image_files: dict) -> None:
    entry = image_files["srv/static"]
    assert entry.isdir() and (entry.uid, entry.gid) == (APP_UID, APP_UID)


def test_app_code_is_not_writable_by_app_user(image_files: dict) -> None:
    code = [entry for name, entry in image_files.items() if re.fullmatch(r"app/.*\.py", name)]
    assert code and all(entry.uid == 0 and not entry.mode & 0o022 for entry in code)


def test_build_context_junk_stays_out(image_files: dict) -> None:
    app_files = [name.removeprefix("app/") for name in image_files if name.startswith("app/")]
    junk_dirs = {".git", ".venv", "node_modules", "docs", "tests", "__pycache__"}
    leaked = [name for name in app_files if name in PLANTED or junk_dirs & set(name.split("/"))]
    assert "manage.py" in app_files
    assert leaked == []


def test_no_build_tools_or_pip_cache(image_files: dict) -> None:
    # Compilers, make, and pip itself (the runtime installs nothing).
    compiler = re.compile(
        r"usr/(local/)?bin/\S*(gcc|cc|g\+\+|make)(-[0-9.]+)?|usr/lib/gcc/\S*/cc1|opt/venv/bin/pip\S*"
    )
    tools = [name for name in image_files if compiler.fullmatch(name)]
    headers = [name for name in image_files if name.startswith("usr/include/postgresql")]
    pip_cache = [name for name in image_files if re.search(r"(^|/)\.cache/pip(/|$)", name)]
    assert (tools, headers, pip_cache) == ([], [], [])


# --- how it is built --------------------------------------------------------------------------


def test_code_change_reuses_dependency_layer(tmp_path: Path, build_image: BuildImage) -> None:
    context = copy_of_app(tmp_path / "app")
    before, after = f"djangostack/web:cache-a-{RUN_ID}", f"djangostack/web:cache-b-{RUN_ID}"
    build_image(context, before)
    with (context / "core" / "views.py").open("a") as views:
        # Never built before (the cache would hold an earlier run's build of the same change).
        views.write(f"\n# a one-line source change {secrets.token_hex(8)}\n")
    log = build_image(context, after)

    assert step_cached(log, INSTALL_STEP)
    assert not step_cached(log, "COPY . .")
    layers_before, layers_after = layers_by_command(before), layers_by_command(after)
    venv = "COPY /opt/venv /opt/venv"
    assert layer_made_by(layers_before, venv) == layer_made_by(layers_after, venv)
    assert layer_made_by(layers_before, "COPY . .") != layer_made_by(layers_after, "COPY . .")


def test_build_secret_is_nowhere_in_image(tmp_path: Path, build_image: BuildImage) -> None:
    marker = f"djangostack-secret-{secrets.token_hex(16)}"
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(f"[global]\n# {marker}\ntimeout = 60\n")
    context = copy_of_app(tmp_path / "app")
    # A new requirements file makes the install step run again, so the secret is really mounted.
    with (context / "requirements.txt").open("a") as requirements:
        requirements.write(f"# {secrets.token_hex(8)}\n")
    tag = f"djangostack/web:secret-{RUN_ID}"
    log = build_image(context, tag, secrets={"pip_conf": pip_conf})

    assert not step_cached(log, INSTALL_STEP)
    history = subprocess.run(
        ["docker", "history", "--no-trunc", tag], capture_output=True, text=True, check=True
    ).stdout
    assert marker not in history
    assert not image_contains(tag, marker.encode())


# --- how it runs: hardened, with real Postgres and Redis on a user-defined network -------------


@dataclass
class Stack:
    """One hardened stack: Postgres, Redis, the one-shot migration, web and a Celery worker."""

    db: Container
    redis: Container
    web: Container
    worker: Container
    migrate_log: str
    url: str

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """A plain request, as a probe or scraper inside the network sends it."""
        return requests.get(self.url + path, timeout=10, allow_redirects=False, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request as nginx forwards it: TLS terminated, X-Forwarded-Proto set."""
        headers = {"X-Forwarded-Proto": "https", "Host": "localhost"}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def stack(
    docker_client: docker.DockerClient,
    runtime_image: Image,
    tmp_path_factory: pytest.TempPathFactory,
    labels: dict[str, str],
) -> Stack:
    backing = start_backing(docker_client, RUN_ID, labels)
    run, db, redis, password = backing.run, backing.db, backing.redis, backing.password

    environment = {
        "DATABASE_URL": f"postgres://app:{password}@{RUN_ID}-db:5432/app",
        "REDIS_URL": f"redis://{RUN_ID}-redis:6379/0",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": "https://localhost",
    }
    # Every app container reads SECRET_KEY from a file, as with Docker secrets.
    secret_file = tmp_path_factory.mktemp("secrets") / "secret_key"
    secret_file.write_text(secrets.token_urlsafe(60) + "\n")
    secret = {
        "environment": {**environment, "SECRET_KEY_FILE": "/run/secrets/secret_key"},
        "volumes": {str(secret_file): {"bind": "/run/secrets/secret_key", "mode": "ro"}},
    }
    migrate = run(runtime_image.id, "migrate", command=COMMANDS["manage.py"], **secret)
    assert migrate.wait(timeout=120)["StatusCode"] == 0, migrate.logs().decode()
    web = run(runtime_image.id, "web", ports={"8000/tcp": ("127.0.0.1", None)}, **secret)
    worker = run(
        runtime_image.id,
        "worker",
        **secret,
        command="celery -A config worker --loglevel INFO --concurrency 1",
    )
    web.reload()
    port = web.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    running = Stack(db, redis, web, worker, migrate.logs().decode(), f"http://127.0.0.1:{port}")
    wait_for("web /health/ 200", lambda: running.get("/health/").status_code == 200, 60)
    return running


def test_migrations_ran_in_one_shot_container(stack: Stack) -> None:
    assert "Applying core.0001_initial... OK" in stack.migrate_log


def test_containers_run_hardened(stack: Stack) -> None:
    for container in (stack.web, stack.worker):
        container.reload()
        host = container.attrs["HostConfig"]
        assert container.status == "running"
        assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert container.exec_run("id -u").output.decode().strip() == str(APP_UID)
        assert container.exec_run("touch /app/x").exit_code != 0


def test_health_answers_any_host_over_plain_http(stack: Stack) -> None:
    response = stack.get("/health/", headers={"Host": "probe.invalid"})
    assert (response.status_code, response.json()) == (200, {"database": "ok", "redis": "ok"})


def test_other_paths_redirect_to_https(stack: Stack) -> None:
    response = stack.get("/", headers={"Host": "localhost"})
    assert response.status_code == 301
    assert response.headers["Location"] == "https://localhost/"


def test_messages_are_written_and_read(stack: Stack) -> None:
    text = f"hello {secrets.token_hex(4)}"
    created = stack.api("POST", "/api/messages/", json={"text": text})
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "text": text}
    listed = stack.api("GET", "/api/messages/").json()
    assert {"id": created.json()["id"], "text": text} in listed["messages"]
    assert listed["count"] == len(listed["messages"])
    assert stack.api("POST", "/api/messages/", json={"text": ""}).status_code == 400


def test_page_lists_messages_and_links_hashed_stylesheet(stack: Stack) -> None:
    text = f"page {secrets.token_hex(4)}"
    stack.api("POST", "/api/messages/", json={"text": text})
    page = stack.api("GET", "/")
    assert page.status_code == 200 and text in page.text
    assert re.search(r'href="/static/core/site\.[0-9a-f]{12}\.css"', page.text)


def test_version_is_the_build_version(stack: Stack, runtime_build_args: dict[str, str]) -> None:
    assert stack.api("GET", "/version/").json() == {"version": runtime_build_args["VERSION"]}


def test_worker_processes_word_count_task(stack: Stack) -> None:
    queued = stack.api("POST", "/api/tasks/word-count/", json={"text": "a b c"})
    assert queued.status_code == 202
    task = f"/api/tasks/{queued.json()['task_id']}/"
    done = wait_for("the task", lambda: stack.api("GET", task).json()["state"] == "SUCCESS", 60)
    assert done and stack.api("GET", task).json() == {"state": "SUCCESS", "result": 3}


def test_worker_health_command_answers(stack: Stack) -> None:
    ping = "celery -A config inspect ping --destination celery@$HOSTNAME --timeout 5"
    result = stack.worker.exec_run(["sh", "-c", ping])
    assert result.exit_code == 0, result.output.decode()


def test_metrics_answer_prometheus_text(stack: Stack) -> None:
    response = stack.get("/metrics", headers={"Host": "127.0.0.1"})
    assert response.status_code == 200
    assert "django_http_requests_total_by_method_total" in response.text


def test_docker_reports_web_healthy(stack: Stack) -> None:
    def health() -> str:
        stack.web.reload()
        return stack.web.attrs["State"]["Health"]["Status"] == "healthy"

    wait_for("Docker health status 'healthy'", health, 60)


def test_production_settings_pass_deploy_checks(stack: Stack) -> None:
    check = stack.web.exec_run("python manage.py check --deploy --fail-level WARNING")
    assert check.exit_code == 0, check.output.decode()


def test_stopping_redis_makes_health_fail_naming_it(stack: Stack) -> None:
    stack.redis.stop(timeout=10)
    try:
        response = stack.get("/health/")
        assert response.status_code == 503
        assert response.json()["database"] == "ok"
        assert response.json()["redis"].startswith("error")
    finally:
        stack.redis.start()
    wait_for("/health/ 200 with Redis back", lambda: stack.get("/health/").status_code == 200, 30)


def test_sigterm_stops_web_and_worker_gracefully(stack: Stack) -> None:
    """Last of the stack's tests: Docker's stop (the image's STOPSIGNAL, SIGTERM) makes Gunicorn
    drain and Celery shut down warm, both exiting 0 well before the kill."""
    for container, farewell in (
        (stack.web, "Shutting down: Master"),
        (stack.worker, "Warm shutdown"),
    ):
        container.stop(timeout=40)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        assert farewell in container.logs().decode()


# --- bad input ----------------------------------------------------------------------------------

COMMANDS = {
    "gunicorn": None,  # the image's CMD
    "celery": "celery -A config worker --loglevel INFO",
    "manage.py": "python manage.py migrate --noinput",
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL"])
def test_missing_variable_stops_container_with_one_line(
    docker_client: docker.DockerClient,
    runtime_image: Image,
    labels: dict[str, str],
    missing: str,
    command: str,
) -> None:
    environment = {"SECRET_KEY": secrets.token_urlsafe(60), "DATABASE_URL": "postgres://a:b@db/app"}
    del environment[missing]
    container = docker_client.containers.run(
        runtime_image.id,
        COMMANDS[command],
        detach=True,
        environment=environment,
        network_disabled=True,
        labels=labels,
        **HARDENED,
    )
    try:
        status = container.wait(timeout=60)["StatusCode"]
        output = container.logs().decode().strip().splitlines()
    finally:
        container.remove(force=True)
    assert status != 0
    assert output == [f"ImproperlyConfigured: set {missing} (or {missing}_FILE)"]
