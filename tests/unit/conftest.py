"""Fake engine for the program's unit tests: every resource "succeeds" with its inputs as state,
plus the outputs the program reads from the providers: an image's digest and reference (derived
from its inputs), and a one-shot step's exit code and output (`attach: true` containers: 0 and
a line, unless the test's engine says otherwise).

Every stack needs the config secrets `postgresPassword` and `djangoSecretKey` (`SECRETS`, what
the deploy command generates); prod also needs a certificate: `PROD_TLS` names a fake PEM pair
written once per session to a temporary directory (never into the repository)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker
import pulumi_docker_build
import pytest
from pulumi import _types

# The whole program imported once, here: each run forks this process, and would otherwise
# import the provider SDKs again (most of a run's time).
import components.stack  # noqa: F401
from components import hardening
from tests.program import (
    ROOT,
    ProgramFailed,
    ProgramResult,
    Registration,
    run_program,
    unwrap_secrets,
)

SECRET_KEY = "unit-test-secret-key-" + "abcdefghijklmnopqrstuvwxyz0123456789"
POSTGRES_PASSWORD = "unit-test-postgres-password"
# The config secrets every stack needs (automation/deploy.py generates them on a first deploy).
SECRETS = {"djangoSecretKey": SECRET_KEY, "postgresPassword": POSTGRES_PASSWORD}
TLS_DIR = Path(tempfile.mkdtemp(prefix="djangostack-unit-tls-"))
TLS_CERT = "-----BEGIN CERTIFICATE-----\nunit-test-certificate\n-----END CERTIFICATE-----\n"
TLS_KEY = "-----BEGIN PRIVATE KEY-----\nunit-test-private-key\n-----END PRIVATE KEY-----\n"
(TLS_DIR / "site.crt").write_text(TLS_CERT)
(TLS_DIR / "site.key").write_text(TLS_KEY)
# prod's certificate and key, as explicit files.
PROD_TLS = {"tlsCertFile": str(TLS_DIR / "site.crt"), "tlsKeyFile": str(TLS_DIR / "site.key")}

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
IMAGE = "docker-build:index:Image"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
DOCKER_SECRET = "docker:index/secret:Secret"


def _warm_type_caches() -> None:
    """Fill the SDK's per-class caches of property types once, in this process: every forked
    run inherits them instead of computing them again (a fifth of a run's time)."""
    for module in (pulumi_docker, pulumi_docker_build):
        for cls in vars(module).values():
            if not isinstance(cls, type):
                continue
            if _types.is_input_type(cls):
                _types.input_type_types(cls)
            elif _types.is_output_type(cls):
                _types.output_type_types(cls)
            elif issubclass(cls, pulumi.CustomResource):
                _types.resource_types(cls)


_warm_type_caches()


def pytest_sessionfinish(session: pytest.Session) -> None:
    shutil.rmtree(TLS_DIR, ignore_errors=True)


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class FakeEngine(pulumi.runtime.Mocks):
    """`exit_codes` / `logs`: a one-shot step's (by Pulumi name) exit code and output, as the
    docker provider records them for an `attach: true` container (it does not fail the update
    on a non-zero exit: the program must)."""

    def __init__(
        self, exit_codes: Mapping[str, int] | None = None, logs: Mapping[str, str] | None = None
    ):
        self.exit_codes = dict(exit_codes or {})
        self.logs = dict(logs or {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        plain = unwrap_secrets(args.inputs)
        if args.typ == IMAGE:
            state["digest"] = "sha256:" + _sha(plain)
            repository = plain["tags"][0].rsplit(":", 1)[0]
            state["ref"] = f"{repository}@{state['digest']}" if plain["push"] else plain["tags"][0]
        elif args.typ == CONTAINER and plain.get("attach"):
            state["exitCode"] = self.exit_codes.get(args.name, 0)
            state["containerLogs"] = self.logs.get(args.name, f"{args.name}: done\n")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, None]:
        return {}, None


def run(
    stack: str,
    config: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    engine: FakeEngine | None = None,
    preview: bool = False,
) -> ProgramResult:
    """Run the program for `stack` (Pulumi.yaml's defaults and Pulumi.<stack>.yaml apply) with
    extra plain `config` and secret config `secrets` (default: SECRETS; {} for none), as an
    update (or a preview)."""
    secrets = SECRETS if secrets is None else secrets
    values = {**(config or {}), **secrets}
    engine = engine or FakeEngine()
    return run_program(engine, stack, values, list(secrets), preview, timeout=60)


CONFIG_ERROR = "components.config.ConfigError"


def failure(
    stack: str, config: dict[str, Any], secrets: dict[str, Any] | None = None
) -> ProgramFailed:
    """The ConfigError of a run that must fail before any resource exists."""
    with pytest.raises(ProgramFailed) as caught:
        run(stack, config, secrets)
    error = caught.value
    assert error.error_type == CONFIG_ERROR, error.details
    assert error.result.resources == [], "resources were registered before the config check"
    return error


def problem_line(message: str, key: str) -> str:
    """The line of a ConfigError's message about `key` (a key or an object key's path)."""
    line = next((x for x in message.splitlines() if f"djangostack:{key}:" in x), None)
    assert line is not None, message
    assert "Fix:" in line, line
    return line


def app_image(result: ProgramResult) -> Registration:
    """The application's image build (the others are the product's support image and, with
    config acme, the ACME process's, with backupSchedule the scheduled backup's)."""
    (image,) = [i for i in result.of_type(IMAGE) if i.name.endswith("-image-build")]
    return image


def labels_of(r: Registration) -> dict[str, str]:
    """A container's or service's labels (a service's task labels included)."""
    inputs = r.plain_inputs
    items = list(inputs.get("labels") or [])
    if r.type == SERVICE:
        items += inputs["taskSpec"]["containerSpec"].get("labels") or []
    return {item["label"]: item["value"] for item in items}


def role(r: Registration) -> str:
    return labels_of(r).get(hardening.ROLE_LABEL, "")


def by_role(result: ProgramResult, wanted: str) -> list[Registration]:
    """The containers and services of a role (djangostack.role: web, celery, job, files...)."""
    return [r for r in result.of_type(CONTAINER) + result.of_type(SERVICE) if role(r) == wanted]


def network_names(result: ProgramResult, r: Registration) -> set[str]:
    """Docker names of the networks a container or service joins (attached by name or id); a
    network that is not one of the stack's fails the lookup."""
    names = {}
    for network in result.of_type(NETWORK):
        names[network.id] = names[network.plain_inputs["name"]] = network.plain_inputs["name"]
    inputs = r.plain_inputs
    attached = (
        inputs.get("networksAdvanced")
        if r.type == CONTAINER
        else inputs["taskSpec"].get("networksAdvanceds")
    )
    return {names[a.get("name") or a["id"]] for a in attached or []}


def holders(result: ProgramResult) -> list[Registration]:
    """The files holders: containers created to receive a service's files, never started."""
    return by_role(result, hardening.HOLDER_ROLE)


def holder_files(holder: Registration) -> dict[str, str]:
    """A holder's uploads: file name -> content."""
    return {
        u["file"].rsplit("/", 1)[1]: u["content"] for u in holder.plain_inputs.get("uploads") or []
    }


def holder_of(result: ProgramResult, r: Registration) -> Registration:
    """The holder of the files volume `r` mounts."""
    (holder,) = [h for h in holders(result) if h.name == f"{r.name}-files"]
    return holder


def steps(result: ProgramResult) -> list[Registration]:
    """The one-shot steps: containers run to completion (`attach: true`)."""
    return [c for c in result.of_type(CONTAINER) if c.plain_inputs.get("attach")]


def step(result: ProgramResult, suffix: str) -> Registration:
    """The one-shot step whose Pulumi name ends with `suffix` (backup-run, migration-run...)."""
    (match,) = [c for c in steps(result) if c.name.endswith(suffix)]
    return match


def env_of(r: Registration) -> dict[str, str]:
    inputs = r.plain_inputs
    if r.type == CONTAINER:
        return dict(item.split("=", 1) for item in inputs.get("envs") or [])
    return dict(inputs["taskSpec"]["containerSpec"].get("env") or {})


@pytest.fixture(scope="session")
def dev() -> ProgramResult:
    return run("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramResult:
    return run("prod", PROD_TLS)


@pytest.fixture(scope="session")
def prod_containers() -> ProgramResult:
    return run("prod", {**PROD_TLS, "orchestrator": "containers"})


# Config acme: certificates from an ACME CA (the default directory: Let's Encrypt).
ACME = {"acme": True, "acmeEmail": "ops@shop.example.com", "domain": "shop.example.com"}
# ... with a second name, and a private CA's root to trust (any PEM certificate will do).
ACME_FULL = {
    **ACME,
    "acmeNames": ["www.shop.example.com"],
    "acmeCaBundleFile": PROD_TLS["tlsCertFile"],
}


@pytest.fixture(scope="session")
def prod_acme() -> ProgramResult:
    return run("prod", ACME_FULL)


@pytest.fixture(scope="session")
def prod_monitoring() -> ProgramResult:
    return run("prod", {**PROD_TLS, "monitoring": True})


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """A private copy of app/ that a test may edit."""
    target = tmp_path / "app"
    shutil.copytree(ROOT / "app", target)
    return target


LOG = "".join(f"step output line {n}\n" for n in range(1, 41))


def failed_deploy(stack: str, config: dict, failing: str) -> ProgramFailed:
    """The program's failure when the step `failing` (a Pulumi name) exits 3 after printing
    LOG (the docker provider records the code; the program must fail on it)."""
    engine = FakeEngine(exit_codes={failing: 3}, logs={failing: LOG})
    with pytest.raises(ProgramFailed) as caught:
        run(stack, config, engine=engine)
    assert caught.value.error_type == "components.renderers.StepFailed", caught.value.details
    return caught.value
