"""The web health probe (docker/support/probe.py, the command components/app.py http_probe
gives), run as Docker runs it against a real HTTP server on loopback: healthy on 200-399,
unhealthy on an error status or no listener."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from components.app import PROBE, http_probe

PROBE_SOURCE = Path(__file__).resolve().parents[2] / "docker" / "support" / "probe.py"

STATUSES = {"/ok/": 200, "/moved/": 302, "/broken/": 500, "/missing/": 404}


class Handler(http.server.BaseHTTPRequestHandler):
    hosts: ClassVar[list[str]] = []  # each request's Host header

    def do_GET(self) -> None:
        self.hosts.append(self.headers["Host"])
        self.send_response(STATUSES[self.path])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def probe(path: str, port: int) -> int:
    kind, python, *args = http_probe(path, port)
    assert (kind, python) == ("CMD", "python")
    # The image's /opt/djangostack is this repository's docker/support.
    args = [str(PROBE_SOURCE) if arg == PROBE else arg for arg in args]
    return subprocess.run([sys.executable, *args], capture_output=True, timeout=30).returncode


@pytest.mark.parametrize(
    ("path", "healthy"),
    [("/ok/", True), ("/moved/", True), ("/broken/", False), ("/missing/", False)],
)
def test_the_probe_is_healthy_on_2xx_and_3xx_only(port: int, path: str, healthy: bool) -> None:
    assert (probe(path, port) == 0) is healthy


def test_the_probe_names_the_host_as_urllib_did(port: int) -> None:
    """Django checks Host against ALLOWED_HOSTS for a project's own health view."""
    assert probe("/ok/", port) == 0
    assert Handler.hosts[-1] == f"127.0.0.1:{port}"


def test_nothing_listening_is_unhealthy(port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert probe("/ok/", closed) != 0
