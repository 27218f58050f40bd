"""Uploaded files (docs/config.md, "Uploaded files"): MEDIA_URL detected like STATIC_URL, one
protected volume written by every app container, served read-only by nginx with safe types,
and archived by every pre-migration backup."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import (
    CONTAINER,
    PROD_TLS,
    SERVICE,
    VOLUME,
    by_role,
    failure,
    holder_files,
    holder_of,
    run,
    step,
)
from test_hardening import nginx_conf
from test_project import shop

from components import app, jobs, project
from tests.program import ROOT, ProgramResult, Registration

STACKS = ["dev", "prod", "prod_containers"]


@pytest.fixture(params=STACKS)
def result(request) -> ProgramResult:
    return request.getfixturevalue(request.param)


def media_volume(result: ProgramResult) -> Registration:
    (volume,) = [v for v in result.of_type(VOLUME) if v.name == "djangostack-media"]
    return volume


def media_mounts(r: Registration) -> list[dict]:
    inputs = r.plain_inputs
    mounts = (
        inputs["mounts"] if r.type == CONTAINER else inputs["taskSpec"]["containerSpec"]["mounts"]
    )
    return [m for m in mounts or [] if m["target"] == app.MEDIA_DIR]


# --- detection ---------------------------------------------------------------------------------


def test_media_url_is_read_like_static_url(tmp_path: Path) -> None:
    app_dir = shop(
        tmp_path,
        **{
            "shop/settings/base.py": 'MEDIA_URL = "uploads"\n',
            "shop/settings/prod.py": "from .base import *  # noqa\n",
            "shop/settings/dev.py": 'from .base import *\nMEDIA_URL = "/dev-media/"\n',
        },
    )
    assert project.media_url(app_dir, "shop.settings.prod") == "/uploads/"
    assert project.media_url(app_dir, "shop.settings.dev") == "/dev-media/"


def nginx_conf_of(result: ProgramResult) -> str:
    """The nginx configuration the stack deploys (a file of nginx's holder)."""
    (nginx,) = by_role(result, "nginx")
    return holder_files(holder_of(result, nginx))["default.conf"]


def test_a_project_without_media_url_gets_no_media_location(tmp_path: Path) -> None:
    app_dir = shop(tmp_path / "app")
    assert project.media_url(app_dir, "shop.settings.prod") == ""
    settings = {"appDir": str(app_dir), "djangoSettingsModule": "", **PROD_TLS}
    conf = nginx_conf_of(run("prod", settings))
    assert "location /static/ {" in conf and "alias /srv/media/" not in conf


def test_nginx_serves_media_under_the_projects_media_url(prod: ProgramResult) -> None:
    # The bundled app's MEDIA_URL.
    assert "location ^~ /media/ {" in nginx_conf_of(prod)


def test_media_url_from_the_environment_fails_at_preview_naming_the_key(tmp_path: Path) -> None:
    prod = 'import os\nSTATIC_URL = "/static/"\nMEDIA_URL = os.environ["M"]\n'
    app_dir = shop(tmp_path / "app", **{"shop/settings/prod.py": prod})
    settings = {"appDir": str(app_dir), "djangoSettingsModule": "", **PROD_TLS}
    message = failure("prod", settings).message
    assert "djangostack:mediaUrl: cannot be detected: MEDIA_URL in shop.settings.prod" in message
    assert "Fix: pulumi config set mediaUrl /media/" in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/static/", "djangostack:mediaUrl: must differ from the static URL /static/"),
        ("https://cdn.example.com/media/", "djangostack:mediaUrl: must be a URL path"),
    ],
)
def test_bad_media_url_is_a_config_problem(value: str, problem: str) -> None:
    message = failure("prod", {"mediaUrl": value, **PROD_TLS}).message
    assert problem in message and "Fix: pulumi config set mediaUrl /media/" in message


# --- the volume and its mounts -----------------------------------------------------------------


def test_one_media_volume_protected_in_prod(result: ProgramResult) -> None:
    volume = media_volume(result)
    prefix = result.outputs["mediaVolume"].removesuffix("-media")
    assert volume.plain_inputs["name"] == f"{prefix}-media"
    assert volume.protect is (result.outputs["profile"] == "prod")


def test_web_and_celery_mount_the_media_volume_read_write(result: ProgramResult) -> None:
    name = media_volume(result).plain_inputs["name"]
    for role in ("web", "celery"):
        (workload, *_) = by_role(result, role)
        (mount,) = media_mounts(workload)
        assert mount["source"] == name and not mount.get("readOnly"), role


def test_nginx_mounts_the_media_volume_read_only(prod: ProgramResult) -> None:
    (workload,) = by_role(prod, "nginx")
    (mount,) = media_mounts(workload)
    assert mount["source"] == media_volume(prod).plain_inputs["name"]
    assert mount["readOnly"] is True


def test_the_migration_may_write_media_and_the_backup_archives_it(result: ProgramResult) -> None:
    name = media_volume(result).plain_inputs["name"]
    (mount,) = media_mounts(step(result, "-migration-run"))
    assert mount["source"] == name and not mount.get("readOnly")
    backup = step(result, "-backup-run")
    (mount,) = media_mounts(backup)
    assert mount["source"] == name and mount["readOnly"] is True
    script = backup.plain_inputs["command"][-1]
    assert script == jobs.BACKUP_SCRIPT  # docker/backup/backup.sh, the scheduled backup's too
    assert 'tar -C "$MEDIA_DIR" -cf' in script
    assert f"MEDIA_DIR={app.MEDIA_DIR}" in backup.plain_inputs["envs"]
    # Retention removes a dump's media archive with it.
    assert "${old%.dump}.media.tar" in script


def test_no_other_service_mounts_the_media_volume(result: ProgramResult) -> None:
    allowed = [r for role in ("web", "celery", "nginx") for r in by_role(result, role)]
    allowed += [step(result, "-migration-run"), step(result, "-backup-run")]
    for r in result.of_type(CONTAINER) + result.of_type(SERVICE):
        if r not in allowed:
            assert not media_mounts(r), r.name


# --- nginx -------------------------------------------------------------------------------------


def test_nginx_serves_media_as_safe_static_files() -> None:
    conf = nginx_conf(media_url="/uploads/")
    start = conf.index("location ^~ /uploads/ {")
    block = conf[start : conf.index("\n    }\n", start)]
    assert "alias /srv/media/;" in block
    assert "proxy_pass" not in block and "fastcgi" not in block  # files are only read
    assert "default_type application/octet-stream;" in block
    assert "include /etc/nginx/conf.d/security-headers.inc;" in block  # nosniff among them
    assert "add_header Content-Disposition $media_disposition always;" in block
    # HTML, SVG and scripts get no type of their own: they fall back to octet-stream.
    for active in ("text/html", "image/svg+xml", "javascript", "text/xml"):
        assert active not in block
    assert "map $sent_http_content_type $media_disposition" in conf


# --- build time: MEDIA_ROOT linked to the volume's mount point ---------------------------------


@pytest.fixture
def link_media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """docker/support/collectstatic.py's link_media, with the mount point under tmp_path."""
    spec = importlib.util.spec_from_file_location(
        "collectstatic", ROOT / "docker" / "support" / "collectstatic.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    mount = tmp_path / "srv" / "media"
    mount.mkdir(parents=True)
    monkeypatch.setattr(module, "MEDIA_DIR", mount)
    return module.link_media, mount


@pytest.mark.parametrize("existing", [None, "empty directory"])
def test_media_root_becomes_a_link_to_the_volume(tmp_path: Path, link_media, existing) -> None:
    link, mount = link_media
    root = tmp_path / "app" / "media"
    if existing:
        root.mkdir(parents=True)
    link(str(root), "shop.settings")
    assert root.is_symlink() and root.resolve() == mount


def test_media_root_holding_files_fails_the_build_naming_it(tmp_path: Path, link_media) -> None:
    link, _mount = link_media
    root = tmp_path / "app" / "media"
    (root / "avatars").mkdir(parents=True)
    with pytest.raises(SystemExit, match=rf"MEDIA_ROOT {root} \(shop.settings\) already holds"):
        link(str(root), "shop.settings")
    assert not root.is_symlink() and (root / "avatars").is_dir()


def test_no_media_root_and_the_mount_point_itself_need_no_link(link_media) -> None:
    link, mount = link_media
    link("", "shop.settings")
    link(str(mount), "shop.settings")
    assert not mount.is_symlink() and mount.is_dir()
