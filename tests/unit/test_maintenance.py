"""Maintenance mode (config maintenance, maintenancePage, maintenanceAllow): checked before
anything exists; nginx answers 503 with the page while the step's file is in the edge volume;
switching it runs the step again and changes no other resource's inputs, nginx's included."""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import (
    PROD_TLS,
    SERVICE,
    VOLUME,
    by_role,
    failure,
    holder_files,
    holder_of,
    holders,
    labels_of,
    problem_line,
    run,
    step,
)
from test_hardening import block, nginx_conf
from test_media import nginx_conf_of

from components import maintenance, nginx, renderers
from components.config import PRODUCT_MAINTENANCE_PAGE
from tests.program import ROOT, ProgramResult

PAGE = "<!doctype html><title>Back at 10:00</title><h1>Upgrading the shop</h1>\n"
OTHER_PAGE = PAGE.replace("10:00", "11:00")
STEP = "djangostack-maintenance-run"


@functools.cache
def prod(on: bool, app_dir: str = "", allow: tuple[str, ...] = ()) -> ProgramResult:
    """The prod program with maintenance `on` or off; `app_dir` holds templates/page.html."""
    config: dict = {**PROD_TLS, "maintenance": on}
    if app_dir:
        config |= {"appDir": app_dir, "maintenancePage": "templates/page.html"}
    if allow:
        config["maintenanceAllow"] = json.dumps(list(allow))
    return run("prod", config)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two copies of app/, each with its own templates/page.html (PAGE, OTHER_PAGE)."""
    source = ROOT / "app"
    dirs = []
    for text in (PAGE, OTHER_PAGE):
        target = tmp_path_factory.mktemp("maintenance") / "app"
        shutil.copytree(source, target)
        (target / "templates").mkdir()
        (target / "templates" / "page.html").write_text(text)
        dirs.append(str(target))
    return dirs[0], dirs[1]


def run_key(result: ProgramResult) -> str:
    return labels_of(step(result, STEP))[renderers.RUN_KEY_LABEL]


# --- Configuration ------------------------------------------------------------------------


def test_dev_has_no_edge_so_maintenance_is_a_config_error():
    line = problem_line(failure("dev", {"maintenance": True}).message, "maintenance")
    assert "the dev profile has no nginx" in line
    assert "Fix: pulumi config set maintenance false" in line


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ("10.1.2.3/24", "did you mean 10.1.2.0/24?"),
        ("10.0.0.0/33", "is not an IPv4 address or network"),
        ("shop.example.com", "is not an IPv4 address or network"),
        ("2001:db8::/32", "is not an IPv4 address or network"),
    ],
)
def test_allowed_addresses_are_ipv4_networks(entry, what):
    settings = {**PROD_TLS, "maintenanceAllow": json.dumps(["192.0.2.7", entry])}
    line = problem_line(failure("prod", settings).message, "maintenanceAllow")
    assert repr(entry) in line and what in line
    # The fix names the bad element, the second one.
    assert "Fix: pulumi config set --path 'maintenanceAllow[1]' 203.0.113.0/24" in line


@pytest.mark.parametrize(
    ("page", "what"),
    [
        ("templates/missing.html", "does not exist (a path relative to appDir)"),
        ("../Pulumi.yaml", "must be a path inside appDir"),
        ("/etc/hostname", "must be a path inside appDir"),
    ],
)
def test_the_page_is_a_file_inside_the_project(page, what):
    line = problem_line(
        failure("prod", {**PROD_TLS, "maintenancePage": page}).message, "maintenancePage"
    )
    assert what in line
    assert "Fix: pulumi config set maintenancePage templates/maintenance.html" in line


def test_the_page_is_utf8_text(app_copy: Path):
    (app_copy / "page.html").write_bytes(b"\xff\xfe not UTF-8")
    settings = {**PROD_TLS, "appDir": str(app_copy), "maintenancePage": "page.html"}
    line = problem_line(failure("prod", settings).message, "maintenancePage")
    assert "is not readable UTF-8 text" in line


# --- nginx's configuration ----------------------------------------------------------------


def test_nginx_answers_503_with_the_page_while_the_switch_file_exists():
    conf = nginx_conf()
    page = f"{nginx.EDGE_DIR}/{nginx.MAINTENANCE_PAGE}"
    switch = f"{nginx.EDGE_DIR}/{nginx.MAINTENANCE_SWITCH}"
    server = conf.split("listen 8443", 1)[1]
    # Checked on every request, in the server before any location: every path is covered.
    assert f"if (!-f {switch}) {{" in server.split("\n    location ", 1)[0]
    assert "return 599;" in block(server, "if ($maintenance = 11) {")
    assert f"error_page 599 =503 {nginx.MAINTENANCE_URI};" in server
    location = block(conf, f"location = {nginx.MAINTENANCE_URI} {{")
    assert "internal;" in location and f"alias {page};" in location
    retry = nginx.MAINTENANCE_RETRY_AFTER_SECONDS
    assert f"add_header Retry-After {retry} always;" in location
    assert 'add_header Cache-Control "no-store" always;' in location
    assert "include /etc/nginx/conf.d/security-headers.inc;" in location
    # Distinct from the 503 nginx sends while web is unreachable.
    assert retry != nginx.RETRY_AFTER_SECONDS
    assert "return 503" in block(conf, "location @web_unavailable {")
    # The HTTP server only redirects: no maintenance check there.
    assert "$maintenance" not in conf.split("listen 8443", 1)[0].split("server {", 1)[1]


def test_health_endpoints_and_allowed_clients_are_let_through():
    conf = nginx_conf(maintenance_allow=("203.0.113.0/24", "198.51.100.7/32"))
    clients = block(conf, "geo $maintenance_client {")
    assert re.findall(r"^\s+(\S+) (\d);$", clients, re.M) == [
        ("default", "1"),
        ("203.0.113.0/24", "0"),
        ("198.51.100.7/32", "0"),
    ]
    paths = block(conf, "map $uri $maintenance_path {")
    assert "volatile;" in paths  # the internal redirect to the page is evaluated again
    exempt = re.findall(r"^\s+(/\S*) 0;$", paths, re.M)
    assert exempt == ["/nginx-health", "/_djangostack/health/", nginx.MAINTENANCE_URI]
    assert "default 1;" in paths
    assert block(nginx_conf(), "geo $maintenance_client {").split() == ["default", "1;"]


# --- The program --------------------------------------------------------------------------


def test_nginx_mounts_the_edge_volume_read_only():
    result = prod(False)
    (nginx_container,) = by_role(result, "nginx")
    (edge,) = [v for v in result.of_type(VOLUME) if v.plain_inputs["name"].endswith("-edge")]
    mounts = {m["target"]: m for m in nginx_container.plain_inputs["mounts"]}
    assert mounts[nginx.EDGE_DIR] == {
        "target": nginx.EDGE_DIR,
        "source": "djangostack-prod-edge",
        "type": "volume",
        "readOnly": True,
    }
    assert edge.plain_inputs["name"] == "djangostack-prod-edge" and not edge.protect
    job = step(result, STEP).plain_inputs
    assert job["mounts"] == [
        {
            "target": renderers.WRITABLE_VOLUME_TARGET,
            "source": "djangostack-prod-edge",
            "type": "volume",
            "readOnly": False,
        }
    ]
    assert (job["image"], job["user"]) == (nginx_container.plain_inputs["image"], nginx.USER)
    assert job["networkMode"] == "none"


def test_on_the_step_writes_the_page_then_the_switch_off_it_removes_only_the_switch(pages):
    on = prod(True, pages[0])
    command = step(on, STEP).plain_inputs["command"]
    assert command[:2] == ["sh", "-c"]
    target = f"{renderers.WRITABLE_VOLUME_TARGET}/{nginx.MAINTENANCE_PAGE}"
    switch = f"{renderers.WRITABLE_VOLUME_TARGET}/{nginx.MAINTENANCE_SWITCH}"
    lines = command[2].splitlines()
    # The page is whole (renamed into place) before the switch sends anyone to it.
    assert lines.index(f"mv {target}.partial {target}") < lines.index(f"touch {switch}")
    files = holder_files(holder_of(on, step(on, STEP)))
    assert files == {nginx.MAINTENANCE_PAGE: PAGE}
    assert f"{maintenance.SOURCE_DIR}/{nginx.MAINTENANCE_PAGE}" in command[2]

    off = prod(False)
    off_lines = step(off, STEP).plain_inputs["command"][2].splitlines()
    # A request that saw the switch just before it went still finds the page.
    assert f"rm -f {switch}" in off_lines and not [x for x in off_lines if target in x]
    assert not [h for h in holders(off) if h.name.startswith(STEP)]  # no page while off


def test_the_product_page_by_default():
    on = prod(True)
    files = holder_files(holder_of(on, step(on, STEP)))
    assert files == {nginx.MAINTENANCE_PAGE: PRODUCT_MAINTENANCE_PAGE.read_text()}
    assert "Down for maintenance" in files[nginx.MAINTENANCE_PAGE]


def test_the_run_key_is_the_switch_and_the_page(pages):
    keys = {
        "off": run_key(prod(False)),
        "off, another page": run_key(prod(False, pages[1])),
        "on": run_key(prod(True, pages[0])),
        "on, another page": run_key(prod(True, pages[1])),
    }
    # Switching runs the step; a new page runs it while on; editing the page while off does not.
    assert keys["off"] == keys["off, another page"]
    assert len({keys["off"], keys["on"], keys["on, another page"]}) == 3


def _outside_maintenance(result: ProgramResult) -> dict[tuple[str, str], dict]:
    """Every custom resource but the maintenance component's, with its inputs."""
    component = "djangostack-maintenance"
    parents = {r.urn for r in result.resources if r.name == component}
    return {
        (r.type, r.name): r.plain_inputs
        for r in result.resources
        if r.custom and r.parent not in parents
    }


def test_switching_changes_no_other_resource_nginx_included(pages):
    off, on = prod(False, pages[0]), prod(True, pages[0])
    before, after = _outside_maintenance(off), _outside_maintenance(on)
    assert before.keys() == after.keys()
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed == []
    (nginx_off,), (nginx_on,) = by_role(off, "nginx"), by_role(on, "nginx")
    assert nginx_off.plain_inputs == nginx_on.plain_inputs
    assert holder_of(off, nginx_off).plain_inputs == holder_of(on, nginx_on).plain_inputs


def test_the_allowed_addresses_are_nginx_configuration():
    conf = nginx_conf_of(prod(False, allow=("203.0.113.0/24", "192.0.2.7")))
    assert "    203.0.113.0/24 0;\n    192.0.2.7/32 0;\n" in block(
        conf, "geo $maintenance_client {"
    )


def test_on_goes_up_before_the_backup_off_comes_down_after_the_release():
    on, off = prod(True), prod(False)
    on_step, backup = step(on, STEP), step(on, "backup-run")
    assert on.depends_on(backup, on_step)
    assert not on.depends_on(on_step, on.one(SERVICE, "djangostack-web"))
    off_step = step(off, STEP)
    for service in ("djangostack-web", "djangostack-celery"):
        assert off.depends_on(off_step, off.one(SERVICE, service))
    assert not off.depends_on(step(off, "backup-run"), off_step)
    # The step never waits for nginx: a first deploy with maintenance on puts the page up
    # before nginx starts, and nginx answers with it from its first request.
    for result, job in ((on, on_step), (off, off_step)):
        (nginx_container,) = by_role(result, "nginx")
        assert not result.depends_on(job, nginx_container)
