"""One realization: the program run under `DockerEngineMocks`, then stale resources deleted."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.program import PROGRAM, ProgramResult, run_program

from .engine import DockerEngineMocks
from .images import BUILD_HOST_ENV
from .state import StateFile

DEFAULT_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class Realization:
    name: str
    result: ProgramResult  # registrations and stack outputs
    events: dict[tuple[str, str], str]  # (type, name) -> created/updated/replaced/unchanged/deleted

    def actions(self, action: str) -> list[tuple[str, str]]:
        return sorted(key for key, value in self.events.items() if value == action)

    def action(self, typ: str, name: str) -> str:
        return self.events[(typ, name)]

    @property
    def outputs(self) -> dict[str, Any]:
        return self.result.outputs


def realize(
    name: str,
    stack: str,
    config: Mapping[str, Any],
    secret_keys: Iterable[str],
    state_dir: Path,
    *,
    program: Path = PROGRAM,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    docker_host: str | None = None,
) -> Realization:
    """Realize `program` as `stack` on the local engine under the label `name`.

    Like `pulumi up`: what the last realization of `name` left is reused, updated or
    replaced, and what the program no longer registers is deleted. Raises the program's
    failure (`tests.program.ProgramFailed`) with the engine's message when a step fails.

    `docker_host` (e.g. a Swarm manager's socket) is where the Docker objects go and where the
    one-shot jobs' `docker` CLI points, as pulumi-docker's `docker:host` and the DOCKER_HOST of
    pulumi-command's jobs would; images are still built by this machine's engine, as
    pulumi-docker-build with its own default host would (and pushed to the configured registry).
    """
    StateFile(Path(state_dir) / f"{name}.json").clear_journal()
    with _docker_host(docker_host):
        result = run_program(
            DockerEngineMocks(name, state_dir),
            stack,
            config,
            secret_keys,
            timeout=timeout,
            program=program,
        )
        # The run happened in a forked child: a fresh engine reads the state it saved.
        engine = DockerEngineMocks(name, state_dir)
        engine.delete_unregistered({(r.type, r.name) for r in result.resources if r.custom})
    return Realization(name, result, engine.state.events())


@contextlib.contextmanager
def _docker_host(docker_host: str | None) -> Iterator[None]:
    """DOCKER_HOST set to `docker_host` for the Docker SDK and the jobs, the build engine kept
    in BUILD_HOST_ENV; the environment restored afterwards."""
    if docker_host is None:
        yield
        return
    saved = {key: os.environ.get(key) for key in ("DOCKER_HOST", BUILD_HOST_ENV)}
    os.environ[BUILD_HOST_ENV] = saved["DOCKER_HOST"] or ""
    os.environ["DOCKER_HOST"] = docker_host
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def destroy(name: str, state_dir: Path) -> dict[tuple[str, str], str]:
    """Delete everything the realizations of `name` made, newest first (`pulumi destroy`)."""
    engine = DockerEngineMocks(name, state_dir)
    engine.state.clear_journal()
    engine.delete_unregistered(set())
    return engine.state.events()
