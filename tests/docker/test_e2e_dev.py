"""The dev stack deployed from nothing by the Pulumi engine on the local Docker engine: runserver
answers, every container is hardened and healthy, a second `up` changes nothing, a source edit
on the host shows without a rebuild, the scheduled backup (a container in dev, every minute
here) takes the pre-migration step's backup, and `destroy` leaves nothing (dev protects no
data).

One stack per module; the tests run in file order."""

from __future__ import annotations

import re
import time

import docker
import pytest
import requests

from tests.support.checks import assert_hardened_and_healthy, assert_second_up_changes_nothing
from tests.support.engine import leftovers, new_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    overrides = {"backupSchedule": "1m"}
    stack = new_stack(tmp_path_factory.mktemp("dev"), "e2e-dev", "dev", overrides=overrides)
    try:
        stack.first = stack.up()
        yield stack
    finally:
        stack.remove()


@pytest.fixture(scope="module")
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    return session


def dev_web(dev, client: docker.DockerClient):
    (name,) = dev.first.outputs["webNames"]
    return client.containers.get(name)


def test_runserver_answers(dev, http, client) -> None:
    response = http.get(f"{dev.first.outputs['url']}/health/", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}
    assert "runserver" in " ".join(dev_web(dev, client).attrs["Config"]["Cmd"] or [])


def test_every_container_read_only_non_root_no_capabilities_and_healthy(dev, client) -> None:
    # postgres, redis, web, celery, the scheduled backup
    assert_hardened_and_healthy(dev, client, minimum=5)


def test_second_up_of_an_unchanged_program_changes_nothing(dev, client) -> None:
    assert_second_up_changes_nothing(dev, client)


def test_source_edit_on_the_host_is_served_without_rebuild(dev, http, client) -> None:
    image_before = dev_web(dev, client).image.id
    template = dev.app_dir / "core" / "templates" / "core" / "index.html"
    marker = "edited-on-the-host-7f3a"
    template.write_text(template.read_text().replace("</body>", f"<p>{marker}</p></body>"))
    deadline = time.monotonic() + 60
    while marker not in http.get(f"{dev.first.outputs['url']}/", timeout=10).text:
        assert time.monotonic() < deadline, "the edit never showed up"
        time.sleep(1)
    assert dev_web(dev, client).image.id == image_before


def test_the_scheduled_backup_takes_the_steps_backup(dev, client) -> None:
    backup = client.containers.get(f"{dev.name}-scheduled-backup")
    deadline = time.monotonic() + 300  # the first is one minute after the start
    while not re.search(r"backup app-\S+\.dump done in \d+s", backup.logs().decode()):
        assert time.monotonic() < deadline, backup.logs().decode()[-2000:]
        time.sleep(2)
    # Next to the pre-migration step's: the same names, the same volume, media included.
    listing = backup.exec_run(["sh", "-c", "ls /tmp"]).output.decode().split()
    dumps = [name for name in listing if name.endswith(".dump")]
    assert len(dumps) == 2, listing
    assert all(name.removesuffix(".dump") + ".media.tar" in listing for name in dumps), listing
    backup.reload()
    assert backup.attrs["State"]["Health"]["Status"] == "healthy"


def test_destroy_leaves_nothing(dev) -> None:
    # Dev protects no volume: a plain `destroy` removes every object of the stack.
    destroyed = dev.destroy(include_data=False)
    assert destroyed.changes.get("delete", 0) > 0, destroyed.changes
    assert leftovers(dev.name) == []
