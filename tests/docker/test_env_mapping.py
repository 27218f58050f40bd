"""A project that reads its own variable names (tests/fixtures/envmap: DB_HOST, DB_PORT,
DB_NAME, DB_USER, DB_PASSWORD, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, CELERY_BROKER_URL,
strictly, with no NAME_FILE handling) deployed unchanged by the Pulumi engine as a dev stack of
the real program, with config `env` / `secretEnv` only: the migration step, web and Celery (and
its health check) start, the project reaches the database with the mapped password, and no
secret value shows in `docker inspect`. The product's entrypoint refuses to start when a listed
secret file is missing or unreadable, naming the variable. The same project's prod stack (Swarm,
Docker secrets, Gunicorn behind nginx) serves it too, from a runtime image built with the mapped
names (its settings import at build time) that holds no secret."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
from docker.models.containers import Container

from components import renderers
from components.app import ENTRYPOINT, SECRET_ENV_VAR
from components.hardening import ROLE_LABEL
from tests.support.checks import assert_hardened_and_healthy
from tests.support.engine import ROOT, EngineStack, deployed
from tests.support.prodstack import ProdStack, prod_stack

pytestmark = pytest.mark.slow

FIXTURE = ROOT / "tests" / "fixtures" / "envmap"
ENV = {
    "DB_HOST": "${postgresHost}",
    "DB_PORT": "${postgresPort}",
    "DB_NAME": "${postgresDb}",
    "DB_USER": "${postgresUser}",
    "DJANGO_ALLOWED_HOSTS": "${allowedHosts}",
    "CELERY_BROKER_URL": "${redisUrl}",
    "PRICE_LINE": "costs $$5 at ${domain}",
}
SECRET_ENV = {"DB_PASSWORD": "${postgresPassword}", "DJANGO_SECRET_KEY": "${secretKey}"}
# The settings module is detected from the fixture's manage.py; `secretEnv` holds references
# only (set encrypted all the same: a value may hold literal secrets).
MAPPING = {"djangoSettingsModule": "", "env": ENV, "secretEnv": SECRET_ENV}


def secrets_of(stack: EngineStack) -> tuple[str, str]:
    """The stack's generated config secrets, read back from its config (decrypted)."""
    config = stack.stack.get_all_config()
    return (
        config["djangostack:djangoSecretKey"].value,
        config["djangostack:postgresPassword"].value,
    )


def web_of(stack: EngineStack, client: docker.DockerClient) -> Container:
    (web,) = [c for c in stack.all_containers(client) if c.labels.get(ROLE_LABEL) == "web"]
    return web


def project_copy(target: Path) -> Path:
    """The fixture with the reference app's pins (the install step is shared with its builds
    through BuildKit's cache)."""
    shutil.copytree(FIXTURE, target)
    shutil.copy(ROOT / "app" / "requirements.txt", target / "requirements.txt")
    return target


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    workdir = tmp_path_factory.mktemp("envmap")
    source = project_copy(workdir / "source")
    with deployed(workdir, "envmap", "dev", source=source, overrides=MAPPING) as stack:
        yield stack


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    workdir = tmp_path_factory.mktemp("envmap-prod")
    source = project_copy(workdir / "source")
    with prod_stack(workdir, "envmap-prod", source=source, overrides=MAPPING) as stack:
        yield stack


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


def test_the_project_serves_with_its_own_variables(dev: EngineStack) -> None:
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    response = session.get(f"{dev.outputs['url']}/whoami/", timeout=10)
    assert response.status_code == 200, response.text[:2000]
    secret_key, _ = secrets_of(dev)
    assert response.json() == {
        "database": "app",
        "user": "app",
        "migrated": True,  # the migration job reached the database with DB_PASSWORD too
        "secret_key_sha256": hashlib.sha256(secret_key.encode()).hexdigest(),
        "price_line": "costs $5 at localhost",
    }


def test_every_container_is_healthy_celery_included(
    dev: EngineStack, client: docker.DockerClient
) -> None:
    # Celery's health check loads the project's settings through the entrypoint.
    assert_hardened_and_healthy(dev, client, minimum=4)  # postgres, redis, web, celery
    roles = {c.labels.get("djangostack.role") for c in dev.all_containers(client)}
    assert {"web", "celery"} <= roles


def test_docker_inspect_shows_no_secret_value(
    dev: EngineStack, client: docker.DockerClient
) -> None:
    containers = dev.all_containers(client)
    assert len(containers) >= 4
    for container in containers:
        config = container.attrs["Config"]
        shown = "\n".join(
            [
                *(config.get("Env") or []),
                *(config.get("Cmd") or []),
                *(config.get("Entrypoint") or []),
                *(f"{k}={v}" for k, v in (config.get("Labels") or {}).items()),
            ]
        )
        for secret in secrets_of(dev):
            assert secret not in shown, container.name
    env = dict(item.split("=", 1) for item in web_of(dev, client).attrs["Config"]["Env"])
    assert env[SECRET_ENV_VAR] == "DB_PASSWORD DJANGO_SECRET_KEY"
    assert env["DB_PASSWORD_FILE"] == renderers.secret_file("DB_PASSWORD")
    assert "DB_PASSWORD" not in env and "DJANGO_SECRET_KEY" not in env
    assert env["DB_HOST"] == "postgres" and env["PRICE_LINE"] == "costs $5 at localhost"


@pytest.mark.parametrize(
    ("extra_env", "expected"),
    [
        ({}, "secret DB_PASSWORD: DB_PASSWORD_FILE is not set"),
        (
            {"DB_PASSWORD_FILE": "/run/secrets/DB_PASSWORD"},
            "secret DB_PASSWORD: cannot read /run/secrets/DB_PASSWORD (DB_PASSWORD_FILE)",
        ),
        (  # exists, but only root may read it
            {"DB_PASSWORD_FILE": "/etc/shadow"},
            "secret DB_PASSWORD: cannot read /etc/shadow (DB_PASSWORD_FILE)",
        ),
    ],
)
def test_the_entrypoint_refuses_to_start_without_a_readable_secret_file(
    dev: EngineStack,
    client: docker.DockerClient,
    labels: dict[str, str],
    extra_env: dict[str, str],
    expected: str,
) -> None:
    web = web_of(dev, client)
    container = client.containers.run(
        web.image.id,
        [ENTRYPOINT, "echo", "started"],
        user="10001:10001",
        environment={SECRET_ENV_VAR: "DB_PASSWORD", **extra_env},
        network_mode="none",
        labels=labels,
        detach=True,
    )
    try:
        status = container.wait(timeout=60)["StatusCode"]
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert status != 0
    assert f"djangostack entrypoint: {expected}" in logs
    assert "started" not in logs


def test_the_entrypoint_exports_the_exact_file_contents(
    dev: EngineStack, client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "value"
    secret.write_text("p@ss $HOME 'q'\n\n")  # spaces, quotes, `$` and trailing newlines kept
    secret.chmod(0o444)
    web = web_of(dev, client)
    output = client.containers.run(
        web.image.id,
        [ENTRYPOINT, "python", "-c", "import os; print(repr(os.environ['DB_PASSWORD']))"],
        user="10001:10001",
        environment={SECRET_ENV_VAR: "DB_PASSWORD", "DB_PASSWORD_FILE": "/run/secrets/DB_PASSWORD"},
        volumes={str(secret): {"bind": "/run/secrets/DB_PASSWORD", "mode": "ro"}},
        network_mode="none",
        labels=labels,
        remove=True,
    )
    assert output.decode().strip() == repr("p@ss $HOME 'q'\n\n")


def test_the_prod_stack_serves_it_through_nginx_with_docker_secrets(prod: ProdStack) -> None:
    """Swarm services: the secretEnv names arrive as Docker secrets under /run/secrets, the
    image's CMD (entrypoint, then Gunicorn) exports them; nothing secret in a service spec."""
    response = prod.get("/whoami/")
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    secret_key, password = secrets_of(prod)
    assert body["secret_key_sha256"] == hashlib.sha256(secret_key.encode()).hexdigest()
    assert (body["database"], body["user"], body["migrated"]) == ("app", "app", True)
    for role in ("web", "celery"):
        spec = prod.service(role).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        shown = json.dumps(spec)
        assert secret_key not in shown and password not in shown, role
        files = {s["File"]["Name"] for s in spec.get("Secrets") or []}
        assert {"/run/secrets/DB_PASSWORD", "/run/secrets/DJANGO_SECRET_KEY"} <= files
        tasks = prod.containers(role)
        assert tasks, role
        for task in tasks:
            env = "\n".join(task.attrs["Config"]["Env"])
            assert secret_key not in env and password not in env, task.name


def test_the_runtime_image_was_built_with_the_mapped_names_and_holds_no_secret(
    prod: ProdStack, client: docker.DockerClient
) -> None:
    """collectstatic imports the settings at build time: the program hands the build the
    mapped names (plain values, stand-ins for secrets) and never a real secret."""
    built = client.images.get(prod.outputs["imageRef"])
    shown = json.dumps([built.attrs, built.history()])
    assert "DJANGOSTACK_BUILD_ENV" in shown  # the build's mapped values are in its history
    for value in secrets_of(prod):
        assert value not in shown
    css = client.containers.run(
        built.id,
        ["cat", "/opt/djangostack/static/shop/site.css"],
        user="10001:10001",
        network_mode="none",
        remove=True,
    )
    assert css.decode() == "body { color: #234; }\n"
    # Nothing of the build's values is left in the image's environment.
    env_names = {item.split("=", 1)[0] for item in built.attrs["Config"]["Env"]}
    assert env_names.isdisjoint(set(ENV) | set(SECRET_ENV))
