"""Production, behind nginx terminating TLS. Passes `check --deploy --fail-level WARNING`."""

import sys

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import database, env


def required(name: str) -> str:
    """The value of a mandatory variable, or exit at once with one line naming it.

    SystemExit rather than an exception: Gunicorn, Celery and manage.py then all stop with this
    single line instead of a traceback (and Gunicorn does not keep re-spawning failing workers).
    """
    try:
        return env.str(name).strip()
    except ImproperlyConfigured:
        sys.exit(f"ImproperlyConfigured: set {name} (or {name}_FILE)")


DEBUG = False
SECRET_KEY = required("SECRET_KEY")
DATABASES = {"default": database(required("DATABASE_URL"))}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# nginx terminates TLS and sets X-Forwarded-Proto; only nginx can reach the app.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# /health/ and /metrics are answered before this (core.middleware.ProbeMiddleware).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
