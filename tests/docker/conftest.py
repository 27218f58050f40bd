"""Shared fixtures of the Docker layer: an engine client, the runtime image built once per
session, an image builder, and removal of everything a session creates (found by label)."""

import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.models.images import Image

from components.image import context_hash

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "app"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SUPPORT_DIR = ROOT / "docker" / "support"  # the product's files every app image copies
# Local stand-in for python:3.x-slim (scripts/testbed.sh); registries are unreachable here.
BASE_IMAGE = "djangostack-testbed/python:3.13"
# pip inside builds goes through a TLS-intercepting proxy whose CA is in the host bundle.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUNTIME_TAG = "djangostack/web:test"
# Build arguments of the session image; tests read them back from the image and the app.
BUILD_ARGS = {
    "VERSION": "0.0.0-test",
    "REVISION": "test-revision",
    "SOURCE_URL": "https://example.invalid/djangostack",
}
SESSION_ID = uuid.uuid4().hex[:12]
# Every container, network and volume a test creates carries these labels; the session-scoped
# cleanup removes this session's objects only, so parallel sessions do not disturb each other.
LABELS = {"djangostack.test": "1", "djangostack.session": SESSION_ID}

# The modules that take longest (worker time measured by --durations, about 6 to 10 minutes
# each) start first: the workers (--dist loadfile) take modules in collection order, and a
# long one started last would run alone at the end.
LONGEST_FIRST = (
    "test_fixture_projects.py",
    "test_engine.py",
    "test_backup_drill.py",
    "test_acme.py",
    "test_resilience.py",
    "test_rollout.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a module and among the rest, file order


BuildImage = Callable[..., str]
# Names the dependency install step of docker/Dockerfile in BuildKit's log, whatever the layout:
# the step's title is its whole command (build args expanded), including the uv branch.
INSTALL_STEP = "uv export --frozen --no-dev"


def step_cached(log: str, command_fragment: str) -> bool:
    """Whether the build step whose title contains `command_fragment` was a cache hit
    (BuildKit's plain progress: `#N [stage i/n] RUN ...` then `#N CACHED`)."""
    titles = re.findall(r"^#(\d+) \[[^\]]+\] (.*)$", log, flags=re.MULTILINE)
    steps = {step for step, title in titles if command_fragment in title}
    assert steps, f"no build step matching {command_fragment!r} in the log"
    return all(re.search(rf"^#{step} CACHED$", log, flags=re.MULTILINE) for step in steps)


@pytest.fixture(scope="session")
def labels() -> dict[str, str]:
    """Labels for every container, network and volume a test creates (removed at session end)."""
    return dict(LABELS)


@pytest.fixture(scope="session")
def runtime_build_args() -> dict[str, str]:
    """The build arguments the runtime image was built with (VERSION, REVISION, SOURCE_URL)."""
    return dict(BUILD_ARGS)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    if shutil.which("docker") is None and not Path("/var/run/docker.sock").exists():
        pytest.skip("no Docker on this machine (bash scripts/testbed.sh installs it)")
    client = docker.from_env(timeout=300)
    client.ping()
    return client


@pytest.fixture(scope="session", autouse=True)
def _remove_labelled_objects(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    selector = {"label": f"djangostack.session={SESSION_ID}"}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
    for network in docker_client.networks.list(filters=selector):
        network.remove()
    for volume in docker_client.volumes.list(filters=selector):
        volume.remove(force=True)


@pytest.fixture(scope="session")
def build_image(docker_client: docker.DockerClient) -> Iterator[BuildImage]:
    """`build_image(context, tag, target="runtime", build_args=None, secrets=None)` builds
    docker/Dockerfile with BuildKit on the local base and returns the plain progress log.
    `secrets` maps secret ids to files. Images tagged here are removed at session end.
    The support image (docker/support) is built first, as the program does (components/image.py),
    tagged by content so parallel sessions share it; it is kept (a few KB)."""
    tags: set[str] = set()
    support = f"djangostack/support:{context_hash(SUPPORT_DIR, SUPPORT_DIR / 'Dockerfile')[:12]}"
    subprocess.run(
        ["docker", "buildx", "build", "--load", "-q", "-t", support, str(SUPPORT_DIR)],
        capture_output=True,
        check=True,
        timeout=300,
    )

    def build(
        context: Path,
        tag: str,
        target: str = "runtime",
        build_args: dict[str, str] | None = None,
        secrets: dict[str, Path] | None = None,
    ) -> str:
        argv = ["docker", "buildx", "build", "--load", "--progress", "plain"]
        argv += ["-f", str(DOCKERFILE), "--target", target, "-t", tag]
        defaults = {"BASE_IMAGE": BASE_IMAGE, "SUPPORT_IMAGE": support}
        for key, value in {**defaults, **(build_args or {})}.items():
            argv += ["--build-arg", f"{key}={value}"]
        for secret_id, path in {"ca_bundle": CA_BUNDLE, **(secrets or {})}.items():
            argv += ["--secret", f"id={secret_id},src={path}"]
        done = subprocess.run(
            [*argv, str(context)], capture_output=True, text=True, timeout=900, check=False
        )
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"docker build of {tag} failed:\n{log[-4000:]}"
        tags.add(tag)
        return log

    yield build
    for tag in tags - {RUNTIME_TAG}:
        docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def runtime_image(docker_client: docker.DockerClient, build_image: BuildImage) -> Image:
    """The runtime target built from app/, tagged djangostack/web:test."""
    build_image(APP_DIR, RUNTIME_TAG, build_args=BUILD_ARGS)
    return docker_client.images.get(RUNTIME_TAG)
