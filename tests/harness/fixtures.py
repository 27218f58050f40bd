"""Probes run inside the containers of a realized program."""

from __future__ import annotations

import docker


def exec_python(container: docker.models.containers.Container, code: str) -> tuple[int, str]:
    """Run `python -c code` inside a running container; (exit code, combined output)."""
    code_, output = container.exec_run(["python", "-c", code])
    return code_, output.decode(errors="replace")


def http_get_in(
    container: docker.models.containers.Container, url: str, headers: dict | None = None
) -> tuple[int, str]:
    """GET `url` from inside a container (over its own networks): (status or -1, body)."""
    request = f"u.Request({url!r}, headers={headers or {}!r})"
    code, output = exec_python(
        container,
        "import urllib.request as u, urllib.error as e\n"
        "try:\n"
        f"    r = u.urlopen({request}, timeout=5); print(r.status); print(r.read().decode())\n"
        "except e.HTTPError as x:\n"
        "    print(x.code)\n"
        "except Exception as x:\n"
        "    print(-1); print(repr(x))\n",
    )
    status, _, body = output.partition("\n")
    return int(status) if code == 0 and status.lstrip("-").isdigit() else -1, body
