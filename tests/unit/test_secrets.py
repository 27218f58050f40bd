"""No secret value in any container's configuration: across every Container, Service, Volume
and Network the program creates (dev, prod on Swarm, prod on containers, with monitoring), the
configured djangoSecretKey and postgresPassword, the generated DATABASE_URL and the TLS key
appear in no env, command, label or name. They travel only as a holder's secret uploads (files
of a volume the consumer mounts read-only) or as Docker secrets (Swarm)."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator
from typing import Any

import conftest
import pytest
from conftest import (
    ACME_FULL,
    CONTAINER,
    DOCKER_SECRET,
    NETWORK,
    PROD_TLS,
    SERVICE,
    TLS_CERT,
    TLS_KEY,
    VOLUME,
    by_role,
    env_of,
    holder_files,
    holder_of,
    holders,
    labels_of,
    run,
    step,
    steps,
)

from components import renderers
from policy import rules
from policy.evaluate import evaluate
from tests.program import ProgramResult, Registration

SECRET_KEY = "secrets-test-key-" + "Zq8xW3vR7kL2mN9pT4yB6cD1fG5hJ0aSuV2wX4yZ6"
# '@' and '/' exercise the URL quoting.
PASSWORD = "pg-Pass:w0rd\\with@odd/chars"
SECRETS = {"djangoSecretKey": SECRET_KEY, "postgresPassword": PASSWORD}
DATABASE_URL = f"postgres://app:{urllib.parse.quote(PASSWORD, safe='')}@postgres:5432/app"
# Any of these in a configuration is a leak (the password also inside the URL).
NEEDLES = (SECRET_KEY, PASSWORD, urllib.parse.quote(PASSWORD, safe=""), DATABASE_URL, TLS_KEY)
APP_SECRETS = {"DATABASE_URL": DATABASE_URL, "SECRET_KEY": SECRET_KEY}
RUNS = {
    "dev": ("dev", {"monitoring": True}),
    "prod": ("prod", {**PROD_TLS, "monitoring": True}),
    "prod_containers": ("prod", {**PROD_TLS, "orchestrator": "containers"}),
    "prod_acme": ("prod", ACME_FULL),
}


@pytest.fixture(scope="module", params=sorted(RUNS))
def result(request) -> ProgramResult:
    stack, config = RUNS[request.param]
    return run(stack, config, SECRETS)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, string) for every string inside `value`."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}.{index}")


def leaks(r: Registration, allowed: frozenset[str] = frozenset()) -> list[str]:
    return [
        f"{r.name}: {path}"
        for path, text in strings(r.plain_inputs)
        if path.split(".")[0] not in allowed and any(needle in text for needle in NEEDLES)
    ]


def configurations(result: ProgramResult) -> list[Registration]:
    """Every Docker object whose configuration `docker inspect` shows."""
    return [r for typ in (CONTAINER, SERVICE, VOLUME, NETWORK) for r in result.of_type(typ)]


def test_no_secret_value_in_any_configuration(result):
    found = []
    registrations = configurations(result)
    assert len(registrations) > 10
    carrying = {h.urn for h in holders(result)}
    for r in registrations:
        # A holder's uploads: the only input of a container that may carry a secret (files it
        # copies into the volume; Docker never shows them in the container's configuration).
        found += leaks(r, frozenset({"uploads"}) if r.urn in carrying else frozenset())
    for r in result.of_type(DOCKER_SECRET):
        found += leaks(r, frozenset({"data"}))
    assert found == []


def test_secrets_reach_their_consumers_only_as_files(result):
    """The values do arrive, where they may: as files of a read-only volume (containers and
    one-shot steps) or as Docker secrets (Swarm); every consumer points at /run/secrets."""
    services = result.of_type(SERVICE)
    for r in result.of_type(CONTAINER) + services:
        env = env_of(r)
        secret_keys = {k.removesuffix("_FILE") for k in env if k.endswith("_FILE")}
        for key in secret_keys:
            assert env[f"{key}_FILE"] == renderers.secret_file(key), r.name
            assert key not in env, r.name
        if r.type == CONTAINER and secret_keys:
            (files,) = [m for m in r.plain_inputs["mounts"] if m["target"] == renderers.SECRETS_DIR]
            assert files["readOnly"] is True and files["type"] == "volume", r.name
            holder = holder_of(result, r)
            assert set(holder_files(holder)) == secret_keys, r.name
            # Secret-wrapped: encrypted in the state, masked in the engine's output.
            assert "uploads" in holder.secret_inputs, r.name
        if r in by_role(result, "web") + by_role(result, "celery"):
            assert secret_keys == set(APP_SECRETS), r.name
            if r.type == CONTAINER:
                assert holder_files(holder_of(result, r)) == APP_SECRETS, r.name
        if r in by_role(result, "postgres"):
            assert secret_keys == {"POSTGRES_PASSWORD"}
            assert holder_files(holder_of(result, r)) == {"POSTGRES_PASSWORD": PASSWORD}
    docker_secrets = result.of_type(DOCKER_SECRET)
    assert bool(docker_secrets) == bool(services)
    for s in docker_secrets:
        assert "data" in s.secret_inputs
        value = base64.b64decode(s.plain_inputs["data"]).decode()
        assert value in APP_SECRETS.values()
        assert value not in s.plain_inputs["name"]


def test_steps_get_secret_files_and_the_backup_the_database_password(result):
    migration = step(result, "-migration-run")
    assert holder_files(holder_of(result, migration)) == APP_SECRETS
    backup = step(result, "-backup-run")
    assert holder_files(holder_of(result, backup)) == {"PGPASSWORD": PASSWORD}
    environment = env_of(backup)
    # The step's shell exports PGPASSWORD from the file: never in the container's config.
    assert environment["PGPASSWORD_FILE"] == renderers.secret_file("PGPASSWORD")
    assert "PGPASSWORD" not in environment
    assert 'PGPASSWORD=$(cat "$PGPASSWORD_FILE")' in backup.plain_inputs["command"][2]
    for job in steps(result):
        # What a step prints could include what it read: encrypted in the state.
        assert job.additional_secret_outputs == ("containerLogs",), job.name


def test_the_tls_key_reaches_nginx_only_as_a_secret_file(prod):
    (nginx,) = by_role(prod, "nginx")
    holder = holder_of(prod, nginx)
    files = holder_files(holder)
    assert (files["tls.crt"], files["tls.key"]) == (TLS_CERT, TLS_KEY)
    assert "uploads" in holder.secret_inputs
    assert prod.outputs["tlsCertificate"] == TLS_CERT
    assert "tlsCertificate" not in prod.secret_outputs  # a certificate is public


def test_labels_name_no_secret_and_change_with_it(dev):
    """The run key and files labels are digests: a rotated secret replaces the consumers (and
    runs backup and migration again) without showing the value."""
    rotated_key = "rotated-" + SECRET_KEY[::-1]
    rotated = run("dev", {}, {**conftest.SECRETS, "djangoSecretKey": rotated_key})
    for suffix in ("-migration-run", "-backup-run"):
        old, new = step(dev, suffix), step(rotated, suffix)
        assert labels_of(old)[renderers.RUN_KEY_LABEL] != labels_of(new)[renderers.RUN_KEY_LABEL]
    (web_before,), (web_after,) = by_role(dev, "web"), by_role(rotated, "web")
    assert labels_of(web_before)["djangostack.files"] != labels_of(web_after)["djangostack.files"]
    carrying = {h.urn for h in holders(rotated)}
    for r in configurations(rotated):
        shown = {
            k: v for k, v in r.plain_inputs.items() if not (r.urn in carrying and k == "uploads")
        }
        assert rotated_key not in str(shown), r.name


# The policy pack holds every stack to the same rule (policy/rules.py).
SECRET_ENV_POLICY = [p for p in rules.POLICIES if p.name == "no-secret-values-in-env"]


def _policy_messages(typ: str, props: dict[str, Any]) -> list[str]:
    urn = f"urn:pulumi:prod::djangostack::{typ}::res"
    return [
        v.message
        for v in evaluate([rules.StackResource(typ, "res", urn, props)], None, SECRET_ENV_POLICY)
    ]


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (CONTAINER, {"envs": ["REDIS_URL=redis://redis", "POSTGRES_PASSWORD=x"]}),
        (CONTAINER, {"attach": True, "envs": ["DATABASE_URL=postgres://x"]}),  # a one-shot step
        (SERVICE, {"taskSpec": {"containerSpec": {"env": {"SECRET_KEY": "x"}}}}),
    ],
)
def test_the_policy_rejects_a_secret_given_as_an_env_value(typ, props):
    (message,) = _policy_messages(typ, props)
    assert "docker inspect" in message and "_FILE" in message


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (CONTAINER, {"envs": ["POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD"]}),
        (SERVICE, {"taskSpec": {"containerSpec": {"env": {"SECRET_KEY_FILE": "/run/secrets/K"}}}}),
        (CONTAINER, {"attach": True, "envs": ["PGPASSWORD_FILE=/run/secrets/PGPASSWORD"]}),
    ],
)
def test_the_policy_accepts_secrets_given_as_files(typ, props):
    assert _policy_messages(typ, props) == []
