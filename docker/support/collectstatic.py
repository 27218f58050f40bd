"""Build-time steps on the project's settings (docker/Dockerfile, runtime stage), run as
`python /opt/djangostack/collectstatic.py` from the project:

- `collectstatic` into the project's own STATIC_ROOT, whatever it is, then linked at
  STATIC_LINK, the fixed path the stack's static sync job copies from (components/jobs.py
  StaticFiles). A project without STATIC_ROOT fails the build with the setting to add.
- the project's MEDIA_ROOT, whatever it is, replaced by a link to MEDIA_DIR, the media volume's
  mount point (components/app.py MEDIA_DIR), so uploads land on the volume with no setting
  changed. A MEDIA_ROOT that already holds files fails the build (the volume would hide them);
  a project without MEDIA_ROOT (Django's default "": no uploads) gets no link. Placeholders
  a repository keeps in an empty directory (dotfiles only: .gitignore, .gitkeep) are dropped.
- STATIC_URL and MEDIA_URL as Django sees them checked against the locations nginx serves
  (DJANGOSTACK_URLS, from the program's detection or config staticUrl / mediaUrl): a mismatch
  fails the build with the key to set, instead of a site without styles.
- the project's build commands (config buildCommands, DJANGOSTACK_BUILD_COMMANDS: JSON argv
  lists, e.g. `manage.py compress` for COMPRESS_OFFLINE), after collectstatic, with the same
  settings and stand-ins; a failing one fails the build naming it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

STATIC_LINK = Path("/opt/djangostack/static")
MEDIA_DIR = Path("/srv/media")


def link_media(media_root: str, settings_module: str) -> None:
    """Make `media_root` a link to MEDIA_DIR (an empty directory there is replaced)."""
    if not media_root:
        print(f"djangostack: no MEDIA_ROOT in {settings_module}: no uploads to keep")
        return
    root = Path(os.path.abspath(media_root))  # not resolve(): a link there is what we replace
    if root.resolve() == MEDIA_DIR:
        print(f"djangostack: MEDIA_ROOT {root} is the media volume already")
        return
    if root.is_dir() and not root.is_symlink():
        for placeholder in [p for p in root.iterdir() if p.name.startswith(".") and p.is_file()]:
            placeholder.unlink()  # a repository's .gitignore / .gitkeep keeping the directory
    if root.is_symlink() or root.is_file() or (root.is_dir() and any(root.iterdir())):
        sys.exit(
            f"djangostack: MEDIA_ROOT {root} ({settings_module}) already holds files in the "
            f"image; uploads live on the media volume mounted at {MEDIA_DIR}, which would hide "
            "them. Keep that directory out of the build context (add it to .dockerignore) or "
            "point MEDIA_ROOT elsewhere"
        )
    if root.is_dir():
        root.rmdir()
    root.parent.mkdir(parents=True, exist_ok=True)
    root.symlink_to(MEDIA_DIR, target_is_directory=True)
    print(f"djangostack: MEDIA_ROOT {root} linked to the media volume at {MEDIA_DIR}")


def url_path(value: str) -> str:
    """A settings URL as nginx's location (components/project.py does the same)."""
    return "/" + value.strip("/") + "/" if value.strip("/") else "/"


def check_urls(served: dict[str, list[str]], settings: object, module: str) -> None:
    """Each served location (setting -> [config key, path]) against the setting as Django
    evaluated it; a URL on another host (a CDN) is not the stack's nginx's, and not checked."""
    for setting, (key, path) in served.items():
        value = str(getattr(settings, setting) or "")
        if not value or not path or urlsplit(value).netloc:
            continue
        if url_path(value) != path:
            sys.exit(
                f"djangostack: {setting} is {value!r} in {module} as Django evaluates it, but "
                f"the stack serves it at {path}. Fix: pulumi config set {key} {url_path(value)}"
            )


def run_build_commands(commands: list[list[str]]) -> None:
    for argv in commands:
        print(f"djangostack: build command: {' '.join(argv)}", flush=True)
        code = subprocess.run(argv, check=False).returncode
        if code != 0:
            sys.exit(
                f"djangostack: build command {' '.join(argv)!r} (config buildCommands) exited "
                f"with {code}; its output is above"
            )


def main() -> None:
    # The stack's env / secretEnv names (config), as JSON from the program
    # (components/stack.py build_environment: plain values, stand-ins for secrets), so settings
    # that read the project's own names strictly import; what is already set stays.
    for name, value in json.loads(os.environ.get("DJANGOSTACK_BUILD_ENV") or "{}").items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, os.getcwd())  # the project, as `python manage.py` would have it
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    module = os.environ["DJANGO_SETTINGS_MODULE"]
    if not settings.STATIC_ROOT:
        sys.exit(
            f"djangostack: STATIC_ROOT is not set in {module}, so "
            "collectstatic has no target. Set it in those settings, for example "
            "STATIC_ROOT = BASE_DIR / 'staticfiles'"
        )
    check_urls(json.loads(os.environ.get("DJANGOSTACK_URLS") or "{}"), settings, module)
    call_command("collectstatic", interactive=False)
    root = Path(settings.STATIC_ROOT).resolve()
    STATIC_LINK.symlink_to(root, target_is_directory=True)
    print(f"djangostack: STATIC_ROOT {root} (STATIC_URL {settings.STATIC_URL}) at {STATIC_LINK}")
    run_build_commands(json.loads(os.environ.get("DJANGOSTACK_BUILD_COMMANDS") or "[]"))
    link_media(str(settings.MEDIA_ROOT), module)


if __name__ == "__main__":
    main()
