"""No secret value where others can read it, on a prod stack (web and Celery Swarm services,
monitoring on) and a dev stack (plain containers) deployed by the Pulumi engine.

`docker inspect` shows a container's or a service's env, command and labels to anyone who may
use the Docker API, for as long as the object exists; `docker logs` shows what a one-shot step
printed; the Pulumi state file is readable by whoever reads the backend. The stack's secrets
(the Django SECRET_KEY, the Postgres password and the DATABASE_URL holding it, nginx's TLS
private key) must therefore only ever be files: in a read-only files volume (plain containers
and one-shot steps, filled by a holder container that never runs) or Docker secrets (Swarm
services), and only encrypted in the state. Checked on every container of each stack: the
long-running ones, the Swarm task containers, the holders and the one-shot steps (they stay,
exited, after the deploy).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from components import renderers
from components.hardening import HOLDER_ROLE, ROLE_LABEL, STACK_LABEL
from components.jobs import PASSWORD_SECRET
from components.nginx import CONF_DIR
from tests.support.engine import BACKEND_DIR, ROOT, EngineStack, deployed
from tests.support.prodstack import prod_stack

pytestmark = pytest.mark.slow
CONTAINER = "docker:index/container:Container"
# How the state marks an encrypted value (Pulumi's secret signature).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
APP_USER_ID = "10001"
EXPECTED = {  # long-running roles, one-shot steps (their Docker names without the prefix)
    "prod": (
        {"postgres", "redis", "web", "celery", "nginx", "prometheus"},
        {"migrate", "backup", "static-sync", "maintenance"},
    ),
    "dev": ({"postgres", "redis", "web", "celery"}, {"migrate", "backup"}),
}


@dataclass
class Watched:
    """A deployed stack and the values that must not show anywhere readable."""

    kind: str  # dev | prod
    stack: EngineStack
    secrets: dict[str, str]  # what it is -> the value

    def leaked(self, shown: object) -> list[str]:
        text = shown if isinstance(shown, str) else json.dumps(shown)
        return [name for name, value in self.secrets.items() if value in text]

    def containers(self, client: docker.DockerClient, role: str | None = None) -> list:
        """Every container of the stack (running or not), or those of `role`."""
        every = self.stack.all_containers(client)
        return [c for c in every if role is None or c.labels.get(ROLE_LABEL) == role]

    def running(self, client: docker.DockerClient, role: str) -> list:
        return [c for c in self.containers(client, role) if c.status == "running"]


def _secrets_of(stack: EngineStack) -> dict[str, str]:
    """The stack's secret values (the generated config secrets, read back decrypted), and each
    one base64-encoded as a Docker secret's data is."""
    config = stack.stack.get_all_config()
    values = {
        "djangoSecretKey": config["djangostack:djangoSecretKey"].value,
        "postgresPassword": config["djangostack:postgresPassword"].value,
        "DATABASE_URL": stack.outputs["databaseUrl"],
    }
    assert values["postgresPassword"] in values["DATABASE_URL"]  # the real value, not [secret]
    if stack.profile == "prod":
        key = Path(stack.config["tlsKeyFile"]).read_text()
        values["TLS private key"] = key.strip().splitlines()[1]  # its first base64 line
    encoded = {f"{k} (base64)": base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return values | encoded


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    workdir = tmp_path_factory.mktemp("secrets-prod")
    with prod_stack(workdir, "secrets", overrides={"monitoring": True}) as stack:
        yield Watched("prod", stack, _secrets_of(stack))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    with deployed(tmp_path_factory.mktemp("secrets-dev"), "secrets-dev", "dev") as stack:
        yield Watched("dev", stack, _secrets_of(stack))


@pytest.fixture(params=sorted(EXPECTED))
def watched(request: pytest.FixtureRequest) -> Watched:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


def _env(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] or [])


def _stat(container, path: str) -> str:
    code, out = container.exec_run(["stat", "-c", "%a %u", path])
    assert code == 0, out.decode()
    return out.decode().strip()


def _read(container, path: str) -> str:
    """A file's content, read inside the container as its own user."""
    code, out = container.exec_run(["cat", path])
    assert code == 0, out.decode()
    return out.decode()


def _jobs(watched: Watched, client: docker.DockerClient) -> dict[str, object]:
    prefix = f"{watched.stack.name}-"
    return {c.name.removeprefix(prefix): c for c in watched.containers(client, "job")}


def test_no_container_service_or_image_shows_a_secret_value(
    watched: Watched, client: docker.DockerClient
) -> None:
    roles, steps = EXPECTED[watched.kind]
    containers = watched.containers(client)
    running = {c.labels.get(ROLE_LABEL) for c in containers if c.status == "running"}
    assert running == roles
    assert set(_jobs(watched, client)) == steps
    assert watched.containers(client, HOLDER_ROLE), "no files holder"
    for container in containers:  # long-running, Swarm tasks, holders and one-shot steps
        assert watched.leaked(container.attrs) == [], container.name
        assert watched.leaked(client.api.inspect_image(container.attrs["Image"])) == []
    selector = {"label": f"{STACK_LABEL}={watched.stack.name}"}
    for service in client.services.list(filters=selector):
        assert watched.leaked(service.attrs) == [], service.name
    for secret in client.secrets.list(filters=selector):
        assert watched.leaked(secret.attrs) == [], secret.name


def test_one_shot_steps_ran_on_secret_files_and_printed_no_secret(
    watched: Watched, client: docker.DockerClient
) -> None:
    jobs = _jobs(watched, client)
    for step, job in jobs.items():
        assert job.attrs["State"]["ExitCode"] == 0, (step, job.logs()[-2000:])
        command = [job.attrs["Path"], *job.attrs["Args"]]
        assert watched.leaked(command) == [], step
        assert watched.leaked(job.logs().decode(errors="replace")) == [], step
    # The secrets reach the steps as files of a read-only files volume, named by KEY_FILE (the
    # backup step exports PGPASSWORD from its file inside its own shell: never in its config).
    migration, backup = jobs["migrate"], jobs["backup"]
    env = _env(migration)
    for key in ("SECRET_KEY", "DATABASE_URL"):
        assert env[f"{key}_FILE"] == renderers.secret_file(key)
        assert key not in env
    assert _env(backup)[f"{PASSWORD_SECRET}_FILE"] == renderers.secret_file(PASSWORD_SECRET)
    assert "PGPASSWORD" not in _env(backup)
    for job in (migration, backup):
        mounts = {m["Destination"]: m for m in job.attrs["Mounts"]}
        files = mounts[renderers.SECRETS_DIR]
        assert files["RW"] is False and files["Name"] == f"{job.name}-files", job.name
    # Positive control: pg_dump logged in with its password file, the dump is there.
    listed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "restore.sh"), "--prefix", watched.stack.name, "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert len(listed) == 1 and listed[0].endswith(".dump"), backup.logs().decode()[-2000:]


def test_services_read_their_secrets_from_files(
    watched: Watched, client: docker.DockerClient
) -> None:
    password = watched.secrets["postgresPassword"]
    (postgres,) = watched.running(client, "postgres")
    env = _env(postgres)
    assert env["POSTGRES_PASSWORD_FILE"] == renderers.secret_file("POSTGRES_PASSWORD")
    assert "POSTGRES_PASSWORD" not in env
    # A root-owned file in a volume mounted read-only: readable, not changeable.
    assert _stat(postgres, renderers.secret_file("POSTGRES_PASSWORD")) == "444 0"
    assert _read(postgres, renderers.secret_file("POSTGRES_PASSWORD")) == password
    mounts = {m["Destination"]: m for m in postgres.attrs["Mounts"]}
    assert mounts[renderers.SECRETS_DIR]["RW"] is False
    values = {
        "SECRET_KEY": watched.secrets["djangoSecretKey"],
        "DATABASE_URL": watched.secrets["DATABASE_URL"],
    }
    # Swarm tasks: Docker secrets owned by the app user, 0400; containers: the files volume.
    mode = f"400 {APP_USER_ID}" if watched.kind == "prod" else "444 0"
    apps = watched.running(client, "web") + watched.running(client, "celery")
    assert len(apps) >= 2
    for app in apps:
        env = _env(app)
        for key, value in values.items():
            assert env[f"{key}_FILE"] == renderers.secret_file(key), app.name
            assert key not in env, app.name
            assert _stat(app, renderers.secret_file(key)) == mode, app.name
            assert _read(app, renderers.secret_file(key)) == value, app.name


def test_the_tls_key_reaches_nginx_only_as_a_file(client: docker.DockerClient, prod) -> None:
    stack = prod.stack
    (nginx,) = prod.running(client, "nginx")
    key = Path(stack.config["tlsKeyFile"]).read_text()
    assert _read(nginx, f"{CONF_DIR}/tls.key") == key
    mounts = {m["Destination"]: m for m in nginx.attrs["Mounts"]}
    assert mounts[CONF_DIR]["RW"] is False
    assert prod.leaked(nginx.attrs) == []


def test_the_site_works_on_its_secret_files(watched: Watched) -> None:
    # Web reached Postgres with the password from its file, which initialised the database.
    if watched.kind == "prod":
        response = watched.stack.get("/health/")
    else:
        session = requests.Session()
        session.trust_env = False  # loopback only, never through a proxy
        response = session.get(watched.stack.outputs["url"] + "/health/", timeout=10)
    assert response.json() == {"database": "ok", "redis": "ok"}


def _state_files(stack: EngineStack) -> list[Path]:
    """The stack's checkpoint and its backups and history in the file backend."""
    found = [
        p for p in (BACKEND_DIR / ".pulumi").rglob("*") if p.is_file() and stack.name in str(p)
    ]
    assert any(p.name == f"{stack.name}.json" for p in found), found
    return found


def _resource(stack: EngineStack, type_token: str, name: str) -> dict:
    checkpoint = BACKEND_DIR / ".pulumi" / "stacks" / "djangostack" / f"{stack.name}.json"
    resources = json.loads(checkpoint.read_text())["checkpoint"]["latest"]["resources"]
    (found,) = [r for r in resources if r["type"] == type_token and r["urn"].endswith(f"::{name}")]
    return found


def test_the_state_and_the_stack_config_hold_no_secret_in_plain_text(watched: Watched) -> None:
    stack = watched.stack
    for path in _state_files(stack):
        assert watched.leaked(path.read_text(errors="replace")) == [], path
    settings = stack.work_dir / f"Pulumi.{stack.name}.yaml"
    assert watched.leaked(settings.read_text()) == [], settings
    # They are there, encrypted: what the holders upload and what the steps printed.
    holder = _resource(stack, CONTAINER, "djangostack-postgres-container-files")
    assert SECRET_SIG in json.dumps(holder["outputs"]["uploads"])
    migration = _resource(stack, CONTAINER, "djangostack-migration-run")
    assert SECRET_SIG in json.dumps(migration["outputs"]["containerLogs"])
    if watched.kind == "prod":
        nginx_files = _resource(stack, CONTAINER, "djangostack-nginx-container-files")
        assert SECRET_SIG in json.dumps(nginx_files["outputs"]["uploads"])
