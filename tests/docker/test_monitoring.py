"""The Monitoring component on the real engine: Prometheus, on the internal backend network and
publishing nothing, scrapes web's /metrics and reports the web target up.

A small program (written below) realizes the stack's own Networks, a web container of the
runtime image (no database needed for /metrics) and Monitoring, through the harness."""

from __future__ import annotations

import json
import time
import uuid

import docker
import pytest

from tests.harness import leftovers, realize, teardown

PROMETHEUS_IMAGE = "djangostack-testbed/prometheus:latest"  # scripts/testbed.sh builds it
TARGET_UP_SECONDS = 90
TEARDOWN_SECONDS = 60

PROGRAM = '''
"""Networks, one web container and Monitoring (tests/docker/test_monitoring.py)."""
import pulumi

from components import renderers
from components.config import load_config
from components.monitoring import Monitoring, MonitoringArgs
from components.networks import Networks, NetworksArgs
from components.spec import TMP, HealthCheck, Limits, ServiceSpec

WEB_IMAGE = {web_image!r}
cfg = load_config()
networks = Networks("networks", NetworksArgs(cfg))
web_name = f"{{cfg.name_prefix}}-web"
metrics_probe = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/metrics', timeout=4)"
web = renderers.render_container(
    "web",
    ServiceSpec(
        name=web_name,
        role="web",
        image=WEB_IMAGE,
        user="10001:10001",
        limits=Limits(memory_mb=256),
        health=HealthCheck(test=("CMD", "python", "-c", metrics_probe), interval="5s"),
        env={{
            "ALLOWED_HOSTS": "127.0.0.1",  # Prometheus scrapes by name: /metrics ignores Host
            "DATABASE_URL": "sqlite:///:memory:",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }},
        secret_env={{"SECRET_KEY": {secret_key!r}}},
        tmpfs=(TMP,),
        networks=(Networks.attach(networks.backend),),
    ),
    pulumi.ResourceOptions(),
)
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(cfg, networks.backend, [web_name], WEB_IMAGE),
    pulumi.ResourceOptions(depends_on=[web]),
)
pulumi.export("prometheus", monitoring.name)
'''


@pytest.fixture(scope="module")
def realized(runtime_image, tmp_path_factory: pytest.TempPathFactory):
    client = docker.from_env(timeout=300)
    try:
        client.images.get(PROMETHEUS_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{PROMETHEUS_IMAGE} missing: run bash scripts/testbed.sh")
    name = f"mon-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("monitoring")
    program = tmp / "__main__.py"
    program.write_text(
        PROGRAM.format(
            web_image=runtime_image.tags[0],
            secret_key="monitoring-test-" + uuid.uuid4().hex + uuid.uuid4().hex,
        )
    )
    try:
        yield realize(
            name,
            "dev",
            {"namePrefix": name, "orchestrator": "containers", "prometheusImage": PROMETHEUS_IMAGE},
            [],
            tmp / "state",
            program=program,
            timeout=600,
        )
    finally:
        teardown(name, client)
        deadline = time.monotonic() + TEARDOWN_SECONDS
        while (left := leftovers(name, client)) and time.monotonic() < deadline:
            time.sleep(1)
            teardown(name, client)
        assert left == []


def _targets(container) -> list[dict]:
    code, output = container.exec_run(
        ["wget", "-q", "-O", "-", "http://127.0.0.1:9090/api/v1/targets"]
    )
    assert code == 0, output.decode(errors="replace")
    return json.loads(output)["data"]["activeTargets"]


def test_prometheus_reports_the_web_target_up(realized):
    client = docker.from_env(timeout=60)
    prometheus = client.containers.get(realized.outputs["prometheus"])
    deadline = time.monotonic() + TARGET_UP_SECONDS
    while True:
        web = [t for t in _targets(prometheus) if t["labels"].get("job") == "web"]
        if web and all(t["health"] == "up" for t in web):
            break
        assert time.monotonic() < deadline, f"web target not up: {web}"
        time.sleep(2)
    assert [t["labels"]["instance"] for t in web] == [f"{realized.name}-web:8000"]


def test_prometheus_is_internal_hardened_and_publishes_nothing(realized):
    client = docker.from_env(timeout=60)
    prometheus = client.containers.get(realized.outputs["prometheus"])
    host = prometheus.attrs["HostConfig"]
    assert host["PortBindings"] in (None, {})
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert prometheus.attrs["Config"]["User"] == "65534:65534"
    networks = prometheus.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"{realized.name}-backend"]
    backend = client.networks.get(f"{realized.name}-backend")
    assert backend.attrs["Internal"] is True
