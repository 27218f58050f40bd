"""Maintenance mode on a prod stack deployed by the Pulumi engine, under continuous HTTPS load
through nginx (loopback only).

One prod stack for the module, tests in file order: `up` with maintenance on, then off, each
under load: after the `up` returns every answer is the page (503, Retry-After), then the site
again; the health endpoints answer 200 meanwhile; no request goes unanswered during either
switch and no container or task is replaced, nginx included (only the maintenance step runs).
Then an allowed address sees the site while every other client gets the page (changing the
list replaces nginx, as documented). A dev stack, which has no nginx, refuses maintenance mode
at preview. Figures are printed, not asserted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from components.app import HEALTH_PATH
from components.nginx import HTTPS_PORT, MAINTENANCE_RETRY_AFTER_SECONDS
from tests.support.checks import wait_for
from tests.support.engine import DeployFailed, Result, leftovers, new_stack
from tests.support.prodstack import ProdStack, prod_stack

CONTAINER = "docker:index/container:Container"
LOAD_WORKERS = 3
LOAD_MAX_SECONDS = 600  # bound: both switches take far less
ANSWERS_AFTER_SWITCH = 100  # answers collected after each `up` returned
LOG_WAIT_SECONDS = 30  # bound for a request to show in nginx's log
# The project's own page (config maintenancePage), in the app copy from the first deploy on.
PAGE_PATH = "ops/maintenance.html"
PAGE_TEXT = "The shop is being upgraded"
PAGE = f"<!doctype html><title>Upgrade</title><h1>{PAGE_TEXT}</h1>\n"
MAINTENANCE_COMPONENT = "djangostack-maintenance"  # Pulumi names of its resources start so
# A request from inside the stack's edge network (a web task), which is not on the allow list.
IN_NETWORK_REQUEST = """
import ssl, sys, urllib.error, urllib.request
context = ssl._create_unverified_context()
try:
    answer = urllib.request.urlopen(sys.argv[1], context=context, timeout=10)
except urllib.error.HTTPError as error:
    answer = error
print(answer.status, answer.headers.get("Retry-After"), answer.read().decode()[:200])
"""


def _prepare(app_dir: Path) -> None:
    page = app_dir / PAGE_PATH
    page.parent.mkdir()
    page.write_text(PAGE)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    with prod_stack(tmp_path_factory.mktemp("maint"), "maint", prepare=_prepare) as deployed:
        yield deployed


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():  # past pytest's capture: the figures appear in every CI log
        print(f"\n[maintenance] {line}")


def _answer(response: requests.Response) -> str:
    """The class of one answer: the site, the maintenance page, or what else it was."""
    retry_after = response.headers.get("Retry-After")
    if response.status_code == 200 and "version" in response.text:
        return "site"
    if (
        response.status_code == 503
        and PAGE_TEXT in response.text
        and retry_after == str(MAINTENANCE_RETRY_AFTER_SECONDS)
    ):
        return "maintenance"
    return f"{response.status_code} Retry-After={retry_after} {response.text[:60]!r}"


def _identities(stack: ProdStack) -> dict[str, list[str]]:
    """The running web and process task ids and the postgres, redis and nginx container ids."""
    found = {
        role: sorted(
            t["ID"] for t in stack.service(role).tasks(filters={"desired-state": "running"})
        )
        for role in ("web", "celery")
    }
    found |= {role: [stack.container(role).id] for role in ("postgres", "redis", "nginx")}
    return found


def _changed(result: Result) -> list[str]:
    """The Pulumi names of the resources an `up` touched."""
    return sorted({name for (_, name), op in result.ops.items() if op != "same"})


def _wait_for_answers(result_answers: list[tuple[float, str]], since: float) -> None:
    """Until the load has ANSWERS_AFTER_SWITCH answers to requests sent after `since`."""
    deadline = time.monotonic() + 60
    while sum(at >= since for at, _ in list(result_answers)) < ANSWERS_AFTER_SWITCH:
        assert time.monotonic() < deadline, "the load stopped answering"
        time.sleep(0.2)


def test_switching_maintenance_on_and_off_under_load_drops_nothing(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _identities(stack)
    load = stack.load(LOAD_WORKERS, LOAD_MAX_SECONDS, classify=_answer)
    answers = load.result.answers
    _wait_for_answers(answers, 0.0)

    on_began = time.monotonic()
    on = stack.up(maintenance=True, maintenancePage=PAGE_PATH)
    on_done = time.monotonic()
    _wait_for_answers(answers, on_done)
    health = {path: stack.get(path).status_code for path in ("/nginx-health", HEALTH_PATH)}
    page = stack.get("/")

    off_began = time.monotonic()
    off = stack.up(maintenance=False)
    off_done = time.monotonic()
    _wait_for_answers(answers, off_done)
    result = load.stop()
    after = _identities(stack)

    _report(
        capsys,
        f"requests={result.requests} statuses={result.statuses} errors={len(result.errors)} "
        f"{sorted(set(result.errors))}; switch on {on_done - on_began:.1f}s, "
        f"off {off_done - off_began:.1f}s; answers before on {result.classes(0, on_began)}, "
        f"during on {result.classes(on_began, on_done)}, maintenance "
        f"{result.classes(on_done, off_began)}, during off {result.classes(off_began, off_done)}, "
        f"after off {result.classes(off_done)}; changed on {_changed(on)}, off {_changed(off)}",
    )
    # Every request was answered, during both switches too.
    assert result.errors == []
    assert result.classes(0, on_began).keys() == {"site"}
    # Once the `up` returned: every answer is the page, then every answer the site again.
    assert result.classes(on_done, off_began).keys() == {"maintenance"}
    assert result.classes(off_done).keys() == {"site"}
    assert set(result.classes(on_began, off_done)) <= {"site", "maintenance"}
    # Every path but the health endpoints: the home page too, with the security headers.
    assert _answer(page) == "maintenance" and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"]
    assert health == {"/nginx-health": 200, HEALTH_PATH: 200}
    # Only the maintenance step and its page's files changed: no task, no container replaced.
    for switched in (on, off):
        changed = _changed(switched)
        assert changed and all(name.startswith(MAINTENANCE_COMPONENT) for name in changed)
    assert after == before


def _client_address(stack: ProdStack) -> str:
    """The address nginx sees for this host's requests (through Docker's port publishing),
    from its access log."""
    marker = f"/version/?from-test-{time.monotonic_ns()}"
    stack.get(marker)

    def marked() -> list[str]:
        logs = stack.container("nginx").logs(tail=200).decode()
        return [line for line in logs.splitlines() if marker in line]

    # Docker copies a container's output to its log asynchronously: on a busy machine the line
    # lands a moment after the answer.
    (line,) = wait_for("the marked request in nginx's log", marked, LOG_WAIT_SECONDS, every=0.5)
    return line.split(" ", 1)[0]


def test_an_allowed_address_sees_the_site_every_other_client_the_page(
    stack: ProdStack, capsys: pytest.CaptureFixture[str]
) -> None:
    address = _client_address(stack)
    nginx_before = stack.container("nginx").id
    deploy = stack.up(maintenance=True, maintenancePage=PAGE_PATH, maintenanceAllow=[address])
    nginx = stack.container("nginx")
    # The list is nginx's configuration: a new list is a new nginx (docs/operations.md).
    assert deploy.op(CONTAINER, "djangostack-nginx-container") == "replace"
    assert nginx.id != nginx_before

    from_host = stack.get("/version/")
    (web,) = stack.containers("web")[:1]
    (edge_ip,) = [
        settings["IPAddress"]
        for name, settings in nginx.attrs["NetworkSettings"]["Networks"].items()
        if name == f"{stack.name}-edge"
    ]
    code, out = web.exec_run(
        ["python", "-c", IN_NETWORK_REQUEST, f"https://{edge_ip}:{HTTPS_PORT}/version/"]
    )
    from_network = out.decode().strip()
    _report(
        capsys,
        f"allowed {address}: host answer {from_host.status_code}; "
        f"a web task's answer {from_network[:80]!r}",
    )
    assert _answer(from_host) == "site", from_host.text
    assert json.loads(from_host.text)["version"]
    assert code == 0, from_network
    assert re.match(rf"503 {MAINTENANCE_RETRY_AFTER_SECONDS} ", from_network), from_network
    assert PAGE_TEXT in from_network


def test_dev_refuses_maintenance_at_preview_and_creates_nothing(tmp_path: Path) -> None:
    stack = new_stack(
        tmp_path,
        "maint-dev",
        "dev",
        overrides={"maintenance": True, "maintenanceAllow": ["10.1.2.3/24"]},
    )
    try:
        with pytest.raises(DeployFailed) as failed:
            stack.preview()
        output = failed.value.output
        assert (
            "djangostack:maintenance: the dev profile has no nginx, the edge that answers with "
            "the maintenance page; maintenance mode is for prod stacks. Fix: pulumi config set "
            "maintenance false"
        ) in output
        assert "'10.1.2.3/24' is not an IPv4 address or network" in output
        assert "did you mean 10.1.2.0/24?" in output
        assert leftovers(stack.name) == []
    finally:
        stack.remove()
