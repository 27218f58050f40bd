"""What a team's project needs that it does not say (issue: real projects deploy with config
alone): the image adds the server, the database driver and Celery's Redis client a project's
dependencies lack, installs config extraPackages, runs build commands after collectstatic
(detected: `compress` for COMPRESS_OFFLINE) and release commands as steps after the
migration, before web changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (
    PROD_TLS,
    app_image,
    by_role,
    env_of,
    failed_deploy,
    failure,
    problem_line,
    run,
    step,
)

from components import deps, project

REQUIREMENTS = "Django==5.2.19\ndjango-environ==0.14.0\n"
SETTINGS = 'STATIC_URL = "/static/"\nSTATIC_ROOT = "/tmp/s"\n'
MANAGE = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "news.settings")\n'


def news(root: Path, requirements: str = REQUIREMENTS, settings: str = SETTINGS, **extra) -> Path:
    """A project without a server, a driver or Celery: requirements.txt, news/settings.py."""
    files = {
        "manage.py": MANAGE,
        "requirements.txt": requirements,
        "news/__init__.py": "",
        "news/settings.py": settings,
        **extra,
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def added(app: Path, has_celery: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    found = deps.detect(app)
    return [p.requirement for p in deps.provided(deps.declared(app, found), has_celery, extra)]


def test_what_the_project_lacks_is_added_pinned(tmp_path: Path) -> None:
    app = news(tmp_path)
    assert added(app) == [deps.GUNICORN.requirement, deps.POSTGRES_DRIVER.requirement]
    assert added(app, has_celery=True)[-1] == deps.REDIS_CLIENT.requirement


@pytest.mark.parametrize(
    "requirements",
    [
        "gunicorn==23.0.0\npsycopg2-binary==2.9.10\ncelery[redis]==5.7.0\n",
        "Gunicorn>=22 ; python_version >= '3.10'\nPsycopg[binary]==3.2\nredis==5.0\ncelery\n",
        "-r base.txt\n",  # followed into the included file
    ],
)
def test_what_the_project_declares_is_not_added(tmp_path: Path, requirements: str) -> None:
    base = {"base.txt": "gunicorn==23.0.0\npsycopg==3.2.1\nredis==5.0.8\n"}
    app = news(tmp_path, requirements, **base)
    assert added(app, has_celery=True) == []


def test_a_lock_file_names_what_is_installed(tmp_path: Path) -> None:
    lock = "".join(f'[[package]]\nname = "{n}"\nversion = "1"\n\n' for n in ("django", "Gunicorn"))
    app = news(tmp_path, **{"pyproject.toml": "[project]\nname = 'x'\n", "uv.lock": lock})
    (tmp_path / "requirements.txt").unlink()
    assert added(app) == [deps.POSTGRES_DRIVER.requirement]


def test_extra_packages_count_as_declared(tmp_path: Path) -> None:
    app = news(tmp_path)
    assert added(app, extra=("gunicorn==22.0.0", "psycopg2==2.9.10")) == []


def test_the_build_installs_additions_and_extra_packages_after_the_project(tmp_path: Path) -> None:
    app = news(tmp_path / "app")
    config = {"appDir": str(app), "extraPackages": json.dumps(["sentry-sdk[django]==2.40.0"])}
    args = app_image(run("prod", {**config, **PROD_TLS})).plain_inputs["buildArgs"]
    assert args["EXTRA_REQUIREMENTS"].split() == [
        deps.GUNICORN.requirement,
        deps.POSTGRES_DRIVER.requirement,
        "sentry-sdk[django]==2.40.0",
    ]


def test_the_reference_app_gets_nothing_added(prod) -> None:
    # It pins its server, driver and Redis client: its build inputs stay what they were.
    assert "EXTRA_REQUIREMENTS" not in app_image(prod).plain_inputs["buildArgs"]


@pytest.mark.parametrize(
    "line", ["redis", "redis>=5", "redis == 5.0", "redis==5.0; python_version>'3'", "-e ."]
)
def test_extra_packages_must_be_pinned_requirements(tmp_path: Path, line: str) -> None:
    message = failure("dev", {"extraPackages": json.dumps([line])}).message
    fix = problem_line(message, "extraPackages")
    assert "is not one pinned requirement" in fix
    assert "pulumi config set --path 'extraPackages[0]' redis==8.1.0" in fix


def test_compress_offline_runs_compress_at_build_time(tmp_path: Path) -> None:
    app = news(tmp_path / "app", settings=SETTINGS + "COMPRESS_OFFLINE = True\n")
    args = app_image(run("prod", {"appDir": str(app), **PROD_TLS})).plain_inputs["buildArgs"]
    assert json.loads(args["DJANGOSTACK_BUILD_COMMANDS"]) == [list(project.COMPRESS_COMMAND)]
    # Told otherwise: [] runs none, a list runs those.
    none = run("prod", {"appDir": str(app), "buildCommands": "[]", **PROD_TLS})
    assert "DJANGOSTACK_BUILD_COMMANDS" not in app_image(none).plain_inputs["buildArgs"]
    mine = json.dumps(["python manage.py compilemessages --locale 'pt_BR'"])
    told = run("prod", {"appDir": str(app), "buildCommands": mine, **PROD_TLS})
    assert json.loads(app_image(told).plain_inputs["buildArgs"]["DJANGOSTACK_BUILD_COMMANDS"]) == [
        ["python", "manage.py", "compilemessages", "--locale", "pt_BR"]
    ]


def test_the_build_checks_the_served_urls_against_the_settings(prod) -> None:
    urls = json.loads(app_image(prod).plain_inputs["buildArgs"]["DJANGOSTACK_URLS"])
    assert urls == {"STATIC_URL": ["staticUrl", "/static/"], "MEDIA_URL": ["mediaUrl", "/media/"]}


def test_release_commands_run_after_the_migration_before_web() -> None:
    commands = ["python manage.py createcachetable", "python manage.py load_initial_data"]
    result = run("prod", {"releaseCommands": json.dumps(commands), **PROD_TLS})
    migration = step(result, "-migration-run")
    first, second = step(result, "-release-1"), step(result, "-release-2")
    assert first.plain_inputs["command"][1:] == ["python", "manage.py", "createcachetable"]
    assert first.plain_inputs["name"] == "djangostack-prod-release-1"
    assert result.depends_on(first, migration) and result.depends_on(second, first)
    (web,) = by_role(result, "web")
    assert result.depends_on(web, second)
    # Web's environment and secrets: the command talks to the same database.
    assert env_of(first)["DJANGO_SETTINGS_MODULE"] == env_of(migration)["DJANGO_SETTINGS_MODULE"]


def test_a_failed_release_command_fails_the_deploy_before_web_changes() -> None:
    config = {"releaseCommands": json.dumps(["python manage.py load_initial_data"]), **PROD_TLS}
    error = failed_deploy("prod", config, "djangostack-release-1")
    assert "deploy step 'djangostack-prod-release-1' exited with code 3" in error.message
    assert "step output line 40" in error.message
    assert by_role(error.result, "web") == []


def test_a_process_may_not_take_a_release_steps_name() -> None:
    processes = json.dumps({"release-1": {"command": ["python", "x.py"]}})
    message = failure("prod", {"processes": processes, **PROD_TLS}).message
    assert "process name 'release-1' is taken" in message
