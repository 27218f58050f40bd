"""Debian packages a project needs (config buildPackages / runtimePackages, passed as the build
args BUILD_PACKAGES / RUNTIME_PACKAGES): build packages exist in the builder-based development
image and never in the runtime image; runtime packages exist in both; a requirement that only
compiles against a -dev header builds, and its extension loads in the runtime image, which has
the library it links and not the headers."""

import secrets
import shutil
from pathlib import Path

import docker
import pytest

from components import deps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUN_ID = secrets.token_hex(6)
# gettext: msgfmt for compilemessages; libmemcached-dev: the headers pylibmc compiles against.
# python3-dev: the test bed's stand-in base runs Debian's Python, whose Python.h comes from
# python3-dev (the official python:3.x-slim ships its headers): one more real build package.
BUILD_PACKAGES = ("gettext", "libmemcached-dev", "python3-dev")
# The shared library pylibmc's extension loads (Debian 13's name; -dev pulls it into the builder).
RUNTIME_PACKAGES = ("libmemcached11t64",)
# Exit status 0 when every shared library the venv's compiled extensions link resolves.
LIBRARIES_RESOLVE = (
    'files=$(find /opt/venv -name "*.so" -type f) && [ -n "$files" ] '
    '&& ! ldd $files | grep "not found"'
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, build_image) -> dict[str, str]:
    """The fixture project with pylibmc in its requirements, built as runtime and
    development with the packages as the Pulumi program passes them (space-separated)."""
    context = Path(tmp_path_factory.mktemp("syspkgs")) / "project"
    shutil.copytree(FIXTURES / "project", context)
    shutil.copytree(FIXTURES / "layouts" / "system-packages", context, dirs_exist_ok=True)
    build_args = {
        **deps.detect(context).build_args(),
        "BUILD_PACKAGES": " ".join(BUILD_PACKAGES),
        "RUNTIME_PACKAGES": " ".join(RUNTIME_PACKAGES),
    }
    tags = {}
    for target in ("runtime", "development"):
        tags[target] = f"djangostack/web:syspkgs-{target}-{RUN_ID}"
        build_image(context, tags[target], target=target, build_args=build_args)
    return tags


def run(
    client: docker.DockerClient, tag: str, labels: dict[str, str], entrypoint: str, *args: str
) -> tuple[int, str]:
    """Exit status and output of `entrypoint args` in a throwaway container of `tag`."""
    container = client.containers.run(
        tag, list(args), entrypoint=entrypoint, detach=True, network_disabled=True, labels=labels
    )
    try:
        status = container.wait(timeout=120)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


def installed(client: docker.DockerClient, tag: str, labels: dict[str, str], package: str) -> bool:
    status, output = run(client, tag, labels, "dpkg", "-s", package)
    return status == 0 and "Status: install ok installed" in output


def test_build_packages_reach_the_development_image_only(
    images: dict[str, str], docker_client: docker.DockerClient, labels: dict[str, str]
) -> None:
    development, runtime = images["development"], images["runtime"]
    for package in BUILD_PACKAGES:
        assert installed(docker_client, development, labels, package), package
        assert not installed(docker_client, runtime, labels, package), package
    # compilemessages needs msgfmt where the project is developed, never in production.
    assert run(docker_client, development, labels, "sh", "-c", "command -v msgfmt")[0] == 0
    assert run(docker_client, runtime, labels, "sh", "-c", "command -v msgfmt")[0] != 0


def test_runtime_packages_reach_runtime_and_development(
    images: dict[str, str], docker_client: docker.DockerClient, labels: dict[str, str]
) -> None:
    for tag in images.values():
        for package in RUNTIME_PACKAGES:
            assert installed(docker_client, tag, labels, package), (tag, package)


def test_extension_compiled_against_build_headers_loads_in_runtime(
    images: dict[str, str], docker_client: docker.DockerClient, labels: dict[str, str]
) -> None:
    runtime = images["runtime"]
    # _pylibmc is pylibmc's C extension, compiled in the builder against libmemcached-dev; it
    # loads libmemcached.so.11 from the runtime package.
    status, output = run(
        docker_client,
        runtime,
        labels,
        "python",
        "-c",
        "import pylibmc, _pylibmc; print(pylibmc.__version__, _pylibmc.__file__)",
    )
    assert status == 0, output
    version, extension = output.split()
    assert version == "1.6.3"
    assert extension.startswith("/opt/venv/") and extension.endswith(".so")
    status, output = run(docker_client, runtime, labels, "sh", "-c", LIBRARIES_RESOLVE)
    assert status == 0, output
    # The headers stayed in the builder.
    assert run(docker_client, runtime, labels, "test", "-e", "/usr/include/libmemcached")[0] != 0
