"""Run the pack in-process on recorded resources, the way the Pulumi engine would call it: each
resource policy on every resource, each stack policy on all of them, props wrapped in the
engine's unknown-checking proxies. Used by the tests (no Pulumi CLI here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from policy.rules import POLICIES, StackResource


@dataclass(frozen=True)
class Violation:
    policy: str
    level: EnforcementLevel | None
    urn: str | None  # None: the stack as a whole
    message: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.message}"


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _props(resource: StackResource) -> Mapping[str, Any]:
    return unknown_checking_proxy(dict(resource.props))


def evaluate(
    resources: Iterable[StackResource],
    config: Mapping[str, Any] | None = None,
    policies: Sequence[Policy] = POLICIES,
) -> list[Violation]:
    """Every violation `policies` report for `resources`; `config` is each policy's config."""
    records = list(resources)
    found: list[Violation] = []
    for policy in policies:

        def report(message: str, urn: str | None = None, p: Policy = policy) -> None:
            found.append(Violation(p.name, p.enforcement_level, urn, message))

        if isinstance(policy, ResourceValidationPolicy):
            for r in records:
                args = ResourceValidationArgs(
                    r.type, _props(r), r.urn, r.name, _options(), None, dict(config or {})
                )
                # The engine files a resource policy's violations under that resource.
                policy.validate(args, lambda message, _urn=None, u=r.urn: report(message, u))
        else:
            stack = [
                PolicyResource(r.type, _props(r), r.urn, r.name, _options(), None, None, [], {})
                for r in records
            ]
            # Each property's dependencies, as the engine hands them (resources of the stack).
            by_urn = {r.urn: r for r in stack}
            for record, resource in zip(records, stack, strict=True):
                resource.property_dependencies = {
                    prop: [by_urn[u] for u in urns if u in by_urn]
                    for prop, urns in record.dependencies.items()
                }
            policy.validate(StackValidationArgs(stack, dict(config or {})), report)
    return found
