"""Prod runs exactly what it pushed: the prod stack, configured with a real registry on loopback
(Debian's docker-registry), pushes its image there, and its web and Celery workloads run that
image by digest (`repo@sha256:…`), the digest the registry serves for the pushed version tag."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import docker
import pytest
import requests

from policy.rules import split_image_ref
from tests.docker.stack_config import free_port
from tests.support.engine import EngineStack, deployed

REGISTRY_BINARY = "/usr/bin/docker-registry"  # Debian package docker-registry (testbed)
REGISTRY_START_SECONDS = 30
IMAGE_NAME = "djangostack/web"
VERSION = "1.0.0-registry-test"
# Every manifest kind BuildKit may push, so the registry answers with the pushed one's digest.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry on 127.0.0.1 and a free port, storing into a temp dir; stopped at the end."""
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}\n"
    )
    log = root / "registry.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + REGISTRY_START_SECONDS
        while not _answers(f"http://{address}/v2/"):
            assert proc.poll() is None, f"registry exited:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"registry not up:\n{log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture(scope="module")
def stack(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    """The prod stack deployed by the engine with `registry` configured; the pulled images
    are removed with it."""
    client = docker.from_env(timeout=300)
    overrides = {"registry": registry, "imageTag": VERSION, "webReplicas": 1}
    try:
        with deployed(tmp_path_factory.mktemp("reg"), "reg", "prod", overrides=overrides) as stack:
            yield stack
    finally:
        # By tag, never by id with force: the support image's id is shared with the support
        # image other tests built under their own tag (same files, same id).
        for repository in (IMAGE_NAME, f"{IMAGE_NAME}-support"):
            for image in client.images.list(name=f"{registry}/{repository}"):
                for tag in (t for t in image.tags if t.startswith(f"{registry}/")):
                    client.images.remove(tag)


def _registry_digest(registry: str, tag: str) -> str:
    response = requests.get(
        f"http://{registry}/v2/{IMAGE_NAME}/manifests/{tag}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def test_the_image_is_pushed_and_deployed_by_its_registry_digest(registry, stack):
    pushed = _registry_digest(registry, VERSION)
    image_ref = stack.outputs["imageRef"]
    repository, _, digest = split_image_ref(image_ref)
    assert repository == f"{registry}/{IMAGE_NAME}"
    assert digest == pushed == stack.outputs["imageDigest"]


def _running_images(client: docker.DockerClient, name: str) -> list[tuple[str, list[str]]]:
    """(configured image, repo digests of the image it runs) of each running container of
    the Swarm service or plain container `name`."""
    services = client.services.list(filters={"name": name})
    if services:
        containers = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={name}"}
        )
    else:
        containers = [client.containers.get(name)]
    return [(c.attrs["Config"]["Image"], c.image.attrs["RepoDigests"]) for c in containers]


def test_web_and_celery_run_exactly_the_pushed_digest(registry, stack):
    client = docker.from_env(timeout=60)
    pushed = f"{registry}/{IMAGE_NAME}@{_registry_digest(registry, VERSION)}"
    names = [*stack.outputs["webNames"], *stack.outputs["celeryNames"]]
    assert names
    for name in names:
        running = _running_images(client, name)
        assert running, f"{name} has no running container"
        for configured, repo_digests in running:
            assert configured == stack.outputs["imageRef"], (name, configured)
            assert pushed in repo_digests, (name, repo_digests)
