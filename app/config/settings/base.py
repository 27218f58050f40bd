"""Settings shared by every environment. Deployment values come from the environment; each
variable NAME may instead be given as NAME_FILE, a path to a file holding it (Docker secrets)."""

from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.FileAwareEnv()


def database(url: str) -> dict[str, Any]:
    """A DATABASES entry from a URL, with short connect timeouts so /health/ answers quickly."""
    config = environ.Env.db_url_config(url.strip())
    config["CONN_MAX_AGE"] = 60
    config["CONN_HEALTH_CHECKS"] = True
    if config["ENGINE"] == "django.db.backends.postgresql":
        config.setdefault("OPTIONS", {})["connect_timeout"] = 3
    return config


ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0").strip()
APP_VERSION = env.str("APP_VERSION", default="dev")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "django_prometheus",
    "core",
]

MIDDLEWARE = [
    # First: probes get /health/ and /metrics before host validation and the HTTPS redirect.
    "core.middleware.ProbeMiddleware",
    # Database unreachable during a view: 503 + Retry-After rather than 500.
    "core.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploads: in the image MEDIA_ROOT is a link to the stack's media volume (docs/config.md,
# "Uploaded files"); nginx serves them under MEDIA_URL.
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 3600
# A task survives the loss of its worker (docs/operations.md, "Celery: tasks survive worker
# loss"); tasks must therefore be idempotent: any of them may run more than once.
# Acknowledge a task message only once the task has finished, not when it starts: the message
# of a task whose worker dies stays unacknowledged in Redis and is delivered again.
CELERY_TASK_ACKS_LATE = True
# A prefork child killed mid-task (OOM killer, SIGKILL) puts the message back on the queue
# instead of acknowledging it as failed. A task that kills its child every time loops.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Reserve one message per process: a dead worker takes down no unstarted tasks beyond those
# it was running, and a reserved message does not wait (its visibility clock running) behind
# a long task in a busy worker.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis cannot tell a dead consumer from a slow one (Kombu emulates acknowledgements): an
# unacknowledged message is delivered again once it has been out for the visibility timeout,
# counted from its delivery, whether or not its first worker still runs it. Kombu's
# 3600 s default means a task lost with its worker waits an hour; 300 s brings it back within
# ~5 minutes and still lies above this project's tasks (sub-second) and Celery's default retry
# countdown (180 s). A task (or ETA/countdown) longer than this runs twice concurrently:
# raise CELERY_VISIBILITY_TIMEOUT (seconds) above the longest one.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
    # Look for overdue messages every 10 s (Kombu's default scans every 10th 10 s tick, so a
    # lost task could wait 100 s past its timeout).
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
}
