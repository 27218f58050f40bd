"""The dev stack of the real program, realized from nothing on the local engine (issue 4):
runserver answers, every container is hardened and healthy, a second realization touches
nothing, a source edit on the host shows without a rebuild, teardown leaves nothing (tests run
in file order against one realization)."""

from __future__ import annotations

import time

import docker
import pytest
import requests

from tests.harness.stacks import (
    assert_destroy_leaves_nothing,
    assert_hardened_and_healthy,
    assert_unchanged_realization_touches_nothing,
    live_stack,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with live_stack("dev", tmp_path_factory.mktemp("dev")) as live:
        live.first = live.realize()
        yield live


@pytest.fixture(scope="module")
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    return session


def test_runserver_answers(dev, http, client) -> None:
    response = http.get(f"{dev.first.outputs['url']}/health/", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}
    assert "runserver" in " ".join(dev_web(dev, client).attrs["Config"]["Cmd"] or [])


def dev_web(dev, client: docker.DockerClient):
    return client.containers.get(dev.first.outputs["webNames"][0])


def test_every_container_read_only_non_root_no_capabilities_and_healthy(dev, client) -> None:
    assert_hardened_and_healthy(dev, client, minimum=4)  # postgres, redis, web, celery


def test_second_realization_of_an_unchanged_program_touches_nothing(dev, client) -> None:
    assert_unchanged_realization_touches_nothing(dev, client)


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


def test_teardown_leaves_nothing(dev) -> None:
    assert_destroy_leaves_nothing(dev)
