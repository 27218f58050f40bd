"""Bad configuration fails before any resource exists, naming the key and the fix; the config
schema in Pulumi.yaml, components/config.py and docs/config.md agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import PROD_SECRETS, SECRET_KEY, app_image, run

from components import config
from tests.program import ROOT, ProgramFailed

CONFIG_ERROR = "components.config.ConfigError"


def failure(stack: str, settings: dict, secrets: dict | None = None) -> ProgramFailed:
    with pytest.raises(ProgramFailed) as caught:
        run(stack, settings, secrets)
    error = caught.value
    assert error.error_type == CONFIG_ERROR, error.details
    assert error.result.resources == [], "resources were registered before the config check"
    return error


@pytest.mark.parametrize(
    ("stack", "settings", "secrets", "key", "fix"),
    [
        ("dev", {"webReplica": 2}, None, "webReplica", "did you mean webReplicas?"),
        (
            "prod",
            {"webReplicas": -1, "tlsSelfSigned": True},
            PROD_SECRETS,
            "webReplicas",
            "pulumi config set webReplicas 2",
        ),
        ("dev", {"imageTag": "v1:bad"}, None, "imageTag", "pulumi config set imageTag 1.4.2"),
        (
            "prod",
            {"appNodeLabel": "app", "tlsSelfSigned": True},
            PROD_SECRETS,
            "appNodeLabel",
            "pulumi config set appNodeLabel djangostack.app=true",
        ),
        ("dev", {"webMaxReplicasPerNode": 1}, None, "webMaxReplicasPerNode", "only the swarm"),
        (
            "prod",
            {"imageTag": "latest", "tlsSelfSigned": True},
            PROD_SECRETS,
            "imageTag",
            "never 'latest'",
        ),
        (
            "prod",
            {"tlsCertFile": "missing/site.crt", "tlsKeyFile": "missing/site.key"},
            PROD_SECRETS,
            "tlsCertFile",
            "pulumi config set tlsCertFile certs/site.crt",
        ),
        (
            "prod",
            {"httpsPort": 70000, "tlsSelfSigned": True},
            PROD_SECRETS,
            "httpsPort",
            "pulumi config set httpsPort 443",
        ),
        ("dev", {"devPort": 0}, None, "devPort", "pulumi config set devPort 8000"),
        (
            "prod",
            {"tlsSelfSigned": True},
            None,
            "djangoSecretKey",
            "pulumi config set --secret djangoSecretKey",
        ),
        (
            "prod",
            {"djangoSecretKey": SECRET_KEY, "tlsSelfSigned": True},
            None,
            "djangoSecretKey",
            "must be a secret",
        ),
        ("prod", {}, PROD_SECRETS, "tlsCertFile", "tlsSelfSigned true"),
        ("dev", {"orchestrator": "swarm"}, None, "orchestrator", "containers"),
        ("dev", {"postgresImage": "Postgres:16"}, None, "postgresImage", "postgres:16-bookworm"),
        ("dev", {"appDir": "no-such-dir"}, None, "appDir", "does not exist"),
    ],
)
def test_bad_config_fails_before_any_resource(stack, settings, secrets, key, fix):
    message = failure(stack, settings, secrets).message
    line = next((x for x in message.splitlines() if f"djangostack:{key}:" in x), None)
    assert line is not None, message
    assert "Fix:" in line
    assert fix in line


def test_every_problem_is_reported_at_once():
    message = failure("dev", {"webReplicas": 0, "httpPort": "http", "profile": "staging"}).message
    for key in ("webReplicas", "httpPort", "profile"):
        assert f"djangostack:{key}:" in message


def test_tls_key_without_cert_is_rejected(tmp_path: Path):
    key = tmp_path / "site.key"
    key.write_text("key")
    message = failure("prod", {"tlsKeyFile": str(key)}, PROD_SECRETS).message
    assert "djangostack:tlsCertFile: tlsCertFile and tlsKeyFile must be set together" in message


def test_relative_paths_are_resolved_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the child inherits this working directory
    result = run("dev")
    build = app_image(result).plain_inputs
    assert build["context"]["location"] == str(ROOT / "app")
    assert build["dockerfile"]["location"] == str(ROOT / "docker" / "Dockerfile")


def _doc_keys() -> list[str]:
    text = (ROOT / "docs" / "config.md").read_text()
    return re.findall(r"^\| `([A-Za-z]+)` \|", text, flags=re.MULTILINE)


def test_schema_code_and_docs_declare_the_same_keys():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(config.KEYS)
    assert sorted(_doc_keys()) == sorted(config.KEYS)
    for key, schema in declared.items():
        if key in config.OBJECT_KEYS:  # untyped, default "" (unset): see Pulumi.yaml
            assert set(schema) == {"default", "description"}, key
            assert schema["default"] == "", key
            continue
        assert {"type", "default", "description"} <= set(schema), key
        assert schema["type"] in ("string", "integer", "boolean", "array"), key
        if schema["type"] == "array":  # Pulumi requires the element type
            assert schema.get("items") == {"type": "string"}, key
    assert set(config.KEYS) >= config.SECRET_KEYS


def test_stack_files_only_use_known_keys():
    for path in ROOT.glob("Pulumi.*.yaml"):
        keys = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        assert {k.split(":", 1)[1] for k in keys} <= set(config.KEYS), path.name
