"""No secret value in any container's configuration, on a real prod stack (monitoring on).

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import pytest

from components import renderers
from tests.docker.stack_config import config_for
from tests.harness import LABEL, Realization, teardown
from tests.program import unwrap_secrets
from tests.support.prodstack import ProdStack, copy_app

pytestmark = pytest.mark.slow
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"


@dataclass
class Watched:
    """The realized stack, the values that must not leak, and every container created while
    it was realized, inspected at once (inspect JSON), plus the ids gone before inspection."""

    stack: ProdStack
    realization: Realization
    secrets: dict[str, str]
    created: list[dict[str, Any]] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def leaked(self, attrs: dict[str, Any]) -> list[str]:
        text = json.dumps(attrs)
        return [name for name, value in self.secrets.items() if value in text]

    def ours(self, attrs: dict[str, Any]) -> bool:
        """A container of this stack: its name, volumes or networks carry the stack's name."""
        return self.stack.name in json.dumps(attrs)


def _secret_values(stack: ProdStack, realization: Realization) -> dict[str, str]:
    cfg = stack.config
    password = cfg["postgresPassword"]
    (key,) = [r for r in realization.result.resources if r.type == PRIVATE_KEY]
    pem = unwrap_secrets(key.state)["privateKeyPem"]
    key_body = pem.strip().splitlines()[1]  # the first base64 line of the private key
    return {
        "djangoSecretKey": cfg["djangoSecretKey"],
        "postgresPassword": password,
        "DATABASE_URL": f"postgres://app:{password}@postgres:5432/app",
        "tls private key": key_body,
    }


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    workdir = tmp_path_factory.mktemp("secrets")
    name = f"secrets-{uuid.uuid4().hex[:6]}"
    app_dir = copy_app(workdir / "app")
    config = config_for("prod", name, app_dir) | {"monitoring": True}
    stack = ProdStack(name, workdir / "state", app_dir, config)
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
        realization = stack.realize()
        events.close()
        thread.join(30)
        for inspection in inspections:
            inspection.join(60)
        watched = Watched(stack, realization, _secret_values(stack, realization))
        watched.created = [attrs for attrs in created if watched.ours(attrs)]
        watched.missed = missed
        yield watched
    finally:
        events.close()
        teardown(name)


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


def test_one_shot_jobs_carry_no_secret_value_while_they_run(watched: Watched) -> None:
    jobs = {}
    for attrs in watched.created:
        labels = attrs["Config"]["Labels"] or {}
        if labels.get("djangostack.role") == "job":
            jobs.setdefault(_job_kind(attrs), []).append(attrs)
    assert {"migration", "backup", "writer postgres", "writer nginx", "writer prometheus"} <= set(
        jobs
    ), f"jobs seen: {sorted(jobs)}; gone before inspection: {len(watched.missed)}"
    for kind, runs in jobs.items():
        for attrs in runs:
            assert watched.leaked(attrs) == [], kind
    # The secrets reach the jobs as files in a tmpfs, named by KEY_FILE (PGPASSFILE for
    # pg_dump, which reads no PGPASSWORD_FILE).
    (migration,) = jobs["migration"]
    env = _env(migration)
    assert env["SECRET_KEY_FILE"] == renderers.secret_file("SECRET_KEY")
    assert env["DATABASE_URL_FILE"] == renderers.secret_file("DATABASE_URL")
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    assert renderers.SECRETS_DIR in migration["HostConfig"]["Tmpfs"]
    (backup,) = jobs["backup"]
    assert _env(backup)["PGPASSFILE"] == renderers.secret_file("PGPASS")
    assert "PGPASSWORD" not in _env(backup)
    assert renderers.SECRETS_DIR in backup["HostConfig"]["Tmpfs"]


def test_running_containers_and_swarm_tasks_carry_no_secret_value(watched: Watched) -> None:
    client = watched.stack.client
    running = client.containers.list(filters={"label": f"{LABEL}={watched.stack.name}"})
    roles = {c.labels.get("djangostack.role") for c in running}
    assert roles == {"postgres", "redis", "web", "celery", "nginx", "prometheus"}
    for container in running:
        assert watched.leaked(container.attrs) == [], container.name
        assert watched.leaked(client.api.inspect_image(container.attrs["Image"])) == []
    for service in client.services.list(filters={"label": f"{LABEL}={watched.stack.name}"}):
        assert watched.leaked(service.attrs) == [], service.name
    # Positive control: they are found as 0400 files owned by the service's user.
    postgres = watched.stack.container("postgres")
    assert _env(postgres.attrs)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/POSTGRES_PASSWORD"
    code, out = postgres.exec_run(["stat", "-c", "%a %u", "/run/secrets/POSTGRES_PASSWORD"])
    assert (code, out.decode().strip()) == (0, "400 999")
    code, out = postgres.exec_run(["cat", "/run/secrets/POSTGRES_PASSWORD"])
    assert out.decode() == watched.secrets["postgresPassword"]
    for web in watched.stack.containers("web"):
        env = _env(web.attrs)
        assert env["SECRET_KEY_FILE"] == renderers.secret_file("SECRET_KEY"), web.name
        assert "SECRET_KEY" not in env and "DATABASE_URL" not in env, web.name


def test_the_site_works_on_its_secret_files(watched: Watched) -> None:
    # Web reached Postgres with the password from its file, which initialised the database.
    assert watched.stack.get("/health/").json() == {"database": "ok", "redis": "ok"}
    assert watched.stack.post("/api/messages/", {"text": "secret files"}).status_code == 201


def test_no_job_state_file_or_log_holds_a_secret(watched: Watched) -> None:
    """The harness's state (the engine's view of each Command, stdin included) is allowed to
    hold secrets, as Pulumi's encrypted state does; what the jobs printed is not."""
    for r in watched.realization.result.resources:
        if r.type == "command:local:Command":
            outputs = unwrap_secrets(r.state)
            printed = json.dumps({k: outputs.get(k) for k in ("stdout", "stderr")})
            assert [n for n, v in watched.secrets.items() if v in printed] == [], r.name
