"""Uploaded files on one deployed prod stack (docs/config.md, "Uploaded files"): what the app
writes through Django's storage into its own MEDIA_ROOT lands on the media volume, nginx serves
it at MEDIA_URL with safe headers, it survives a release, and a backup brings it back.

Tests run in file order against the module's stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from docker.models.containers import Container

from components import app
from tests.support.prodstack import ProdStack, django, prod_stack

pytestmark = pytest.mark.slow
VOLUME = "docker:index/volume:Volume"
NOTE = b"kept across releases\n"
PAGE = b"<html><script>alert(document.cookie)</script></html>\n"
# The smallest valid PNG: a 1x1 transparent pixel.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    with prod_stack(tmp_path_factory.mktemp("media"), "media") as deployed:
        yield deployed


def save(container: Container, name: str, content: bytes) -> str:
    """Save through the project's default storage (MEDIA_ROOT, unchanged); the stored name."""
    return django(
        container,
        "from django.core.files.base import ContentFile; "
        "from django.core.files.storage import default_storage as s; "
        f"print(s.save({name!r}, ContentFile({content!r})))",
    )


def exists(container: Container, name: str) -> bool:
    code = f"from django.core.files.storage import default_storage as s; print(s.exists({name!r}))"
    return django(container, code) == "True"


def web(stack: ProdStack) -> Container:
    return stack.containers("web")[0]


def in_backups(stack: ProdStack, *command: str) -> list[str]:
    """The output lines of `command` run over the stack's backup volume (read-only)."""
    return (
        stack.client.containers.run(
            stack.container("postgres").attrs["Config"]["Image"],
            list(command),
            volumes={f"{stack.name}-backups": {"bind": "/backups", "mode": "ro"}},
            network_mode="none",
            remove=True,
        )
        .decode()
        .split()
    )


def test_files_the_app_writes_are_served_by_nginx_with_safe_headers(stack: ProdStack) -> None:
    assert save(web(stack), "notes/note.txt", NOTE) == "notes/note.txt"
    assert save(web(stack), "pics/pixel.png", PIXEL) == "pics/pixel.png"
    assert save(web(stack), "pages/page.html", PAGE) == "pages/page.html"

    note = stack.get("/media/notes/note.txt")
    assert note.status_code == 200 and note.content == NOTE
    assert note.headers["Content-Type"].startswith("text/plain")
    assert note.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in note.headers  # shown inline

    pixel = stack.get("/media/pics/pixel.png")
    assert pixel.status_code == 200 and pixel.content == PIXEL
    assert pixel.headers["Content-Type"] == "image/png"
    assert "Content-Disposition" not in pixel.headers

    # An uploaded page is a download of unknown type, never a page of the site.
    page = stack.get("/media/pages/page.html")
    assert page.status_code == 200 and page.content == PAGE
    assert page.headers["Content-Type"] == "application/octet-stream"
    assert page.headers["Content-Disposition"] == "attachment"
    assert page.headers["X-Content-Type-Options"] == "nosniff"

    # nginx never lists the volume, and reads it only.
    assert stack.get("/media/").status_code in (403, 404)
    mounts = {m["Destination"]: m for m in stack.container("nginx").attrs["Mounts"]}
    assert mounts[app.MEDIA_DIR]["RW"] is False
    assert mounts[app.MEDIA_DIR]["Name"] == stack.outputs["mediaVolume"]


def test_every_web_task_and_celery_share_the_volume(stack: ProdStack) -> None:
    tasks = stack.containers("web")
    assert len(tasks) == 2
    assert exists(tasks[1], "notes/note.txt")  # written through tasks[0]
    celery = stack.container("celery")
    assert save(celery, "reports/from-celery.txt", b"from a worker\n") == "reports/from-celery.txt"
    assert stack.get("/media/reports/from-celery.txt").content == b"from a worker\n"
    # Owned by the app user: a fresh volume was writable for it.
    owner = celery.exec_run(["stat", "-c", "%u:%g", app.MEDIA_DIR]).output.decode().strip()
    assert owner == app.USER


def test_uploads_survive_a_release(stack: ProdStack) -> None:
    views = stack.app_dir / "core" / "views.py"
    views.write_text(views.read_text() + "\n# a source change: a new image, a new release\n")
    before = {c.id for c in stack.containers("web")}

    release = stack.up()

    assert release.op(VOLUME, "djangostack-media") == "same"
    assert not before & {c.id for c in stack.containers("web")}, "web was not released"
    assert stack.get("/media/notes/note.txt").content == NOTE
    assert stack.get("/media/pics/pixel.png").content == PIXEL


def test_the_release_backup_holds_the_media_and_restore_brings_it_back(stack: ProdStack) -> None:
    newest = stack.script("restore.sh", "--list").split()[0]  # taken by the release
    archive = newest.removesuffix(".dump") + ".media.tar"
    listing = in_backups(stack, "tar", "-tf", f"/backups/{archive}")
    assert "./notes/note.txt" in listing and "./pages/page.html" in listing

    # After the backup: one file deleted, one added. The restore puts the volume back.
    django(web(stack), "from django.core.files.storage import default_storage as s; "
           "s.delete('notes/note.txt')")  # fmt: skip
    save(web(stack), "notes/after-backup.txt", b"later\n")
    assert stack.get("/media/notes/note.txt").status_code == 404

    out = stack.script("restore.sh", newest)

    assert f"restored {archive} into volume {stack.name}-media" in out
    stack.wait_healthy("web", 2)
    assert stack.get("/media/notes/note.txt").content == NOTE
    assert stack.get("/media/notes/after-backup.txt").status_code == 404
    # The app owns the restored files: it can replace them again.
    assert exists(web(stack), "notes/note.txt")
    django(web(stack), "from django.core.files.storage import default_storage as s; "
           "s.delete('notes/note.txt')")  # fmt: skip
    assert stack.get("/media/notes/note.txt").status_code == 404


def test_a_backup_by_hand_archives_the_media_and_retention_keeps_pairs(stack: ProdStack) -> None:
    save(web(stack), "notes/by-hand.txt", b"by hand\n")

    dump = stack.script("backup.sh", "--keep", "1").strip()

    archive = dump.removesuffix(".dump") + ".media.tar"
    assert "./notes/by-hand.txt" in in_backups(stack, "tar", "-tf", f"/backups/{archive}")
    # --keep 1 deleted the older dumps and their media archives with them.
    assert in_backups(stack, "ls", "/backups") == [dump, archive]
