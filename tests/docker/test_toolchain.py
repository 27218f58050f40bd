"""The providers scripts/toolchain.sh gives the engine speak the published SDKs' language: for
every resource type the program creates, the plugin's schema (GetSchema, through the CLI) has
the token, the property names, the required flags and the nested shapes the installed Python
SDK sends. A bridged docker provider with a wrong override (a pluralised name, a lost
max-items-one) would make the engine reject or silently drop the program's inputs."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import typing
from typing import Any

import pulumi._types as pulumi_types
import pulumi_docker as docker
import pulumi_docker_build as docker_build
import pytest

from automation.engine import engine_env, toolchain

# Every resource class the program creates (components/), with the plugin that serves it.
PROGRAM_RESOURCES = {
    "docker@5.2.0": [
        (docker.Container, docker.ContainerArgs),
        (docker.Service, docker.ServiceArgs),
        (docker.Network, docker.NetworkArgs),
        (docker.Volume, docker.VolumeArgs),
        (docker.Secret, docker.SecretArgs),
    ],
    "docker-build@0.0.22": [(docker_build.Image, docker_build.ImageArgs)],
}
PROVIDER_ARGS = {
    "docker@5.2.0": docker.ProviderArgs,
    "docker-build@0.0.22": docker_build.ProviderArgs,
}

Shape = dict[str, tuple[bool, Any]]  # wire name -> (required, nested shape or None)


def plugin_schema(plugin: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(toolchain() / "pulumi"), "package", "get-schema", plugin],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def _nested_input_type(annotation: Any) -> type | None:
    if isinstance(annotation, type) and pulumi_types.is_input_type(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_input_type(arg)
        if found is not None:
            return found
    return None


def sdk_shape(args_cls: type) -> Shape:
    """What the SDK sends for an args class: wire names, required flags, nested args."""
    py_to_wire = pulumi_types.input_type_py_to_pulumi_names(args_cls)
    types = pulumi_types.input_type_types(args_cls)
    params = inspect.signature(args_cls.__init__).parameters
    shape: Shape = {}
    for py_name, wire in py_to_wire.items():
        required = params[py_name].default is inspect.Parameter.empty
        nested = _nested_input_type(types[wire])
        shape[wire] = (required, sdk_shape(nested) if nested else None)
    return shape


def _ref_object(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    """The object type a property refers to (directly, or as array items / map values)."""
    for candidate in (spec, spec.get("items") or {}, spec.get("additionalProperties") or {}):
        ref = candidate.get("$ref", "")
        if ref.startswith("#/types/"):
            target = schema["types"][ref.removeprefix("#/types/")]
            if target.get("type") == "object":
                return target
    return None


def schema_shape(schema: dict[str, Any], properties: dict[str, Any], required: list[str]) -> Shape:
    shape: Shape = {}
    for name, spec in properties.items():
        target = _ref_object(schema, spec)
        nested = (
            schema_shape(schema, target.get("properties") or {}, target.get("required") or [])
            if target
            else None
        )
        # A required property with a default (an environment variable) is optional to send.
        defaulted = "default" in spec or "defaultInfo" in spec
        shape[name] = (name in required and not defaulted, nested)
    return shape


def differences(expected: Shape, actual: Shape, where: str = "") -> list[str]:
    found = []
    for name in sorted(set(expected) | set(actual)):
        path = f"{where}.{name}" if where else name
        if name not in actual:
            found.append(f"{path}: sent by the SDK, unknown to the plugin")
        elif name not in expected:
            found.append(f"{path}: in the plugin's schema, not in the SDK")
        else:
            (req_e, nest_e), (req_a, nest_a) = expected[name], actual[name]
            if req_e != req_a:
                found.append(f"{path}: required {req_a} in the plugin, {req_e} in the SDK")
            if (nest_e is None) != (nest_a is None):
                found.append(f"{path}: an object in one, not in the other")
            elif nest_e is not None:
                found += differences(nest_e, nest_a, path)
    return found


def sdk_token(resource_cls: type) -> str:
    match = re.search(r"super\([^)]*\).__init__\(\s*'([^']+)'", inspect.getsource(resource_cls))
    assert match, resource_cls
    return match.group(1)


@pytest.mark.parametrize("plugin", sorted(PROGRAM_RESOURCES))
def test_plugin_schema_matches_what_the_sdk_sends(plugin: str) -> None:
    schema = plugin_schema(plugin)
    problems = []
    for resource_cls, args_cls in PROGRAM_RESOURCES[plugin]:
        token = sdk_token(resource_cls)
        if token not in schema["resources"]:
            problems.append(f"{token}: no such resource in the plugin's schema")
            continue
        spec = schema["resources"][token]
        actual = schema_shape(
            schema, spec.get("inputProperties") or {}, spec.get("requiredInputs") or []
        )
        problems += [f"{token} {d}" for d in differences(sdk_shape(args_cls), actual)]
    provider = schema["provider"]
    actual = schema_shape(
        schema, provider.get("inputProperties") or {}, provider.get("requiredInputs") or []
    )
    problems += [
        f"provider config {d}" for d in differences(sdk_shape(PROVIDER_ARGS[plugin]), actual)
    ]
    assert problems == [], "\n".join(problems)


def test_the_comparison_catches_a_renamed_property() -> None:
    """The check itself: a schema with one property renamed (networks_advanced pluralised, as
    the bridge would do without the override) fails."""
    schema = plugin_schema("docker@5.2.0")
    spec = schema["resources"]["docker:index/container:Container"]
    props = dict(spec["inputProperties"])
    props["networksAdvanceds"] = props.pop("networksAdvanced")
    actual = schema_shape(schema, props, spec.get("requiredInputs") or [])
    found = differences(sdk_shape(docker.ContainerArgs), actual)
    assert "networksAdvanced: sent by the SDK, unknown to the plugin" in found
