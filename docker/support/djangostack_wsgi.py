"""The WSGI application Gunicorn serves in the image: the product's health endpoint in front of
the project's own application, so no project needs a health view.

`GET HEALTH_PATH` answers 200 with {"database": "ok", "redis": "ok"} when Django's default
database answers `SELECT 1` and, when REDIS_URL is set, Redis answers PING; 503 (naming the
failure) otherwise. It is answered before the project's middleware: no host validation, no
HTTPS redirect, so the container's probe gets the dependencies' state. Any other path goes to
the project's app. Redis is pinged over a plain socket, so the project needs no Redis client."""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

HEALTH_PATH = "/_djangostack/health/"
TIMEOUT_SECONDS = 2.0  # each check; the image's probe gives up after 4 s

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _project_app(target: str | None) -> WsgiApp:
    """The project's WSGI app: the project's Gunicorn wsgi_app when it sets one, else Django's
    settings.WSGI_APPLICATION (what runserver serves)."""
    if target:
        from gunicorn.util import import_app

        return import_app(target)
    from django.core.servers.basehttp import get_internal_wsgi_application

    return get_internal_wsgi_application()


def check_database() -> str:
    from django.db import close_old_connections, connection

    # Around the query as around a request: a broken or expired connection is not reused.
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure is the answer, never a crash
        return f"error: {type(exc).__name__}"
    finally:
        close_old_connections()
    return "ok"


def _redis_command(conn: socket.socket, *args: str) -> bytes:
    """Send one command (RESP array) and return the first reply line."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    conn.sendall(payload)
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = conn.recv(512)
        if not chunk:
            raise ConnectionError("connection closed")
        reply += chunk
    return reply.split(b"\r\n", 1)[0]


def check_redis(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        with socket.create_connection((host, parts.port or 6379), TIMEOUT_SECONDS) as raw:
            conn = raw
            if parts.scheme == "rediss":
                conn = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
            if parts.password:
                auth = [unquote(parts.password)]
                if parts.username:
                    auth.insert(0, unquote(parts.username))
                if _redis_command(conn, "AUTH", *auth) != b"+OK":
                    return "error: AUTH refused"
            if _redis_command(conn, "PING") != b"+PONG":
                return "error: no PONG"
    except (OSError, ConnectionError) as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def status() -> dict[str, str]:
    checks = {"database": check_database()}
    redis_url = os.environ.get("REDIS_URL", "").strip()
    if redis_url:
        checks["redis"] = check_redis(redis_url)
    return checks


def build(target: str | None = None) -> WsgiApp:
    """Gunicorn's wsgi_app (docker/support/gunicorn.conf.py): `djangostack_wsgi:build(...)`."""
    return wrap(_project_app(target))


def wrap(project: WsgiApp) -> WsgiApp:
    """`project` with HEALTH_PATH answered in front of it."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return project(environ, start_response)
        checks = status()
        healthy = all(value == "ok" for value in checks.values())
        body = json.dumps(checks).encode()
        start_response(
            "200 OK" if healthy else "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return application
