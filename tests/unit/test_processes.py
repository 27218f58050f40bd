"""Process types (config `processes`): validated before anything exists, rendered as Swarm
services or containers like the Celery worker always was (same names by default), a
singleton never rolls two tasks at once, and only opted-in processes get a route out."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import CONTAINER, NETWORK, PROD_TLS, SERVICE, by_role, failure, network_names, run

from components.app import ENTRYPOINT
from tests.program import ProgramResult, Registration

HEALTH = ["CMD", "python", "-c", "print('ok')"]
TICKER = {"command": ["python", "manage.py", "tick"], "health": HEALTH}


def prod(processes: dict[str, Any], **extra: Any) -> ProgramResult:
    return run("prod", {**PROD_TLS, "processes": processes, **extra})


def service(result: ProgramResult, docker_name: str) -> Registration:
    (found,) = [s for s in result.of_type(SERVICE) if s.plain_inputs["name"] == docker_name]
    return found


@pytest.mark.parametrize(
    ("processes", "path", "what", "fix"),
    [
        ({"Bad_Name": TICKER}, "processes.Bad_Name", "must match [a-z][a-z0-9-]*", "config rm"),
        ({"web": TICKER}, "processes.web", "is taken by the stack", "config rm"),
        (
            {"ticker": {"health": HEALTH}},
            "processes.ticker.command[0]",
            "command must be a non-empty list of strings",
            "--path 'processes.ticker.command[0]' python",
        ),
        (
            {"ticker": {**TICKER, "command": ["python", 3]}},
            "processes.ticker.command[0]",
            "non-empty list of strings",
            "--path 'processes.ticker.command[0]' python",
        ),
        (
            {"ticker": {**TICKER, "replicas": 0}},
            "processes.ticker.replicas",
            "between 1 and 64",
            "--path 'processes.ticker.replicas' 1",
        ),
        (
            {"ticker": {**TICKER, "memoryMb": 10}},
            "processes.ticker.memoryMb",
            "between 64 and 65536",
            "--path 'processes.ticker.memoryMb' 512",
        ),
        (
            {"ticker": {"command": ["python", "manage.py", "tick"]}},
            "processes.ticker.health[0]",
            "health is required",
            "--path 'processes.ticker.health[0]' CMD",
        ),
        (
            {"ticker": {**TICKER, "health": ["python", "-c", "1"]}},
            "processes.ticker.health[0]",
            "Docker health check in CMD form",
            "--path 'processes.ticker.health[0]' CMD",
        ),
        (
            {"ticker": {**TICKER, "singleton": True, "replicas": 2}},
            "processes.ticker.replicas",
            "a singleton runs exactly one task",
            "--path 'processes.ticker.replicas' 1",
        ),
        (
            {"ticker": {**TICKER, "egress": "yes"}},
            "processes.ticker.egress",
            "must be true or false",
            "--path 'processes.ticker.egress' true",
        ),
        (
            {"ticker": {**TICKER, "replica": 2}},
            "processes.ticker.replica",
            "did you mean replicas?",
            "config rm --path 'processes.ticker.replica'",
        ),
        ("celery", "processes.worker.command[0]", "must be an object", "--path"),
    ],
)
def test_bad_processes_fail_before_any_resource(processes, path, what, fix):
    message = failure("prod", {**PROD_TLS, "processes": processes}).message
    line = next((x for x in message.splitlines() if f"djangostack:{path}: " in x), None)
    assert line is not None, message
    assert what in line and "Fix: pulumi " in line and fix in line, line


def test_every_bad_process_is_reported_at_once():
    processes = {"a": {"replicas": 0}, "b": {**TICKER, "singleton": "no"}}
    message = failure("prod", {**PROD_TLS, "processes": processes}).message
    for path in ("a.command[0]", "a.replicas", "a.health[0]", "b.singleton"):
        assert f"djangostack:processes.{path}: " in message


def test_default_worker_keeps_todays_names_and_aliases_the_old_component(prod):
    (celery,) = by_role(prod, "celery")
    assert celery.name == "djangostack-celery"  # the Pulumi name of today's worker
    assert celery.plain_inputs["name"] == "djangostack-prod-celery"
    parent = prod.by_urn(celery.parent)
    assert parent.type == "djangostack:index:Process"
    assert parent.name == "djangostack-celery"
    # The component's type changed from djangostack:index:Celery: without this alias (which
    # its children inherit) a deployed stack would replace its worker.
    assert parent.alias_types == ("djangostack:index:Celery",)
    args = celery.plain_inputs["taskSpec"]["containerSpec"]["args"]
    assert args[:5] == [ENTRYPOINT, "celery", "-A", "config", "worker"]
    assert prod.outputs["celeryNames"] == ["djangostack-prod-celery"]
    assert prod.outputs["processNames"] == {"celery": ["djangostack-prod-celery"]}


def test_processes_replace_the_default_worker_and_are_exported():
    result = prod({"ticker": {**TICKER, "replicas": 2}})
    assert by_role(result, "celery") == []
    (ticker,) = by_role(result, "process")
    assert ticker.name == "djangostack-ticker"
    inputs = ticker.plain_inputs
    assert inputs["name"] == "djangostack-prod-ticker"
    assert inputs["mode"]["replicated"]["replicas"] == 2
    spec = inputs["taskSpec"]["containerSpec"]
    assert spec["args"] == [ENTRYPOINT, "python", "manage.py", "tick"]
    # The project's own check runs through the entrypoint, like its process.
    assert spec["healthcheck"]["tests"] == [HEALTH[0], ENTRYPOINT, *HEALTH[1:]]
    assert result.outputs["celeryNames"] == []
    assert result.outputs["processNames"] == {"ticker": ["djangostack-prod-ticker"]}


def test_numbers_and_booleans_may_arrive_as_text():
    # What `pulumi config set --path` or a quoted YAML value may store.
    result = prod({"ticker": {**TICKER, "replicas": "1", "singleton": "true", "memoryMb": "256"}})
    inputs = service(result, "djangostack-prod-ticker").plain_inputs
    assert inputs["updateConfig"]["order"] == "stop-first"
    assert inputs["taskSpec"]["resources"]["limits"]["memoryBytes"] == 256 * 1024 * 1024


def test_a_celery_worker_process_gets_the_products_health_check():
    worker = {"command": ["celery", "-A", "config", "worker", "-Q", "mail"]}
    result = prod({"mail": worker})
    spec = service(result, "djangostack-prod-mail").plain_inputs["taskSpec"]["containerSpec"]
    assert spec["healthcheck"]["tests"][0] == "CMD-SHELL"
    assert "celery -A config inspect ping" in spec["healthcheck"]["tests"][1]


def test_a_singleton_never_rolls_two_tasks_at_once():
    result = prod({"ticker": {**TICKER, "singleton": True}, "other": TICKER})
    singleton = service(result, "djangostack-prod-ticker").plain_inputs
    assert singleton["updateConfig"]["order"] == "stop-first"
    assert singleton["rollbackConfig"]["order"] == "stop-first"
    assert singleton["rollbackConfig"]["parallelism"] == 1
    assert singleton["mode"]["replicated"]["replicas"] == 1
    other = service(result, "djangostack-prod-other").plain_inputs
    assert other["updateConfig"]["order"] == "start-first"
    assert other["rollbackConfig"]["order"] == "start-first"


def test_a_singleton_is_one_container_without_swarm():
    result = prod({"ticker": {**TICKER, "singleton": True}}, orchestrator="containers")
    (ticker,) = by_role(result, "process")
    assert ticker.type == CONTAINER
    assert ticker.plain_inputs["name"] == "djangostack-prod-ticker"


def test_only_opted_in_processes_join_the_egress_network():
    result = prod({"fetcher": {**TICKER, "egress": True}, "ticker": TICKER})
    networks = {n.plain_inputs["name"]: n.plain_inputs for n in result.of_type(NETWORK)}
    assert networks["djangostack-prod-egress"]["internal"] is False
    assert networks["djangostack-prod-backend"]["internal"] is True
    fetcher = service(result, "djangostack-prod-fetcher")
    ticker = service(result, "djangostack-prod-ticker")
    assert network_names(result, fetcher) == {"djangostack-prod-backend", "djangostack-prod-egress"}
    assert network_names(result, ticker) == {"djangostack-prod-backend"}
    for web in by_role(result, "web"):
        assert "djangostack-prod-egress" not in network_names(result, web)


def test_no_egress_network_unless_a_process_opts_in(prod):
    names = {n.plain_inputs["name"] for n in prod.of_type(NETWORK)}
    assert "djangostack-prod-egress" not in names


def test_a_shell_health_check_runs_through_the_entrypoint():
    shell = ["CMD-SHELL", "test -f /tmp/ticker-alive"]
    result = prod({"ticker": {**TICKER, "health": shell}})
    (ticker,) = by_role(result, "process")
    tests = ticker.plain_inputs["taskSpec"]["containerSpec"]["healthcheck"]["tests"]
    assert tests == ["CMD", ENTRYPOINT, "sh", "-c", "test -f /tmp/ticker-alive"]


def test_each_process_is_labelled_with_its_name():
    result = prod({"celery": {"command": ["celery", "-A", "config", "worker"]}, "ticker": TICKER})
    for role, name in (("celery", "celery"), ("process", "ticker")):
        (service,) = by_role(result, role)
        labels = service.plain_inputs["taskSpec"]["containerSpec"]["labels"]
        assert {"label": "djangostack.process", "value": name} in labels
