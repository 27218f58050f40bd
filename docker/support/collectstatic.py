"""Build-time `collectstatic` (docker/Dockerfile, runtime stage): into the project's own
STATIC_ROOT, whatever it is, then linked at STATIC_LINK, the fixed path the stack's static sync
job copies from (components/jobs.py StaticFiles). A project without STATIC_ROOT fails the build
with the setting to add. Run as `python /opt/djangostack/collectstatic.py` from the project."""

import json
import os
import sys
from pathlib import Path

STATIC_LINK = Path("/opt/djangostack/static")


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

    if not settings.STATIC_ROOT:
        sys.exit(
            f"djangostack: STATIC_ROOT is not set in {os.environ['DJANGO_SETTINGS_MODULE']}, so "
            "collectstatic has no target. Set it in those settings, for example "
            "STATIC_ROOT = BASE_DIR / 'staticfiles'"
        )
    call_command("collectstatic", interactive=False)
    root = Path(settings.STATIC_ROOT).resolve()
    STATIC_LINK.symlink_to(root, target_is_directory=True)
    print(f"djangostack: STATIC_ROOT {root} (STATIC_URL {settings.STATIC_URL}) at {STATIC_LINK}")


if __name__ == "__main__":
    main()
