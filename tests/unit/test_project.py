"""Nothing is assumed of the project's names: the settings module and the Celery app are read
from its source (components/project.py), overridable, and reported with the key to set when
they cannot be found; the program passes them to the build, the containers and Celery."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import (
    CONTAINER,
    IMAGE,
    PROD_TLS,
    app_image,
    by_role,
    failure,
    holder_files,
    holder_of,
    run,
)
from test_deps import write

from components import app, config, deps, project
from components.app import ENTRYPOINT
from components.buildcontext import ignore_patterns, ignored
from tests.program import ROOT

MANAGE = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "{}")\n'
CELERY_APP = "from celery import Celery\napp = Celery('shop')\n"


def shop(root: Path, manage: str | None = "shop.settings.prod", **extra: str) -> Path:
    """A startproject-style project named `shop` with a requirements.txt."""
    files = {
        "requirements.txt": "Django\n",
        "shop/__init__.py": "",
        "shop/settings/__init__.py": "",
        "shop/settings/prod.py": 'STATIC_URL = "static/"\n',
        "shop/settings/dev.py": 'STATIC_URL = "static/"\n',
        **extra,
    }
    if manage is not None:
        files["manage.py"] = MANAGE.format(manage)
    return write(root, files)


# --- detection -------------------------------------------------------------------------------


def test_settings_module_comes_from_manage_py(tmp_path: Path) -> None:
    app = shop(tmp_path, "shop.settings.dev", **{"shop/wsgi.py": MANAGE.format("shop.x")})
    assert project.settings_module(app) == "shop.settings.dev"


def test_settings_module_falls_back_to_wsgi_and_asgi(tmp_path: Path) -> None:
    wsgi = MANAGE.format("shop.settings.prod")
    app = shop(tmp_path, None, **{"shop/wsgi.py": wsgi, "shop/asgi.py": wsgi})
    assert project.settings_module(app) == "shop.settings.prod"


def test_entry_points_that_disagree_are_reported(tmp_path: Path) -> None:
    app = shop(
        tmp_path,
        None,
        **{"shop/wsgi.py": MANAGE.format("shop.a"), "shop/asgi.py": MANAGE.format("shop.b")},
    )
    with pytest.raises(project.DetectionError, match=r"shop/wsgi.py: shop.a, shop/asgi.py: shop.b"):
        project.settings_module(app)


def test_no_setdefault_anywhere_is_reported(tmp_path: Path) -> None:
    app = shop(tmp_path, None, **{"manage.py": "import os\n"})
    with pytest.raises(project.DetectionError, match=r"no os\.environ\.setdefault"):
        project.settings_module(app)


def test_celery_app_is_the_package_that_creates_one(tmp_path: Path) -> None:
    app = shop(tmp_path, **{"apps/worker/celery.py": CELERY_APP, "shop/celery.py": "x = 1\n"})
    assert project.celery_app(app, "shop.settings.prod") == "apps.worker"


def test_celery_app_next_to_the_settings_wins_among_several(tmp_path: Path) -> None:
    app = shop(tmp_path, **{"other/celery.py": CELERY_APP, "shop/celery.py": CELERY_APP})
    assert project.celery_app(app, "shop.settings.prod") == "shop"


def test_a_project_without_a_celery_app_has_none(tmp_path: Path) -> None:
    # No fallback to the settings' package: `celery -A shop` would crash-loop a worker.
    assert project.celery_app(shop(tmp_path), "shop.settings.prod") is None


def test_a_celery_app_module_is_loaded_as_a_module(tmp_path: Path) -> None:
    app = shop(tmp_path, **{"shop/celery_app.py": CELERY_APP})  # cookiecutter-django's layout
    assert project.celery_app(app, "shop.settings.prod") == "shop.celery_app"


def test_the_server_entry_point_wins_in_prod(tmp_path: Path) -> None:
    # manage.py is what developers run; the server loads wsgi.py (cookiecutter-django's split).
    app = shop(
        tmp_path, "shop.settings.dev", **{"shop/wsgi.py": MANAGE.format("shop.settings.prod")}
    )
    assert project.settings_module(app, server=True) == "shop.settings.prod"
    assert project.settings_module(shop(tmp_path / "only-manage", "shop.settings.dev"), True) == (
        "shop.settings.dev"
    )


def test_reference_app_is_detected() -> None:
    app = Path(__file__).resolve().parents[2] / "app"
    assert project.settings_module(app) == "config.settings.development"
    settings = project.settings_module(app, server=True)
    assert settings == "config.settings.production"
    assert project.celery_app(app, settings) == "config"


# --- through the program ---------------------------------------------------------------------


def test_stack_files_choose_the_bundled_apps_settings_per_stack(dev) -> None:
    assert app_image(dev).plain_inputs["buildArgs"]["DJANGO_SETTINGS_MODULE"] == (
        "config.settings.development"
    )
    for web in by_role(dev, "web"):
        assert "DJANGO_SETTINGS_MODULE=config.settings.development" in web.plain_inputs["envs"]


def test_detected_names_reach_the_build_the_containers_and_celery(tmp_path: Path) -> None:
    app = shop(tmp_path / "app", **{"shop/celery.py": CELERY_APP})
    settings = {
        "appDir": str(app),
        "djangoSettingsModule": "",  # the stack file's value would win over detection
        "orchestrator": "containers",
        **PROD_TLS,
    }
    result = run("prod", settings)
    assert app_image(result).plain_inputs["buildArgs"]["DJANGO_SETTINGS_MODULE"] == (
        "shop.settings.prod"
    )
    (celery,) = by_role(result, "celery")
    assert celery.type == CONTAINER
    inputs = celery.plain_inputs
    assert inputs["command"][:4] == [ENTRYPOINT, "celery", "-A", "shop"]
    assert "celery -A shop inspect ping" in inputs["healthcheck"]["tests"][1]
    assert "DJANGO_SETTINGS_MODULE=shop.settings.prod" in inputs["envs"]


def test_overrides_win_over_detection(tmp_path: Path) -> None:
    app = shop(tmp_path / "app", **{"shop/celery.py": CELERY_APP, "tasks/__init__.py": ""})
    settings = {"appDir": str(app), "djangoSettingsModule": "shop.settings.dev"}
    result = run("dev", {**settings, "celeryApp": "tasks"})
    build_args = app_image(result).plain_inputs["buildArgs"]
    assert build_args["DJANGO_SETTINGS_MODULE"] == "shop.settings.dev"
    (celery,) = by_role(result, "celery")
    assert celery.plain_inputs["command"][:4] == [ENTRYPOINT, "celery", "-A", "tasks"]


def test_no_default_worker_without_a_celery_app(tmp_path: Path) -> None:
    app = shop(tmp_path / "app")
    settings = {"appDir": str(app), "djangoSettingsModule": "", **PROD_TLS}
    result = run("prod", settings)
    assert by_role(result, "celery") == []
    assert result.outputs["celeryNames"] == []
    assert result.outputs["processNames"] == {}
    # `celeryApp` set explicitly still runs the worker (the project's app lives elsewhere).
    forced = run("prod", {**settings, "celeryApp": "shop"})
    (celery,) = by_role(forced, "celery")
    assert celery.plain_inputs["name"] == "djangostack-prod-celery"
    assert celery.plain_inputs["taskSpec"]["containerSpec"]["args"][:4] == [
        ENTRYPOINT,
        "celery",
        "-A",
        "shop",
    ]


def test_undetectable_settings_fail_at_preview_naming_the_key(tmp_path: Path) -> None:
    app = shop(tmp_path / "app", None)
    message = failure("prod", {"appDir": str(app), "djangoSettingsModule": ""}).message
    assert (
        "djangostack:djangoSettingsModule: cannot be detected: no os.environ.setdefault"
        "('DJANGO_SETTINGS_MODULE', ...) in manage.py, */wsgi.py or */asgi.py; set it. "
        "Fix: pulumi config set djangoSettingsModule shop.settings.prod"
    ) in message  # the project's own settings module, not the bundled app's


@pytest.mark.parametrize(
    ("key", "value", "what"),
    [
        ("djangoSettingsModule", "shop.settings.staging", "is not in"),
        ("djangoSettingsModule", "shop/settings", "dotted Python module path"),
        ("celeryApp", "worker", "is not in"),
    ],
)
def test_overrides_must_name_a_module_of_the_project(
    tmp_path: Path, key: str, value: str, what: str
) -> None:
    app = shop(tmp_path / "app")
    message = failure("dev", {"appDir": str(app), key: value}).message
    assert f"djangostack:{key}: " in message
    assert what in message


# --- the product's support image and health endpoint ------------------------------------------


def test_support_image_is_built_first_and_passed_to_the_app_build(dev, prod) -> None:
    for result in (dev, prod):
        (support,) = [i for i in result.of_type(IMAGE) if i.name.endswith("-support")]
        image = app_image(result)
        assert support.plain_inputs["context"]["location"] == str(ROOT / "docker" / "support")
        assert result.depends_on(image, support)
        (tag,) = support.plain_inputs["tags"]
        assert image.plain_inputs["buildArgs"]["SUPPORT_IMAGE"] == tag
        assert support.plain_inputs["load"] is True


def test_web_probes_the_images_health_endpoint_unless_health_path_is_set(dev) -> None:
    wrapper = (ROOT / "docker" / "support" / "djangostack_wsgi.py").read_text()
    assert f'HEALTH_PATH = "{app.HEALTH_PATH}"' in wrapper  # one path, wrapper and probes
    for result, path in ((dev, app.HEALTH_PATH), (run("dev", {"healthPath": "/ping/"}), "/ping/")):
        (web,) = by_role(result, "web")
        assert tuple(web.plain_inputs["healthcheck"]["tests"]) == app.http_probe(path)


def test_health_path_must_be_a_path() -> None:
    assert (
        "djangostack:healthPath: must be a URL path"
        in failure("dev", {"healthPath": "health"}).message
    )


# --- STATIC_URL: nginx's static location -------------------------------------------------------


def test_static_url_follows_star_imports_and_later_assignments_win(tmp_path: Path) -> None:
    app = shop(
        tmp_path,
        **{
            "shop/settings/base.py": 'STATIC_URL = "assets/"\n',
            "shop/settings/prod.py": "from .base import *  # noqa\n",
            "shop/settings/dev.py": (
                'from shop.settings.base import *\nSTATIC_URL = "/dev-static"\n'
            ),
        },
    )
    assert project.static_url(app, "shop.settings.prod") == "/assets/"
    assert project.static_url(app, "shop.settings.dev") == "/dev-static/"


def test_static_url_from_the_environment_is_reported(tmp_path: Path) -> None:
    app = shop(tmp_path, **{"shop/settings/prod.py": 'import os\nSTATIC_URL = os.environ["S"]\n'})
    with pytest.raises(
        project.DetectionError,
        match=r"STATIC_URL in shop\.settings\.prod \(or a module it star-imports, line 2\) "
        "is computed",
    ):
        project.static_url(app, "shop.settings.prod")


@pytest.mark.parametrize(
    "settings",
    [
        'PREFIX = "assets"\nSTATIC_URL = f"/{PREFIX}/"\n',
        'BASE = "/assets"\nSTATIC_URL = BASE + "/"\n',
        'import environ\nenv = environ.Env()\nSTATIC_URL = env("STATIC_URL", default="assets/")\n',
        'import os\nSTATIC_URL = os.environ.get("STATIC_URL", "/assets/")\n',
        'from decouple import config\nSTATIC_URL = config("STATIC_URL", default="/assets")\n',
        'STATIC_URL = "https://cdn.example.com/assets/"\n',
    ],
)
def test_static_url_computed_from_what_the_settings_hold(tmp_path: Path, settings: str) -> None:
    app = shop(tmp_path, **{"shop/settings/prod.py": settings})
    assert project.static_url(app, "shop.settings.prod") == "/assets/"


def test_compress_offline_calls_for_the_compress_command(tmp_path: Path) -> None:
    base = 'COMPRESS_OFFLINE = False\nSTATIC_URL = "/static/"\n'
    prod = "from .base import *\nCOMPRESS_OFFLINE = True\n"
    app = shop(tmp_path, **{"shop/settings/base.py": base, "shop/settings/prod.py": prod})
    assert project.build_commands(app, "shop.settings.prod") == (project.COMPRESS_COMMAND,)
    assert project.build_commands(app, "shop.settings.base") == ()


def test_nginx_serves_static_files_under_the_projects_static_url(tmp_path: Path) -> None:
    app = shop(tmp_path / "app", **{"shop/settings/prod.py": 'STATIC_URL = "/s/"\n'})
    settings = {"appDir": str(app), "djangoSettingsModule": "", **PROD_TLS}
    result = run("prod", settings)
    # The nginx conf reaches nginx's files volume through its holder.
    (nginx,) = by_role(result, "nginx")
    rendered = holder_files(holder_of(result, nginx))["default.conf"]
    assert "location /s/ {" in rendered
    assert "location /static/ {" not in rendered


def test_missing_static_url_fails_at_preview_naming_the_key(tmp_path: Path) -> None:
    app = shop(tmp_path / "app", **{"shop/settings/prod.py": ""})
    settings = {"appDir": str(app), "djangoSettingsModule": ""}
    message = failure("prod", settings).message
    assert "djangostack:staticUrl: cannot be detected: no STATIC_URL" in message
    assert "Fix: pulumi config set staticUrl /static/" in message
    dev = {**settings, "djangoSettingsModule": "shop.settings.prod"}
    assert run("dev", dev).resources  # no nginx in dev: nothing to detect


# --- Python version ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "minor", "source"),
    [
        ({".python-version": "3.12.4\n"}, "3.12", ".python-version"),
        ({"runtime.txt": "python-3.11.9\n"}, "3.11", "runtime.txt"),
        ({"pyproject.toml": '[project]\nrequires-python = ">=3.12"\n'}, "3.13", "pyproject.toml"),
        (
            {"pyproject.toml": '[project]\nrequires-python = ">=3.10,<3.13"\n'},
            "3.12",
            "pyproject.toml",
        ),
        (
            {"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.14"\n'},
            "3.14",
            "pyproject.toml",
        ),
        (
            {"pyproject.toml": '[tool.poetry.dependencies]\npython = "~3.11"\n'},
            "3.11",
            "pyproject.toml",
        ),
        # .python-version wins over pyproject's range
        (
            {".python-version": "3.12\n", "pyproject.toml": '[project]\nrequires-python=">=3.10"'},
            "3.12",
            ".python-version",
        ),
    ],
)
def test_the_python_the_project_names_is_detected(
    tmp_path: Path, files: dict[str, str], minor: str, source: str
) -> None:
    assert project.python_version(shop(tmp_path, **files)) == (minor, source)


@pytest.mark.parametrize(
    ("files", "minor"),
    [
        ({"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.14"\n'}, "3.14"),
        ({}, "3.13"),  # nothing said: the default
    ],
)
def test_base_image_follows_the_python_the_project_names(
    tmp_path: Path, files: dict[str, str], minor: str
) -> None:
    app = shop(tmp_path / "app", **files)
    assert project.python_version(app) == ((minor, "pyproject.toml") if files else None)
    result = run("dev", {"appDir": str(app), "djangoSettingsModule": ""})
    assert app_image(result).plain_inputs["buildArgs"]["BASE_IMAGE"] == f"python:{minor}-slim"


def test_a_set_base_image_wins_over_the_projects_python(tmp_path: Path) -> None:
    app = shop(tmp_path / "app", **{".python-version": "3.12\n"})
    result = run(
        "dev",
        {
            "appDir": str(app),
            "djangoSettingsModule": "",
            "baseImage": "registry.local/python:3.12-slim",
        },
    )
    base = app_image(result).plain_inputs["buildArgs"]["BASE_IMAGE"]
    assert base == "registry.local/python:3.12-slim"


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({".python-version": "pypy3.10\n"}, ".python-version does not name a Python 3 version"),
        ({"pyproject.toml": '[project]\nrequires-python = ">=3.20"\n'}, "requires Python >=3.20"),
        ({"pyproject.toml": '[project]\nrequires-python = "three"\n'}, "not a version specifier"),
    ],
)
def test_an_unreadable_python_version_fails_at_preview_naming_the_key(
    tmp_path: Path, files: dict[str, str], says: str
) -> None:
    app = shop(tmp_path / "app", **files)
    message = failure("dev", {"appDir": str(app), "djangoSettingsModule": ""}).message
    assert "djangostack:baseImage: cannot detect the project's Python" in message
    assert says in message
    assert "Fix: pulumi config set baseImage python:3.13-slim" in message


def test_preview_describes_what_it_found_in_the_project() -> None:
    found = SimpleNamespace(
        app_dir=Path("/src/shop"),
        base_image="python:3.12-slim",
        dependencies=deps.Dependencies("uv", "uv.lock", ("pyproject.toml", "uv.lock")),
        django_settings_module="shop.settings.prod",
        celery_app="",
        static_url="/assets/",
        media_url="",
        processes=(SimpleNamespace(name="ticker"),),
        provided=(deps.GUNICORN,),
        build_commands=(project.COMPRESS_COMMAND,),
        release_commands=(("python", "manage.py", "load_data", "--file", "a b.json"),),
    )
    assert config.describe_project(found) == (  # type: ignore[arg-type]
        "djangostack: project /src/shop: base image python:3.12-slim; dependencies uv "
        "(uv.lock); settings shop.settings.prod; Celery app none; STATIC_URL /assets/; "
        "MEDIA_URL none; processes ticker; adds gunicorn==27.0.1 (the web server the image "
        "runs); build command: python manage.py compress; release command: python manage.py "
        "load_data --file 'a b.json'"
    )


# --- migrations: named in the migration step's labels ------------------------------------------


def context_filter(app_dir: Path):
    patterns = ignore_patterns(app_dir)
    return lambda rel: ignored(rel, patterns)


def test_migrations_are_the_projects_own_as_the_build_context_holds_them(tmp_path: Path) -> None:
    site_packages = "lib/python3.12/site-packages/django/contrib/auth/migrations"
    app = write(
        tmp_path,
        {
            ".dockerignore": "legacy/\n",
            "manage.py": MANAGE.format("shop.settings"),
            "shop/migrations/__init__.py": "",
            "shop/migrations/0002_price.py": "",
            "shop/migrations/0001_initial.py": "",
            "shop/migrations/helpers.py": "",  # not a migration
            "shop/orders/migrations/0001_initial.py": "",
            "legacy/migrations/0001_initial.py": "",  # not sent to the build
            # Virtualenvs inside the project (not in .dockerignore): third-party migrations.
            f".venv/{site_packages}/0001_initial.py": "",
            f"venv/{site_packages}/0001_initial.py": "",
        },
    )
    assert project.migrations(app, context_filter(app)) == {
        "shop": ("0001_initial", "0002_price"),
        "shop.orders": ("0001_initial",),
    }


def test_the_bundled_apps_migrations() -> None:
    app = ROOT / "app"
    assert project.migrations(app, context_filter(app)) == {
        "core": ("0001_initial", "0002_task_attempt_demo_effect")
    }
