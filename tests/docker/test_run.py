"""One-off commands through `scripts/run.sh` on a prod stack deployed by the engine, of the
cookiecutter fixture project (Django's admin and auth): `createsuperuser --noinput` with the
user in `--env`, then that user signs in to the admin over HTTPS; a failing command's exit code
comes back; the command runs hardened with the app's environment, secrets and uploads; at a
(pseudo-)terminal it gets a TTY and reads what is typed. Every run leaves the stack as it was
(the same containers, tasks and service versions, no engine update) and no container behind."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import secrets
import select
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from test_fixture_projects import COOKIECUTTER

from components import app, hardening
from tests.support.engine import ROOT
from tests.support.prodstack import ProdStack, prod_stack

RUN = ROOT / "scripts" / "run.sh"
HANG_GUARD_SECONDS = 600  # a run that takes longer hangs: fail instead of waiting forever
# What the command sees of its container: user, capabilities, the root filesystem, the app's
# secrets (exported by the entrypoint from their files) and uploads.
PROBE = f"""
import json, os
status = dict(line.split(':', 1) for line in open('/proc/self/status'))
root = next(line.split()[3] for line in open('/proc/mounts') if line.split()[1] == '/')
print(json.dumps({{
    'uid': os.getuid(),
    'cap_eff': status['CapEff'].strip(),
    'no_new_privs': status['NoNewPrivs'].strip(),
    'root': root.split(',')[0],
    'database_url': 'DATABASE_URL' in os.environ,
    'media_writable': os.access('{app.MEDIA_DIR}', os.W_OK),
}}))
"""


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    with prod_stack(
        tmp_path_factory.mktemp("run"),
        "run",
        source=COOKIECUTTER.source,
        overrides=COOKIECUTTER.stack_config(),
    ) as stack:
        yield stack


def snapshot(stack: ProdStack) -> dict[str, Any]:
    """What a one-off command must leave alone: the stack's running containers (web and
    process tasks, Postgres, Redis, nginx) and Swarm tasks, each service's spec version, and
    the number of engine updates."""
    selector = {"label": f"{hardening.STACK_LABEL}={stack.name}"}
    services = stack.client.services.list(filters=selector)
    return {
        "containers": {c.name: c.id for c in stack.client.containers.list(filters=selector)},
        "tasks": sorted(
            task["ID"]
            for service in services
            for task in service.tasks(filters={"desired-state": "running"})
        ),
        "services": {s.name: s.version for s in services},
        "updates": len(stack.stack.history()),
    }


@contextlib.contextmanager
def leaves_the_stack_alone(stack: ProdStack, what: str) -> Iterator[None]:
    """The stack is as it was after the block (a one-off command) and no run container is
    left; prints how long the block took."""
    before = snapshot(stack)
    started = time.monotonic()
    yield
    print(f"[run] {what}: {time.monotonic() - started:.1f} s")
    assert snapshot(stack) == before
    run_containers = [
        f"{hardening.STACK_LABEL}={stack.name}",
        f"{hardening.ROLE_LABEL}={hardening.RUN_ROLE}",
    ]
    left = stack.client.containers.list(all=True, filters={"label": run_containers})
    assert not left, [c.name for c in left]


def run(
    stack: ProdStack, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`bash scripts/run.sh <stack> ARGS` without a terminal, as an operator's script runs it."""
    command = " ".join(args[args.index("--") + 1 :])
    with leaves_the_stack_alone(stack, command.replace("\n", " ")[:50]):
        return subprocess.run(
            ["bash", str(RUN), stack.name, *args],
            env={**os.environ, **stack.engine_env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )


def read_terminal(terminal: int, until: bytes | None) -> bytes:
    """What a pseudo-terminal shows until `until` appears, or (None) until its program ends."""
    seen = b""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while until is None or until not in seen:
        assert time.monotonic() < deadline, f"the terminal hangs; it showed {seen!r}"
        if not select.select([terminal], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the program ended and closed the terminal
            chunk = b""
        assert chunk or until is None, f"ended before {until!r}; it showed {seen!r}"
        if not chunk:
            break
        seen += chunk
    return seen


def test_createsuperuser_then_that_user_signs_in_to_the_admin(prod: ProdStack) -> None:
    username, password = f"ops-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    done = run(
        prod,
        *("--env", f"DJANGO_SUPERUSER_USERNAME={username}"),
        *("--env", "DJANGO_SUPERUSER_EMAIL=ops@example.com"),
        # NAME alone: the value comes from run.sh's environment, never on a command line.
        *("--env", "DJANGO_SUPERUSER_PASSWORD"),
        *("--", "python", "manage.py", "createsuperuser", "--noinput"),
        env={"DJANGO_SUPERUSER_PASSWORD": password},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Superuser created successfully." in done.stdout

    session = requests.Session()
    session.verify = str(prod.ca_file)
    session.trust_env = False  # loopback only
    login = f"{prod.url}/admin/login/?next=/admin/"
    form = session.get(login, timeout=10)
    assert form.status_code == 200, form.text[-2000:]
    signed_in = session.post(
        login,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Origin": prod.url, "Referer": login},
        timeout=10,
    )
    assert signed_in.status_code == 200, signed_in.text[-2000:]
    assert signed_in.url == f"{prod.url}/admin/"  # redirected to the index: signed in
    assert "sessionid" in session.cookies
    assert f"<strong>{username}</strong>" in signed_in.text


def test_the_exit_code_is_the_commands(prod: ProdStack) -> None:
    done = run(prod, "--", "python", "-c", "import sys; sys.exit(7)")
    assert done.returncode == 7, done.stderr


def test_the_command_runs_hardened_with_the_apps_secrets_and_uploads(prod: ProdStack) -> None:
    done = run(prod, "--", "python", "-c", PROBE)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "uid": 10001,
        "cap_eff": "0000000000000000",  # cap-drop ALL
        "no_new_privs": "1",
        "root": "ro",
        "database_url": True,
        "media_writable": True,
    }


def test_a_terminal_gets_a_tty_and_what_is_typed_reaches_the_command(prod: ProdStack) -> None:
    # A pseudo-terminal on both sides, as an operator's shell: `docker run -it`.
    command = "import sys; print(sys.stdin.isatty()); print(input('name? ').upper())"
    with leaves_the_stack_alone(prod, "typed at a terminal"):
        pid, terminal = pty.fork()
        if pid == 0:  # the child: run.sh on the terminal (never back into pytest)
            try:
                argv = ["bash", str(RUN), prod.name, "--", "python", "-c", command]
                os.execvpe(argv[0], argv, {**os.environ, **prod.engine_env})  # noqa: S606
            finally:
                os._exit(127)
        shown = read_terminal(terminal, until=b"name? ")
        os.write(terminal, b"ops\r")
        shown += read_terminal(terminal, until=None)
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    assert b"True\r\n" in shown and b"OPS\r\n" in shown, shown
