"""Environment mapping (config `env` / `secretEnv`): a project's own variable names get literal
text and stack values; secrets stay files (NAME_FILE) listed in DJANGOSTACK_SECRET_ENV for the
product's entrypoint, and every app command (the migration step's too) starts with that
entrypoint; each misuse fails the
preview naming the key, the entry and the fix."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import conftest
import pytest
from conftest import (
    CONTAINER,
    DOCKER_SECRET,
    PROD_TLS,
    SERVICE,
    app_image,
    by_role,
    env_of,
    holder_files,
    holder_of,
    holders,
    run,
    step,
)
from test_config import failure
from test_secrets import SECRETS, configurations, leaks, strings

from components import config, renderers, stack
from components.app import ENTRYPOINT, SECRET_ENV_VAR
from policy import rules
from policy.evaluate import evaluate
from tests.program import ProgramResult, Registration

SENTRY_DSN = "https://public-key@sentry.example.com/42"  # a literal secret of the project
ENV = {
    "DB_HOST": "${postgresHost}",
    "DB_PORT": "${postgresPort}",
    "DB_NAME": "${postgresDb}",
    "DB_USER": "${postgresUser}",
    "CELERY_BROKER_URL": "${redisUrl}",
    "PRICE": "costs $$5 at ${domain}",
    "DEBUG": False,  # `--path` stores true/false and numbers as JSON
    "WORKERS": 3,
    "ALLOWED_HOSTS": "example.org",  # replaces the built-in name
}
SECRET_ENV = {
    "DB_PASSWORD": "${postgresPassword}",
    "DJANGO_SECRET_KEY": "${secretKey}",
    "SENTRY_DSN": SENTRY_DSN,
    "SECRET_KEY": "${secretKey}",  # replaces the built-in secret of the same name
}
MAPPED = {"env": ENV, "secretEnv": SECRET_ENV}
SECRET_KEYS = {**SECRETS, "secretEnv": SECRET_ENV}
RUNS = {
    "dev": ("dev", {}),
    "prod": ("prod", PROD_TLS),
    "prod_containers": ("prod", {**PROD_TLS, "orchestrator": "containers"}),
}


@pytest.fixture(scope="module", params=sorted(RUNS))
def result(request) -> ProgramResult:
    stack, settings = RUNS[request.param]
    return run(stack, {**settings, "env": ENV}, SECRET_KEYS)


def command_of(r: Registration) -> list[str]:
    inputs = r.plain_inputs
    if r.type == CONTAINER:
        return inputs.get("command") or []
    return inputs["taskSpec"]["containerSpec"].get("args") or []


def migration(result: ProgramResult) -> Registration:
    return step(result, "-migration-run")


def test_every_app_container_and_service_gets_the_mapped_names(result):
    apps = by_role(result, "web") + by_role(result, "celery")
    assert len(apps) >= 2
    for r in apps:
        env = env_of(r)
        assert env["DB_HOST"] == "postgres" and env["DB_PORT"] == "5432", r.name
        assert env["DB_NAME"] == "app" and env["DB_USER"] == "app", r.name
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0", r.name
        assert env["PRICE"] == "costs $5 at localhost", r.name
        assert env["DEBUG"] == "false" and env["WORKERS"] == "3", r.name
        assert env["ALLOWED_HOSTS"] == "example.org", r.name
        assert env[SECRET_ENV_VAR] == "DB_PASSWORD DJANGO_SECRET_KEY SECRET_KEY SENTRY_DSN"
        for name in SECRET_ENV:
            assert name not in env, r.name
            assert env[f"{name}_FILE"] == renderers.secret_file(name), r.name
        assert env["DATABASE_URL_FILE"] == renderers.secret_file("DATABASE_URL"), r.name


def test_the_migration_step_gets_them_and_runs_through_the_entrypoint(result):
    job = migration(result)
    environment = env_of(job)
    assert environment["DB_HOST"] == "postgres"
    assert environment[SECRET_ENV_VAR] == "DB_PASSWORD DJANGO_SECRET_KEY SECRET_KEY SENTRY_DSN"
    for name in SECRET_ENV:
        assert name not in environment
        assert environment[f"{name}_FILE"] == renderers.secret_file(name)
    files = holder_files(holder_of(result, job))
    assert files["DB_PASSWORD"] == SECRETS["postgresPassword"]
    assert files["DJANGO_SECRET_KEY"] == files["SECRET_KEY"] == SECRETS["djangoSecretKey"]
    assert files["SENTRY_DSN"] == SENTRY_DSN
    # The entrypoint exports each DJANGOSTACK_SECRET_ENV name from its file, then execs.
    assert job.plain_inputs["command"] == [
        ENTRYPOINT,
        "python",
        "manage.py",
        "migrate",
        "--noinput",
    ]


def test_celery_and_its_health_check_start_with_the_entrypoint(result):
    for r in by_role(result, "celery"):
        assert command_of(r)[:2] == [ENTRYPOINT, "celery"], r.name
        inputs = r.plain_inputs
        health = (
            inputs["healthcheck"]
            if r.type == CONTAINER
            else inputs["taskSpec"]["containerSpec"]["healthcheck"]
        )
        assert health["tests"][1].startswith(f"{ENTRYPOINT} celery -A "), r.name
    for r in by_role(result, "web"):
        assert command_of(r) == [], r.name  # the image's CMD, which starts with the entrypoint


def test_no_mapped_secret_in_any_configuration_only_in_files_or_docker_secrets(result):
    carrying = {h.urn for h in holders(result)}
    found = []
    for r in configurations(result):
        allowed = frozenset({"uploads"}) if r.urn in carrying else frozenset()
        found += leaks(r, allowed)
        found += [
            f"{r.name}: {path}"
            for path, text in strings(r.plain_inputs)
            if SENTRY_DSN in text and path.split(".")[0] not in allowed
        ]
    assert found == []
    secrets = [base64.b64decode(s.plain_inputs["data"]).decode() for s in docker_secrets(result)]
    if result.of_type(SERVICE):  # Swarm: the mapped secrets are Docker secrets
        assert SENTRY_DSN in secrets and SECRETS["postgresPassword"] in secrets
    for s in docker_secrets(result):
        assert "data" in s.secret_inputs


def docker_secrets(result: ProgramResult) -> list[Registration]:
    return result.of_type(DOCKER_SECRET)


def policy_violations(result: ProgramResult) -> list[str]:
    policy = [p for p in rules.POLICIES if p.name == "no-secret-values-in-env"]
    resources = [
        rules.StackResource(r.type, r.name, r.urn, r.plain_inputs)
        for r in result.of_type(CONTAINER) + result.of_type(SERVICE)
    ]
    return [v.message for v in evaluate(resources, None, policy)]


def test_the_policy_pack_accepts_the_mapping(result):
    # DJANGOSTACK_SECRET_ENV lists names (its own name says SECRET): not a secret value.
    assert policy_violations(result) == []


def test_the_policy_pack_still_catches_a_secret_literal():
    leaky = run("dev", {"env": {"API_TOKEN": "tok-123"}})  # a plain literal under a secret name
    messages = policy_violations(leaky)
    assert any("sets API_TOKEN in its environment" in m for m in messages)
    # On every app container and on the migration step alike.
    flagged = {m.split("'")[1] for m in messages if "API_TOKEN" in m}
    assert flagged >= {"djangostack-web", "djangostack-celery", "djangostack-migration-run"}


def test_without_a_mapping_nothing_changes_in_the_environment(dev):
    for r in by_role(dev, "web") + by_role(dev, "celery"):
        assert SECRET_ENV_VAR not in env_of(r)
        assert set(k for k in env_of(r) if k.endswith("_FILE")) == {
            "SECRET_KEY_FILE",
            "DATABASE_URL_FILE",
        }


def test_a_secret_env_of_references_only_may_be_plain_text():
    result = run("dev", {"secretEnv": {"DB_PASSWORD": "${postgresPassword}"}})
    (web,) = by_role(result, "web")
    assert env_of(web)[SECRET_ENV_VAR] == "DB_PASSWORD"
    assert "DB_PASSWORD" not in env_of(web)


def problem_line(settings: dict[str, Any], key: str, secrets: dict | None = None) -> str:
    message = failure("dev", settings, secrets).message
    line = next((x for x in message.splitlines() if f"djangostack:{key}:" in x), None)
    assert line is not None, message
    assert "Fix: pulumi config " in line, line
    return line


KNOWN = ", ".join(sorted(config.STACK_VALUES))


@pytest.mark.parametrize(
    ("settings", "secrets", "key", "expected"),
    [
        (
            {"env": {"DB_HOST": "${postgresHostname}"}},
            None,
            "env",
            [
                "DB_HOST: unknown stack value ${postgresHostname}; known: " + KNOWN,
                "pulumi config set --path 'env.DB_HOST'",
            ],
        ),
        (
            {"env": {"DATABASE": "postgres://app:${postgresPassword}@db/app"}},
            None,
            "env",
            [
                "DATABASE uses the secret stack value ${postgresPassword}: move it to secretEnv",
                "pulumi config rm --path 'env.DATABASE' && pulumi config set --secret --path "
                "'secretEnv.DATABASE'",
            ],
        ),
        (
            {"secretEnv": {"API_TOKEN": "tok-123"}},
            None,
            "secretEnv",
            [
                "API_TOKEN holds literal text but secretEnv is set in plain text",
                "pulumi config set --secret --path 'secretEnv.API_TOKEN' <value>",
            ],
        ),
        (
            {"env": {"DB-HOST": "${postgresHost}"}},
            None,
            "env",
            ["'DB-HOST' is not an environment variable name", "pulumi config rm --path"],
        ),
        (
            {"env": {"DB_PASSWORD": "x"}},
            {"secretEnv": {"DB_PASSWORD": "${postgresPassword}"}},
            "env",
            [
                "DB_PASSWORD is in both env and secretEnv",
                "pulumi config rm --path 'env.DB_PASSWORD'",
            ],
        ),
        (
            {"env": {"DJANGO_SETTINGS_MODULE": "shop.settings"}},
            None,
            "env",
            ["DJANGO_SETTINGS_MODULE is set by the product", "djangoSettingsModule"],
        ),
        (
            {"env": {"DJANGOSTACK_SECRET_ENV": "X"}},
            None,
            "env",
            ["DJANGOSTACK_SECRET_ENV is set by the product"],
        ),
        (
            {"env": {"PRICE": "5$ only"}},
            None,
            "env",
            ["PRICE: a $ at offset 1 starts no ${name}; write $$ for a literal $"],
        ),
        (
            {"env": {"DB_PASSWORD_FILE": "/tmp/pw"}},
            {"secretEnv": {"DB_PASSWORD": "${postgresPassword}"}},
            "env",
            ["DB_PASSWORD_FILE is the file variable of secretEnv.DB_PASSWORD"],
        ),
        (
            {},
            {"env": {"DB_HOST": "${postgresHost}"}},
            "env",
            ["is a secret (set with --secret)", "secretEnv"],
        ),
        ({"env": '["DB_HOST"]'}, None, "env", ["must be an object of variable names"]),
        ({"env": {"DB_HOST": ["a"]}}, None, "env", ["DB_HOST must be a string"]),
    ],
)
def test_bad_mappings_fail_before_any_resource(settings, secrets, key, expected):
    line = problem_line(settings, key, secrets)
    for part in expected:
        assert part in line, line


def test_every_stack_value_is_supplied_and_renders():
    # The program supplies each STACK_VALUES name (app_environment refuses a missing or extra one).
    secret = {name: f"${{{name}}}" for name, is_secret in config.STACK_VALUES.items() if is_secret}
    plain = {
        f"V_{name.upper()}": f"${{{name}}}"
        for name, is_secret in config.STACK_VALUES.items()
        if not is_secret
    }
    result = run(
        "prod",
        {**PROD_TLS, "env": plain},
        {**conftest.SECRETS, "secretEnv": {f"S_{n.upper()}": v for n, v in secret.items()}},
    )
    env = env_of(by_role(result, "web")[0])
    assert env["V_URL"] == "https://localhost" and env["V_STATICURL"] == "/static/"
    assert env["V_ALLOWEDHOSTS"] == "localhost"
    assert env["V_CSRFTRUSTEDORIGINS"] == "https://localhost"
    assert env["V_REDISHOST"] == "redis" and env["V_REDISPORT"] == "6379"
    assert env["V_DOMAIN"] == "localhost"
    files = holder_files(holder_of(result, migration(result)))
    assert files["S_SECRETKEY"] == conftest.SECRET_KEY
    assert files["S_DATABASEURL"].startswith("postgres://app:")
    assert files["S_POSTGRESPASSWORD"] in files["S_DATABASEURL"]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("plain", ("plain",)),
        ("", ()),
        ("${a}", (config.Ref("a"),)),
        ("x${a}y${b}", ("x", config.Ref("a"), "y", config.Ref("b"))),
        ("$$${a}$$", ("$", config.Ref("a"), "$")),
        ("$${a}", ("${a}",)),  # an escaped $ before braces is literal text
    ],
)
def test_templates_parse_literals_references_and_escapes(text, parts):
    assert config.parse_template(text).parts == parts


@pytest.mark.parametrize("text", ["$", "a$b", "${", "${}", "${a-b}", "${a"])
def test_a_stray_dollar_is_an_error(text):
    with pytest.raises(ValueError, match=r"\$"):
        config.parse_template(text)


def test_the_build_sees_the_mapped_names_with_plain_values_and_secret_stand_ins(result):
    """The runtime build's collectstatic imports the settings: it gets every mapped name
    (DJANGOSTACK_BUILD_ENV), never a real secret (build args are in the image's history)."""
    build_args = app_image(result).plain_inputs["buildArgs"]
    built = json.loads(build_args["DJANGOSTACK_BUILD_ENV"])
    assert built["DB_HOST"] == "postgres" and built["PRICE"] == "costs $5 at localhost"
    assert built["DB_PASSWORD"] == stack.BUILD_STAND_IN
    assert built["SENTRY_DSN"] == stack.BUILD_STAND_IN  # literal text is a secret: replaced whole
    assert built["DJANGO_SECRET_KEY"].startswith(stack.BUILD_STAND_IN)
    assert len(built["DJANGO_SECRET_KEY"]) >= 50
    assert set(built) == set(ENV) | set(SECRET_ENV)
    shown = json.dumps(build_args)
    for secret in (*SECRETS.values(), SENTRY_DSN):
        assert secret not in shown


def test_without_a_mapping_the_build_inputs_do_not_change(dev):
    assert "DJANGOSTACK_BUILD_ENV" not in app_image(dev).plain_inputs["buildArgs"]


def test_the_build_values_cover_every_stack_value_with_its_secrecy():
    # Only the attributes the two functions read.
    cfg = SimpleNamespace(
        is_prod=True,
        domain="shop.example.com",
        dev_port=8000,
        https_port=443,
        postgres_db="app",
        postgres_user="app",
        static_url="/static/",
        media_url="/media/",
        acme=None,
    )
    plain, secret = stack.plain_stack_values(cfg), stack.build_secret_stand_ins(cfg)
    assert set(plain) == {n for n, is_secret in config.STACK_VALUES.items() if not is_secret}
    assert set(secret) == {n for n, is_secret in config.STACK_VALUES.items() if is_secret}
