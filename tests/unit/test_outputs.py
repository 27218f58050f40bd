"""The exported outputs match docs/outputs.md exactly, and secrets stay secret."""

from __future__ import annotations

import re

import pytest
from conftest import POSTGRES_PASSWORD, TLS_CERT

from tests.program import ROOT

ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| (yes|no) \| ([^|]+) \|", re.MULTILINE)


def contract() -> dict[str, tuple[bool, set[str]]]:
    rows = ROW.findall((ROOT / "docs" / "outputs.md").read_text())
    assert rows, "no output rows found in docs/outputs.md"
    return {
        name: (secret == "yes", {s.strip() for s in stacks.split(",")})
        for name, _type, secret, stacks in rows
    }


def exported_by(stacks: set[str], profile: str, acme: bool) -> bool:
    """Whether a row's stacks (`dev`, `prod`, `prod (acme)`, `prod (not acme)`) cover a stack
    of `profile` with config acme on or off."""
    return any(
        entry == profile or entry == f"{profile} ({'' if acme else 'not '}acme)" for entry in stacks
    )


@pytest.mark.parametrize("stack", ["dev", "prod", "prod_containers", "prod_acme"])
def test_outputs_match_the_documented_contract(stack, request):
    result = request.getfixturevalue(stack)
    profile = result.outputs["profile"]
    acme = stack == "prod_acme"
    expected = {n for n, (_s, stacks) in contract().items() if exported_by(stacks, profile, acme)}
    assert set(result.outputs) == expected
    documented_secret = {name for name in expected if contract()[name][0]}
    assert result.secret_outputs == documented_secret


def test_secret_outputs_hold_the_real_value(prod):
    assert prod.outputs["databaseUrl"] == f"postgres://app:{POSTGRES_PASSWORD}@postgres:5432/app"
    # The certificate nginx serves: the configured file's content.
    assert prod.outputs["tlsCertificate"] == TLS_CERT
