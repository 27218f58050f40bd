"""A Celery task whose worker dies mid-way runs again and takes effect once, on a prod stack
deployed by the Pulumi engine (late acknowledgement, requeue on worker loss, Redis visibility
timeout; see docs/operations.md, "Celery: tasks survive worker loss").

The task is `core.tasks.idempotent_demo`: it records each attempt, sleeps, then upserts its
effect keyed by the caller's key. It is sent from a web task container, as the app sends
tasks; the kills are real SIGKILLs from the host. Delays are printed (figures, not asserted).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from docker.models.containers import Container

from tests.support import figures
from tests.support.checks import exec_python
from tests.support.prodstack import ProdStack, prod_stack

TASK_SECONDS = 20  # long enough to be killed mid-way, whatever the machine's load
RESULT_PREFIX = "result="  # marks our line in the output of `python -c` in a container
POLL_TIMEOUT_SECONDS = 120
VISIBILITY_TIMEOUT_SECONDS = 60

T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    # A visibility timeout well above TASK_SECONDS but below the 300 s default, set through the
    # stack's env mapping, so the worker-loss test waits one minute, not five.
    overrides = {"env": {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS)}}
    with prod_stack(
        tmp_path_factory.mktemp("durability"), "durab", overrides=overrides
    ) as deployed:
        yield deployed


@dataclass(frozen=True)
class Attempt:
    hostname: str  # the worker's container
    pid: int  # the prefork child, in the container's PID namespace


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    figures.report(capsys, "celery-durability", line)


def _in_web(stack: ProdStack, code: str) -> str:
    """Run `code` with Django set up in a web task container (the app's own settings, broker
    and result backend); the value it prints after RESULT_PREFIX."""
    setup = "import django; django.setup()\n"
    status, output = exec_python(stack.containers("web")[0], setup + code)
    assert status == 0, output
    (line,) = [x for x in output.splitlines() if x.startswith(RESULT_PREFIX)]
    return line.removeprefix(RESULT_PREFIX)


def _send_demo_task(stack: ProdStack, key: str) -> str:
    """Send idempotent_demo(key, TASK_SECONDS); its task id."""
    return _in_web(
        stack,
        "from core.tasks import idempotent_demo\n"
        f"print({RESULT_PREFIX!r} + idempotent_demo.delay({key!r}, {TASK_SECONDS}).id)",
    )


def _task_state(stack: ProdStack, task_id: str) -> str:
    return _in_web(
        stack,
        "from celery.result import AsyncResult\n"
        f"print({RESULT_PREFIX!r} + AsyncResult({task_id!r}).state)",
    )


def _transport_options(stack: ProdStack) -> dict[str, int]:
    """The broker transport options the app runs with (visibility timeout, sweep interval)."""
    return json.loads(
        _in_web(
            stack,
            "import json\nfrom django.conf import settings\n"
            f"print({RESULT_PREFIX!r} + json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))",
        )
    )


# Keys are made by the tests (a prefix and hex digits): safe to put into SQL as they are.
def _attempts(stack: ProdStack, key: str) -> list[Attempt]:
    sql = f"SELECT hostname, pid FROM core_taskattempt WHERE key = '{key}' ORDER BY id"  # noqa: S608
    rows = (line.split("|") for line in stack.psql(sql).splitlines())
    return [Attempt(hostname, int(pid)) for hostname, pid in rows]


def _effects(stack: ProdStack, key: str) -> int:
    return int(stack.psql(f"SELECT count(*) FROM core_demoeffect WHERE key = '{key}'"))  # noqa: S608


def _unfinished_messages(stack: ProdStack) -> int:
    """Task messages still queued or delivered but unacknowledged in the broker."""
    redis = stack.container("redis")
    counts = [
        redis.exec_run(["redis-cli", command, name]).output.strip()
        for command, name in (("LLEN", "celery"), ("HLEN", "unacked"))
    ]
    return sum(int(count) for count in counts)


def _wait_for(value: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Poll `value()` until `done` holds for it; the last value."""
    deadline = time.monotonic() + timeout
    while not done(current := value()):
        assert time.monotonic() < deadline, f"{what}: still {current!r} after {timeout:.0f}s"
        time.sleep(0.5)
    return current


def _host_pid(container: Container, pid: int) -> int:
    """The host PID of the process that is `pid` inside `container`'s PID namespace."""
    top = container.top()
    host_pids = [int(p[top["Titles"].index("PID")]) for p in top["Processes"]]
    for host_pid in host_pids:
        status = Path(f"/proc/{host_pid}/status").read_text()
        (nspid,) = [line for line in status.splitlines() if line.startswith("NSpid:")]
        if int(nspid.split()[-1]) == pid:
            return host_pid
    raise AssertionError(f"no process {pid} in {container.name}")


def _wait_done(stack: ProdStack, key: str, task_id: str) -> list[Attempt]:
    """Wait until the task succeeded and the broker holds nothing more for it; the attempts."""
    # Poll the light psql first; the state (a Python start in a container) once it is near.
    _wait_for(lambda: _effects(stack, key), bool, POLL_TIMEOUT_SECONDS, f"{key} effect")
    _wait_for(lambda: _task_state(stack, task_id), "SUCCESS".__eq__, POLL_TIMEOUT_SECONDS, key)
    # Nothing left to deliver: the attempts and the effect counted now are final.
    _wait_for(lambda: _unfinished_messages(stack), (0).__eq__, POLL_TIMEOUT_SECONDS, "broker")
    return _attempts(stack, key)


def test_a_task_whose_prefork_child_is_killed_runs_again_at_once(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"child-{uuid.uuid4().hex[:8]}"
    celery = stack.container("celery")
    task_id = _send_demo_task(stack, key)
    (first,) = _wait_for(lambda: _attempts(stack, key), bool, POLL_TIMEOUT_SECONDS, "start")

    began = time.monotonic()
    os.kill(_host_pid(celery, first.pid), signal.SIGKILL)  # as the OOM killer would
    assert _effects(stack, key) == 0  # killed mid-way: no effect yet
    _wait_for(lambda: _attempts(stack, key), lambda a: len(a) >= 2, POLL_TIMEOUT_SECONDS, key)
    again = time.monotonic() - began
    attempts = _wait_done(stack, key, task_id)
    done = time.monotonic() - began

    # WorkerLostError -> message rejected and requeued -> the same worker runs it in a new child.
    assert stack.container("celery").id == celery.id
    assert [a.hostname for a in attempts] == [first.hostname] * 2
    assert attempts[1].pid != first.pid
    assert _effects(stack, key) == 1
    _report(
        capsys,
        f"prefork child SIGKILL -> running again after {again:.1f}s (same worker), "
        f"done after {done:.1f}s; attempts {len(attempts)}, effect rows {_effects(stack, key)}",
    )


def test_a_task_whose_worker_container_dies_runs_again_on_its_replacement(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"worker-{uuid.uuid4().hex[:8]}"
    options = _transport_options(stack)
    visibility = options["visibility_timeout"]
    assert visibility == VISIBILITY_TIMEOUT_SECONDS  # the stack's env mapping reached Celery
    task_id = _send_demo_task(stack, key)
    (first,) = _wait_for(lambda: _attempts(stack, key), bool, POLL_TIMEOUT_SECONDS, "start")

    began = time.monotonic()
    replaced = stack.kill_main_process("celery")  # the worker and its children die at once
    assert _effects(stack, key) == 0  # killed mid-way: no effect yet
    # The message stays unacknowledged in Redis until its visibility timeout runs out; then
    # the replacement worker's next sweep puts it back on the queue.
    wait = visibility + options["unacked_restore_interval"] + POLL_TIMEOUT_SECONDS
    _wait_for(lambda: _attempts(stack, key), lambda a: len(a) >= 2, wait, key)
    again = time.monotonic() - began
    attempts = _wait_done(stack, key, task_id)
    done = time.monotonic() - began

    assert len(attempts) == 2
    assert attempts[1].hostname != first.hostname  # the replacement task container ran it
    assert attempts[1].hostname == stack.container("celery").attrs["Config"]["Hostname"]
    assert _effects(stack, key) == 1
    _report(
        capsys,
        f"celery main process SIGKILL -> replacement healthy after {replaced:.1f}s, task "
        f"running again after {again:.1f}s (visibility timeout {visibility}s), done after "
        f"{done:.1f}s; attempts {len(attempts)}, effect rows {_effects(stack, key)}",
    )
