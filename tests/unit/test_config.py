"""Bad configuration fails before any resource exists, naming the key and the fix; the config
schema in Pulumi.yaml, components/config.py and docs/config.md agree; what a key means when it
is left at its default (Pulumi.yaml's defaults reach the program as the CLI hands them over)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import (
    POSTGRES_PASSWORD,
    PROD_TLS,
    SECRET_KEY,
    SECRETS,
    TLS_CERT,
    TLS_KEY,
    app_image,
    by_role,
    failure,
    holder_files,
    holder_of,
    problem_line,
    run,
)

from components import config
from components.image import CA_BUNDLE_IDS
from tests.program import ROOT, project_defaults

ONLY_PASSWORD = {"postgresPassword": POSTGRES_PASSWORD}
CACHE_REF = "registry.example.com:5000/djangostack/web:buildcache"


@pytest.mark.parametrize(
    ("stack", "settings", "secrets", "key", "fix"),
    [
        ("dev", {"webReplica": 2}, None, "webReplica", "did you mean webReplicas?"),
        (
            "prod",
            {"webReplicas": -1, **PROD_TLS},
            None,
            "webReplicas",
            "pulumi config set webReplicas 2",
        ),
        ("dev", {"imageTag": "v1:bad"}, None, "imageTag", "pulumi config set imageTag 1.4.2"),
        (
            "prod",
            {"appNodeLabel": "app", **PROD_TLS},
            None,
            "appNodeLabel",
            "pulumi config set appNodeLabel djangostack.app=true",
        ),
        ("dev", {"webMaxReplicasPerNode": 1}, None, "webMaxReplicasPerNode", "only the swarm"),
        ("prod", {"imageTag": "latest", **PROD_TLS}, None, "imageTag", "never 'latest'"),
        (
            "prod",
            {"tlsCertFile": "missing/site.crt", "tlsKeyFile": "missing/site.key"},
            None,
            "tlsCertFile",
            "pulumi config set tlsCertFile certs/site.crt",
        ),
        (
            "prod",
            {"httpsPort": 70000, **PROD_TLS},
            None,
            "httpsPort",
            "pulumi config set httpsPort 443",
        ),
        ("dev", {"devPort": 0}, None, "devPort", "pulumi config set devPort 8000"),
        (
            "prod",
            PROD_TLS,
            ONLY_PASSWORD,
            "djangoSecretKey",
            "pulumi config set --secret djangoSecretKey",
        ),
        (
            "prod",
            {"djangoSecretKey": SECRET_KEY, **PROD_TLS},
            ONLY_PASSWORD,
            "djangoSecretKey",
            "must be a secret",
        ),
        (
            "dev",
            {},
            {**SECRETS, "djangoSecretKey": "django-insecure-" + "x1y2z3" * 10},
            "djangoSecretKey",
            "must be at least 50 characters, 5 distinct",
        ),
        (
            "dev",
            {"postgresPassword": POSTGRES_PASSWORD},
            {"djangoSecretKey": SECRET_KEY},
            "postgresPassword",
            "must be a secret",
        ),
        ("prod", {}, None, "tlsCertFile", "tlsSelfSigned true"),
        ("dev", {"orchestrator": "swarm"}, None, "orchestrator", "containers"),
        ("dev", {"postgresImage": "Postgres:16"}, None, "postgresImage", "postgres:16-bookworm"),
        ("dev", {"appDir": "no-such-dir"}, None, "appDir", "does not exist"),
        ("dev", {"caBundleFile": "no-such.crt"}, None, "caBundleFile", "does not exist"),
        (
            "dev",
            {"cacheRef": CACHE_REF},
            None,
            "buildxBuilder",
            "pulumi config set buildxBuilder djangostack",
        ),
        (
            "dev",
            {"cacheRef": "Registry/Bad Ref", "buildxBuilder": "djangostack"},
            None,
            "cacheRef",
            f"pulumi config set cacheRef {CACHE_REF}",
        ),
    ],
)
def test_bad_config_fails_before_any_resource(stack, settings, secrets, key, fix):
    line = problem_line(failure(stack, settings, secrets).message, key)
    assert fix in line


def test_every_problem_is_reported_at_once():
    message = failure("dev", {"webReplicas": 0, "httpPort": "http", "profile": "staging"}).message
    for key in ("webReplicas", "httpPort", "profile"):
        assert f"djangostack:{key}:" in message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_missing_secrets_name_the_deploy_command_that_generates_them(stack):
    message = failure(stack, PROD_TLS if stack == "prod" else {}, secrets={}).message
    for key in ("postgresPassword", "djangoSecretKey"):
        line = problem_line(message, key)
        assert f"is required; `bash scripts/deploy.sh {stack}` generates it" in line
        assert f"Fix: pulumi config set --secret {key} " in line


def test_tls_key_without_cert_is_rejected(tmp_path: Path):
    key = tmp_path / "site.key"
    key.write_text("key")
    message = failure("prod", {"tlsKeyFile": str(key)}).message
    assert "djangostack:tlsCertFile: tlsCertFile and tlsKeyFile must be set together" in message


def test_self_signed_tls_uses_the_pair_the_deploy_command_made(monkeypatch, tmp_path: Path):
    """tlsSelfSigned reads `.djangostack/<stack>/tls.{crt,key}` under the project root (made by
    the deploy command); missing, the preview fails naming that command. The root is moved
    to a temporary directory: nothing is written into the repository."""
    in_repository = config.self_signed_pair
    assert in_repository(ROOT, "prod") == (
        ROOT / ".djangostack" / "prod" / "tls.crt",
        ROOT / ".djangostack" / "prod" / "tls.key",
    )
    monkeypatch.setattr(
        config, "self_signed_pair", lambda _root, stack: in_repository(tmp_path, stack)
    )
    cert, key = in_repository(tmp_path, "prod")
    line = problem_line(failure("prod", {"tlsSelfSigned": True}).message, "tlsSelfSigned")
    assert f"the self-signed pair {cert} and {key} does not exist yet" in line
    assert "Fix: bash scripts/deploy.sh prod" in line

    cert.parent.mkdir(parents=True)
    cert.write_text(TLS_CERT)
    key.write_text(TLS_KEY)
    result = run("prod", {"tlsSelfSigned": True})
    (nginx,) = by_role(result, "nginx")
    files = holder_files(holder_of(result, nginx))
    assert (files["tls.crt"], files["tls.key"]) == (TLS_CERT, TLS_KEY)
    assert result.outputs["tlsCertificate"] == TLS_CERT


def test_unset_object_keys_arrive_as_empty_text_and_mean_the_default(dev):
    """The CLI hands every Pulumi.yaml default to the program: `processes`, `env` and
    `secretEnv` arrive as "" (unset), so the default Celery worker runs and nothing is mapped."""
    defaults = project_defaults()
    assert {key: defaults[key] for key in config.OBJECT_KEYS} == dict.fromkeys(
        config.OBJECT_KEYS, ""
    )
    result = run("dev", dict.fromkeys(config.OBJECT_KEYS, ""))
    (celery,) = by_role(result, "celery")
    assert celery.plain_inputs["command"][1:5] == ["celery", "-A", "config", "worker"]
    assert result.outputs["processNames"] == {"celery": ["djangostack-dev-celery"]}
    assert result.outputs["processNames"] == dev.outputs["processNames"]


def certificates(count: int, body_lines: int = 1) -> str:
    body = "\n".join(["QUJD" * 16] * body_lines)
    return "".join(
        f"-----BEGIN CERTIFICATE-----\n{n}{body}\n-----END CERTIFICATE-----\n" for n in range(count)
    )


def build_secrets(settings: dict) -> dict[str, str]:
    image = app_image(run("dev", settings))
    if image.plain_inputs.get("secrets"):
        assert "secrets" in image.secret_inputs  # a build secret is a Pulumi secret too
    return image.plain_inputs.get("secrets") or {}


def test_the_build_trusts_the_hosts_ca_bundle_unless_told_otherwise(monkeypatch, tmp_path: Path):
    """caBundleFile unset: the deploy host's bundle when it has one (pip in the build then
    trusts what the host trusts, a TLS-inspecting proxy's CA included), in parts when it is as
    large as a host's usually is; `none`: no bundle; a file: that file."""
    host = tmp_path / "host-ca-certificates.crt"
    host.write_text(certificates(120, body_lines=30))  # about 240 KB, like a host's bundle
    monkeypatch.setattr(config, "HOST_CA_BUNDLE", host)
    parts = build_secrets({})
    assert 2 < len(parts) <= len(CA_BUNDLE_IDS)
    assert "".join(parts[secret_id] for secret_id in CA_BUNDLE_IDS if secret_id in parts) == (
        host.read_text()
    )
    assert build_secrets({"caBundleFile": "none"}) == {}
    own = tmp_path / "proxy-ca.crt"
    own.write_text(certificates(1))
    assert build_secrets({"caBundleFile": str(own)}) == {"ca_bundle": own.read_text()}
    monkeypatch.setattr(config, "HOST_CA_BUNDLE", tmp_path / "no-such-bundle.crt")
    assert build_secrets({}) == {}


def test_a_build_cache_in_a_registry_uses_the_named_builder():
    result = run("dev", {"cacheRef": CACHE_REF, "buildxBuilder": "djangostack"})
    i = app_image(result).plain_inputs
    assert i["builder"] == {"name": "djangostack"} and i["exec"] is True
    assert i["cacheFrom"] == [{"registry": {"ref": CACHE_REF}}]
    ((cache_to,),) = [[c["registry"] for c in i["cacheTo"]]]
    assert (cache_to["ref"], cache_to["mode"]) == (CACHE_REF, "max")


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
        if key in config.UNTYPED_KEYS:  # untyped, default "" (unset): see Pulumi.yaml
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


def test_release_durations_are_checked_with_their_fix():
    message = failure(
        "prod",
        {**PROD_TLS, "releaseDelay": "soon", "releaseMonitor": "20m", "webHealthInterval": "0s"},
    ).message
    assert "must be a duration like 3s" in problem_line(message, "releaseDelay")
    assert "between 1 and 600 seconds" in problem_line(message, "releaseMonitor")
    assert "between 1 and 60 seconds" in problem_line(message, "webHealthInterval")
