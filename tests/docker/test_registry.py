"""Prod runs exactly what it pushed: the prod stack, configured with a real registry on loopback
(Debian's docker-registry), pushes its image there, and its web and Celery workloads run that
image by digest (`repo@sha256:…`), the digest the registry serves for the pushed version tag."""

from __future__ import annotations

import datetime
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from policy.rules import split_image_ref
from tests.docker.stack_config import free_port
from tests.harness import leftovers, realize, teardown

REGISTRY_BINARY = Path("/usr/bin/docker-registry")  # Debian package docker-registry (testbed)
REGISTRY_START_SECONDS = 30
TEARDOWN_SECONDS = 60
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
TESTBED = "djangostack-testbed"

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
            [str(REGISTRY_BINARY), "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
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


def _certificate(directory: Path, domain: str) -> tuple[Path, Path]:
    """A self-signed certificate and key for `domain`, as an operator's files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "site.crt", directory / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def deployed(registry: str, tmp_path_factory: pytest.TempPathFactory):
    """The prod stack realized on the local engine with `registry` configured."""
    name = f"reg-{uuid.uuid4().hex[:8]}"
    client = docker.from_env(timeout=300)
    cert_file, key_file = _certificate(tmp_path_factory.mktemp("tls"), "shop.example.test")
    config = {
        "namePrefix": name,
        "registry": registry,
        "imageTag": VERSION,
        "baseImage": f"{TESTBED}/python:3.13",
        "postgresImage": f"{TESTBED}/postgres:latest",
        "redisImage": f"{TESTBED}/redis:latest",
        "nginxImage": f"{TESTBED}/nginx:latest",
        "caBundleFile": "/etc/ssl/certs/ca-certificates.crt",
        "djangoSecretKey": "registry-test-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "domain": "shop.example.test",
        "tlsCertFile": str(cert_file),
        "tlsKeyFile": str(key_file),
        "publicBindAddress": "127.0.0.1",
        "httpPort": free_port(),
        "httpsPort": free_port(),
        "webReplicas": 1,
    }
    try:
        yield realize(
            name,
            "prod",
            config,
            ["djangoSecretKey"],
            tmp_path_factory.mktemp("state"),
            timeout=1500,
        )
    finally:
        teardown(name, client)
        for image in client.images.list(name=f"{registry}/{IMAGE_NAME}"):
            client.images.remove(image.id, force=True)
        # An overlay network can only go once the removed services' tasks have detached.
        deadline = time.monotonic() + TEARDOWN_SECONDS
        while (left := leftovers(name, client)) and time.monotonic() < deadline:
            time.sleep(1)
            teardown(name, client)
        assert left == []


def _registry_digest(registry: str, tag: str) -> str:
    response = requests.get(
        f"http://{registry}/v2/{IMAGE_NAME}/manifests/{tag}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def test_the_image_is_pushed_and_deployed_by_its_registry_digest(registry, deployed):
    pushed = _registry_digest(registry, VERSION)
    image_ref = deployed.outputs["imageRef"]
    repository, _, digest = split_image_ref(image_ref)
    assert repository == f"{registry}/{IMAGE_NAME}"
    assert digest == pushed == deployed.outputs["imageDigest"]


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


def test_web_and_celery_run_exactly_the_pushed_digest(registry, deployed):
    client = docker.from_env(timeout=60)
    pushed = f"{registry}/{IMAGE_NAME}@{_registry_digest(registry, VERSION)}"
    names = [*deployed.outputs["webNames"], *deployed.outputs["celeryNames"]]
    assert names
    for name in names:
        running = _running_images(client, name)
        assert running, f"{name} has no running container"
        for configured, repo_digests in running:
            assert configured == deployed.outputs["imageRef"], (name, configured)
            assert pushed in repo_digests, (name, repo_digests)
