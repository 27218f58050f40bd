"""Strict reading of a resource's inputs: every input must be mapped or rejected by name.

The Pulumi SDK hands `Mocks.new_resource` the provider's wire inputs (camelCase, nested).
`Spec` records which keys the harness read; `check()` then fails on any key with a value
that nothing read, so an input the harness does not implement is an error, never ignored.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key


class UnsupportedInput(Exception):
    """An input (or resource type) the harness does not implement."""


def reveal(value: Any) -> Any:
    """The plain value of `value`, with Pulumi's secret wrappers removed at every depth."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return reveal(value["value"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


class Spec:
    """A resource's (revealed) inputs, or a nested object of them, read key by key."""

    def __init__(self, data: dict, path: str, resource_name: str = "") -> None:
        self.resource_name = resource_name
        self._data = data
        self._path = path
        self._read: set[str] = set()
        self._children: list[Spec] = []

    def get(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        value = self._data.get(key)
        return default if value is None else value

    def int(self, key: str, default: int | None = None) -> int | None:
        # Numbers cross the wire as floats.
        value = self.get(key)
        return default if value is None else int(value)

    def require(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise UnsupportedInput(f"{self._path}.{key} is required")
        return value

    def obj(self, key: str) -> Spec | None:
        value = self.get(key)
        return None if value is None else self._child(value, f"{self._path}.{key}")

    def objs(self, key: str) -> list[Spec]:
        return [self._child(v, f"{self._path}.{key}[{i}]") for i, v in enumerate(self.get(key, []))]

    def labels(self, key: str = "labels") -> dict[str, str]:
        """A provider label list ([{label, value}]) as a dict."""
        return {item.require("label"): item.get("value", "") for item in self.objs(key)}

    def auto_name(self, key: str = "name") -> str:
        """The given name, or Pulumi's auto-name: the resource name plus a random suffix."""
        return self.get(key) or f"{self.resource_name}-{secrets.token_hex(4)[:7]}"

    def expect(self, key: str, *harmless: Any) -> None:
        """Accept `key` only with one of the values that need no action (SDK defaults)."""
        value = self.get(key)
        if value is not None and value not in harmless:
            raise UnsupportedInput(
                f"{self._path}.{key}={value!r} is not implemented by the harness "
                f"(accepted: unset or {', '.join(map(repr, harmless))})"
            )

    def check(self) -> None:
        """Fail naming every input with a value that no mapping read."""
        unread = [
            f"{self._path}.{k}"
            for k, v in self._data.items()
            if k not in self._read and v not in (None, [], {})
        ]
        for child in self._children:
            try:
                child.check()
            except UnsupportedInput as err:
                unread.append(str(err).removeprefix("inputs not implemented by the harness: "))
        if unread:
            raise UnsupportedInput("inputs not implemented by the harness: " + ", ".join(unread))

    def _child(self, value: dict, path: str) -> Spec:
        child = Spec(value, path, self.resource_name)
        self._children.append(child)
        return child


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def nanoseconds(duration: str | None) -> int | None:
    """A Go duration string ("1m30s", "500ms", "0s") in nanoseconds."""
    if duration is None:
        return None
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise UnsupportedInput(f"not a duration: {duration!r}")
    return int(sum(float(n) * _NANOS[u] for n, u in parts))
