"""Reading the raw stack configuration: the key tables (every `djangostack:*` key with an
example value for its fix hint; secret, memory, list and object keys), the grammars of image
references, registries, host names, name prefixes and node labels, and `_Reader`, which reads
raw values and collects every problem instead of stopping at the first.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from components.envmap import ENV_NAME_RE, RESERVED_ENV, STACK_VALUES, EnvTemplate, parse_template

PROJECT = "djangostack"
ROOT = Path(__file__).resolve().parents[1]  # the directory of Pulumi.yaml

# Every key this program reads, with an example value for the "Fix:" hint.
KEYS: dict[str, str] = {
    "profile": "prod",
    "orchestrator": "swarm",
    "namePrefix": "shop-prod",
    "appDir": "app",
    "requirementsFile": "requirements/production.txt",
    "djangoSettingsModule": "config.settings.production",
    "celeryApp": "config",
    "healthPath": "/health/",
    "staticUrl": "/static/",
    "mediaUrl": "/media/",
    "dockerfile": "docker/Dockerfile",
    "baseImage": "python:3.13-slim",
    "buildPackages": "gettext",
    "extraPackages": "redis==8.1.0",
    "buildCommands": "'python manage.py compilemessages'",
    "releaseCommands": "'python manage.py createcachetable'",
    "runtimePackages": "libjpeg62-turbo",
    "imageName": "djangostack/web",
    "imageTag": "1.4.2",
    "registry": "registry.example.com:5000",
    "registryUsername": "deploy",
    "registryPassword": "<password>",
    "buildOnPreview": "false",
    "pipConfigFile": "/etc/pip.conf",
    "caBundleFile": "/etc/ssl/certs/ca-certificates.crt",
    "cacheRef": "registry.example.com:5000/djangostack/web:buildcache",
    "buildxBuilder": "djangostack",
    "domain": "shop.example.com",
    "httpPort": "80",
    "httpsPort": "443",
    "publicBindAddress": "0.0.0.0",  # noqa: S104 - an example value
    "devPort": "8000",
    "webReplicas": "2",
    "appNodeLabel": "djangostack.app=true",
    "webMaxReplicasPerNode": "2",
    "webWorkers": "3",
    "webHealthInterval": "2s",
    "releaseParallelism": "1",
    "releaseDelay": "5s",
    "releaseMonitor": "10s",
    "celeryConcurrency": "2",
    "postgresImage": "postgres:16-bookworm",
    "redisImage": "redis:7.4-bookworm",
    "nginxImage": "nginxinc/nginx-unprivileged:1.27-bookworm",
    "prometheusImage": "prom/prometheus:v2.53.2",
    "postgresDb": "app",
    "postgresUser": "app",
    "postgresPassword": "<password>",
    "djangoSecretKey": "<50+ random characters>",
    "tlsCertFile": "certs/site.crt",
    "tlsKeyFile": "certs/site.key",
    "tlsSelfSigned": "true",
    "acme": "true",
    "acmeEmail": "ops@example.com",
    "acmeDirectory": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "acmeNames": "www.shop.example.com",
    "acmeCaBundleFile": "certs/acme-ca.pem",
    "backupRetention": "7",
    "backupSchedule": "24h",
    "backupRepository": "rest:https://backups.example.com:8000/shop",
    "backupRepositoryPassword": "<password>",
    "backupRepositoryEnv": "<value>",
    "monitoring": "true",
    "maintenance": "true",
    "maintenancePage": "templates/maintenance.html",
    "maintenanceAllow": "203.0.113.0/24",
    "webMemoryMb": "512",
    "celeryMemoryMb": "512",
    "postgresMemoryMb": "1024",
    "redisMemoryMb": "256",
    "nginxMemoryMb": "128",
    "env": "'${postgresHost}'",
    "secretEnv": "'${postgresPassword}'",
    "processes": "python",  # the hint sets one element: --path 'processes.NAME.command[0]'
}
SECRET_KEYS = frozenset(
    {
        "registryPassword",
        "postgresPassword",
        "djangoSecretKey",
        "secretEnv",
        "backupRepositoryPassword",
        "backupRepositoryEnv",
    }
)
MEMORY_KEYS = (
    "webMemoryMb",
    "celeryMemoryMb",
    "postgresMemoryMb",
    "redisMemoryMb",
    "nginxMemoryMb",
)
MIN_MEMORY_MB, MAX_MEMORY_MB = 64, 65536
# Array keys: their fix hint sets one element with `--path`.
LIST_KEYS = frozenset(
    {
        "buildPackages",
        "runtimePackages",
        "extraPackages",
        "buildCommands",
        "releaseCommands",
        "maintenanceAllow",
        "acmeNames",
    }
)
# Object keys: Pulumi.yaml declares them untyped with the default "" (unset; see its comment);
# a set value reaches the program as JSON text.
OBJECT_KEYS = frozenset({"env", "secretEnv", "processes", "backupRepositoryEnv"})
# Keys Pulumi.yaml declares untyped with the default "" so "unset" differs from "set empty":
# the object keys, and buildCommands (unset: detected; []: none).
UNTYPED_KEYS = OBJECT_KEYS | {"buildCommands"}
# Object keys whose fix hint sets one entry with `--path`.
ENV_KEYS = ("env", "secretEnv", "backupRepositoryEnv")
# Debian policy 5.6.1 (package names). The names reach `apt-get install` through a shell in the
# Dockerfile: this grammar (no space, quote, `$`, `;`, glob) is what keeps anything else out.
DEBIAN_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")

# Docker's reference grammar (distribution/reference, regexp.go), unanchored pieces.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"  # noqa: E501
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE_RE = re.compile(rf"^{_NAME}(?::{_TAG})?(?:@{_DIGEST})?$")
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
REGISTRY_RE = re.compile(rf"^{_DOMAIN}$")
TAG_RE = re.compile(rf"^{_TAG}$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
# A Swarm node label `key=value`: Docker's label keys (letters, digits, . _ -), a plain value.
NODE_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*=[A-Za-z0-9._-]+$")
IPV4_RE = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$")


def schema(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml (type, default, description, secret per key)."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    return project.get("config") or {}


def _set_config() -> dict[str, Any]:
    """Every config value the engine handed to the program, by full key."""
    values = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    return values


def _is_secret(full_key: str) -> bool:
    return (
        runtime_config.is_config_secret(full_key)
        or full_key in runtime_config.get_config_secret_keys_env()
    )


class _Reader:
    """Reads raw values and collects every problem instead of stopping at the first."""

    def __init__(self, stack: str, root: Path):
        self.stack = stack
        self.root = root
        self.problems: list[str] = []
        declared = schema(root)
        self.defaults = {k: v.get("default") for k, v in declared.items() if isinstance(v, dict)}
        self.values = {
            k[len(PROJECT) + 1 :]: v
            for k, v in _set_config().items()
            if k.startswith(f"{PROJECT}:")
        }

    def problem_at(self, path: str, what: str, example: str) -> None:
        """A problem inside an object key (`processes.worker.replicas`): the fix sets that
        path with `--path`."""
        self.problems.append(
            f"{PROJECT}:{path}: {what}. Fix: pulumi config set --path '{path}' {example}"
        )

    def problem(
        self,
        key: str,
        what: str,
        example: str | None = None,
        index: int = 0,
        name: str = "NAME",
        fix: str | None = None,
    ) -> None:
        """Record a problem of `key` with its fix: `fix`, else a `pulumi config set` of
        `example` (default: KEYS[key]); list keys set element `index`, object keys entry
        `name`."""
        if fix is None:
            secret = "--secret " if key in SECRET_KEYS else ""
            target = key
            if key in LIST_KEYS:
                target = f"--path '{key}[{index}]'"
            elif key in ENV_KEYS:
                target = f"--path '{key}.{name}'"
            fix = f"pulumi config set {secret}{target} {example or KEYS[key]}"
        self.problems.append(f"{PROJECT}:{key}: {what}. Fix: {fix}")

    def unknown_keys(self) -> None:
        for key in sorted(set(self.values) - set(KEYS)):
            close = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.problems.append(
                f"{PROJECT}:{key}: unknown setting{hint}. Fix: pulumi config rm {key}"
                + (f" && pulumi config set {close[0]} <value>" if close else "")
            )

    def raw(self, key: str) -> str:
        value = self.values.get(key, self.defaults.get(key))
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def text(self, key: str) -> str:
        return self.raw(key).strip()

    def integer(self, key: str, low: int, high: int, hint: str = "") -> int:
        raw = self.text(key)
        if not re.fullmatch(r"[+-]?\d+", raw):
            self.problem(key, f"must be a whole number, got {raw!r}")
            return low
        value = int(raw)
        if not low <= value <= high:
            self.problem(key, f"must be between {low} and {high}{hint}, got {value}")
            return low
        return value

    def boolean(self, key: str) -> bool:
        raw = self.text(key).lower()
        if raw not in ("true", "false"):
            self.problem(key, f"must be true or false, got {raw!r}")
            return False
        return raw == "true"

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, got {value!r}")
            return choices[0]
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        value = self.raw(key)
        if not value:
            return None
        if not _is_secret(f"{PROJECT}:{key}"):
            self.problem(key, "is set in plain text; it must be a secret")
            return None
        return pulumi.Output.secret(value)

    def path(self, key: str, *, directory: bool = False) -> Path | None:
        """An existing, readable file (or directory) relative to the project root, or None."""
        raw = self.text(key)
        if not raw:
            return None
        path = (self.root / raw).resolve()
        kind = "directory" if directory else "file"
        exists = path.is_dir() if directory else path.is_file()
        if not exists:
            self.problem(key, f"{kind} {path} does not exist")
        elif not os.access(path, os.R_OK):
            self.problem(key, f"{kind} {path} is not readable")
        return path

    def strings(self, key: str, what: str = "strings") -> tuple[str, ...] | None:
        """A list of strings. The engine hands arrays to the program as JSON text
        (`pulumi config set --path 'key[0]' value`); Pulumi.yaml's default is a list, or ""
        for an untyped key: unset, None."""
        value = self.values.get(key, self.defaults.get(key))
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):  # not JSON: reported below
                value = json.loads(value)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(key, f"must be a list of {what}, got {value!r}")
            return ()
        return tuple(value)

    def packages(self, key: str) -> tuple[str, ...]:
        """A list of Debian package names."""
        value = self.strings(key, "Debian package names") or ()
        for index, name in enumerate(value):
            if not DEBIAN_PACKAGE_RE.match(name):
                what = f"{name!r} is not a Debian package name (^[a-z0-9][a-z0-9+.-]+$)"
                self.problem(key, what, index=index)
        return tuple(value)

    def variables(self, key: str) -> dict[str, Any]:
        """An object of environment variable names -> raw values; unset (Pulumi.yaml's
        short-form default is ""): empty. The engine hands objects to the program as JSON text
        (`pulumi config set --path 'env.NAME' value`)."""
        value = self.values.get(key, self.defaults.get(key))
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):  # not JSON: reported below
                value = json.loads(value)
        if not isinstance(value, dict):
            self.problem(key, f"must be an object of variable names, got {value!r}")
            return {}
        return value

    def env_map(self, key: str) -> dict[str, EnvTemplate]:
        """An object of environment variable names -> templates (`variables`); `--path`
        turns true/false and numbers into JSON booleans and numbers: they become their text."""
        value = self.variables(key)
        templates: dict[str, EnvTemplate] = {}
        for name, raw in sorted(value.items()):
            if not ENV_NAME_RE.match(name):
                what = f"{name!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                self.problem(key, what, fix=f"pulumi config rm --path '{key}.{name}'")
                continue
            if name in RESERVED_ENV or name.startswith("DJANGOSTACK_"):
                why = RESERVED_ENV.get(name, "the product's own variables start with DJANGOSTACK_")
                self.problem(
                    key,
                    f"{name} is set by the product ({why})",
                    fix=f"pulumi config rm --path '{key}.{name}'",
                )
                continue
            if isinstance(raw, bool):
                raw = "true" if raw else "false"
            elif isinstance(raw, int | float):
                raw = str(raw)
            if not isinstance(raw, str):
                self.problem(key, f"{name} must be a string, got {raw!r}", name=name)
                continue
            try:
                template = parse_template(raw)
            except ValueError as error:
                self.problem(key, f"{name}: {error}", name=name)
                continue
            unknown = [ref for ref in template.refs if ref not in STACK_VALUES]
            if unknown:
                known = ", ".join(sorted(STACK_VALUES))
                listed = ", ".join(f"${{{ref}}}" for ref in unknown)
                self.problem(
                    key, f"{name}: unknown stack value {listed}; known: {known}", name=name
                )
                continue
            templates[name] = template
        return templates

    def reference(self, key: str) -> str:
        value = self.text(key)
        if not REFERENCE_RE.match(value):
            self.problem(key, f"is not a valid image reference (name[:tag][@digest]): {value!r}")
        return value
