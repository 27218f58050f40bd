"""Entry point the Pulumi CLI runs: constructing the PolicyPack starts its gRPC server and never
returns, so nothing else may import this module (tests import `rules` instead)."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(
    name="djangostack-hardening",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
