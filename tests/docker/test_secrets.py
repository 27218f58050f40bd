"""No secret value in any container's configuration, on real prod (Swarm, monitoring on) and
dev (plain containers) stacks.

`docker inspect` shows a container's env, command and labels to anyone who may use the Docker
API, and keeps showing them for as long as the container exists. The stack's secrets (the
Django SECRET_KEY, the Postgres password and the DATABASE_URL holding it, nginx's TLS private
key) must therefore only ever be files. Checked for every container the stack runs:
long-running containers and Swarm task containers after the deploy, and the one-shot jobs
(migration, backup, file writers, static sync) while they run: each container created during
the deploy is inspected the moment Docker reports its creation (they run with --rm, so
`docker ps -a` afterwards shows nothing).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

from components import renderers
from tests.docker.stack_config import config_for
from tests.harness import LABEL, Realization, teardown
from tests.harness.stacks import live_stack
from tests.program import unwrap_secrets
from tests.support.prodstack import ProdStack, copy_app

pytestmark = pytest.mark.slow
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"


@dataclass
class Watched:
    """A realized stack, the values that must not leak, and every container of it created
    while it was realized, inspected at once (inspect JSON)."""

    name: str  # the realization's name: label value and name prefix
    config: dict[str, Any]
    realization: Realization
    secrets: dict[str, str]
    created: list[dict[str, Any]]
    missed: int  # containers (of any stack) gone before they could be inspected

    def leaked(self, attrs: dict[str, Any]) -> list[str]:
        text = json.dumps(attrs)
        return [name for name, value in self.secrets.items() if value in text]

    def jobs(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for attrs in self.created:
            if (attrs["Config"]["Labels"] or {}).get("djangostack.role") == "job":
                found.setdefault(_job_kind(attrs), []).append(attrs)
        return found

    def running(self, client: docker.DockerClient, role: str | None = None) -> list:
        labels = [f"{LABEL}={self.name}"] + ([f"djangostack.role={role}"] if role else [])
        return client.containers.list(filters={"label": labels})


def _app_secrets(config: dict[str, Any]) -> dict[str, str]:
    password = config["postgresPassword"]
    return {
        "djangoSecretKey": config["djangoSecretKey"],
        "postgresPassword": password,
        "DATABASE_URL": f"postgres://app:{password}@postgres:5432/app",
    }


def _tls_key_body(realization: Realization) -> str:
    """The first base64 line of nginx's generated private key."""
    (key,) = [r for r in realization.result.resources if r.type == PRIVATE_KEY]
    return unwrap_secrets(key.state)["privateKeyPem"].strip().splitlines()[1]


def _watch(name: str, realize: Callable[[], Realization]) -> tuple[Realization, list, int]:
    """`realize()` while a thread inspects every container the moment Docker reports its
    creation; the realization, the inspect JSON of this stack's containers, and how many
    containers were gone before inspection."""
    inspector = docker.from_env(timeout=60)
    created: list[dict[str, Any]] = []
    missed: list[str] = []
    # Subscribed before the deploy starts (the request is made here).
    events = docker.from_env(timeout=None).events(
        decode=True, filters={"type": "container", "event": "create"}
    )

    def inspect(container_id: str) -> None:
        try:
            created.append(inspector.api.inspect_container(container_id))
        except docker.errors.NotFound:
            missed.append(container_id)

    inspections: list[threading.Thread] = []

    def inspect_each_created_container() -> None:
        # One thread per container: inspecting a container that is being started (say, attached
        # to an overlay network) waits for it, and a quick job must not be gone meanwhile.
        for event in events:
            inspections.append(threading.Thread(target=inspect, args=(event["id"],)))
            inspections[-1].start()

    thread = threading.Thread(target=inspect_each_created_container, daemon=True)
    thread.start()
    try:
        realization = realize()
    finally:
        events.close()
    thread.join(30)
    for inspection in inspections:
        inspection.join(60)
    # This stack's containers: their name, volumes or networks carry the stack's name.
    ours = [attrs for attrs in created if name in json.dumps(attrs)]
    return realization, ours, len(missed)


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    """A prod stack (web and Celery as Swarm services) with monitoring on."""
    workdir = tmp_path_factory.mktemp("secrets-prod")
    name = f"secrets-{uuid.uuid4().hex[:6]}"
    app_dir = copy_app(workdir / "app")
    config = config_for("prod", name, app_dir) | {"monitoring": True}
    stack = ProdStack(name, workdir / "state", app_dir, config)
    try:
        realization, created, missed = _watch(name, stack.realize)
        secrets = _app_secrets(config) | {"tls private key": _tls_key_body(realization)}
        yield Watched(name, config, realization, secrets, created, missed)
    finally:
        teardown(name)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    """A dev stack: web and Celery as plain containers, their secrets in files volumes."""
    with live_stack("dev", tmp_path_factory.mktemp("secrets-dev")) as live:
        realization, created, missed = _watch(live.name, live.realize)
        yield Watched(
            live.name, live.config, realization, _app_secrets(live.config), created, missed
        )


def _job_kind(attrs: dict[str, Any]) -> str:
    command = " ".join(attrs["Config"]["Cmd"] or [])
    volumes = [m.get("Name", "") for m in attrs.get("Mounts") or []]
    if "manage.py migrate" in command:
        return "migration"
    if "pg_dump" in command:
        return "backup"
    if "staticfiles" in command:
        return "static sync"
    writes = [v for v in volumes if v.endswith("-files")]
    if writes:
        return "writer " + writes[0].rsplit("-", 2)[-2]  # <prefix>-<service>-files
    return "other"


def _env(attrs: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in attrs["Config"]["Env"] or [])


EXPECTED = {  # jobs that must have been seen, long-running roles
    "prod": (
        {"migration", "backup", "writer postgres", "writer nginx", "writer prometheus"},
        {"postgres", "redis", "web", "celery", "nginx", "prometheus"},
    ),
    "dev": (
        {"migration", "backup", "writer postgres", "writer web", "writer celery"},
        {"postgres", "redis", "web", "celery"},
    ),
}


@pytest.fixture(params=sorted(EXPECTED))
def stack(request: pytest.FixtureRequest) -> tuple[str, Watched]:
    return request.param, request.getfixturevalue(request.param)


def test_one_shot_jobs_carry_no_secret_value_while_they_run(stack) -> None:
    kind, watched = stack
    jobs = watched.jobs()
    assert EXPECTED[kind][0] <= set(jobs), (
        f"jobs seen: {sorted(jobs)}; containers gone before inspection: {watched.missed}"
    )
    for job, runs in jobs.items():
        for attrs in runs:
            assert watched.leaked(attrs) == [], job
    # The secrets reach the jobs as files in a private tmpfs, named by KEY_FILE (PGPASSFILE
    # for pg_dump, which reads no PGPASSWORD_FILE).
    (migration,) = jobs["migration"]
    env = _env(migration)
    assert env["SECRET_KEY_FILE"] == renderers.secret_file("SECRET_KEY")
    assert env["DATABASE_URL_FILE"] == renderers.secret_file("DATABASE_URL")
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    assert "uid=10001" in migration["HostConfig"]["Tmpfs"][renderers.SECRETS_DIR]
    (backup,) = jobs["backup"]
    assert _env(backup)["PGPASSFILE"] == renderers.secret_file("PGPASS")
    assert "PGPASSWORD" not in _env(backup)
    assert "uid=999" in backup["HostConfig"]["Tmpfs"][renderers.SECRETS_DIR]


def _stat(container, path: str) -> str:
    code, out = container.exec_run(["stat", "-c", "%a %u", path])
    assert code == 0, out.decode()
    return out.decode().strip()


def test_running_containers_and_swarm_tasks_carry_no_secret_value(stack) -> None:
    kind, watched = stack
    client = docker.from_env(timeout=60)
    running = watched.running(client)
    assert {c.labels.get("djangostack.role") for c in running} == EXPECTED[kind][1]
    for container in running:
        assert watched.leaked(container.attrs) == [], container.name
        assert watched.leaked(client.api.inspect_image(container.attrs["Image"])) == []
    for service in client.services.list(filters={"label": f"{LABEL}={watched.name}"}):
        assert watched.leaked(service.attrs) == [], service.name
    # Positive control: each finds its secrets as 0400 files owned by its user.
    (postgres,) = watched.running(client, "postgres")
    assert _env(postgres.attrs)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD" not in _env(postgres.attrs)
    assert _stat(postgres, "/run/secrets/POSTGRES_PASSWORD") == "400 999"
    password = postgres.exec_run(["cat", "/run/secrets/POSTGRES_PASSWORD"]).output.decode()
    assert password == watched.secrets["postgresPassword"]
    for app in watched.running(client, "web") + watched.running(client, "celery"):
        env = _env(app.attrs)
        for key in ("SECRET_KEY", "DATABASE_URL"):
            assert env[f"{key}_FILE"] == renderers.secret_file(key), app.name
            assert key not in env, app.name
            assert _stat(app, renderers.secret_file(key)) == "400 10001", app.name


def test_the_site_works_on_its_secret_files(stack, tmp_path: Path) -> None:
    # Web reached Postgres with the password from its file, which initialised the database.
    _, watched = stack
    url = watched.realization.outputs["url"] + "/health/"
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    # prod: the stack's own self-signed certificate (domain localhost), dev: plain HTTP.
    certificate = watched.realization.outputs.get("tlsCertificate")
    verify: bool | str = True
    if certificate:
        ca_file = tmp_path / "site.crt"
        ca_file.write_text(certificate)
        verify = str(ca_file)
    assert session.get(url, verify=verify, timeout=10).json() == {"database": "ok", "redis": "ok"}


def test_no_job_output_holds_a_secret(stack) -> None:
    """The harness's state (the engine's view of each Command, stdin included) may hold
    secrets, as Pulumi's encrypted state does; what the jobs printed may not."""
    _, watched = stack
    for r in watched.realization.result.resources:
        if r.type == "command:local:Command":
            outputs = unwrap_secrets(r.state)
            printed = json.dumps({k: outputs.get(k) for k in ("stdout", "stderr")})
            assert [n for n, v in watched.secrets.items() if v in printed] == [], r.name
