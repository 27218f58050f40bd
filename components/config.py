"""Typed, validated stack configuration.

`load_config()` reads every `djangostack:*` key once, checks all of them and raises a single
`ConfigError` naming each bad key and the command that fixes it, before any resource exists.
The schema (type, default, description, secret flag) lives in `Pulumi.yaml`; the key names,
their example values for each fix hint and the reader are in components/configreader.py, the
environment mapping in components/envmap.py, the process types in components/processtypes.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from components import deps, project
from components.buildcontext import ignore_patterns, ignored
from components.configreader import (
    HOSTNAME_RE,
    IPV4_RE,
    KEYS,
    MAX_MEMORY_MB,
    MEMORY_KEYS,
    MIN_MEMORY_MB,
    NODE_LABEL_RE,
    PREFIX_RE,
    PROJECT,
    REFERENCE_RE,
    REGISTRY_RE,
    REPOSITORY_RE,
    ROOT,
    TAG_RE,
    _is_secret,
    _Reader,
)

# Imported `X as X`: re-exported; other modules and the tests import them from here.
from components.configreader import OBJECT_KEYS as OBJECT_KEYS
from components.configreader import SECRET_KEYS as SECRET_KEYS
from components.configreader import UNTYPED_KEYS as UNTYPED_KEYS
from components.envmap import ENV_NAME_RE, STACK_VALUES, EnvTemplate
from components.envmap import Ref as Ref
from components.envmap import parse_template as parse_template
from components.processtypes import CELERY_PROCESS as CELERY_PROCESS
from components.processtypes import ProcessConfig, _processes
from components.processtypes import celery_worker_app as celery_worker_app
from components.spec import duration_seconds

# The maintenance page nginx answers with when the project names none (maintenancePage), and
# the largest page accepted: it travels through the state like every uploaded file.
PRODUCT_MAINTENANCE_PAGE = ROOT / "components" / "nginx" / "maintenance.html"
MAX_MAINTENANCE_PAGE_BYTES = 256 * 1024


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; the engine prints RunError messages without a traceback."""


@dataclass(frozen=True)
class AcmeConfig:
    """Config `acme` (prod): what the stack's ACME process asks the CA for
    (components/acme.py)."""

    email: str  # the account's contact
    directory: str  # the CA's directory URL
    names: tuple[str, ...]  # the certificate's names: `domain` first, then acmeNames
    ca_bundle_file: Path | None  # what the process trusts for the CA's HTTPS; None: the system's


@dataclass(frozen=True)
class ScheduledBackupConfig:
    """Config backupSchedule and, optionally, the restic repository each backup is copied to
    (docs/operations.md, "Scheduled backups")."""

    schedule: str  # as configured, e.g. "24h"
    interval_seconds: int
    # backupRepository (a secret: a rest: URL may carry credentials), its password and
    # backupRepositoryEnv (variable name -> secret value); all None / empty without one.
    repository: pulumi.Output[str] | None = None
    password: pulumi.Output[str] | None = None
    repository_env: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


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
    media_url: str  # nginx's media location: the project's MEDIA_URL, "/.../"; "": none
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
    buildx_builder: str  # the buildx builder docker-build runs (exec mode); "default": the engine's
    cache_ref: str
    domain: str
    http_port: int
    https_port: int
    public_bind_address: str
    dev_port: int
    web_replicas: int
    app_node_label: str  # "key=value": web and Celery tasks only on nodes carrying it
    web_max_replicas_per_node: int  # 0: no limit
    web_workers: int
    web_health_interval: str  # web's health probe interval (a Swarm duration, e.g. "3s")
    release_parallelism: int  # tasks a release replaces at a time; 0: half, at least one
    release_delay: str  # between batches of a release
    release_monitor: str  # how long each new task is watched for a failure
    celery_concurrency: int
    postgres_image: str
    redis_image: str
    nginx_image: str
    prometheus_image: str
    postgres_db: str
    postgres_user: str
    postgres_password: pulumi.Output[str]
    django_secret_key: pulumi.Output[str]
    tls_cert_file: Path | None  # prod: set unless acme (tlsCertFile, or the self-signed pair)
    tls_key_file: Path | None
    backup_retention: int
    monitoring: bool
    memory_mb: dict[str, int]  # role -> MiB
    # Config `env` / `secretEnv`: the project's own variable names -> templates over the stack
    # values (STACK_VALUES); every app container, service and job gets them.
    env: dict[str, EnvTemplate]
    secret_env: dict[str, EnvTemplate]
    # Long-running non-web processes, in config order; default: the Celery worker `celery`
    # when the project has a Celery app.
    processes: tuple[ProcessConfig, ...] = ()
    # The project's own migrations, app package -> names (project.migrations): named in the
    # migration step's labels so a preview shows what a release will apply.
    migrations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Python requirements the image installs after the project's: what the stack runs that the
    # project lacks (deps.provided: Gunicorn, a Postgres driver, Celery's Redis client), then
    # config extraPackages (pinned).
    provided: tuple[deps.Provided, ...] = ()
    extra_packages: tuple[str, ...] = ()
    # Commands (argv) run in the runtime image after collectstatic (config buildCommands, else
    # what the settings call for: project.build_commands), and as one-shot steps after the
    # migration, before web changes (config releaseCommands).
    build_commands: tuple[tuple[str, ...], ...] = ()
    release_commands: tuple[tuple[str, ...], ...] = ()
    # Maintenance mode (prod): on or off, the page nginx answers with (maintenancePage, else
    # the product's) and the client networks it lets through (maintenanceAllow, CIDR).
    maintenance: bool = False
    maintenance_page: Path = field(default_factory=lambda: PRODUCT_MAINTENANCE_PAGE)
    maintenance_allow: tuple[str, ...] = ()
    # Config `acme` (prod): certificates from an ACME CA instead of tls_cert_file/tls_key_file.
    acme: AcmeConfig | None = None
    # Config backupSchedule and the offsite repository; None: no scheduled backup.
    scheduled_backup: ScheduledBackupConfig | None = None

    @property
    def is_prod(self) -> bool:
        return self.profile == "prod"

    @property
    def image_repository(self) -> str:
        return f"{self.registry}/{self.image_name}" if self.registry else self.image_name


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
    django_settings_module, celery_app = _django_project(r, app_dir, prod)
    static_url = _static_url(r, app_dir, django_settings_module, prod)
    media_url = _media_url(r, app_dir, django_settings_module, prod, static_url)
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

    app_node_label = r.text("appNodeLabel")
    web_max_per_node = r.integer("webMaxReplicasPerNode", 0, 64)
    if app_node_label and not NODE_LABEL_RE.match(app_node_label):
        r.problem("appNodeLabel", f"must be a node label key=value, got {app_node_label!r}")
    if orchestrator != "swarm":
        # Plain containers run on the one engine the provider talks to: nothing to place.
        unset = {
            "appNodeLabel": ('""', app_node_label),
            "webMaxReplicasPerNode": ("0", web_max_per_node),
        }
        for key, (reset, value) in unset.items():
            if value:
                what = "places Swarm tasks: only the swarm orchestrator (prod) has them"
                r.problem(key, what, reset)

    acme_on = r.boolean("acme")
    tls_cert_file, tls_key_file = _tls_files(r, stack, prod, acme_on)
    acme = _acme(r, prod, domain, http_port) if acme_on else None

    generate = f"is required; `bash scripts/deploy.sh {stack}` generates it on the first deploy"
    postgres_password = r.secret("postgresPassword")
    if not r.raw("postgresPassword"):
        r.problem("postgresPassword", generate, secret_example())
    django_secret_key = r.secret("djangoSecretKey")
    raw_key = r.raw("djangoSecretKey")
    if not raw_key:
        r.problem("djangoSecretKey", generate, secret_example())
    elif raw_key and (
        len(raw_key) < 50 or len(set(raw_key)) < 5 or raw_key.startswith("django-insecure-")
    ):
        r.problem(
            "djangoSecretKey",
            "must be at least 50 characters, 5 distinct, without the 'django-insecure-' prefix",
        )

    env, secret_env = _environment(r)

    memory_mb = {}
    for key in MEMORY_KEYS:
        role = key.removesuffix("MemoryMb")
        memory_mb[role] = r.integer(key, MIN_MEMORY_MB, MAX_MEMORY_MB, " MiB")

    celery_concurrency = r.integer("celeryConcurrency", 1, 64)
    processes = _processes(r, celery_app, celery_concurrency, memory_mb["celery"])
    extra = _extra_packages(r)
    maintenance = r.boolean("maintenance")
    if maintenance and not prod:
        r.problem(
            "maintenance",
            "the dev profile has no nginx, the edge that answers with the maintenance page; "
            "maintenance mode is for prod stacks",
            "false",
        )

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
        media_url=media_url,
        dockerfile=dockerfile,
        base_image=_base_image(r, app_dir),
        build_packages=r.packages("buildPackages"),
        runtime_packages=r.packages("runtimePackages"),
        image_name=image_name,
        image_tag=image_tag,
        registry=registry,
        registry_username=registry_username,
        registry_password=registry_password,
        build_on_preview=r.boolean("buildOnPreview"),
        pip_config_file=r.path("pipConfigFile"),
        ca_bundle_file=_ca_bundle(r),
        buildx_builder=r.text("buildxBuilder") or "default",
        cache_ref=r.text("cacheRef"),
        domain=domain,
        http_port=http_port,
        https_port=https_port,
        public_bind_address=public_bind_address,
        dev_port=dev_port,
        web_replicas=web_replicas,
        app_node_label=app_node_label,
        web_max_replicas_per_node=web_max_per_node,
        web_workers=r.integer("webWorkers", 1, 64),
        web_health_interval=_duration(r, "webHealthInterval", 1, 60),
        release_parallelism=r.integer("releaseParallelism", 0, 64),
        release_delay=_duration(r, "releaseDelay", 0, 300),
        release_monitor=_duration(r, "releaseMonitor", 1, 600),
        celery_concurrency=celery_concurrency,
        postgres_image=r.reference("postgresImage"),
        redis_image=r.reference("redisImage"),
        nginx_image=r.reference("nginxImage"),
        prometheus_image=r.reference("prometheusImage"),
        postgres_db=_identifier(r, "postgresDb"),
        postgres_user=_identifier(r, "postgresUser"),
        postgres_password=postgres_password or pulumi.Output.secret(""),
        django_secret_key=django_secret_key or pulumi.Output.secret(""),
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        backup_retention=r.integer("backupRetention", 1, 365),
        monitoring=r.boolean("monitoring"),
        memory_mb=memory_mb,
        env=env,
        secret_env=secret_env,
        processes=processes,
        migrations=project.migrations(app_dir, _context_filter(app_dir)),
        provided=deps.provided(
            _declared(app_dir, dependencies), _runs_celery(celery_app, processes), extra
        ),
        extra_packages=extra,
        build_commands=_build_commands(r, app_dir, django_settings_module),
        release_commands=_commands(r, "releaseCommands"),
        maintenance=maintenance,
        maintenance_page=_maintenance_page(r, app_dir),
        maintenance_allow=_maintenance_allow(r),
        acme=acme,
        scheduled_backup=_scheduled_backup(r),
    )
    if cfg.cache_ref and not REFERENCE_RE.match(cfg.cache_ref):
        r.problem("cacheRef", f"is not a valid image reference: {cfg.cache_ref!r}")
    if cfg.cache_ref and cfg.buildx_builder == "default":
        r.problem(
            "buildxBuilder",
            "cacheRef exports the build cache to a registry, which the engine's own BuildKit "
            "(builder 'default') cannot: create a docker-container builder "
            "(docker buildx create --name djangostack --driver docker-container) and name it",
            "djangostack",
        )
    if r.problems:
        listing = "\n".join(f"  - {p}" for p in r.problems)
        raise ConfigError(
            f"invalid configuration for stack {stack!r} ({len(r.problems)} problem(s)):\n{listing}"
        )
    pulumi.log.info(describe_project(cfg))
    return cfg


# The deploy host's CA bundle (Debian and Ubuntu): pip in the build trusts what the host trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _ca_bundle(r: _Reader) -> Path | None:
    """caBundleFile; unset: the host's bundle when it has one (a TLS-inspecting proxy's CA
    included); `none`: no bundle."""
    value = r.text("caBundleFile")
    if value == "none":
        return None
    if not value:
        return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None
    return r.path("caBundleFile")


def _duration(r: _Reader, key: str, low: int, high: int) -> str:
    """A duration in whole h/m/s units ("3s", "1m30s") between `low` and `high` seconds."""
    value = r.text(key)
    seconds = duration_seconds(value)
    if seconds is None:
        r.problem(key, f"must be a duration like 3s, 90s or 1m30s, got {value!r}")
        return f"{low}s"
    if not low <= seconds <= high:
        r.problem(key, f"must be between {low} and {high} seconds, got {value!r}")
        return f"{low}s"
    return value


BACKUP_SCHEDULE_SECONDS = (60, 7 * 24 * 3600)  # one minute to a week
# restic repository URLs the backup image reaches with what it has (HTTP, credentials in the
# environment); sftp: needs an SSH key and known host the program does not deliver.
REPOSITORY_SCHEMES = ("rest:", "s3:")
# What the scheduled backup's environment holds already (components/scheduledbackup.py): a
# backupRepositoryEnv name may not replace it.
BACKUP_PROCESS_ENV = frozenset(
    {
        "PGHOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "BACKUP_DIR", "MEDIA_DIR",
        "BACKUP_KEEP", "BACKUP_INTERVAL", "BACKUP_HOST", "BACKUP_TAG", "RESTIC_REPOSITORY",
        "RESTIC_PASSWORD", "RESTIC_CACHE_DIR", "TMPDIR", "HOME", "PATH",
    }
)  # fmt: skip
# userinfo with a password in a URL: rest:https://user:password@host/
URL_PASSWORD_RE = re.compile(r"//[^/@]*:[^/@]*@")


def _scheduled_backup(r: _Reader) -> ScheduledBackupConfig | None:
    """backupSchedule (unset: no scheduled backup) and the offsite repository keys."""
    schedule = r.text("backupSchedule")
    repository = r.text("backupRepository")
    if not schedule:
        if repository:
            r.problem(
                "backupSchedule",
                "is required by backupRepository: the scheduled backup copies each of its "
                "backups to the repository",
            )
        return None
    seconds = duration_seconds(schedule)
    low, high = BACKUP_SCHEDULE_SECONDS
    if seconds is None or not low <= seconds <= high:
        r.problem(
            "backupSchedule",
            f"must be an interval in whole h/m/s units from 1m to 168h, like 24h, 6h or 15m, "
            f"got {schedule!r}",
        )
        return None
    if not repository:
        return ScheduledBackupConfig(schedule, seconds)
    if not repository.startswith(REPOSITORY_SCHEMES):
        r.problem(
            "backupRepository",
            f"must be a restic repository URL starting with {' or '.join(REPOSITORY_SCHEMES)} "
            f"(sftp: is not supported: serve the repository with rest-server or `rclone serve "
            f"restic`), got {repository!r}",
        )
    if URL_PASSWORD_RE.search(repository) and not _is_secret(f"{PROJECT}:backupRepository"):
        r.problem(
            "backupRepository",
            "holds a password but is set in plain text; it must be a secret",
            fix="pulumi config set --secret backupRepository <the same URL>",
        )
    password = r.secret("backupRepositoryPassword")
    if not r.raw("backupRepositoryPassword"):
        r.problem("backupRepositoryPassword", "is required by backupRepository", secret_example())
    return ScheduledBackupConfig(
        schedule,
        seconds,
        repository=pulumi.Output.secret(repository),
        password=password,
        repository_env=_repository_env(r),
    )


def _repository_env(r: _Reader) -> dict[str, pulumi.Output[str]]:
    """backupRepositoryEnv: variable names restic reads (AWS_ACCESS_KEY_ID...) -> values, a
    secret; unset: none."""
    key = "backupRepositoryEnv"
    value = r.variables(key)
    if value and not _is_secret(f"{PROJECT}:{key}"):
        r.problem(key, "is set in plain text; it must be a secret")
        return {}
    found: dict[str, pulumi.Output[str]] = {}
    for name, raw in sorted(value.items()):
        drop = f"pulumi config rm --path '{key}.{name}'"
        if not ENV_NAME_RE.match(name):
            what = f"{name!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
            r.problem(key, what, fix=drop)
        elif name in BACKUP_PROCESS_ENV or name.startswith("DJANGOSTACK_"):
            r.problem(key, f"{name} is set by the scheduled backup itself", fix=drop)
        elif isinstance(raw, bool) or not isinstance(raw, str | int | float):
            r.problem(key, f"{name} must be a string", name=name)
        else:
            found[name] = pulumi.Output.secret(str(raw))
    return found


def _context_filter(app_dir: Path) -> Callable[[str], bool]:
    """Whether a path (relative to appDir) is left out of the build context (.dockerignore)."""
    patterns = ignore_patterns(app_dir)
    return lambda rel: ignored(rel, patterns)


def secret_example() -> str:
    """The fix hint's value for a generated secret."""
    return "\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(64))')\""


SELF_SIGNED_DIR = ".djangostack"  # under the project root, ignored by git


def self_signed_pair(root: Path, stack: str) -> tuple[Path, Path]:
    """Where the deploy command keeps a stack's self-signed certificate and key
    (`tlsSelfSigned`), outside git."""
    directory = root / SELF_SIGNED_DIR / stack
    return directory / "tls.crt", directory / "tls.key"


def _tls_files(r: _Reader, stack: str, prod: bool, acme: bool) -> tuple[Path | None, Path | None]:
    """prod's certificate and key: tlsCertFile/tlsKeyFile, else with tlsSelfSigned the pair
    the deploy command made for `domain`; none with `acme` (the ACME process keeps them)."""
    cert, key = r.path("tlsCertFile"), r.path("tlsKeyFile")
    if bool(r.text("tlsCertFile")) != bool(r.text("tlsKeyFile")):
        missing = "tlsKeyFile" if r.text("tlsCertFile") else "tlsCertFile"
        r.problem(missing, "tlsCertFile and tlsKeyFile must be set together")
    self_signed = r.boolean("tlsSelfSigned")
    if prod and acme:
        if r.text("tlsCertFile") or r.text("tlsKeyFile"):
            r.problem(
                "acme",
                "the certificate comes from the ACME CA, so tlsCertFile and tlsKeyFile would "
                "be ignored; keep one source",
                fix="pulumi config rm tlsCertFile && pulumi config rm tlsKeyFile "
                "(or pulumi config set acme false)",
            )
        if self_signed:
            r.problem(
                "acme",
                "the certificate comes from the ACME CA, so tlsSelfSigned would be ignored; "
                "keep one source",
                fix="pulumi config rm tlsSelfSigned (or pulumi config set acme false)",
            )
        return None, None
    if not prod or cert:
        return cert, key
    if not self_signed:
        r.problem(
            "tlsCertFile",
            "prod serves HTTPS: set a certificate (and tlsKeyFile), get one from an ACME CA "
            "(`pulumi config set acme true` with acmeEmail) "
            "or opt in to a self-signed one with `pulumi config set tlsSelfSigned true`",
        )
        return None, None
    cert, key = self_signed_pair(r.root, stack)
    if not (cert.is_file() and key.is_file()):
        r.problem(
            "tlsSelfSigned",
            f"the self-signed pair {cert} and {key} does not exist yet; "
            f"`bash scripts/deploy.sh {stack}` makes it (openssl, for `domain`)",
            fix=f"bash scripts/deploy.sh {stack}",
        )
    return cert, key


# An account contact: a local part and a host name with a dot.
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
# RFC 8555 serves ACME over HTTPS only.
ACME_DIRECTORY_RE = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[^\s]*)?$")
ACME_MAX_NAMES = 100  # Let's Encrypt's limit of names per certificate
ACME_MAX_CN = 64  # a CSR's common name (the ACME process puts `domain` there)


def _acme(r: _Reader, prod: bool, domain: str, http_port: int) -> AcmeConfig | None:
    """Config `acme` (turned on): the ACME account's contact, the CA and the certificate's
    names, which a public CA must be able to validate over HTTP-01."""
    if not prod:
        r.problem(
            "acme",
            "dev runs no nginx to answer the CA's HTTP-01 challenges: ACME is for prod",
            "false",
        )
        return None
    email = r.text("acmeEmail")
    if not email:
        r.problem("acmeEmail", "is required with acme (the ACME account's contact)")
    elif not EMAIL_RE.match(email):
        r.problem("acmeEmail", f"is not an email address: {email!r}")
    directory = r.text("acmeDirectory")
    if not ACME_DIRECTORY_RE.match(directory):
        r.problem("acmeDirectory", f"must be the https:// URL of an ACME directory: {directory!r}")
    if "." not in domain or IPV4_RE.match(domain) or len(domain) > ACME_MAX_CN:
        r.problem(
            "domain",
            f"with acme, must be a fully qualified host name of at most {ACME_MAX_CN} "
            f"characters that resolves to nginx's host, got {domain!r}",
        )
    names = [domain.lower()]  # as certificates carry them
    for index, name in enumerate(r.strings("acmeNames", "host names") or ()):
        if not HOSTNAME_RE.match(name) or "." not in name or IPV4_RE.match(name):
            what = (
                f"{name!r} is not a fully qualified host name (no wildcards: HTTP-01 proves none)"
            )
            r.problem("acmeNames", what, index=index)
        elif name.lower() in (n.lower() for n in names):
            r.problem(
                "acmeNames", f"{name!r} is listed twice (domain is always a name)", index=index
            )
        else:
            names.append(name.lower())
    if len(names) > ACME_MAX_NAMES:
        r.problem(
            "acmeNames", f"a certificate holds at most {ACME_MAX_NAMES} names, got {len(names)}"
        )
    bundle = r.path("acmeCaBundleFile")
    if (
        bundle
        and bundle.is_file()
        and "-----BEGIN CERTIFICATE-----" not in bundle.read_text(errors="replace")
    ):
        r.problem("acmeCaBundleFile", f"{bundle} holds no PEM certificate")
    if http_port != 80:
        pulumi.log.warn(
            f"{PROJECT}:httpPort is {http_port} with acme: a CA validates HTTP-01 on port 80, "
            "so something must forward port 80 of every name to it"
        )
    return AcmeConfig(email, directory, tuple(names), bundle)


def describe_project(cfg: StackConfig) -> str:
    """One line of what the program found in (or was told about) the project, printed by
    every preview so a reviewer sees it."""
    deps_found = cfg.dependencies
    processes = ", ".join(p.name for p in cfg.processes) or "none"
    return (
        f"{PROJECT}: project {cfg.app_dir}: base image {cfg.base_image}; dependencies "
        f"{deps_found.kind} ({deps_found.entry}); settings {cfg.django_settings_module}; "
        f"Celery app {cfg.celery_app or 'none'}; STATIC_URL {cfg.static_url}; "
        f"MEDIA_URL {cfg.media_url or 'none'}; processes {processes}"
        + "".join(f"; adds {item.requirement} ({item.why})" for item in cfg.provided)
        + "".join(f"; build command: {shlex.join(c)}" for c in cfg.build_commands)
        + "".join(f"; release command: {shlex.join(c)}" for c in cfg.release_commands)
    )


def _environment(r: _Reader) -> tuple[dict[str, EnvTemplate], dict[str, EnvTemplate]]:
    """`env` and `secretEnv`, with the rules that keep secrets out of plain text: no secret
    stack value in `env`, no literal text in a `secretEnv` set in plain text, `env` itself never
    a secret, no name in both."""
    env = r.env_map("env")
    secret_env = r.env_map("secretEnv")
    if env and _is_secret(f"{PROJECT}:env"):
        r.problem(
            "env",
            "is a secret (set with --secret): its values would be plain text in every "
            "container's configuration; secret values go in secretEnv",
            fix="pulumi config rm env && "
            "pulumi config set --secret --path 'secretEnv.NAME' <value>",
        )
    for name, template in sorted(env.items()):
        secret_refs = [ref for ref in template.refs if STACK_VALUES[ref]]
        if secret_refs:
            listed = ", ".join(f"${{{ref}}}" for ref in secret_refs)
            r.problem(
                "env",
                f"{name} uses the secret stack value {listed}: move it to secretEnv",
                fix=f"pulumi config rm --path 'env.{name}' && pulumi config set --secret --path "
                f"'secretEnv.{name}' <the same value>",
            )
    if not _is_secret(f"{PROJECT}:secretEnv"):
        for name, template in sorted(secret_env.items()):
            if template.has_literal:
                r.problem(
                    "secretEnv",
                    f"{name} holds literal text but secretEnv is set in plain text; "
                    "it must be a secret",
                    "<value>",
                    name=name,
                )
    for name in sorted(set(env) & set(secret_env)):
        r.problem(
            "env",
            f"{name} is in both env and secretEnv; keep one",
            fix=f"pulumi config rm --path 'env.{name}'",
        )
    for name in sorted(env):
        if name.endswith("_FILE") and name.removesuffix("_FILE") in secret_env:
            r.problem(
                "env",
                f"{name} is the file variable of secretEnv.{name.removesuffix('_FILE')}",
                fix=f"pulumi config rm --path 'env.{name}'",
            )
    return env, secret_env


def _identifier(r: _Reader, key: str) -> str:
    """Postgres names go into URLs and shell commands: keep them to a safe alphabet."""
    value = r.text(key)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        r.problem(key, f"must match [a-z_][a-z0-9_]* (max 63), got {value!r}")
    return value


def _module(
    r: _Reader, key: str, app_dir: Path, detect: Callable[[], str], example: str | None = None
) -> str:
    """The key's value, else the detected one; a module that is not a file of the project is a
    problem (a typo would otherwise only show when the first container starts). `example`:
    the fix hint's value (default KEYS[key])."""
    value = r.text(key)
    if not value:
        try:
            value = detect()
        except project.DetectionError as error:
            r.problem(key, f"cannot be detected: {error}; set it", example)
            return KEYS[key]
    if not project.MODULE_RE.match(value):
        r.problem(key, f"must be a dotted Python module path, got {value!r}")
    elif project.module_file(app_dir, value) is None:
        r.problem(key, f"module {value!r} is not in {app_dir} (no .py file or package)")
    return value


# A URL path nginx can serve a location under (a full URL means another server holds the files,
# which this stack does not support).
URL_PATH_RE = re.compile(r"/?[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?")


def _served_url(r: _Reader, key: str, prod: bool, detect: Callable[[], str], required: bool) -> str:
    """nginx's location for `key` (staticUrl, mediaUrl): the key's value, else the detected
    setting; "" when not `required` and the settings do not set it. Only prod runs nginx: dev
    never fails for want of it."""
    value = r.text(key)
    if not value:
        try:
            value = detect()
        except project.DetectionError as error:
            if prod:
                r.problem(key, f"cannot be detected: {error}; set it")
            return KEYS[key] if required else ""
    if not value:
        return KEYS[key] if required else ""
    if not URL_PATH_RE.fullmatch(value):
        r.problem(key, f"must be a URL path such as {KEYS[key]}, got {value!r}")
        return KEYS[key]
    return "/" + value.strip("/") + "/"


def _static_url(r: _Reader, app_dir: Path, settings: str, prod: bool) -> str:
    """nginx's static location: `staticUrl`, else the settings' STATIC_URL."""

    def detect() -> str:  # a missing appDir is already reported
        return project.static_url(app_dir, settings) if app_dir.is_dir() else ""

    return _served_url(r, "staticUrl", prod, detect, required=True)


def _media_url(r: _Reader, app_dir: Path, settings: str, prod: bool, static_url: str) -> str:
    """nginx's media location: `mediaUrl`, else the settings' MEDIA_URL; "" when the settings
    set none (Django's default: no uploads, so nginx serves no media location)."""

    def detect() -> str:  # a missing appDir is already reported
        return project.media_url(app_dir, settings) if app_dir.is_dir() else ""

    value = _served_url(r, "mediaUrl", prod, detect, required=False)
    if value and value == static_url:
        # Django refuses it too (ImproperlyConfigured): one location cannot serve both.
        r.problem("mediaUrl", f"must differ from the static URL {static_url}")
    return value


def _django_project(r: _Reader, app_dir: Path, prod: bool) -> tuple[str, str]:
    """The settings module (prod: what the server's wsgi.py / asgi.py loads) and the Celery
    app (components/project.py), detected unless set."""
    if not app_dir.is_dir():
        return KEYS["djangoSettingsModule"], ""  # appDir is already reported
    settings = _module(
        r,
        "djangoSettingsModule",
        app_dir,
        lambda: project.settings_module(app_dir, server=prod),
        example=next(iter(project.settings_candidates(app_dir)), None),
    )
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


def _extra_packages(r: _Reader) -> tuple[str, ...]:
    """extraPackages: pinned requirement lines (name[extras]==version) the image installs."""
    lines = r.strings("extraPackages", "pinned requirements") or ()
    for index, line in enumerate(lines):
        if not deps.PINNED_RE.match(line):
            what = f"{line!r} is not one pinned requirement (name[extras]==version, no spaces)"
            r.problem("extraPackages", what, index=index)
    return lines


def _commands(r: _Reader, key: str) -> tuple[tuple[str, ...], ...]:
    """A list of command lines, each split like a shell would (quotes; no variables, pipes
    or globs: the command runs without a shell). Unset: none."""
    commands = []
    for index, line in enumerate(r.strings(key, "command lines") or ()):
        try:
            argv = tuple(shlex.split(line))
        except ValueError as error:
            r.problem(key, f"{line!r}: {error}", index=index)
            continue
        if not argv:
            r.problem(key, "an empty command", index=index)
            continue
        commands.append(argv)
    return tuple(commands)


def _build_commands(r: _Reader, app_dir: Path, settings: str) -> tuple[tuple[str, ...], ...]:
    """buildCommands; unset: what the settings call for (project.build_commands)."""
    if r.strings("buildCommands") is not None:
        return _commands(r, "buildCommands")
    return project.build_commands(app_dir, settings) if app_dir.is_dir() else ()


def _maintenance_page(r: _Reader, app_dir: Path) -> Path:
    """maintenancePage: a UTF-8 file inside appDir (a path relative to it); unset: the
    product's page."""
    raw = r.text("maintenancePage")
    if not raw:
        return PRODUCT_MAINTENANCE_PAGE
    path = (app_dir / raw).resolve()
    if Path(raw).is_absolute() or not path.is_relative_to(app_dir.resolve()):
        r.problem("maintenancePage", f"must be a path inside appDir, relative to it, got {raw!r}")
        return PRODUCT_MAINTENANCE_PAGE
    if not path.is_file():
        r.problem("maintenancePage", f"file {path} does not exist (a path relative to appDir)")
        return PRODUCT_MAINTENANCE_PAGE
    try:
        size = len(path.read_text(encoding="utf-8").encode())  # nginx sends it as UTF-8
    except (OSError, UnicodeDecodeError) as error:
        r.problem("maintenancePage", f"file {path} is not readable UTF-8 text: {error}")
        return PRODUCT_MAINTENANCE_PAGE
    if size > MAX_MAINTENANCE_PAGE_BYTES:
        r.problem(
            "maintenancePage",
            f"file {path} has {size} bytes, more than {MAX_MAINTENANCE_PAGE_BYTES}",
        )
    return path


def _maintenance_allow(r: _Reader) -> tuple[str, ...]:
    """maintenanceAllow: IPv4 addresses and networks (CIDR), as nginx's geo block reads them."""
    networks: list[str] = []
    entries = r.strings("maintenanceAllow", "IPv4 addresses or networks (CIDR)") or ()
    for index, entry in enumerate(entries):
        try:
            network = ipaddress.IPv4Network(entry)
        except ValueError as error:
            what = f"{entry!r} is not an IPv4 address or network (CIDR): {error}"
            with contextlib.suppress(ValueError):  # host bits set: name the network meant
                what += f"; did you mean {ipaddress.IPv4Network(entry, strict=False)}?"
            r.problem("maintenanceAllow", what, index=index)
            continue
        networks.append(str(network))
    return tuple(dict.fromkeys(networks))


def _runs_celery(celery_app: str, processes: tuple[ProcessConfig, ...]) -> bool:
    """Whether anything of the stack talks to the Celery broker: a project with a Celery app
    sends tasks from web too, and a process may start `celery` without one being detected."""
    return bool(celery_app) or any(p.command[:1] == ("celery",) for p in processes)


def _declared(app_dir: Path, dependencies: deps.Dependencies) -> set[str]:
    """The distributions the project declares; a file that cannot be read is the build's to
    report (nothing is added then)."""
    try:
        return deps.declared(app_dir, dependencies)
    except (OSError, ValueError):
        return {"gunicorn", "redis", "psycopg"}


def _base_image(r: _Reader, app_dir: Path) -> str:
    """`baseImage`, else `python:<minor>-slim` for the Python the project asks for
    (components/project.py python_version), else the default minor's. A set `baseImage` that
    names another Python than the project's files only warns: the team may know better."""
    try:
        wanted = project.python_version(app_dir) if app_dir.is_dir() else None
    except project.DetectionError as error:
        r.problem("baseImage", f"cannot detect the project's Python: {error}; set it")
        wanted = None
    if not r.text("baseImage"):
        minor = wanted[0] if wanted else project.DEFAULT_PYTHON
        return f"python:{minor}-slim"
    value = r.reference("baseImage")
    tag = value.rpartition(":")[2] if ":" in value.rpartition("/")[2] else ""
    if wanted and not tag.startswith(wanted[0]):
        pulumi.log.warn(
            f"{PROJECT}:baseImage {value!r} may not be Python {wanted[0]}, which the "
            f"project's {wanted[1]} asks for. "
            f"Recommended: pulumi config set baseImage python:{wanted[0]}-slim"
        )
    return value


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
