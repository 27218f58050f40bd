"""The renderers' pure pieces: Swarm durations written as the docker provider reads them back
(an unchanged service shows no change), and the fingerprint that is the migration's (and its
backup's) run key: it changes exactly with what the step runs with, and shows no secret."""

from __future__ import annotations

import dataclasses
import re

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from components import renderers
from components.spec import Limits, Mount, NetworkAttachment, ServiceSpec


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("5s", "5s"),
        ("0s", "0s"),
        ("59s", "59s"),
        ("60s", "1m"),
        ("90s", "1m30s"),
        ("120s", "2m"),
        ("2m", "2m"),
        ("1m30s", "1m30s"),
        ("5m", "5m"),
        ("3600s", "1h"),
        ("60m", "1h"),
        ("1h30m", "1h30m"),
        ("3605s", "1h0m5s"),  # Go keeps the zero minutes between hours and seconds
        ("3661s", "1h1m1s"),
        ("7200s", "2h"),
    ],
)
def test_swarm_durations_are_written_as_the_provider_reads_them(text, normal):
    assert renderers.swarm_duration(text) == normal
    assert renderers.swarm_duration(normal) == normal  # already normal: unchanged


@pytest.mark.parametrize("text", ["", "10", "1.5s", "5 s", "s", "1d", "-5s", "5S", "1m 30s"])
def test_a_duration_that_is_not_whole_units_is_refused(text):
    with pytest.raises(ValueError, match="whole h/m/s units"):
        renderers.swarm_duration(text)


STEP = ServiceSpec(
    name="shop-migrate",
    role="job",
    image="registry.example.com/shop/web@sha256:" + "a" * 64,
    user="10001:10001",
    limits=Limits(memory_mb=512),
    command=("/opt/djangostack/entrypoint", "python", "manage.py", "migrate", "--noinput"),
    env={"DJANGO_SETTINGS_MODULE": "shop.settings", "REDIS_URL": "redis://redis:6379/0"},
    secret_env={"SECRET_KEY": "the-secret-key-value", "DATABASE_URL": "postgres://a:pw@db/a"},
    tmpfs=("/tmp",),
    mounts=(Mount("/srv/media", "shop-media"),),
    networks=(NetworkAttachment("shop-backend", "backend-id"),),
    labels={"djangostack.migrations.core": "0001_initial"},
)


def fingerprint(spec: ServiceSpec) -> str:
    output = renderers.fingerprint(spec)
    # A label's value: never secret (the state would hide it, the preview could not show it).
    assert not _sync_await(output.is_secret())
    return _sync_await(output.future())


def test_the_same_inputs_give_the_same_fingerprint_however_they_are_given():
    key = fingerprint(STEP)
    reordered = dataclasses.replace(STEP, env=dict(reversed(list(STEP.env.items()))))
    as_outputs = dataclasses.replace(
        STEP,
        image=pulumi.Output.from_input(STEP.image),
        secret_env={k: pulumi.Output.secret(v) for k, v in STEP.secret_env.items()},
        mounts=(Mount("/srv/media", pulumi.Output.from_input("shop-media")),),
    )
    assert fingerprint(reordered) == fingerprint(as_outputs) == key
    # A digest: nothing of a secret shows.
    assert all(value not in key for value in STEP.secret_env.values())
    assert re.fullmatch(r"[0-9a-f]{32}", key)


@pytest.mark.parametrize(
    "change",
    [
        {"image": "registry.example.com/shop/web@sha256:" + "b" * 64},
        {"env": {**STEP.env, "REDIS_URL": "redis://redis:6379/1"}},
        {"env": {**STEP.env, "FEATURE": "on"}},
        {"secret_env": {**STEP.secret_env, "SECRET_KEY": "a-rotated-secret-key"}},
        {"secret_env": {**STEP.secret_env, "DATABASE_URL": "postgres://a:new@db/a"}},
        {"labels": {"djangostack.migrations.core": "0001_initial 0002_more"}},
        {"mounts": (Mount("/srv/media", "other-media"),)},
        {"mounts": (Mount("/srv/media", "shop-media", read_only=True),)},
        {"networks": (NetworkAttachment("other-backend", "other-id"),)},
        {"command": (*STEP.command, "--verbosity", "2")},
        {"user": "10002:10002"},
        {"limits": Limits(memory_mb=1024)},
        {"name": "other-migrate"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_fingerprint_changes_with_what_the_step_runs_with(change):
    assert fingerprint(dataclasses.replace(STEP, **change)) != fingerprint(STEP)
