"""Gunicorn settings the image supplies (docker/Dockerfile CMD): a read-only root filesystem,
behind nginx. A project's own `gunicorn.conf.py` (in the working directory, /app) is read after
these defaults and overrides any of them; in every case the product's health endpoint
(djangostack_wsgi.py) is put in front of the project's WSGI application."""

import os
from pathlib import Path

SUPPORT_DIR = Path(__file__).resolve().parent
PROJECT_CONFIG = Path("gunicorn.conf.py")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# None: the project's settings.WSGI_APPLICATION, read when the app loads (djangostack_wsgi.py).
wsgi_app = None
pythonpath = None
# Import the app in the master: a missing setting then stops Gunicorn at once with the settings'
# message (instead of workers failing to boot), and workers fork with the code loaded.
preload_app = True
bind = "0.0.0.0:8000"
workers = _int("GUNICORN_WORKERS", 3)
# Worker heartbeat files on a tmpfs: the root filesystem is read-only.
worker_tmp_dir = "/dev/shm"  # noqa: S108 - a per-container tmpfs, not a shared /tmp
# The control socket (Gunicorn >= 25.1) would be created under $HOME: not writable here.
control_socket_disable = True
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than the 2 s default: nginx reuses its connections to the app.
keepalive = 5
accesslog = "-"
errorlog = "-"

if PROJECT_CONFIG.is_file():
    # Run as Gunicorn would run it on its own (its own __file__), then its settings replace the
    # defaults above.
    _path = str(PROJECT_CONFIG.resolve())
    _namespace: dict = {"__file__": _path, "__name__": "__config__"}
    exec(compile(PROJECT_CONFIG.read_text(), _path, "exec"), _namespace)  # noqa: S102
    globals().update({k: v for k, v in _namespace.items() if not k.startswith("__")})

# The wrapper, importable from here, loads the project's app (its configured wsgi_app if any).
pythonpath = ",".join(p for p in (str(SUPPORT_DIR), pythonpath) if p)
wsgi_app = f"djangostack_wsgi:build({wsgi_app!r})"
