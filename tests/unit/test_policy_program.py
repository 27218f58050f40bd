"""The program's own resources, for every stack, pass every policy of the pack: the policies run
on the inputs the program registers (under mocks), exactly as `pulumi preview --policy-pack`
would hand them over, so a change that weakens the hardening fails here before review."""

from __future__ import annotations

import functools
from typing import Any

import pulumi
import pytest

from policy import rules
from policy.evaluate import evaluate
from tests.program import ProgramResult, run_program

SECRET_KEY = "policy-test-" + "k7Qx9Lm2Rt5Vw8Zb" * 4
DIGEST = "sha256:" + "d" * 64
# Policy config as shipped for the real engines (policy/config.json).
POLICY_CONFIG = {rules.DAEMON_NNP_KEY: True}
STACKS = {
    "dev": ({}, []),
    "prod": (
        {
            "djangoSecretKey": SECRET_KEY,
            "tlsSelfSigned": "true",
            "publicBindAddress": "192.0.2.10",
        },
        ["djangoSecretKey"],
    ),
    "prod-with-registry": (
        {
            "djangoSecretKey": SECRET_KEY,
            "tlsSelfSigned": "true",
            "publicBindAddress": "192.0.2.10",
            "registry": "registry.example.com:5000",
        },
        ["djangoSecretKey"],
    ),
}
EXPECTED_ROLES = {
    "dev": {"web", "celery", "postgres", "redis"},
    "prod": {"web", "celery", "postgres", "redis", "nginx"},
}


# Outputs (beyond the echoed inputs) the program reads from other providers' resources.
COMPUTED_OUTPUTS = {
    "random:index/randomPassword:RandomPassword": {"result": "mock-password-0123456789"},
    "tls:index/privateKey:PrivateKey": {"privateKeyPem": "mock-key-pem"},
    "tls:index/selfSignedCert:SelfSignedCert": {"certPem": "mock-cert-pem"},
    "command:local:Command": {"stdout": ""},
}


class EchoMocks(pulumi.runtime.Mocks):
    """Every resource echoes its inputs; images report the outputs docker-build would."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs) | COMPUTED_OUTPUTS.get(args.typ, {})
        if args.typ == rules.IMAGE:
            tag = (args.inputs.get("tags") or [f"{args.name}:mock"])[0]
            pushed = bool(args.inputs.get("push"))
            state |= {"digest": DIGEST, "ref": f"{tag}@{DIGEST}" if pushed else tag}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def _violations(result: ProgramResult) -> list[str]:
    records = [
        rules.StackResource(r.type, r.name, r.urn, r.plain_inputs)
        for r in result.resources
        if r.custom
    ]
    return [str(v) for v in evaluate(records, POLICY_CONFIG)]


@functools.cache
def run(variant: str) -> ProgramResult:
    """The program's registrations for one stack variant (run once per test session)."""
    config, secret_keys = STACKS[variant]
    stack = variant.split("-", 1)[0]
    return run_program(EchoMocks(), stack, config, secret_keys, timeout=120)


def _workloads(result: ProgramResult) -> list[rules.Workload]:
    views = [rules.workload(r.type, r.name, r.urn, r.plain_inputs) for r in result.resources]
    return [w for w in views if w is not None]


@pytest.mark.parametrize("variant", sorted(STACKS))
def test_program_resources_pass_every_policy(variant):
    result = run(variant)
    # The policies really saw the stack's services (not an empty or renamed resource set).
    roles = {w.role for w in _workloads(result)}
    assert EXPECTED_ROLES[variant.split("-", 1)[0]] <= roles
    assert _violations(result) == []


def test_prod_with_a_registry_runs_the_pushed_image_by_digest():
    app_images = {
        w.image for w in _workloads(run("prod-with-registry")) if w.role in ("web", "celery")
    }
    assert app_images, "no web/celery workload found"
    for image in app_images:
        repository, _, digest = rules.split_image_ref(image)
        assert repository.startswith("registry.example.com:5000/") and digest == DIGEST, image
