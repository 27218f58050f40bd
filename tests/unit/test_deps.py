"""Detection of a project's dependency layout (components/deps.py) and its report through the
config: the files the image build copies, the install it runs, and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import app_image, failure

from components import deps
from tests.program import ROOT

IMAGE = "docker-build:index:Image"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def test_requirements_includes_and_constraints_are_followed(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "-r requirements/production.txt\n-c constraints.txt\n",
            "requirements/production.txt": "# prod\n--requirement=base.txt  # shared\ngunicorn\n",
            "requirements/base.txt": "-rextra/more.txt\nDjango>=6\n",
            "requirements/extra/more.txt": "--constraint ../../constraints.txt\nsix\n",
            "requirements/local.txt": "-r base.txt\n",  # not included: not copied
            "constraints.txt": "Django==6.0.10\n",
        },
    )
    found = deps.detect(tmp_path)
    assert found == deps.Dependencies(
        "requirements",
        "requirements.txt",
        (
            "constraints.txt",
            "requirements.txt",
            "requirements/base.txt",
            "requirements/extra/more.txt",
            "requirements/production.txt",
        ),
    )
    assert found.build_args()["DEP_FILES"] == " ".join(found.files)


def test_include_cycles_end(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-r other.txt\n", "other.txt": "-r requirements.txt\n"})
    assert deps.detect(tmp_path).files == ("other.txt", "requirements.txt")


def test_missing_include_names_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "-r requirements/production.txt\n",
            "requirements/production.txt": "Django\n\n-r base.txt\n",
        },
    )
    with pytest.raises(deps.DependencyError) as caught:
        deps.detect(tmp_path)
    assert str(caught.value) == (
        "requirements/production.txt line 3 includes base.txt, "
        "but requirements/base.txt does not exist"
    )


def test_include_outside_the_build_context_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"app/requirements.txt": "-c ../constraints.txt\n", "constraints.txt": ""})
    with pytest.raises(deps.DependencyError, match=r"requirements.txt line 1 .* outside appDir"):
        deps.detect(tmp_path / "app")


@pytest.mark.parametrize(
    ("present", "entry"),
    [
        (["production.txt", "prod.txt", "base.txt", "local.txt"], "requirements/production.txt"),
        (["prod.txt", "base.txt", "local.txt"], "requirements/prod.txt"),
        (["base.txt", "local.txt"], "requirements/base.txt"),
    ],
)
def test_requirements_directory_picks_production_first(
    tmp_path: Path, present: list[str], entry: str
) -> None:
    write(tmp_path, {f"requirements/{name}": "Django\n" for name in present})
    assert deps.detect(tmp_path) == deps.Dependencies("requirements", entry, (entry,))


def test_requirements_directory_without_a_known_name_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"requirements/local.txt": "Django\n"})
    with pytest.raises(deps.DependencyError, match="no dependency declaration found"):
        deps.detect(tmp_path)


def test_uv_lock_wins_and_copies_pyproject_and_lock(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project]\n", "uv.lock": "", "requirements.txt": "x\n"})
    assert deps.detect(tmp_path) == deps.Dependencies(
        "uv", "pyproject.toml", ("pyproject.toml", "uv.lock")
    )


def test_poetry_lock_copies_pyproject_and_lock(tmp_path: Path) -> None:
    write(
        tmp_path, {"pyproject.toml": "[tool.poetry]\n", "poetry.lock": "", "requirements.txt": ""}
    )
    assert deps.detect(tmp_path) == deps.Dependencies(
        "poetry", "pyproject.toml", ("poetry.lock", "pyproject.toml")
    )


def test_requirements_file_override_wins(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": "",
            "uv.lock": "",
            "requirements.txt": "-r requirements/dev.txt\n",
            "deploy/prod.txt": "-r ../requirements/base.txt\n",
            "requirements/base.txt": "Django\n",
        },
    )
    found = deps.detect(tmp_path, "deploy/prod.txt")
    assert found == deps.Dependencies(
        "requirements", "deploy/prod.txt", ("deploy/prod.txt", "requirements/base.txt")
    )


def test_file_names_the_build_arg_cannot_carry_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"my reqs.txt": "Django\n"})
    with pytest.raises(deps.DependencyError, match=r"no spaces\): \['my reqs.txt'\]"):
        deps.detect(tmp_path, "my reqs.txt")


# --- through the program: build args, and one config error before any resource -------------


def test_program_passes_the_reference_app_layout_to_the_build(dev) -> None:
    build = app_image(dev).plain_inputs
    assert build["buildArgs"]["DEP_KIND"] == "requirements"
    assert build["buildArgs"]["DEP_ENTRY"] == "requirements.txt"
    assert build["buildArgs"]["DEP_FILES"] == "requirements.txt"


def test_program_reports_a_missing_include_as_a_config_problem(tmp_path: Path) -> None:
    app = write(tmp_path / "app", {"requirements.txt": "Django\n-r requirements/prod.txt\n"})
    message = failure("dev", {"appDir": str(app)}).message
    assert (
        "djangostack:requirementsFile: requirements.txt line 2 includes requirements/prod.txt, "
        "but requirements/prod.txt does not exist. Fix: pulumi config set requirementsFile"
    ) in message


def test_program_reports_a_missing_requirements_file(tmp_path: Path) -> None:
    message = failure("dev", {"requirementsFile": "nope.txt"}).message
    assert f"djangostack:requirementsFile: nope.txt does not exist in appDir {ROOT / 'app'}" in (
        message
    )


def test_dependency_file_hidden_by_dockerignore_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".dockerignore": "*.txt\n!requirements.txt\n",
            "requirements.txt": "-c constraints.txt\n",
            "constraints.txt": "",
        },
    )
    with pytest.raises(deps.DependencyError, match=r"^constraints.txt excluded by .*dockerignore"):
        deps.detect(tmp_path)
