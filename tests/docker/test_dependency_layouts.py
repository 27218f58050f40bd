"""Projects that declare their dependencies in other layouts than the reference app's single
requirements.txt (tests/fixtures/): the program detects the layout (components/deps.py), the image
built with its build args has exactly the production packages, and a code change reuses the
installed packages while a change to an included requirements file installs again."""

import secrets
import shutil
import tomllib
from pathlib import Path

import docker
import pytest
from conftest import INSTALL_STEP, step_cached

from components import deps
from tests.support.engine import DeployFailed, leftovers, new_stack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUN_ID = secrets.token_hex(6)
# Prints name==version of every distribution in the image's venv, one per line.
LIST_PACKAGES = (
    "import importlib.metadata as m; "
    "print('\\n'.join(sorted(f\"{d.metadata['Name'].lower()}=={d.version}\" "
    "for d in m.distributions())))"
)


def project_with(layout: str, destination: Path) -> Path:
    """A build context: the minimal Django project plus one layout's dependency files."""
    context = Path(shutil.copytree(FIXTURES / "project", destination))
    shutil.copytree(FIXTURES / "layouts" / layout, context, dirs_exist_ok=True)
    return context


def installed(client: docker.DockerClient, tag: str, labels: dict[str, str]) -> dict[str, str]:
    output = client.containers.run(
        tag, ["python", "-c", LIST_PACKAGES], remove=True, network_disabled=True, labels=labels
    )
    return dict(line.split("==", 1) for line in output.decode().split())


def test_includes_and_constraints_are_followed(
    tmp_path: Path, build_image, docker_client: docker.DockerClient, labels: dict[str, str]
) -> None:
    context = project_with("includes", tmp_path / "includes")
    found = deps.detect(context)
    before, after, changed = (f"djangostack/web:deps-{n}-{RUN_ID}" for n in ("a", "b", "c"))
    # A never-built-before include: the first build really installs.
    with (context / "requirements" / "base.txt").open("a") as base:
        base.write(f"# {secrets.token_hex(8)}\n")
    first = build_image(context, before, build_args=found.build_args())

    assert not step_cached(first, INSTALL_STEP)
    packages = installed(docker_client, before, labels)
    # requirements/base.txt asks for Django 6; constraints.txt (-c) pins it below the newest.
    assert packages["django"] == "6.0.10"
    assert "six" not in packages

    (context / "views.py").write_text(f"# a code change {secrets.token_hex(8)}\n")
    rebuilt = build_image(context, after, build_args=deps.detect(context).build_args())
    assert step_cached(rebuilt, INSTALL_STEP)
    assert not step_cached(rebuilt, "COPY . .")

    # An included file changed: the install runs again (no stale packages).
    with (context / "requirements" / "production.txt").open("a") as production:
        production.write("six==1.17.0\n")
    reinstalled = build_image(context, changed, build_args=deps.detect(context).build_args())
    assert not step_cached(reinstalled, INSTALL_STEP)
    assert installed(docker_client, changed, labels)["six"] == "1.17.0"


def test_requirements_directory_installs_production_only(
    tmp_path: Path, build_image, docker_client: docker.DockerClient, labels: dict[str, str]
) -> None:
    context = project_with("requirements-dir", tmp_path / "requirements-dir")
    assert not (context / "requirements.txt").exists()
    tag = f"djangostack/web:deps-dir-{RUN_ID}"
    build_image(context, tag, build_args=deps.detect(context).build_args())

    packages = installed(docker_client, tag, labels)
    assert packages["django"] == "6.1.3"
    assert "six" not in packages  # requirements/local.txt is not what production installs


@pytest.mark.parametrize(("layout", "lock_name"), [("uv", "uv.lock"), ("poetry", "poetry.lock")])
def test_lock_installs_locked_versions_without_dev_group(
    tmp_path: Path,
    build_image,
    docker_client: docker.DockerClient,
    labels: dict[str, str],
    layout: str,
    lock_name: str,
) -> None:
    context = project_with(layout, tmp_path / layout)
    lock = tomllib.loads((context / lock_name).read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    before, after = (f"djangostack/web:deps-{layout}-{n}-{RUN_ID}" for n in ("a", "b"))
    build_image(context, before, build_args=deps.detect(context).build_args())

    packages = installed(docker_client, before, labels)
    # Django and what it needs on Linux (tzdata is locked for Windows only), at the locked versions.
    production = {name: locked[name] for name in ("django", "asgiref", "sqlparse")}
    assert {name: packages.get(name) for name in production} == production
    # Neither the dev group, nor the export tool, nor the project itself.
    assert not {"six", "uv", "poetry", f"{layout}-fixture"} & set(packages)

    (context / "views.py").write_text(f"# a code change {secrets.token_hex(8)}\n")
    rebuilt = build_image(context, after, build_args=deps.detect(context).build_args())
    assert step_cached(rebuilt, INSTALL_STEP)


def test_requirements_that_fail_to_install_stop_the_deploy_before_anything_runs(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """A dependency pip cannot install: the deploy stops at the build with the product's line
    naming the file and the key, and no container, network or volume of the stack exists."""
    context = project_with("includes", tmp_path / "broken")
    with (context / "requirements" / "production.txt").open("a") as production:
        production.write("djangostack-no-such-distribution==1.0\n")
    stack = new_stack(tmp_path / "stack", "deps-fail", "prod", source=context)
    try:
        with pytest.raises(DeployFailed) as failed:
            stack.up()
        # Every Docker object waits for the image: nothing of the stack was created.
        assert leftovers(stack.name, docker_client) == []
        message = failed.value.output
        assert "docker-build:index:Image (djangostack-image-build)" in message, message[-3000:]
        # What the user reads in the engine's output: pip's error and the product's line.
        assert (
            "djangostack: installing the project's dependencies (requirements: "
            "requirements.txt) failed" in message
        ), message[-3000:]
        assert "pulumi config set requirementsFile" in message
        assert "djangostack-no-such-distribution" in message
    finally:
        stack.remove()
