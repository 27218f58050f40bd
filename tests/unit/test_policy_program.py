"""The program's own resources, for every stack, pass every policy of the pack: the policies run
on the inputs the program registers (under the fake engine), as `pulumi preview --policy-pack`
hands them over, so a change that weakens the hardening fails here before review."""

from __future__ import annotations

import functools

import pytest
from conftest import ACME_FULL, PROD_TLS, holders, run, steps

from components import hardening
from policy import rules
from policy.evaluate import evaluate
from tests.program import ProgramResult

# Policy config as shipped for the real engines (policy/config.json).
POLICY_CONFIG = {rules.DAEMON_NNP_KEY: True}
PROD = {**PROD_TLS, "publicBindAddress": "192.0.2.10"}
STACKS = {
    "dev": ("dev", {}),
    "prod": ("prod", PROD),
    "prod-containers": ("prod", {**PROD, "orchestrator": "containers", "monitoring": True}),
    "prod-with-registry": ("prod", {**PROD, "registry": "registry.example.com:5000"}),
    # The maintenance step writes the page into the edge volume, from its own files volume.
    "prod-maintenance": ("prod", {**PROD, "maintenance": True}),
    "prod-acme": ("prod", {**ACME_FULL, "publicBindAddress": "192.0.2.10"}),
}
EXPECTED_ROLES = {
    "dev": {"web", "celery", "postgres", "redis", "job"},
    "prod": {"web", "celery", "postgres", "redis", "nginx", "job"},
}


def _violations(result: ProgramResult) -> list[str]:
    records = [
        rules.StackResource(r.type, r.name, r.urn, r.plain_inputs, r.property_dependencies)
        for r in result.resources
        if r.custom
    ]
    return [str(v) for v in evaluate(records, POLICY_CONFIG)]


@functools.cache
def program(variant: str) -> ProgramResult:
    """The program's registrations for one stack variant (run once per test session)."""
    stack, config = STACKS[variant]
    return run(stack, config)


def _workloads(result: ProgramResult) -> list[rules.Workload]:
    views = [rules.workload(r.type, r.name, r.urn, r.plain_inputs) for r in result.resources]
    return [w for w in views if w is not None]


@pytest.mark.parametrize("variant", sorted(STACKS))
def test_program_resources_pass_every_policy(variant):
    result = program(variant)
    # The policies really saw the stack's services and steps (not an empty or renamed set).
    roles = {w.role for w in _workloads(result)}
    assert EXPECTED_ROLES[variant.split("-", 1)[0]] <= roles
    assert _violations(result) == []


@pytest.mark.parametrize("variant", ["prod-containers", "prod-maintenance"])
def test_steps_are_one_shot_workloads_and_holders_are_none(variant):
    """One-shot steps are held to every rule (but a health check); the holders, created only
    to receive files and never started, are not workloads."""
    result = program(variant)
    views = {w.name: w for w in _workloads(result)}
    jobs = steps(result)
    assert jobs
    for job in jobs:
        assert views[job.name].one_shot and views[job.name].role == "job"
    found = holders(result)
    assert found
    for holder in found:
        assert holder.name not in views
        assert rules.never_started(holder.type, holder.plain_inputs)
    assert hardening.HOLDER_ROLE not in {w.role for w in views.values()}


def test_prod_with_a_registry_runs_the_pushed_image_by_digest():
    result = program("prod-with-registry")
    app_images = {w.image for w in _workloads(result) if w.role in ("web", "celery", "job")}
    assert app_images, "no web/celery workload found"
    app_images.discard("postgres:16-bookworm")  # the backup step runs the Postgres image
    # The maintenance step runs nginx's image.
    app_images.discard("nginxinc/nginx-unprivileged:1.27-bookworm")
    for image in app_images:
        repository, _, digest = rules.split_image_ref(image)
        assert repository == "registry.example.com:5000/djangostack/web", image
        assert digest == result.outputs["imageDigest"], image
