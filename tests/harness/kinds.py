"""The contract between the engine and each resource type it realizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import docker

from .spec import Spec
from .state import Record

LABEL = "djangostack.harness"


@dataclass
class Context:
    """What every resource operation needs: the engine client and the realization's label."""

    realization: str
    labels: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = {LABEL: self.realization}

    @cached_property
    def client(self) -> docker.DockerClient:
        # Opened on first use: the program runs in a forked child, which must not share
        # the parent's connections.
        return docker.from_env(timeout=300)


class Kind:
    """How one resource type is created, changed and deleted on the real engine.

    `prepare` only reads the inputs into a plan (no side effect), so an unimplemented input
    fails before anything is created. Defaults follow most providers: a change replaces the
    resource, deleting the old one first (Docker objects here carry fixed names, so both
    cannot exist at once).
    """

    delete_before_replace = True

    def fingerprint(self, inputs: dict) -> str:
        """Extra change-detection material outside the inputs (e.g. a build context)."""
        return ""

    def in_place(self, old: Record, new_inputs: dict) -> bool:
        """Whether a change is applied by `update` rather than by replacement."""
        return False

    def prepare(self, spec: Spec) -> Any:
        raise NotImplementedError

    def create(self, plan: Any, ctx: Context) -> tuple[str, dict]:
        """Make the real object; returns its id and the outputs the provider computes."""
        raise NotImplementedError

    def update(self, old: Record, plan: Any, ctx: Context) -> tuple[str, dict]:
        raise NotImplementedError

    def delete(self, record: Record, ctx: Context) -> None:
        """Remove the real object (nothing to do for resources that live only in state)."""
