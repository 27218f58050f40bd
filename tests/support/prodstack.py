"""The prod stack deployed by the Pulumi engine, for the rollout, resilience, CIS and edge
tests and the site benchmark: deploy it (again, with changes), reach it on loopback, find its
containers and Swarm task containers, kill their main processes and wait for recovery.

Each user deploys its own stack under a unique name from a private copy of `app/` (tests
edit that copy to build a broken release) and removes it with `destroy`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import requests
from docker.models.containers import Container

from components.hardening import PROCESS_LABEL, ROLE_LABEL, STACK_LABEL
from tests.support.engine import ROOT, EngineStack, Result, new_stack
from tests.support.load import LoadLoop, https_session

SERVICE_ROLES = ("web", "celery")  # Swarm services in prod; the rest are containers
CONTAINER_ROLES = ("postgres", "redis", "nginx")
RECOVERY_TIMEOUT_SECONDS = 180


class ProdStack(EngineStack):
    """An `EngineStack` of the prod profile, with what the tests do to a running site."""

    @functools.cached_property
    def client(self) -> docker.DockerClient:
        # A property: EngineStack's dataclass __init__ calls no __post_init__ of a subclass.
        return self.docker_client()

    def up(self, **kwargs: Any) -> Result:
        result = super().up(**kwargs)
        # Verify HTTPS against the stack's own (self-signed) certificate, not verify=False.
        # With acme there is none to read: the test writes the CA's root there.
        if "tlsCertificate" in self.outputs:
            self.ca_file.write_text(self.outputs["tlsCertificate"])
        return result

    @property
    def ca_file(self) -> Path:
        return self.work_dir / "site.crt"

    @property
    def server_name(self) -> str | None:
        """The name requests carry (SNI, Host) when `domain` is not localhost (an ACME stack's,
        which no resolver here knows): the site is then reached at `publicBindAddress`."""
        domain = self.config.get("domain", "localhost")
        return None if domain == "localhost" else domain

    @property
    def url(self) -> str:
        """The public HTTPS URL: on loopback (`domain` is localhost in the test config), else
        at nginx's address, for `server_name`."""
        host = "localhost" if self.server_name is None else self.config["publicBindAddress"]
        return f"https://{host}:{self.config['httpsPort']}"

    def get(self, path: str, timeout: float = 10) -> requests.Response:
        session = https_session(self.server_name)
        return session.get(self.url + path, verify=str(self.ca_file), timeout=timeout)

    def post(self, path: str, payload: dict[str, Any]) -> requests.Response:
        session = https_session(self.server_name)
        return session.post(self.url + path, json=payload, verify=str(self.ca_file), timeout=10)

    def version(self) -> str:
        return self.get("/version/").json()["version"]

    def containers(self, role: str) -> list[Container]:
        """Running containers of `role` (or of the process type `role`, config `processes`):
        the container, or the service's task containers."""
        by_role = self.client.containers.list(
            filters={"label": [f"{STACK_LABEL}={self.name}", f"{ROLE_LABEL}={role}"]}
        )
        by_process = self.client.containers.list(
            filters={"label": [f"{STACK_LABEL}={self.name}", f"{PROCESS_LABEL}={role}"]}
        )
        return list({c.id: c for c in by_role + by_process}.values())

    def container(self, role: str) -> Container:
        (found,) = self.containers(role)
        return found

    def service(self, role: str) -> docker.models.services.Service:
        return self.client.services.get(f"{self.name}-{role}")

    def running_tasks(self, role: str) -> list[dict[str, Any]]:
        """Tasks of the service that Swarm wants running and reports running (i.e. healthy: a
        task with a health check stays `starting` until it passes), on any node."""
        tasks = self.service(role).tasks(filters={"desired-state": "running"})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def script(self, script: str, *args: str) -> str:
        """Run scripts/<script> (backup.sh, restore.sh) on this stack; its output (it must
        succeed)."""
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / script), "--prefix", self.name, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def load(
        self,
        workers: int,
        max_seconds: float,
        classify: Callable[[requests.Response], str] | None = None,
        new_connections: bool = False,
    ) -> LoadLoop:
        """Started HTTPS load on /version/ (the answering release in each body) through nginx;
        `classify` names each answer's class (LoadResult.answers); `new_connections`: a full TLS
        handshake for every request."""
        return LoadLoop(
            self.url + "/version/",
            workers=workers,
            max_seconds=max_seconds,
            verify=str(self.ca_file),
            track_body=True,
            classify=classify,
            server_name=self.server_name,
            new_connections=new_connections,
        ).start()

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run `sql` in the Postgres container over its local socket; the unaligned result."""
        db = database or self.config.get("postgresDb", "app")
        user = self.config.get("postgresUser", "app")
        code, out = self.container("postgres").exec_run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db, "-tAc", sql]
        )
        assert code == 0, out.decode()
        return out.decode().strip()

    def wait_healthy(self, role: str, count: int, exclude: set[str] = frozenset()) -> list[str]:
        """Wait until `count` containers of `role` (none of the ids in `exclude`) are running
        and healthy; their ids."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        while True:
            healthy = [
                c.id
                for c in self.containers(role)
                if c.id not in exclude
                and (c.attrs["State"].get("Health") or {}).get("Status") == "healthy"
            ]
            if len(healthy) >= count:
                return healthy
            assert time.monotonic() < deadline, (
                f"{role}: {len(healthy)}/{count} healthy after {RECOVERY_TIMEOUT_SECONDS}s"
            )
            time.sleep(0.5)

    def kill_main_process(self, role: str) -> float:
        """SIGKILL the main process (PID 1) of one container of `role` from the host, as a
        crash would, and wait until the role is back to full health: the container restarted
        by its restart policy, or a replacement task started by Swarm. Seconds it took."""
        victim = self.containers(role)[0]
        expected = len(self.containers(role))
        started = victim.attrs["State"]["StartedAt"]
        began = time.monotonic()
        os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)
        if role in SERVICE_ROLES:
            self.wait_healthy(role, expected, exclude={victim.id})
        else:
            deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
            while True:  # restarted (a new start time), then healthy again
                victim.reload()
                state = victim.attrs["State"]
                restarted = state["Running"] and state["StartedAt"] != started
                if restarted and (state.get("Health") or {}).get("Status") == "healthy":
                    break
                assert time.monotonic() < deadline, f"{role} not back within the timeout"
                time.sleep(0.5)
        return time.monotonic() - began


def django(container: Container, code: str) -> str:
    """Run `code` in the project's Django shell inside `container` (its own env and user)."""
    # Verbosity 0: no "N objects imported automatically" line (Django 5.2's shell).
    result = container.exec_run(["python", "manage.py", "shell", "--verbosity", "0", "-c", code])
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


@contextlib.contextmanager
def prod_stack(
    workdir: Path,
    label: str,
    *,
    source: Path = ROOT / "app",
    overrides: Mapping[str, Any] | None = None,
    prepare: Callable[[Path], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ProdStack]:
    """A freshly deployed prod stack named `<label>-<random>` of a private copy of `source`
    (the reference app, or a fixture project) with `overrides` on the test config, removed
    afterwards (even when the deploy failed). `prepare` edits the private copy before it is
    built; `env` reaches the engine (a remote Swarm manager is config `docker:host` in
    `overrides`, not DOCKER_HOST, which would move the image build there too)."""
    base = new_stack(workdir, label, "prod", source=source, overrides=overrides, env=env)
    stack = ProdStack(base.name, base.profile, base.work_dir, base.app_dir, base.config, base.env)
    if prepare is not None:
        prepare(stack.app_dir)
    try:
        stack.up()
        yield stack
    finally:
        stack.remove()
