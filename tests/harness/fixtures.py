"""Helpers for tests that realize a program: free ports, in-container probes."""

from __future__ import annotations

import socket

import docker


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def exec_python(container: docker.models.containers.Container, code: str) -> tuple[int, str]:
    """Run `python -c code` inside a running container; (exit code, combined output)."""
    code_, output = container.exec_run(["python", "-c", code])
    return code_, output.decode(errors="replace")


def http_get_in(container: docker.models.containers.Container, url: str) -> tuple[int, str]:
    """GET `url` from inside a container (over its own networks): (status or -1, body)."""
    code, output = exec_python(
        container,
        "import urllib.request as u, urllib.error as e\n"
        "try:\n"
        f"    r = u.urlopen({url!r}, timeout=5); print(r.status); print(r.read().decode())\n"
        "except e.HTTPError as x:\n"
        "    print(x.code)\n"
        "except Exception as x:\n"
        "    print(-1); print(repr(x))\n",
    )
    status, _, body = output.partition("\n")
    return int(status) if code == 0 and status.lstrip("-").isdigit() else -1, body
