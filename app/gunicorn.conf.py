"""Gunicorn settings for the runtime image (read-only root filesystem, behind nginx)."""

import environ

env = environ.FileAwareEnv()

wsgi_app = "config.wsgi:application"
# Import the app in the master: a missing setting then stops Gunicorn at once with the settings'
# one-line message (instead of workers failing to boot), and workers fork with the code loaded.
preload_app = True
bind = "0.0.0.0:8000"
workers = env.int("GUNICORN_WORKERS", default=3)
# Worker heartbeat files on a tmpfs: the root filesystem is read-only.
worker_tmp_dir = "/dev/shm"  # noqa: S108 - a per-container tmpfs, not a shared /tmp
# The control socket (Gunicorn >= 25.1) would be created under $HOME: not writable here.
control_socket_disable = True
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", default=30)
# Longer than the 2 s default: nginx reuses its connections to the app.
keepalive = 5
accesslog = "-"
errorlog = "-"
