"""One realization: the program run under `DockerEngineMocks`, then stale resources deleted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.program import PROGRAM, ProgramResult, run_program

from .engine import DockerEngineMocks
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
) -> Realization:
    """Realize `program` as `stack` on the local engine under the label `name`.

    Like `pulumi up`: what the last realization of `name` left is reused, updated or
    replaced, and what the program no longer registers is deleted. Raises the program's
    failure (`tests.program.ProgramFailed`) with the engine's message when a step fails.
    """
    StateFile(Path(state_dir) / f"{name}.json").clear_journal()
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


def destroy(name: str, state_dir: Path) -> dict[tuple[str, str], str]:
    """Delete everything the realizations of `name` made, newest first (`pulumi destroy`)."""
    engine = DockerEngineMocks(name, state_dir)
    engine.state.clear_journal()
    engine.delete_unregistered(set())
    return engine.state.events()
