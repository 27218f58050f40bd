"""What a deploy does around the engine: the backend and its passphrase, secrets generated on a
stack's first deploy, the self-signed pair where `tlsSelfSigned` asks for one, failed deploy
steps run again, and a summary. Used by the deploy command (`python -m automation`) and by the
tests, so both go the same way."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pulumi import automation as auto

from automation.engine import PROJECT, ROOT, toolchain
from components.config import self_signed_pair
from components.hardening import STACK_LABEL
from components.jobs import MIGRATIONS_LABEL
from components.renderers import STEP_LABEL

# Config secrets the program requires and the deploy command generates when a stack has none.
GENERATED_SECRETS = {
    "postgresPassword": lambda: secrets.token_urlsafe(32),
    "djangoSecretKey": lambda: secrets.token_urlsafe(64),
}
PASSPHRASE_FILE = Path.home() / ".pulumi" / f"{PROJECT}-passphrase"
CONTAINER = "docker:index/container:Container"
SELF_SIGNED_DAYS = 365

Say = Callable[[str], object]


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def backend_env(say: Say = print) -> dict[str, str]:
    """The backend the operator is logged in to, else a local file backend (~/.pulumi). A file
    backend's secrets use a passphrase: the operator's (PULUMI_CONFIG_PASSPHRASE[_FILE]), else
    one kept in a private file, created on first use."""
    env: dict[str, str] = {}
    whoami = subprocess.run(
        [str(toolchain() / "pulumi"), "whoami", "--verbose"],
        capture_output=True,
        text=True,
        check=False,
    )
    backend = os.environ.get("PULUMI_BACKEND_URL", "")
    if not backend and whoami.returncode == 0:
        backend = next(
            (line.split(":", 1)[1].strip() for line in whoami.stdout.splitlines()
             if line.startswith("Backend URL:")),
            "",
        )  # fmt: skip
    if not backend:
        backend = env["PULUMI_BACKEND_URL"] = "file://~"
    if not backend.startswith("file://"):
        return env  # a service backend keeps the secrets itself
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ or "PULUMI_CONFIG_PASSPHRASE_FILE" in os.environ:
        return env
    if not PASSPHRASE_FILE.exists():
        PASSPHRASE_FILE.parent.mkdir(parents=True, exist_ok=True)
        PASSPHRASE_FILE.write_text(secrets.token_urlsafe(32) + "\n")
        PASSPHRASE_FILE.chmod(stat.S_IRUSR | stat.S_IWUSR)
        say(
            f"Created {PASSPHRASE_FILE}: the passphrase of this machine's local stacks' "
            "secrets. Keep a copy: without it no secret of those stacks can be read."
        )
    env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(PASSPHRASE_FILE)
    return env


def generate_secrets(stack: auto.Stack, say: Say = print) -> list[str]:
    """Each missing config secret of GENERATED_SECRETS, generated and set (encrypted) in the
    stack's config; returns the keys set. A value already set, even in plain text, is left
    for the program to judge (it refuses plain text)."""
    present = stack.get_all_config()  # Pulumi.yaml's defaults ("") included
    missing = [n for n in GENERATED_SECRETS if not getattr(present.get(_key(n)), "value", "")]
    if missing and deployed(stack):
        # A new database password would lock the stack out of its own data.
        raise SystemExit(
            f"Stack {stack.name} is deployed but its config lacks {', '.join(missing)}: restore "
            f"them (Pulumi.{stack.name}.yaml from version control, or `pulumi config set "
            "--secret`) instead of generating new ones."
        )
    generated = []
    for name, make in GENERATED_SECRETS.items():
        if name not in missing:
            continue
        stack.set_config(_key(name), auto.ConfigValue(make(), secret=True))
        generated.append(name)
        say(f"Generated {_key(name)} for stack {stack.name} (a secret in its stack config).")
    return generated


def deployed(stack: auto.Stack) -> bool:
    """Whether the stack has resources in its state (beyond the stack itself)."""
    resources = (stack.export_stack().deployment or {}).get("resources") or []
    return any(r.get("type") != "pulumi:pulumi:Stack" for r in resources)


def _config_value(stack: auto.Stack, name: str) -> str:
    """A config value of the stack as text (Pulumi.yaml's default when the stack sets none)."""
    value = stack.get_all_config().get(_key(name))
    return value.value if value is not None else ""


def ensure_self_signed(stack: auto.Stack, root: Path = ROOT, say: Say = print) -> Path | None:
    """With `tlsSelfSigned` and no tlsCertFile in a prod stack, the pair for `domain` the program
    then reads (config.self_signed_pair), made with openssl when missing. Returns the
    certificate's path when there is such a pair."""
    if _config_value(stack, "profile") != "prod" or _config_value(stack, "tlsCertFile"):
        return None
    if _config_value(stack, "tlsSelfSigned") != "true":
        return None
    cert, key = self_signed_pair(root, stack.name)
    if cert.is_file() and key.is_file():
        return cert
    domain = _config_value(stack, "domain")
    make_self_signed(cert, key, domain)
    say(f"Made a self-signed certificate for {domain}: {cert} (key {key}, outside git).")
    return cert


def make_self_signed(cert: Path, key: Path, domain: str, days: int = SELF_SIGNED_DAYS) -> None:
    """An ECDSA P-256 key and a self-signed server certificate for `domain` (openssl)."""
    cert.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)  # the key is private from its first byte
    try:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(cert), "-days", str(days),
                "-subj", f"/CN={domain}",
                "-addext", f"subjectAltName=DNS:{domain}",
                "-addext", "extendedKeyUsage=serverAuth",
                "-addext", "keyUsage=digitalSignature",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    finally:
        os.umask(old_umask)
    cert.chmod(0o644)


def failed_steps(stack: auto.Stack) -> list[tuple[str, str]]:
    """(urn, step) of every one-shot step whose last run in the state exited non-zero: a deploy
    runs them again (`up --replace`), since their inputs did not change."""
    deployment = stack.export_stack().deployment or {}
    failed = []
    for resource in deployment.get("resources") or []:
        outputs = resource.get("outputs") or {}
        if resource.get("type") != CONTAINER or not outputs.get("attach"):
            continue
        code = outputs.get("exitCode")
        if isinstance(code, int | float) and code != 0:
            labels = {item.get("label"): item.get("value") for item in outputs.get("labels") or []}
            failed.append((resource["urn"], str(labels.get(STEP_LABEL, resource["urn"]))))
    return failed


def summary(changes: dict[str, int] | None) -> str:
    """`create 3, same 12` from the engine's resource changes."""
    items = sorted((changes or {}).items())
    return ", ".join(f"{op} {n}" for op, n in items if n) or "no changes"


def changed(changes: dict[str, int] | None) -> int:
    """How many resources an operation touched (everything but `same`)."""
    return sum(n for op, n in (changes or {}).items() if op != "same")


def outputs_json(outputs: dict[str, auto.OutputValue], keys: Iterable[str]) -> str:
    return json.dumps({k: outputs[k].value for k in keys if k in outputs}, indent=2)


def _migration_labels(state: auto.events.StepEventStateMetadata | None) -> dict[str, list[str]]:
    labels = ((state.inputs or {}).get("labels") or []) if state is not None else []
    found = {}
    for item in labels if isinstance(labels, list) else []:
        key, value = item.get("label", ""), item.get("value", "")
        if (
            isinstance(key, str)
            and key.startswith(MIGRATIONS_LABEL + ".")
            and isinstance(value, str)
        ):
            found[key.removeprefix(MIGRATIONS_LABEL + ".")] = value.split()
    return found


class MigrationWatch:
    """An `on_event` callback that collects the migrations a release adds (app.name), from the
    migration step's labels before and after (components/jobs.py migration_labels)."""

    def __init__(self) -> None:
        self.added: list[str] = []

    def __call__(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is None:
            return
        new = _migration_labels(pre.metadata.new)
        old = _migration_labels(pre.metadata.old)
        for app, names in sorted(new.items()):
            known = set(old.get(app, ()))
            fresh = [f"{app}.{name}" for name in names if name not in known]
            # A replacement reports its step more than once: each name counts once.
            self.added += [name for name in fresh if name not in self.added]

    def summary(self) -> str:
        if not self.added:
            return "Migrations: none new."
        return "Migrations this release applies: " + ", ".join(self.added)


TASK_LOG_LINES = 20


def _docker(host: str, *args: str) -> str:
    command = ["docker", *(["-H", host] if host else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout if done.returncode == 0 else ""


def failed_task_logs(stack: auto.Stack) -> str:
    """The last lines of each Swarm task of the stack that failed recently (a release Swarm
    rolled back, a task that exited): what a converge error alone does not say."""
    host = docker_host(stack)
    services = _docker(
        host, "service", "ls", "--filter", f"label={STACK_LABEL}={stack.name}",
        "--format", "{{.Name}}",
    ).split()  # fmt: skip
    report = []
    for service in services:
        tasks = _docker(
            host, "service", "ps", service, "--no-trunc", "--filter", "desired-state=shutdown",
            "--format", "{{.ID}}\t{{.Name}}\t{{.Error}}",
        ).splitlines()[:2]  # fmt: skip
        for line in tasks:
            task_id, name, error = [*line.split("\t"), "", ""][:3]
            if not error:
                continue
            logs = _docker(host, "service", "logs", "--raw", "--tail", str(TASK_LOG_LINES), task_id)
            tail = "\n".join(f"  | {x}" for x in logs.rstrip().splitlines()) or "  | (no output)"
            report.append(f"task {name} failed: {error}\n{tail}")
    return "\n".join(report)


ROLLOUT_TIMEOUT_SECONDS = 600
_ROLLOUT_FAILED = frozenset({"paused", "rollback_started", "rollback_paused", "rollback_completed"})


def docker_host(stack: auto.Stack) -> str:
    """The engine the stack's Docker provider talks to (config `docker:host`; "": the local one)."""
    value = stack.get_all_config().get("docker:host")
    return value.value if value is not None else ""


def wait_for_rollouts(stack: auto.Stack, timeout: float = ROLLOUT_TIMEOUT_SECONDS) -> list[str]:
    """Wait until Swarm has finished rolling out every service of the stack; the services whose
    rollout did not complete (rolled back, paused), with Swarm's message. The docker provider's
    converge wait ends once every slot runs a task of any version, which can be before a later
    batch of the release has started, let alone passed its monitor window."""
    host = docker_host(stack)
    services = _docker(
        host, "service", "ls", "--filter", f"label={STACK_LABEL}={stack.name}",
        "--format", "{{.Name}}",
    ).split()  # fmt: skip
    deadline = time.monotonic() + timeout
    pending = set(services)
    failed: list[str] = []
    while pending:
        for service in sorted(pending):
            raw = _docker(host, "service", "inspect", service, "--format", "{{json .UpdateStatus}}")
            status = json.loads(raw or "null") or {}
            state = status.get("State", "completed")
            if state == "completed":
                pending.discard(service)
            elif state in _ROLLOUT_FAILED:
                failed.append(f"{service}: {state}: {status.get('Message', '')}")
                pending.discard(service)
        if pending and time.monotonic() > deadline:
            failed += [f"{s}: still updating after {timeout:.0f} s" for s in sorted(pending)]
            break
        if pending:
            time.sleep(1)
    return failed
