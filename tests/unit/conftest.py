"""Fake engine for the program's unit tests: every resource "succeeds" with its inputs as state,
plus the outputs the program reads (an image digest derived from the image's inputs, generated
passwords, a certificate)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from tests.program import ROOT, ProgramResult, Registration, run_program, unwrap_secrets

SECRET_KEY = "unit-test-secret-key-" + "abcdefghijklmnopqrstuvwxyz0123456789"
PROD_SECRETS = {"djangoSecretKey": SECRET_KEY}
CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
COMMAND = "command:local:Command"
IMAGE = "docker-build:index:Image"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class FakeEngine(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        plain = unwrap_secrets(args.inputs)
        if args.typ == IMAGE:
            state["digest"] = "sha256:" + _sha(plain)
            repository = plain["tags"][0].rsplit(":", 1)[0]
            state["ref"] = f"{repository}@{state['digest']}" if plain["push"] else plain["tags"][0]
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "p" * int(plain["length"])
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = (
                "-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n"
            )
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"
        elif args.typ == COMMAND:
            state.update(stdout="", stderr="")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, None]:
        return {}, None


def app_image(result: ProgramResult) -> Registration:
    """The application's image build (the other Image is the product's support image)."""
    (image,) = [i for i in result.of_type(IMAGE) if not i.name.endswith("-support")]
    return image


def run(
    stack: str, config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> ProgramResult:
    """Run the program for `stack` (its Pulumi.<stack>.yaml applies) with extra config."""
    values = {**(config or {}), **(secrets or {})}
    return run_program(FakeEngine(), stack, values, secret_keys=list(secrets or {}), timeout=60)


@pytest.fixture(scope="session")
def dev() -> ProgramResult:
    return run("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramResult:
    return run("prod", {"tlsSelfSigned": True}, PROD_SECRETS)


@pytest.fixture(scope="session")
def prod_containers() -> ProgramResult:
    return run("prod", {"tlsSelfSigned": True, "orchestrator": "containers"}, PROD_SECRETS)


@pytest.fixture(scope="session")
def prod_monitoring() -> ProgramResult:
    return run("prod", {"tlsSelfSigned": True, "monitoring": True}, PROD_SECRETS)


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """A private copy of app/ that a test may edit."""
    target = tmp_path / "app"
    shutil.copytree(ROOT / "app", target)
    return target
