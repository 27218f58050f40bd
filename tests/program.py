"""Run the Pulumi program (`__main__.py`) under any `pulumi.runtime.Mocks` and record what it did.

The unit tests' runner (tests/unit/conftest.py supplies the fake engine): the program sees its
config the way the Pulumi CLI hands it over (every `Pulumi.yaml` default, then
Pulumi.<stack>.yaml, then the test's values), and each registration is recorded with its
inputs, dependencies and the state the Mocks returned. Each run happens in a forked child
process so that Pulumi's process-global runtime state never leaks between runs and a hung run
(pulumi/pulumi#7663) can be killed: `run_program` raises `TimeoutError` after `timeout` seconds.

    result = run_program(mocks, "prod", {"djangoSecretKey": "..."}, secret_keys=["djangoSecretKey"])
    result.one("docker:index/container:Container", "djangostack-postgres-container").plain_inputs

Consequence of the fork: state a Mocks object keeps in memory stays in the child. Everything the
engine would persist is returned instead: each registration's inputs, id and state, in order.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import runpy
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "djangostack"
ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "__main__.py"
UNKNOWN = rpc.UNKNOWN  # what an unknown (preview) value looks like in inputs and outputs


def unwrap_secrets(value: Any) -> Any:
    """`value` with every Pulumi secret wrapper (as Mocks receive inputs) unwrapped."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, Mapping):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def secret_paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths (list items as indexes) of every secret-wrapped value inside `value`."""
    if rpc.is_rpc_secret(value):
        return {prefix} | secret_paths(value["value"], prefix)
    found: set[str] = set()
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return found
    for key, item in items:
        found |= secret_paths(item, f"{prefix}.{key}" if prefix else str(key))
    return found


@dataclass(frozen=True)
class Registration:
    """One resource registration, as the engine saw it, in the order registrations completed."""

    index: int
    urn: str
    type: str
    name: str
    custom: bool  # False for component resources
    parent: str  # parent URN (the stack for top-level resources)
    dependencies: tuple[str, ...]  # URNs it waits for (depends_on and input dependencies)
    # Per input property: the URNs its value came from (what pulumi-policy calls
    # property_dependencies).
    property_dependencies: dict[str, tuple[str, ...]]
    inputs: dict[str, Any]  # as passed to Mocks.new_resource: secrets still wrapped
    id: str | None
    state: dict[str, Any]  # what Mocks.new_resource returned
    protect: bool = False  # the `protect` resource option: `pulumi destroy` refuses to delete it
    # Type tokens of the registration's alias specs (an `Alias(type_=...)` keeps a resource
    # whose component type changed from being replaced).
    alias_types: tuple[str, ...] = ()
    # The `additional_secret_outputs` option: outputs the engine stores encrypted.
    additional_secret_outputs: tuple[str, ...] = ()

    @property
    def plain_inputs(self) -> dict[str, Any]:
        return unwrap_secrets(self.inputs)

    @property
    def secret_inputs(self) -> set[str]:
        return secret_paths(self.inputs)


@dataclass(frozen=True)
class ProgramResult:
    resources: list[Registration]
    outputs: dict[str, Any] = field(default_factory=dict)  # plain values (UNKNOWN in preview)
    secret_outputs: frozenset[str] = frozenset()

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> Registration:
        matches = [r for r in self.resources if r.type == typ and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} registrations of {typ} named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def depends_on(self, resource: Registration, other: Registration) -> bool:
        """Whether `resource` waits (directly or transitively) for `other`."""
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn == other.urn:
                return True
            if urn not in seen:
                seen.add(urn)
                todo.extend(self.by_urn(urn).dependencies)
        return False


class ProgramFailed(Exception):
    """The program raised. `result` holds what was registered before; `error_type` is qualified."""

    def __init__(self, error_type: str, message: str, details: str, result: ProgramResult):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.details = details  # the child's formatted traceback
        self.result = result


class _RecordingMonitor(MockMonitor):
    """A MockMonitor that also records parent, dependencies and order of each registration."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.records: list[Registration] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request):  # gRPC method name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        dependencies = set(request.dependencies)
        for deps in request.propertyDependencies.values():
            dependencies.update(deps.urns)
        registration = self.resources[response.urn]
        with self._lock:
            self.records.append(
                Registration(
                    index=len(self.records),
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=request.custom,
                    parent=request.parent,
                    dependencies=tuple(sorted(dependencies)),
                    property_dependencies={
                        key: tuple(sorted(deps.urns))
                        for key, deps in request.propertyDependencies.items()
                    },
                    inputs=rpc.deserialize_properties(request.object),
                    id=registration.id,
                    state=dict(registration.state or {}),
                    protect=request.protect,
                    alias_types=tuple(
                        a.spec.type for a in request.aliases if a.HasField("spec") and a.spec.type
                    ),
                    additional_secret_outputs=tuple(request.additionalSecretOutputs),
                )
            )
        return response


def _config_block(path: Path) -> dict[str, Any]:
    """The `config:` block of a project or stack file."""
    return _parsed_config_block(path, path.stat().st_mtime_ns) if path.is_file() else {}


@functools.cache
def _parsed_config_block(path: Path, _mtime_ns: int) -> dict[str, Any]:
    # Parsed once per version of the file: runs are many, files few, and YAML is slow.
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {}


def project_defaults(root: Path = ROOT) -> dict[str, Any]:
    """The `default` of every key `Pulumi.yaml` declares: the CLI passes each to the program
    (a `default: ""` arrives as ""), so the program must accept all of them."""
    declared = _config_block(root / "Pulumi.yaml")
    return {k: v["default"] for k, v in declared.items() if isinstance(v, dict) and "default" in v}


def stack_file_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """Plain (not `secure:`) values of Pulumi.<stack>.yaml, by full key."""
    values = _config_block(root / f"Pulumi.{stack}.yaml")
    return {k: v for k, v in values.items() if not (isinstance(v, dict) and "secure" in v)}


def _full(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _config_map(config: Mapping[str, Any], secret_keys: Iterable[str]) -> tuple[dict, list]:
    """Full `project:key` names and string values, the way the CLI hands config to a program."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list | dict):
            return json.dumps(value)  # structured values (array keys) reach programs as JSON
        return str(value)

    return {_full(k): text(v) for k, v in config.items()}, [_full(k) for k in secret_keys]


async def _resolve_outputs() -> tuple[dict[str, Any], frozenset[str]]:
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for name, value in get_root_resource().outputs.items():
        output = pulumi.Output.from_input(value)
        known = await output.is_known()
        values[name] = await output.future(with_unknowns=True) if known else UNKNOWN
        if await output.is_secret():
            secrets.add(name)
    return values, frozenset(secrets)


def _child(mocks, stack, config, secret_keys, preview, program, conn) -> None:
    monitor = _RecordingMonitor(mocks)
    outputs: dict[str, Any] = {}
    secret_outputs: frozenset[str] = frozenset()
    failure = None
    try:
        values, secrets = _config_map(config, secret_keys)
        pulumi.runtime.set_all_config(values, secrets)
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor
        )

        def program_and_outputs():
            nonlocal outputs, secret_outputs
            runpy.run_path(str(program), run_name="__main__")
            outputs, secret_outputs = _sync_await(_resolve_outputs())

        _sync_await(run_pulumi_func(program_and_outputs))
    except BaseException as exc:  # reported to the parent process
        cls = type(exc)
        failure = (f"{cls.__module__}.{cls.__qualname__}", str(exc), traceback.format_exc())
    result = ProgramResult(list(monitor.records), outputs, secret_outputs)
    try:
        conn.send((result, failure))
    except Exception as exc:  # e.g. a Mocks state that cannot be pickled
        conn.send((ProgramResult([]), ("PicklingError", str(exc), traceback.format_exc())))
    conn.close()


def run_program(
    mocks: pulumi.runtime.Mocks,
    stack: str,
    config: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    *,
    timeout: float = 60,
    program: Path = PROGRAM,
) -> ProgramResult:
    """Run the program as project `djangostack`, stack `stack`, like `pulumi up`/`preview`:
    Pulumi.yaml's defaults, overlaid with the plain values of Pulumi.<stack>.yaml (if any),
    overlaid with `config` (keys with or without the `djangostack:` prefix; bools, ints, lists
    and objects are converted to the CLI's strings). Raises `ProgramFailed` if the program
    raised and `TimeoutError` if it did not finish."""
    root = program.parent
    layers = (project_defaults(root), stack_file_config(stack, root), config)
    config = {_full(k): v for layer in layers for k, v in layer.items()}
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child,
        args=(mocks, stack, dict(config), list(secret_keys), preview, program, sender),
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise TimeoutError(f"program run for stack {stack!r} did not finish in {timeout}s")
        result, failure = receiver.recv()
    except EOFError as exc:
        raise RuntimeError(f"program run for stack {stack!r} died (exit {child.exitcode})") from exc
    finally:
        receiver.close()
        if child.is_alive():
            child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    if failure is not None:
        raise ProgramFailed(*failure, result=result)
    return result
