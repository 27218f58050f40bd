"""Typed, validated stack configuration.

`load_config()` reads every `djangostack:*` key once, checks all of them and raises a single
`ConfigError` naming each bad key and the command that fixes it, before any resource exists.
The schema (type, default, description, secret flag) lives in `Pulumi.yaml`; this module
knows the key names, how to validate them, and an example value for each fix hint.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from components import deps, project

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
    "dockerfile": "docker/Dockerfile",
    "baseImage": "python:3.13-slim",
    "buildPackages": "gettext",
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
    "domain": "shop.example.com",
    "httpPort": "80",
    "httpsPort": "443",
    "publicBindAddress": "0.0.0.0",  # noqa: S104 - an example value
    "devPort": "8000",
    "webReplicas": "2",
    "webWorkers": "3",
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
    "backupRetention": "7",
    "monitoring": "true",
    "webMemoryMb": "512",
    "celeryMemoryMb": "512",
    "postgresMemoryMb": "1024",
    "redisMemoryMb": "256",
    "nginxMemoryMb": "128",
    "processes": "python",  # the hint sets one element: --path 'processes.NAME.command[0]'
}
SECRET_KEYS = frozenset({"registryPassword", "postgresPassword", "djangoSecretKey"})
MEMORY_KEYS = (
    "webMemoryMb",
    "celeryMemoryMb",
    "postgresMemoryMb",
    "redisMemoryMb",
    "nginxMemoryMb",
)
MIN_MEMORY_MB, MAX_MEMORY_MB = 64, 65536
# Array keys: their fix hint sets one element with `--path`.
LIST_KEYS = frozenset({"buildPackages", "runtimePackages"})
# Object keys: Pulumi.yaml declares no type for them (Pulumi's project schema types only
# string, integer, boolean and array); they reach the program as JSON text.
OBJECT_KEYS = frozenset({"processes"})
# Process types (config `processes`): the name ends up in Docker and Pulumi names.
PROCESS_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
PROCESS_FIELDS = ("command", "replicas", "memoryMb", "health", "singleton", "egress")
# `<namePrefix>-<name>` of a process must not be another Docker object of the stack.
RESERVED_PROCESS_NAMES = frozenset(
    {
        "web", "migrate", "static", "postgres", "pgdata", "redis", "redisdata", "backup",
        "backups", "nginx", "prometheus", "edge", "backend", "egress", "media",
    }
)  # fmt: skip
CELERY_PROCESS = "celery"  # the default process: today's Celery worker, same names
MAX_PROCESS_REPLICAS = 64
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
IPV4_RE = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$")


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; the engine prints RunError messages without a traceback."""


@dataclass(frozen=True)
class ProcessConfig:
    """One long-running non-web process type (config `processes`, docs/config.md)."""

    name: str  # Docker name `<namePrefix>-<name>`, Pulumi name `djangostack-<name>`
    command: tuple[str, ...]
    replicas: int
    memory_mb: int
    # Docker CMD form (("CMD", ...) or ("CMD-SHELL", "...")); empty: the product's default
    # (`celery_worker_app` finds it for a Celery worker).
    health: tuple[str, ...]
    singleton: bool  # never two tasks at once, even during a rollout
    egress: bool  # also on the `egress` network (a route out)


def celery_worker_app(command: tuple[str, ...], celery_app: str) -> str | None:
    """What a `celery ... worker` command loads (its `-A`/`--app`, else the project's
    `celery_app`): the product has a health check for such a worker. None for any other
    command, or a worker whose app is unknown."""
    if command[:1] != ("celery",) or "worker" not in command:
        return None
    for index, arg in enumerate(command):
        if arg in ("-A", "--app") and index + 1 < len(command):
            return command[index + 1]
        if arg.startswith("--app="):
            return arg.removeprefix("--app=")
    return celery_app or None


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    root: Path
    profile: str  # "dev" | "prod"
    orchestrator: str  # "containers" | "swarm"
    name_prefix: str  # prefix of every Docker object name
    app_dir: Path
    dependencies: deps.Dependencies  # how appDir declares its Python dependencies
    django_settings_module: str  # DJANGO_SETTINGS_MODULE of the image and every container
    celery_app: str  # what `celery -A` loads; empty: the project has no Celery app
    health_path: str  # the web probe's path; empty: the image's own health endpoint
    static_url: str  # nginx's static location: the project's STATIC_URL, "/.../"
    dockerfile: Path
    base_image: str
    build_packages: tuple[str, ...]  # Debian packages of the builder stage only
    runtime_packages: tuple[str, ...]  # Debian packages of every stage (runtime, development)
    image_name: str
    image_tag: str
    registry: str
    registry_username: str
    registry_password: pulumi.Output[str] | None
    build_on_preview: bool
    pip_config_file: Path | None
    ca_bundle_file: Path | None
    cache_ref: str
    domain: str
    http_port: int
    https_port: int
    public_bind_address: str
    dev_port: int
    web_replicas: int
    web_workers: int
    celery_concurrency: int
    postgres_image: str
    redis_image: str
    nginx_image: str
    prometheus_image: str
    postgres_db: str
    postgres_user: str
    postgres_password: pulumi.Output[str] | None  # None: generated
    django_secret_key: pulumi.Output[str] | None  # None: generated (dev only)
    tls_cert_file: Path | None
    tls_key_file: Path | None
    tls_self_signed: bool
    backup_retention: int
    monitoring: bool
    memory_mb: dict[str, int]  # role -> MiB
    # Long-running non-web processes, in config order; default: the Celery worker `celery`
    # when the project has a Celery app.
    processes: tuple[ProcessConfig, ...] = ()

    @property
    def is_prod(self) -> bool:
        return self.profile == "prod"

    @property
    def image_repository(self) -> str:
        return f"{self.registry}/{self.image_name}" if self.registry else self.image_name


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

    def problem(self, key: str, what: str, example: str | None = None, index: int = 0) -> None:
        secret = "--secret " if key in SECRET_KEYS else ""
        target = f"--path '{key}[{index}]'" if key in LIST_KEYS else key
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

    def packages(self, key: str) -> tuple[str, ...]:
        """A list of Debian package names. The engine hands arrays to the program as JSON text
        (`pulumi config set --path 'key[0]' name`); Pulumi.yaml's default is a list."""
        value = self.values.get(key, self.defaults.get(key))
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):  # not JSON: reported below
                value = json.loads(value) if value.strip() else []
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            self.problem(key, f"must be a list of Debian package names, got {value!r}")
            return ()
        for index, name in enumerate(value):
            if not DEBIAN_PACKAGE_RE.match(name):
                what = f"{name!r} is not a Debian package name (^[a-z0-9][a-z0-9+.-]+$)"
                self.problem(key, what, index=index)
        return tuple(value)

    def reference(self, key: str) -> str:
        value = self.text(key)
        if not REFERENCE_RE.match(value):
            self.problem(key, f"is not a valid image reference (name[:tag][@digest]): {value!r}")
        return value


def load_config(root: Path = ROOT) -> StackConfig:
    """Read and validate the whole stack configuration; raise ConfigError listing all problems."""
    stack = pulumi.get_stack()
    r = _Reader(stack, root)
    r.unknown_keys()

    profile = r.choice("profile", ("dev", "prod"))
    prod = profile == "prod"

    orchestrator = r.text("orchestrator") or "auto"
    if orchestrator == "auto":
        orchestrator = "swarm" if prod else "containers"
    elif orchestrator not in ("containers", "swarm"):
        r.problem("orchestrator", f"must be auto, containers or swarm, got {orchestrator!r}")
    elif orchestrator == "swarm" and not prod:
        r.problem("orchestrator", "the dev profile runs plain containers only", "containers")

    name_prefix = r.text("namePrefix") or f"{PROJECT}-{stack}".lower()
    if not PREFIX_RE.match(name_prefix):
        r.problem("namePrefix", f"must be lowercase [a-z0-9_.-], max 40, got {name_prefix!r}")

    image_name = r.text("imageName")
    if not REPOSITORY_RE.match(image_name):
        r.problem(
            "imageName", f"is not a valid repository name (lowercase, / separated): {image_name!r}"
        )
    image_tag = r.text("imageTag")
    if not TAG_RE.match(image_tag):
        r.problem("imageTag", f"is not a valid Docker tag ([A-Za-z0-9_.-], max 128): {image_tag!r}")
    elif prod and image_tag == "latest":
        r.problem("imageTag", "must be an immutable version in prod, never 'latest'")
    registry = r.text("registry")
    if registry and not REGISTRY_RE.match(registry):
        r.problem("registry", f"is not a registry host[:port]: {registry!r}")
    registry_password = r.secret("registryPassword")
    registry_username = r.text("registryUsername")
    if bool(registry_username) != bool(registry_password):
        r.problem("registryPassword", "registryUsername and registryPassword go together")

    app_dir = r.path("appDir", directory=True) or root / "app"
    dependencies = _dependencies(r, app_dir)
    django_settings_module, celery_app = _django_project(r, app_dir)
    static_url = _static_url(r, app_dir, django_settings_module, prod)
    health_path = r.text("healthPath")
    if health_path and not re.fullmatch(r"/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*", health_path):
        r.problem("healthPath", f"must be a URL path starting with /, got {health_path!r}")
    dockerfile = r.path("dockerfile")
    if dockerfile is None:
        r.problem("dockerfile", "is required")
        dockerfile = root / "docker" / "Dockerfile"

    http_port = r.integer("httpPort", 1, 65535)
    https_port = r.integer("httpsPort", 1, 65535)
    dev_port = r.integer("devPort", 1, 65535)
    if len({http_port, https_port}) < 2:
        r.problem("httpsPort", f"must differ from httpPort ({http_port})", "443")
    public_bind_address = r.text("publicBindAddress")
    if not IPV4_RE.match(public_bind_address):
        r.problem("publicBindAddress", f"must be an IPv4 address, got {public_bind_address!r}")

    domain = r.text("domain")
    if not HOSTNAME_RE.match(domain):
        r.problem("domain", f"is not a valid host name: {domain!r}")

    web_replicas = r.integer("webReplicas", 1, 64)
    if prod and web_replicas == 1:
        pulumi.log.warn(
            f"{PROJECT}:webReplicas is 1 in prod: a release or a crash briefly leaves no web "
            "task. Recommended: pulumi config set webReplicas 2"
        )

    tls_cert_file = r.path("tlsCertFile")
    tls_key_file = r.path("tlsKeyFile")
    if bool(r.text("tlsCertFile")) != bool(r.text("tlsKeyFile")):
        missing = "tlsKeyFile" if r.text("tlsCertFile") else "tlsCertFile"
        r.problem(missing, "tlsCertFile and tlsKeyFile must be set together")
    tls_self_signed = r.boolean("tlsSelfSigned")
    if prod and not r.text("tlsCertFile") and not tls_self_signed:
        r.problem(
            "tlsCertFile",
            "prod serves HTTPS: set a certificate (and tlsKeyFile) "
            "or opt in to a generated one with `pulumi config set tlsSelfSigned true`",
        )

    django_secret_key = r.secret("djangoSecretKey")
    raw_key = r.raw("djangoSecretKey")
    if prod and not raw_key:
        r.problem("djangoSecretKey", "is required in prod")
    elif raw_key and (
        len(raw_key) < 50 or len(set(raw_key)) < 5 or raw_key.startswith("django-insecure-")
    ):
        r.problem(
            "djangoSecretKey",
            "must be at least 50 characters, 5 distinct, without the 'django-insecure-' prefix",
        )

    memory_mb = {}
    for key in MEMORY_KEYS:
        role = key.removesuffix("MemoryMb")
        memory_mb[role] = r.integer(key, MIN_MEMORY_MB, MAX_MEMORY_MB, " MiB")

    celery_concurrency = r.integer("celeryConcurrency", 1, 64)
    processes = _processes(r, celery_app, celery_concurrency, memory_mb["celery"])

    cfg = StackConfig(
        project=PROJECT,
        stack=stack,
        root=root,
        profile=profile,
        orchestrator=orchestrator,
        name_prefix=name_prefix,
        app_dir=app_dir,
        dependencies=dependencies,
        django_settings_module=django_settings_module,
        celery_app=celery_app,
        health_path=health_path,
        static_url=static_url,
        dockerfile=dockerfile,
        base_image=r.reference("baseImage"),
        build_packages=r.packages("buildPackages"),
        runtime_packages=r.packages("runtimePackages"),
        image_name=image_name,
        image_tag=image_tag,
        registry=registry,
        registry_username=registry_username,
        registry_password=registry_password,
        build_on_preview=r.boolean("buildOnPreview"),
        pip_config_file=r.path("pipConfigFile"),
        ca_bundle_file=r.path("caBundleFile"),
        cache_ref=r.text("cacheRef"),
        domain=domain,
        http_port=http_port,
        https_port=https_port,
        public_bind_address=public_bind_address,
        dev_port=dev_port,
        web_replicas=web_replicas,
        web_workers=r.integer("webWorkers", 1, 64),
        celery_concurrency=celery_concurrency,
        postgres_image=r.reference("postgresImage"),
        redis_image=r.reference("redisImage"),
        nginx_image=r.reference("nginxImage"),
        prometheus_image=r.reference("prometheusImage"),
        postgres_db=_identifier(r, "postgresDb"),
        postgres_user=_identifier(r, "postgresUser"),
        postgres_password=r.secret("postgresPassword"),
        django_secret_key=django_secret_key,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        tls_self_signed=tls_self_signed,
        backup_retention=r.integer("backupRetention", 1, 365),
        monitoring=r.boolean("monitoring"),
        memory_mb=memory_mb,
        processes=processes,
    )
    if cfg.cache_ref and not REFERENCE_RE.match(cfg.cache_ref):
        r.problem("cacheRef", f"is not a valid image reference: {cfg.cache_ref!r}")
    if r.problems:
        listing = "\n".join(f"  - {p}" for p in r.problems)
        raise ConfigError(
            f"invalid configuration for stack {stack!r} ({len(r.problems)} problem(s)):\n{listing}"
        )
    return cfg


def _identifier(r: _Reader, key: str) -> str:
    """Postgres names go into URLs and shell commands: keep them to a safe alphabet."""
    value = r.text(key)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        r.problem(key, f"must match [a-z_][a-z0-9_]* (max 63), got {value!r}")
    return value


def _module(r: _Reader, key: str, app_dir: Path, detect: Callable[[], str]) -> str:
    """The key's value, else the detected one; a module that is not a file of the project is a
    problem (a typo would otherwise only show when the first container starts)."""
    value = r.text(key)
    if not value:
        try:
            value = detect()
        except project.DetectionError as error:
            r.problem(key, f"cannot be detected: {error}; set it")
            return KEYS[key]
    if not project.MODULE_RE.match(value):
        r.problem(key, f"must be a dotted Python module path, got {value!r}")
    elif project.module_file(app_dir, value) is None:
        r.problem(key, f"module {value!r} is not in {app_dir} (no .py file or package)")
    return value


def _static_url(r: _Reader, app_dir: Path, settings: str, prod: bool) -> str:
    """nginx's static location: `staticUrl`, else the settings' STATIC_URL (a path; a full URL
    means another server holds the files, which this stack does not support). Only prod runs
    nginx: dev never fails for want of it."""
    value = r.text("staticUrl")
    if not value and app_dir.is_dir():
        try:
            value = project.static_url(app_dir, settings)
        except project.DetectionError as error:
            if prod:
                r.problem("staticUrl", f"cannot be detected: {error}; set it")
            return KEYS["staticUrl"]
    value = value or KEYS["staticUrl"]
    if not re.fullmatch(r"/?[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?", value):
        r.problem("staticUrl", f"must be a URL path such as /static/, got {value!r}")
        return KEYS["staticUrl"]
    return "/" + value.strip("/") + "/"


def _django_project(r: _Reader, app_dir: Path) -> tuple[str, str]:
    """The settings module and the Celery app (components/project.py), detected unless set."""
    if not app_dir.is_dir():
        return KEYS["djangoSettingsModule"], ""  # appDir is already reported
    settings = _module(r, "djangoSettingsModule", app_dir, lambda: project.settings_module(app_dir))
    if not r.text("celeryApp"):
        try:
            if project.celery_app(app_dir, settings) is None:
                # No Celery app: no default worker. A worker started anyway would crash-loop
                # on `celery -A <package>`; `celeryApp` set explicitly still forces one.
                return settings, ""
        except project.DetectionError:
            pass  # several apps: `_module` reports it, naming the key to set
    celery = _module(r, "celeryApp", app_dir, lambda: project.celery_app(app_dir, settings) or "")
    return settings, celery


def _dependencies(r: _Reader, app_dir: Path) -> deps.Dependencies:
    """The project's dependency layout (components/deps.py); a bad one is a config problem, so
    a missing include stops the preview naming its file and line."""
    fallback = deps.Dependencies("requirements", "requirements.txt", ("requirements.txt",))
    if not app_dir.is_dir():
        return fallback  # appDir itself is already reported
    try:
        return deps.detect(app_dir, r.text("requirementsFile"))
    except deps.DependencyError as error:
        r.problem("requirementsFile", str(error))
        return fallback


def _default_processes(
    celery_app: str, concurrency: int, memory_mb: int
) -> tuple[ProcessConfig, ...]:
    """Without `processes`: today's Celery worker when the project has a Celery app."""
    if not celery_app:
        return ()
    command = ("celery", "-A", celery_app, "worker", "--loglevel", "INFO")
    return (
        ProcessConfig(
            name=CELERY_PROCESS,
            command=(*command, "--concurrency", str(concurrency)),
            replicas=1,
            memory_mb=memory_mb,
            health=(),  # the product's Celery ping (components/processes.py)
            singleton=False,
            egress=False,
        ),
    )


def _strings(value: Any) -> tuple[str, ...] | None:
    """`value` as a non-empty tuple of non-empty strings, else None."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(item, str) and item for item in value):
        return None
    return tuple(value)


def _process_integer(r: _Reader, path: str, value: Any, low: int, high: int, example: str) -> int:
    # YAML numbers arrive as int; text ("2", as `pulumi config set --path ... --type string`
    # or a quoted YAML value stores it) is accepted the way flat integer keys accept it.
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        r.problem_at(path, f"must be a whole number, got {value!r}", example)
        return low
    if not low <= value <= high:
        r.problem_at(path, f"must be between {low} and {high}, got {value}", example)
        return low
    return value


def _process_boolean(r: _Reader, path: str, value: Any) -> bool:
    # Text "true"/"false" too, like the flat boolean keys.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        r.problem_at(path, f"must be true or false, got {value!r}", "true")
        return False
    return value


def _process(
    r: _Reader, name: str, spec: Any, celery_app: str, default_memory_mb: int
) -> ProcessConfig | None:
    """One entry of `processes`, validated; None when it is unusable (problems recorded)."""
    base = f"processes.{name}"
    problem = ""
    if not PROCESS_NAME_RE.match(name):
        problem = f"process name {name!r} must match [a-z][a-z0-9-]* (max 30)"
    elif name in RESERVED_PROCESS_NAMES:
        problem = f"process name {name!r} is taken by the stack's own <namePrefix>-{name}"
    if problem:
        r.problems.append(
            f"{PROJECT}:{base}: {problem}. Fix: pulumi config rm --path '{base}' && "
            "pulumi config set --path 'processes.worker.command[0]' python (and its other fields)"
        )
        return None
    if not isinstance(spec, dict):
        r.problem_at(f"{base}.command[0]", f"must be an object, got {spec!r}", "python")
        return None
    for field in sorted(set(spec) - set(PROCESS_FIELDS)):
        close = difflib.get_close_matches(field, PROCESS_FIELDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        r.problems.append(
            f"{PROJECT}:{base}.{field}: unknown field{hint}; known: {', '.join(PROCESS_FIELDS)}. "
            f"Fix: pulumi config rm --path '{base}.{field}'"
        )
    command = _strings(spec.get("command"))
    if command is None:
        what = f"command must be a non-empty list of strings, got {spec.get('command')!r}"
        r.problem_at(f"{base}.command[0]", what, "python")
        command = ("python",)
    replicas = _process_integer(
        r, f"{base}.replicas", spec.get("replicas", 1), 1, MAX_PROCESS_REPLICAS, "1"
    )
    memory_mb = _process_integer(
        r,
        f"{base}.memoryMb",
        spec.get("memoryMb", default_memory_mb),
        MIN_MEMORY_MB,
        MAX_MEMORY_MB,
        "512",
    )
    health: tuple[str, ...] = ()
    if "health" in spec:
        health = _strings(spec["health"]) or ()
        if not health or health[0] not in ("CMD", "CMD-SHELL") or len(health) < 2:
            what = (
                "health must be a Docker health check in CMD form: "
                f'["CMD", "program", ...] or ["CMD-SHELL", "shell line"], got {spec["health"]!r}'
            )
            r.problem_at(f"{base}.health[0]", what, "CMD")
    elif celery_worker_app(command, celery_app) is None:
        what = (
            "health is required: only a Celery worker has a default health check; "
            "give a command that fails when the process is unhealthy"
        )
        r.problem_at(f"{base}.health[0]", what, "CMD")
    singleton = _process_boolean(r, f"{base}.singleton", spec.get("singleton", False))
    if singleton and replicas != 1:
        what = "a singleton runs exactly one task: replicas must be 1 (or singleton false)"
        r.problem_at(f"{base}.replicas", what, "1")
    egress = _process_boolean(r, f"{base}.egress", spec.get("egress", False))
    return ProcessConfig(name, command, replicas, memory_mb, health, singleton, egress)


def _processes(
    r: _Reader, celery_app: str, concurrency: int, default_memory_mb: int
) -> tuple[ProcessConfig, ...]:
    """Config `processes` (an object: name -> process), or the default Celery worker."""
    raw = r.values.get("processes")
    if raw is None:
        return _default_processes(celery_app, concurrency, default_memory_mb)
    value: Any = raw
    if isinstance(raw, str):
        with contextlib.suppress(json.JSONDecodeError):  # not JSON: reported below
            value = json.loads(raw)
    if not isinstance(value, dict):
        r.problem_at(
            "processes.worker.command[0]",
            f"processes must be an object of name -> process, got {raw!r}",
            "python",
        )
        return ()
    found = [_process(r, name, spec, celery_app, default_memory_mb) for name, spec in value.items()]
    return tuple(p for p in found if p is not None)
