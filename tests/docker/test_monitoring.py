"""Config `monitoring` on a dev stack deployed by the Pulumi engine (web a plain container; the
prod e2e test covers Swarm's per-task discovery): Prometheus, on the internal backend network
and publishing nothing, scrapes web's /metrics by the container's name and reports the web
target up; its scrape config reaches it read-only through its files volume."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import docker
import pytest

from components import monitoring
from tests.support.engine import EngineStack, deployed

pytestmark = pytest.mark.slow
TARGET_UP_SECONDS = 90  # the first scrape comes within one 15 s interval


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    workdir = tmp_path_factory.mktemp("monitoring")
    with deployed(workdir, "mon", "dev", overrides={"monitoring": True}) as stack:
        yield stack


def prometheus_of(stack: EngineStack, client: docker.DockerClient):
    return client.containers.get(f"{stack.name}-prometheus")


def _targets(container) -> list[dict]:
    code, output = container.exec_run(
        ["wget", "-q", "-O", "-", f"http://127.0.0.1:{monitoring.PORT}/api/v1/targets"]
    )
    assert code == 0, output.decode(errors="replace")
    return json.loads(output)["data"]["activeTargets"]


def test_prometheus_reports_the_web_target_up(stack: EngineStack, client) -> None:
    prometheus = prometheus_of(stack, client)
    deadline = time.monotonic() + TARGET_UP_SECONDS
    while True:
        web = [t for t in _targets(prometheus) if t["labels"].get("job") == "web"]
        if web and all(t["health"] == "up" for t in web):
            break
        assert time.monotonic() < deadline, f"web target not up: {web}"
        time.sleep(2)
    assert [t["labels"]["instance"] for t in web] == [
        f"{name}:{monitoring.WEB_METRICS_PORT}" for name in stack.outputs["webNames"]
    ]


def test_prometheus_is_internal_hardened_and_publishes_nothing(stack: EngineStack, client) -> None:
    prometheus = prometheus_of(stack, client)
    host = prometheus.attrs["HostConfig"]
    assert host["PortBindings"] in (None, {})
    assert not any((prometheus.attrs["NetworkSettings"]["Ports"] or {}).values())
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert prometheus.attrs["Config"]["User"] == monitoring.USER
    assert prometheus.attrs["State"]["Health"]["Status"] == "healthy"
    networks = prometheus.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [stack.outputs["backendNetwork"]]
    assert client.networks.get(stack.outputs["backendNetwork"]).attrs["Internal"] is True


def test_the_scrape_config_is_a_read_only_file_naming_the_web_container(
    stack: EngineStack, client
) -> None:
    prometheus = prometheus_of(stack, client)
    mounts = {m["Destination"]: m for m in prometheus.attrs["Mounts"]}
    assert mounts[monitoring.CONFIG_DIR]["RW"] is False
    code, out = prometheus.exec_run(["cat", f"{monitoring.CONFIG_DIR}/prometheus.yml"])
    assert code == 0, out.decode(errors="replace")
    (web,) = stack.outputs["webNames"]
    assert f"targets: [{web}:{monitoring.WEB_METRICS_PORT}]" in out.decode()
    # Prometheus cannot change its own config (a read-only volume, root's file).
    code, _ = prometheus.exec_run(["sh", "-c", f"echo x >> {monitoring.CONFIG_DIR}/prometheus.yml"])
    assert code != 0
