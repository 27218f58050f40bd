"""The documented CIS 5.29 / 5.19 gaps, watched at their root: pulumi-docker's `Service` (web
and Celery on Swarm) can express neither a pids limit nor ulimits, and its `Container` (every
other container, and the one-shot steps) has no pids limit.

The Engine API has `TaskTemplate.Resources.Limits.Pids` since API 1.41 (Docker 20.10) and
`ContainerSpec.Ulimits` since 1.41, but pulumi-docker 5.2's Service schema has neither, and its
update sends the whole spec built from that schema: a limit set beside Pulumi
(`docker service update --limit-pids`) rolls every task once more and the next `pulumi up`
that touches the service drops it again (docs/config.md, "Hardening gaps"). Its Container has
ulimits (set: nofile) but no `pids_limit`. These tests read the installed SDK's argument
classes, so they fail the day an upgrade brings the fields, telling the reader to use them
instead of keeping the gap.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pulumi_docker as docker

CLOSE_THE_GAP = (
    "pulumi-docker {version} now has {fields} on {cls}: close the gap. Set the task's pids "
    "limit (spec.limits.pids) and ulimits in components/renderers.py render_service, then "
    "update tests/docker/test_cis.py (test_ulimits_and_pids_limit_gap_of_swarm_tasks_is_the_"
    "documented_one becomes a check of the limits), docs/config.md and docs/operations.md."
)


def _fields(cls: type, *needles: str) -> list[str]:
    """Keyword arguments of an SDK args class whose name contains one of `needles`."""
    names = inspect.signature(cls.__init__).parameters
    return [name for name in names if any(needle in name for needle in needles)]


def _gap_message(cls: type, fields: list[str]) -> str:
    return CLOSE_THE_GAP.format(version=version("pulumi-docker"), fields=fields, cls=cls.__name__)


def test_service_limits_still_have_no_pids_field() -> None:
    cls = docker.ServiceTaskSpecResourcesLimitsArgs
    # The fields it does have: the check reads the right class (a rename would fail here).
    assert {"memory_bytes", "nano_cpus"} <= set(_fields(cls, "memory", "nano"))
    found = _fields(cls, "pid")
    assert found == [], _gap_message(cls, found)


def test_service_container_spec_still_has_no_pids_or_ulimits_field() -> None:
    cls = docker.ServiceTaskSpecContainerSpecArgs
    assert {"read_only", "cap_drops"} <= set(_fields(cls, "read_only", "cap_"))
    found = _fields(cls, "pid", "ulimit")
    assert found == [], _gap_message(cls, found)


CLOSE_THE_CONTAINER_GAP = (
    "pulumi-docker {version} now has {fields} on ContainerArgs: close the gap. Set the "
    "container's pids limit (spec.limits.pids) in components/renderers.py _container_args, "
    "then update docs/config.md and docs/operations.md."
)


def test_container_still_has_no_pids_limit_field() -> None:
    cls = docker.ContainerArgs
    # The fields it does have: the check reads the right class.
    assert {"memory", "memory_swap", "ulimits", "pid_mode"} <= set(
        inspect.signature(cls).parameters
    )
    found = [name for name in _fields(cls, "pid") if name != "pid_mode"]  # host pid namespace
    assert found == [], CLOSE_THE_CONTAINER_GAP.format(
        version=version("pulumi-docker"), fields=found
    )
