"""Realize the Pulumi program on the real local Docker engine (see docs/harness.md)."""

from .engine import DockerEngineMocks
from .kinds import LABEL
from .realize import Realization, destroy, realize
from .spec import UnsupportedInput
from .teardown import leftovers, teardown

__all__ = [
    "LABEL",
    "DockerEngineMocks",
    "Realization",
    "UnsupportedInput",
    "destroy",
    "leftovers",
    "realize",
    "teardown",
]
