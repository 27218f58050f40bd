"""No secret value in any container's configuration: across every Container, Service and Command
the program creates (dev, prod on Swarm, prod on containers, with monitoring), the configured
djangoSecretKey and postgresPassword and the generated DATABASE_URL appear in no env, command
line, label or `environment` input. They travel only as a Command's secret `stdin`, a Docker
secret, or files; the shell that writes those files is checked on a real `sh` below."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import COMMAND, CONTAINER, SERVICE, run

from components import renderers
from policy import rules
from policy.evaluate import evaluate
from tests import program
from tests.program import ProgramResult, Registration

SECRET_KEY = "secrets-test-key-" + "Zq8xW3vR7kL2mN9pT4yB6cD1fG5hJ0aSuV2wX4yZ6"
# ':' and '\' exercise the .pgpass escaping; '@' and '/' the URL quoting.
PASSWORD = "pg-Pass:w0rd\\with@odd/chars"
SECRETS = {"djangoSecretKey": SECRET_KEY, "postgresPassword": PASSWORD}
DATABASE_URL = f"postgres://app:{urllib.parse.quote(PASSWORD, safe='')}@postgres:5432/app"
# Any of these in a configuration is a leak (the password also inside the URL or .pgpass line).
NEEDLES = (SECRET_KEY, PASSWORD, urllib.parse.quote(PASSWORD, safe=""), DATABASE_URL)
SECRET_TYPE = "docker:index/secret:Secret"
RUNS = {
    "dev": ("dev", {"monitoring": True}),
    "prod": ("prod", {"tlsSelfSigned": True, "monitoring": True}),
    "prod_containers": ("prod", {"tlsSelfSigned": True, "orchestrator": "containers"}),
}


class _Recorder(program._RecordingMonitor):
    """Also records each registration's additionalSecretOutputs (a resource option the Mocks
    never see) into its state, under ADDITIONAL."""

    def RegisterResource(self, request):  # gRPC method name
        response = super().RegisterResource(request)
        for record in self.records:
            if record.urn == response.urn:
                record.state[ADDITIONAL] = list(request.additionalSecretOutputs)
        return response


ADDITIONAL = "__additionalSecretOutputs"


@pytest.fixture(scope="module", params=sorted(RUNS))
def result(request) -> ProgramResult:
    stack, config = RUNS[request.param]
    patch = pytest.MonkeyPatch()
    patch.setattr(program, "_RecordingMonitor", _Recorder)  # the forked run inherits it
    try:
        return run(stack, config, SECRETS)
    finally:
        patch.undo()


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, string) for every string inside `value`."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}.{index}")


def leaks(r: Registration, allowed: frozenset[str] = frozenset()) -> list[str]:
    return [
        f"{r.name}: {path}"
        for path, text in strings(r.plain_inputs)
        if path.split(".")[0] not in allowed and any(needle in text for needle in NEEDLES)
    ]


def stdin_files(job: Registration) -> dict[str, str]:
    """The files a Command's stdin carries (`name base64` lines, renderers._files_stdin)."""
    lines = (job.plain_inputs.get("stdin") or "").splitlines()
    return {n: base64.b64decode(data).decode() for n, data in (line.split(" ") for line in lines)}


def command(result: ProgramResult, suffix: str) -> Registration:
    (match,) = [r for r in result.of_type(COMMAND) if r.name.endswith(suffix)]
    return match


def test_no_secret_value_in_any_container_service_or_command_configuration(result):
    registrations = result.of_type(CONTAINER) + result.of_type(SERVICE) + result.of_type(COMMAND)
    assert len(registrations) > 10
    found = []
    for r in registrations:
        # stdin: the only input of a Command that may carry a secret (never shown by Docker).
        found += leaks(r, frozenset({"stdin"}) if r.type == COMMAND else frozenset())
    assert found == []


def test_secrets_reach_their_consumers_only_on_stdin_docker_secrets_or_files(result):
    """The values do arrive, where they may: as the secret stdin of the writers and jobs that
    need them, or as Docker secrets; every container and service points at files instead."""
    carriers = {r.name: stdin_files(r) for r in result.of_type(COMMAND)}
    for name, files in carriers.items():
        if any(needle in text for _, text in strings(files) for needle in NEEDLES):
            r = command(result, name)
            assert "stdin" in r.secret_inputs, name
            # What the job prints is as secret as what it reads.
            assert r.state[ADDITIONAL] == ["stdout", "stderr"], name
    assert stdin_files(command(result, "migration-run")) == {
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": SECRET_KEY,
    }
    assert stdin_files(command(result, "backup-run")) == {
        "PGPASS": "postgres:5432:app:app:" + PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    }
    assert stdin_files(command(result, "postgres-container-files")) == {
        "POSTGRES_PASSWORD": PASSWORD
    }
    app_secrets = {"DATABASE_URL": DATABASE_URL, "SECRET_KEY": SECRET_KEY}
    services = result.of_type(SERVICE)
    for r in result.of_type(CONTAINER) + services:
        inputs = r.plain_inputs
        if r.type == CONTAINER:
            env = dict(item.split("=", 1) for item in inputs.get("envs") or [])
            mounts = {m["target"]: m for m in inputs.get("mounts") or []}
        else:
            spec = inputs["taskSpec"]["containerSpec"]
            env, mounts = spec.get("env") or {}, {}
        secret_keys = {k.removesuffix("_FILE") for k in env if k.endswith("_FILE")}
        for key in secret_keys:
            assert env[f"{key}_FILE"] == renderers.secret_file(key), r.name
        if r.type == CONTAINER and secret_keys:
            files = mounts[renderers.SECRETS_DIR]
            assert files["readOnly"] is True and files["type"] == "volume", r.name
            (writer,) = [c for c in carriers if c.startswith(r.name) and c.endswith("-files")]
            assert set(carriers[writer]) == secret_keys, r.name
        if r.name.endswith(("-web", "-celery")) or "-web-" in r.name or "-celery-" in r.name:
            assert secret_keys == set(app_secrets), r.name
        if r.name.endswith("postgres-container"):
            assert secret_keys == {"POSTGRES_PASSWORD"}
            assert "POSTGRES_PASSWORD" not in env
    docker_secrets = result.of_type(SECRET_TYPE)
    assert bool(docker_secrets) == bool(services)
    for s in docker_secrets:
        assert "data" in s.secret_inputs
        value = base64.b64decode(s.plain_inputs["data"]).decode()
        assert value in app_secrets.values()
        assert value not in s.plain_inputs["name"]


def test_jobs_get_secret_files_in_a_tmpfs_and_the_backup_a_pgpass_file(result):
    for suffix, keys in (("migration-run", {"SECRET_KEY", "DATABASE_URL"}), ("backup-run", None)):
        job = command(result, suffix)
        create = job.plain_inputs["create"]
        # Private to the job's user (10001 or Postgres's 999), whatever the image's directory.
        assert f"--tmpfs {renderers.SECRETS_DIR}:" in create
        assert ",mode=0700,uid=" in create
        assert "--interactive" in create
        environment = job.plain_inputs["environment"]
        for key in keys or {"PGPASS"}:
            assert environment[f"{key}_FILE"] == renderers.secret_file(key)
    backup = command(result, "backup-run").plain_inputs["environment"]
    assert backup["PGPASSFILE"] == renderers.secret_file("PGPASS")
    assert "PGPASSWORD" not in backup


def _write(
    directory: Path, files: dict[str, str], shell: str = "sh"
) -> subprocess.CompletedProcess:
    script = renderers._write_files_script(str(directory), sorted(files))
    stdin = "".join(
        f"{n} {base64.b64encode(c.encode()).decode()}\n" for n, c in sorted(files.items())
    )
    return subprocess.run(
        [shell, "-c", script], input=stdin, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("shell", ["sh", "bash"])  # sh: dash on Debian
def test_the_file_writer_writes_exact_0400_files_and_replaces_them(tmp_path, shell):
    files = {"SECRET_KEY": SECRET_KEY, "tls.key": "-----BEGIN-----\n a b\\n 'x' $HOME\n"}
    os.umask(0o022)
    assert _write(tmp_path, files, shell).returncode == 0
    for name, content in files.items():
        path = tmp_path / name
        assert path.read_text() == content
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
    # A second deploy replaces the read-only files (rename, not rewrite).
    files["SECRET_KEY"] = "rotated"
    assert _write(tmp_path, files, shell).returncode == 0
    assert (tmp_path / "SECRET_KEY").read_text() == "rotated"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_the_file_writer_fails_when_stdin_lacks_a_file(tmp_path):
    script = renderers._write_files_script(str(tmp_path), ["A", "B"])
    proc = subprocess.run(
        ["sh", "-c", script],
        input=f"A {base64.b64encode(b'x').decode()}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "expected files A B on stdin, got: A" in proc.stderr


# The policy pack holds every stack to the same rule (policy/rules.py).
SECRET_ENV_POLICY = [p for p in rules.POLICIES if p.name == "no-secret-values-in-env"]


def _policy_messages(typ: str, props: dict[str, Any]) -> list[str]:
    urn = f"urn:pulumi:prod::djangostack::{typ}::res"
    return [
        v.message
        for v in evaluate([rules.StackResource(typ, "res", urn, props)], None, SECRET_ENV_POLICY)
    ]


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (CONTAINER, {"envs": ["REDIS_URL=redis://redis", "POSTGRES_PASSWORD=x"]}),
        (SERVICE, {"taskSpec": {"containerSpec": {"env": {"SECRET_KEY": "x"}}}}),
        (
            COMMAND,
            {"create": "docker run -e DATABASE_URL img", "environment": {"DATABASE_URL": "x"}},
        ),
    ],
)
def test_the_policy_rejects_a_secret_given_as_an_env_value(typ, props):
    (message,) = _policy_messages(typ, props)
    assert "docker inspect" in message and "_FILE" in message


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (CONTAINER, {"envs": ["POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD"]}),
        (SERVICE, {"taskSpec": {"containerSpec": {"env": {"SECRET_KEY_FILE": "/run/secrets/K"}}}}),
        (COMMAND, {"create": "docker run img", "environment": {"PGPASSFILE": "/run/secrets/P"}}),
    ],
)
def test_the_policy_accepts_secrets_given_as_files(typ, props):
    assert _policy_messages(typ, props) == []
