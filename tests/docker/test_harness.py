"""The harness itself, on a small program of its own (tests/harness/sample) that uses every
resource type it realizes. The tests run in file order against one sample stack: first
realization, unchanged second one, changed source, a rollout Swarm rolls back, destroy."""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests
from cryptography import x509
from pulumi.runtime import MockResourceArgs

from tests.docker.stack_config import free_port
from tests.harness import DockerEngineMocks, UnsupportedInput, destroy, leftovers, realize, teardown
from tests.harness.containers import ContainerFailed
from tests.harness.fixtures import http_get_in
from tests.program import ProgramFailed

SAMPLE = Path(__file__).resolve().parents[1] / "harness" / "sample"
CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
IMAGE = "docker-build:index:Image"
COMMAND = "command:local:Command"


@dataclass
class Sample:
    name: str
    state_dir: Path
    context: Path
    config: dict
    delete_marker: Path

    def realize(self, **overrides):
        return realize(
            self.name,
            "sample",
            {**self.config, **overrides},
            ["token"],
            self.state_dir,
            program=SAMPLE / "__main__.py",
            timeout=600,
        )


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sample]:
    name = f"hs-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("harness")
    shutil.copytree(SAMPLE / "context", tmp / "context")
    config = {
        "prefix": name,
        "context": str(tmp / "context"),
        "port": free_port(),
        "token": "build-token-" + name,
        "deleteMarker": str(tmp / "deleted"),
    }
    try:
        yield Sample(name, tmp / "state", tmp / "context", config, tmp / "deleted")
    finally:
        teardown(name)


@pytest.fixture(scope="module")
def first(sample: Sample):
    return sample.realize()


def test_first_realization_creates_everything_in_dependency_order(first) -> None:
    assert set(first.events.values()) == {"created"}
    assert len(first.events) == 12
    order = [r.name for r in first.result.resources if r.custom]
    assert order.index("image") < order.index("seed") < order.index("server")
    assert order.index("secret") < order.index("service")


def test_container_is_hardened_healthy_and_serves(first, sample: Sample, client) -> None:
    server = client.containers.get(first.outputs["serverName"])
    host = server.attrs["HostConfig"]
    assert server.attrs["State"]["Health"]["Status"] == "healthy"  # `wait` waited for it
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert server.attrs["Config"]["User"] == "65534:65534"
    assert host["Memory"] == 128 * 1024 * 1024
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"]["max-size"] == "1m"
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=16m"}
    assert server.attrs["Config"]["StopTimeout"] == 5
    assert server.labels["djangostack.harness"] == sample.name
    assert f"PASSWORD={first.outputs['password']}" in server.attrs["Config"]["Env"]
    assert set(server.attrs["NetworkSettings"]["Networks"]) == {
        f"{sample.name}-net",
        f"{sample.name}-overlay",
    }
    response = requests.get(f"{first.outputs['url']}/health", timeout=5)
    assert response.status_code == 200
    # The command ran before the container (depends_on) and wrote the image digest.
    marker = requests.get(f"{first.outputs['url']}/marker", timeout=5).text.strip()
    assert marker == first.outputs["imageDigest"]
    assert first.outputs["seedStdout"] == "seeded"


def test_network_alias_and_uploads(first, sample: Sample, client) -> None:
    notes = client.containers.get(f"{sample.name}-notes")
    status, body = http_get_in(notes, "http://server:8000/health")
    assert (status, body.strip()) == (200, "ok")
    archive, _ = notes.get_archive("/srv/run.sh")
    with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
        assert tar.getmember("run.sh").mode & stat.S_IXUSR
    _, cert_pem = notes.exec_run(["cat", "/srv/cert.pem"])
    assert cert_pem.decode() == first.outputs["certPem"]
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


def test_random_password_and_build_secret(first, sample: Sample, client) -> None:
    password = first.outputs["password"]
    assert len(password) == 24 and password.isalnum()
    assert {"password"} <= first.result.secret_outputs
    image = client.images.get(first.outputs["imageRef"])
    assert image.labels["djangostack.harness"] == sample.name
    history = " ".join(str(layer) for layer in image.history())
    assert sample.config["token"] not in history.replace(
        f"EXPECTED_TOKEN={sample.config['token']}", ""
    )


def test_service_converged_with_secret_and_alias(first, sample: Sample, client) -> None:
    service = client.services.get(first.outputs["serviceName"])
    tasks = service.tasks({"desired-state": "running"})
    assert len(tasks) == 1 and tasks[0]["Status"]["State"] == "running"
    task = client.containers.get(tasks[0]["Status"]["ContainerStatus"]["ContainerID"])
    assert task.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert task.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert task.labels["djangostack.harness"] == sample.name
    _, secret = task.exec_run(["cat", "/run/secrets/pw"], user="65534")
    assert secret.decode() == first.outputs["password"]
    server = client.containers.get(first.outputs["serverName"])
    status, _ = http_get_in(server, "http://svc:8000/health")
    assert status == 200


def test_second_realization_with_unchanged_program_touches_nothing(
    first, sample: Sample, client
) -> None:
    before = {
        c.id
        for c in client.containers.list(filters={"label": f"djangostack.harness={sample.name}"})
    }
    again = sample.realize()
    assert set(again.events.values()) == {"unchanged"}
    assert again.outputs == first.outputs
    after = {
        c.id
        for c in client.containers.list(filters={"label": f"djangostack.harness={sample.name}"})
    }
    assert after == before


def test_changed_source_rebuilds_and_rolls_forward(first, sample: Sample, client) -> None:
    server_py = sample.context / "server.py"
    server_py.write_text(server_py.read_text().replace('MESSAGE = "v1"', 'MESSAGE = "v2"'))
    old_server = client.containers.get(first.outputs["serverName"]).id
    changed = sample.realize(notes=False)
    assert changed.action(IMAGE, "image") == "updated"
    assert changed.action(COMMAND, "seed") == "replaced"  # its trigger is the digest
    assert changed.action(CONTAINER, "server") == "replaced"
    assert changed.action(SERVICE, "service") == "updated"  # in place: Swarm rolled it
    assert changed.action(CONTAINER, "notes") == "deleted"  # no longer registered
    for unchanged in ("net", "overlay", "data", "password", "cert", "key", "secret"):
        assert next(v for (_, n), v in changed.events.items() if n == unchanged) == "unchanged"
    assert sample.delete_marker.read_text().strip() == "deleted"  # old command's delete ran
    assert client.containers.get(changed.outputs["serverName"]).id != old_server
    assert requests.get(f"{changed.outputs['url']}/message", timeout=5).text == "v2"
    service = client.services.get(changed.outputs["serviceName"])
    assert (
        service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]["image-digest"]
        == changed.outputs["imageDigest"]
    )
    assert changed.outputs["imageDigest"] != first.outputs["imageDigest"]


def test_rollout_that_swarm_rolls_back_fails_the_registration(sample: Sample, client) -> None:
    service = client.services.get(f"{sample.name}-svc")
    spec_before = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    with pytest.raises(ProgramFailed) as failure:
        sample.realize(notes=False, serviceHealthy=False)
    assert "rollback completed" in str(failure.value) or "rollback paused" in str(failure.value)
    service.reload()
    assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"] == spec_before
    running = service.tasks({"desired-state": "running"})
    assert [t["Status"]["State"] for t in running] == ["running"]


def test_destroy_deletes_everything_and_teardown_leaves_nothing(sample: Sample) -> None:
    events = destroy(sample.name, sample.state_dir)
    assert set(events.values()) == {"deleted"}
    assert leftovers(sample.name) == []


def _args(typ: str, name: str, inputs: dict) -> MockResourceArgs:
    return MockResourceArgs(
        typ=typ, name=name, inputs=inputs, provider="", resource_id="", custom=True
    )


def test_unimplemented_types_and_inputs_are_errors_naming_them(tmp_path: Path, client) -> None:
    name = f"hs-{uuid.uuid4().hex[:8]}"
    mocks = DockerEngineMocks(name, tmp_path)
    with pytest.raises(UnsupportedInput, match="docker:index/registryImage:RegistryImage"):
        mocks.new_resource(_args("docker:index/registryImage:RegistryImage", "x", {}))
    image = "djangostack-testbed/python:3.13"
    with pytest.raises(UnsupportedInput, match=r"Container c\.fooBar"):
        mocks.new_resource(_args(CONTAINER, "c", {"image": image, "fooBar": 1}))
    with pytest.raises(UnsupportedInput, match=r"privileged=True"):
        mocks.new_resource(_args(CONTAINER, "c", {"image": image, "privileged": True}))
    with pytest.raises(UnsupportedInput, match=r"healthcheck\.startInterval"):
        mocks.new_resource(
            _args(
                CONTAINER,
                "c",
                {"image": image, "healthcheck": {"tests": ["CMD", "true"], "startInterval": "1s"}},
            )
        )
    assert leftovers(name) == []  # nothing was created


def test_container_that_turns_unhealthy_fails_with_logs_and_probe_output(tmp_path: Path) -> None:
    name = f"hs-{uuid.uuid4().hex[:8]}"
    mocks = DockerEngineMocks(name, tmp_path)
    inputs = {
        "image": "djangostack-testbed/python:3.13",
        "name": f"{name}-sick",
        "command": [
            "python",
            "-c",
            "print('booting sick', flush=True); import time; time.sleep(60)",
        ],
        "healthcheck": {
            "tests": ["CMD-SHELL", "echo probe-says-no; exit 1"],
            "interval": "1s",
            "retries": 1,
        },
        "wait": True,
        "waitTimeout": 30,
    }
    try:
        with pytest.raises(ContainerFailed) as failure:
            mocks.new_resource(_args(CONTAINER, "sick", inputs))
        assert "turned unhealthy" in str(failure.value)
        assert "booting sick" in str(failure.value) and "probe-says-no" in str(failure.value)
        assert leftovers(name) == []  # the failed container was removed
    finally:
        teardown(name)
