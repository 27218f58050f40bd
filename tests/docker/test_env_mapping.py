"""A project that reads its own variable names (tests/fixtures/envmap: DB_HOST, DB_PORT,
DB_NAME, DB_USER, DB_PASSWORD, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, CELERY_BROKER_URL,
strictly, with no NAME_FILE handling) deployed unchanged as the dev stack of the real program
(realized through the harness), with config `env` / `secretEnv` only: the migration job, web and
Celery (and its health check) start, the project reaches the database with the mapped password,
and no secret value shows in `docker inspect`. The product's entrypoint refuses to start when a
listed secret file is missing or unreadable, naming the variable. The same project's runtime
image builds (its settings import at build time with the mapped names) with no secret in the
image, and its prod stack (Swarm, Docker secrets, Gunicorn behind nginx) serves it too."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from docker.models.containers import Container

from components import renderers
from components.app import ENTRYPOINT, SECRET_ENV_VAR
from tests.docker.stack_config import SECRET_KEYS, config_for
from tests.harness import realize, teardown
from tests.harness.stacks import LiveStack, assert_hardened_and_healthy
from tests.program import ROOT, run_program
from tests.support.prodstack import ProdStack
from tests.unit.conftest import FakeEngine

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


def secrets_of(live: LiveStack) -> tuple[str, str]:
    return live.config["djangoSecretKey"], live.config["postgresPassword"]


def web_of(live: LiveStack, client: docker.DockerClient) -> Container:
    (web,) = [c for c in live.containers(client) if c.labels.get("djangostack.role") == "web"]
    return web


def project_copy(target: Path) -> Path:
    """The fixture with the reference app's pins (the install step is shared with its builds
    through BuildKit's cache)."""
    shutil.copytree(FIXTURE, target)
    shutil.copy(ROOT / "app" / "requirements.txt", target / "requirements.txt")
    return target


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    workdir = tmp_path_factory.mktemp("envmap")
    app_dir = project_copy(workdir / "app")
    name = f"envmap-{uuid.uuid4().hex[:6]}"
    config = {
        **config_for("dev", name, app_dir),
        "djangoSettingsModule": "",  # detected from the fixture's manage.py
        "env": ENV,
        "secretEnv": SECRET_ENV,
    }
    live = LiveStack(name, "dev", app_dir, workdir / "state", config)
    try:
        # secretEnv is set with --secret (its values may hold literal secrets).
        live.first = realize(name, "dev", config, (*SECRET_KEYS, "secretEnv"), live.state_dir)
        yield live
    finally:
        teardown(name)


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


def test_the_project_serves_with_its_own_variables(deployed: LiveStack) -> None:
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    response = session.get(f"{deployed.first.outputs['url']}/whoami/", timeout=10)
    assert response.status_code == 200, response.text[:2000]
    secret_key, _ = secrets_of(deployed)
    assert response.json() == {
        "database": "app",
        "user": "app",
        "migrated": True,  # the migration job reached the database with DB_PASSWORD too
        "secret_key_sha256": hashlib.sha256(secret_key.encode()).hexdigest(),
        "price_line": "costs $5 at localhost",
    }


def test_every_container_is_healthy_celery_included(
    deployed: LiveStack, client: docker.DockerClient
) -> None:
    # Celery's health check loads the project's settings through the entrypoint.
    assert_hardened_and_healthy(deployed, client, minimum=4)  # postgres, redis, web, celery
    roles = {c.labels.get("djangostack.role") for c in deployed.containers(client)}
    assert {"web", "celery"} <= roles


def test_docker_inspect_shows_no_secret_value(
    deployed: LiveStack, client: docker.DockerClient
) -> None:
    containers = deployed.containers(client)
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
        for secret in secrets_of(deployed):
            assert secret not in shown, container.name
    env = dict(item.split("=", 1) for item in web_of(deployed, client).attrs["Config"]["Env"])
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
    deployed: LiveStack,
    client: docker.DockerClient,
    labels: dict[str, str],
    extra_env: dict[str, str],
    expected: str,
) -> None:
    web = web_of(deployed, client)
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
    deployed: LiveStack, client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "value"
    secret.write_text("p@ss $HOME 'q'\n\n")  # spaces, quotes, `$` and trailing newlines kept
    secret.chmod(0o444)
    web = web_of(deployed, client)
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


def test_the_runtime_image_builds_with_the_mapped_names_and_no_secret(
    build_image: Any, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """collectstatic imports the settings at build time: the program hands the build the
    mapped names (plain values, stand-ins for secrets) and never a real secret."""
    context = project_copy(tmp_path / "app")
    real = {
        "djangoSecretKey": secrets.token_urlsafe(64),
        "postgresPassword": "pw-" + secrets.token_hex(8),
    }
    settings = {
        "appDir": str(context),
        "djangoSettingsModule": "",
        "tlsSelfSigned": True,
        "env": ENV,
        "secretEnv": SECRET_ENV,
    }
    result = run_program(FakeEngine(), "prod", {**settings, **real}, [*real, "secretEnv"])
    (image,) = [
        r for r in result.of_type("docker-build:index:Image") if not r.name.endswith("-support")
    ]
    args = image.plain_inputs["buildArgs"]
    tag = f"djangostack/fixture-envmap:{secrets.token_hex(6)}"
    build_image(
        context,
        tag,
        build_args={
            "DJANGO_SETTINGS_MODULE": args["DJANGO_SETTINGS_MODULE"],
            "DJANGOSTACK_BUILD_ENV": args["DJANGOSTACK_BUILD_ENV"],
        },
    )
    built = docker_client.images.get(tag)
    shown = json.dumps([built.attrs, built.history()])
    for value in real.values():
        assert value not in shown
    css = docker_client.containers.run(
        tag, ["cat", "/opt/djangostack/static/shop/site.css"], user="10001:10001", remove=True
    )
    assert css.decode() == "body { color: #234; }\n"
    # Nothing of the build's values is left in the image's environment.
    env_names = {item.split("=", 1)[0] for item in built.attrs["Config"]["Env"]}
    assert env_names.isdisjoint(set(ENV) | set(SECRET_ENV))


def test_the_prod_stack_serves_it_through_nginx_with_docker_secrets(tmp_path: Path) -> None:
    """Swarm services: the secretEnv names arrive as Docker secrets under /run/secrets, the
    image's CMD (entrypoint, then Gunicorn) exports them; nothing secret in a service spec."""
    name = f"envmap-prod-{uuid.uuid4().hex[:6]}"
    app_dir = project_copy(tmp_path / "app")
    config = {
        **config_for("prod", name, app_dir),
        "djangoSettingsModule": "",
        "env": ENV,
        # References only: plain text is allowed (the values are the stack's secrets).
        "secretEnv": SECRET_ENV,
    }
    stack = ProdStack(name, tmp_path / "state", app_dir, config)
    try:
        stack.realize()
        response = stack.get("/whoami/")
        assert response.status_code == 200, response.text[:2000]
        body = response.json()
        secret_key, password = config["djangoSecretKey"], config["postgresPassword"]
        assert body["secret_key_sha256"] == hashlib.sha256(secret_key.encode()).hexdigest()
        assert (body["database"], body["user"], body["migrated"]) == ("app", "app", True)
        for role in ("web", "celery"):
            spec = stack.service(role).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            shown = json.dumps(spec)
            assert secret_key not in shown and password not in shown, role
            files = {s["File"]["Name"] for s in spec.get("Secrets") or []}
            assert {"/run/secrets/DB_PASSWORD", "/run/secrets/DJANGO_SECRET_KEY"} <= files
            for task in stack.containers(role):
                env = "\n".join(task.attrs["Config"]["Env"])
                assert secret_key not in env and password not in env, task.name
    finally:
        teardown(name)
