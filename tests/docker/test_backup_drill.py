"""The restore drill (docs/operations.md, "Restore drill"): a prod stack with a one-minute
backupSchedule copies its backups to a restic repository served from another network namespace
(`rclone serve restic`, Debian's rclone, behind a veth pair); out of the repository's reach
its scheduled backup turns unhealthy and says why, back in reach it recovers; the stack is
destroyed with its protected volumes by the deploy command's own route (`--destroy
--include-data`); a new stack restores the latest snapshot with `scripts/restore.sh
--from-repository`, and every row and every uploaded file is back, byte for byte.

Figures are printed (`-s`): rows, files, backup time, restore time, the repository's size
after one and after two backups (deduplication)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from automation.__main__ import destroy
from tests.support import figures
from tests.support.prodstack import ProdStack, django, prod_stack

# Two deploys, three scheduled backups and a restore: about ten minutes here.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# The repository's host: its own network namespace, reached from the host (and, through
# Docker's egress route, from the backup process) over a veth pair.
NETNS = "djangostack-drill"
HOST_END, SERVER_END = "dsdrill-h", "dsdrill-s"
HOST_IP, SERVER_IP, PORT = "10.231.9.1", "10.231.9.2", 8000
PASSWORD = "drill-repository-password"  # the test repository's
SCHEDULE = "1m"
WAIT_SECONDS = 600  # a bound, never an assertion on time
CREATE_ROWS = (
    "CREATE TABLE drill_rows (id integer PRIMARY KEY, body text NOT NULL); "
    "INSERT INTO drill_rows SELECT g, md5(g::text) || repeat('x', 200) "
    "FROM generate_series(1, 20000) g"
)
FILES, FILE_BYTES = 24, 256 * 1024
ROW_DIGEST = (
    "SELECT count(*) || ' ' || md5(string_agg(id || ':' || body, ',' ORDER BY id)) FROM drill_rows"
)
MESSAGE_DIGEST = (
    "SELECT count(*) || ' ' || md5(string_agg(id || ':' || text || ':' || created, ',' "
    "ORDER BY id)) FROM core_message"
)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def _remove_namespace() -> None:
    for command in (("ip", "netns", "del", NETNS), ("ip", "link", "del", HOST_END)):
        subprocess.run(command, capture_output=True, check=False)


@contextlib.contextmanager
def repository_server(root: Path) -> Iterator[str]:
    """`rclone serve restic` over `root` in the network namespace NETNS; the restic URL of a
    repository in it. Traffic stays on this machine: the veth pair and Docker's own networks."""
    _remove_namespace()
    # Docker's FORWARD policy drops what it does not know: let the veth's traffic through.
    rules = [("DOCKER-USER", way, HOST_END, "-j", "ACCEPT") for way in ("-o", "-i")]
    server = None
    try:
        _run("ip", "netns", "add", NETNS)
        veth = ("type", "veth", "peer", "name", SERVER_END, "netns", NETNS)
        _run("ip", "link", "add", HOST_END, *veth)
        _run("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_END)
        _run("ip", "link", "set", HOST_END, "up")
        _run("ip", "-n", NETNS, "addr", "add", f"{SERVER_IP}/30", "dev", SERVER_END)
        _run("ip", "-n", NETNS, "link", "set", SERVER_END, "up")
        _run("ip", "-n", NETNS, "link", "set", "lo", "up")
        for rule in rules:
            _run("iptables", "-I", *rule)
        log = (root.parent / "rclone.log").open("w")
        server = subprocess.Popen(
            ["ip", "netns", "exec", NETNS, "rclone", "serve", "restic", str(root),
             "--addr", f"{SERVER_IP}:{PORT}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RCLONE_CONFIG": str(root.parent / "rclone.conf")},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection((SERVER_IP, PORT), 1):
                break
            assert server.poll() is None, (root.parent / "rclone.log").read_text()
            assert time.monotonic() < deadline, "rclone serve restic did not listen"
            time.sleep(0.2)
        yield f"rest:http://{SERVER_IP}:{PORT}/drill"
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        for rule in rules:
            subprocess.run(["iptables", "-D", *rule], capture_output=True, check=False)
        _remove_namespace()


def snapshots(repository: Path) -> list[str]:
    directory = repository / "snapshots"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def size(repository: Path) -> int:
    return sum(p.stat().st_size for p in repository.rglob("*") if p.is_file())


def wait_for_snapshot(repository: Path, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(snapshots(repository)) < count:
        assert time.monotonic() < deadline, f"no snapshot {count} in {WAIT_SECONDS}s"
        time.sleep(2)
    # restic writes the snapshot file last: the backup is complete. Its forget/prune follows.
    time.sleep(5)


def wait_unhealthy(stack: ProdStack) -> tuple[str, str]:
    """Wait until the scheduled backup's task is unhealthy (Swarm then replaces it); what its
    health check said and the line its log says it in."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        for container in stack.containers("backup"):
            health = container.attrs["State"].get("Health") or {}
            lines = [x for x in container.logs().decode().splitlines() if "unhealthy:" in x]
            if health.get("Status") == "unhealthy" and lines:
                return health["Log"][-1]["Output"], lines[-1]
        assert time.monotonic() < deadline, "the scheduled backup never turned unhealthy"
        time.sleep(1)


def media_digests(stack: ProdStack) -> dict[str, str]:
    """sha256 of every file of the media volume, as a web task sees it."""
    listing = stack.containers("web")[0].exec_run(
        ["sh", "-c", "cd /srv/media && find . -type f -exec sha256sum {} +"]
    )
    assert listing.exit_code == 0, listing.output.decode()
    lines = listing.output.decode().splitlines()
    return {path: digest for digest, path in (line.split() for line in lines)}


def write_data(stack: ProdStack) -> None:
    stack.psql(CREATE_ROWS)
    for number in range(20):
        assert stack.post("/api/messages/", {"text": f"drill {number}"}).status_code == 201
    django(
        stack.containers("web")[0],
        "import os; from django.core.files.base import ContentFile; "
        "from django.core.files.storage import default_storage as s; "
        f"[s.save(f'drill/file-{{i:03}}.bin', ContentFile(os.urandom({FILE_BYTES}))) "
        f"for i in range({FILES})]",
    )


def volumes_of(name: str) -> list[str]:
    return [v.name for v in docker.from_env().volumes.list() if v.name.startswith(f"{name}-")]


def test_restore_drill(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path_factory.mktemp("repository") / "served"
    served.mkdir()
    repository = served / "drill"
    with repository_server(served) as url:
        offsite = {"backupSchedule": SCHEDULE, "backupRepository": url}
        secrets = {"backupRepositoryPassword": PASSWORD}
        with prod_stack(
            tmp_path_factory.mktemp("drill-a"), "drill", overrides={**offsite, **secrets}
        ) as old:
            write_data(old)
            wait_for_snapshot(repository, 1)
            one_backup = size(repository)
            # A change between the two backups: the second snapshot holds it.
            assert old.post("/api/messages/", {"text": "after the first backup"}).status_code == 201
            wait_for_snapshot(repository, 2)
            two_backups = size(repository)
            rows, messages = old.psql(ROW_DIGEST), old.psql(MESSAGE_DIGEST)
            files = media_digests(old)
            (container,) = old.containers("backup")
            health = container.attrs["State"]["Health"]
            assert health["Status"] == "healthy", health
            # The repository's URL and password are files, never in `docker inspect`.
            inspected = json.dumps([container.attrs, old.service("scheduled-backup").attrs])
            assert PASSWORD not in inspected and url not in inspected
            log = container.logs().decode()
            times = [int(s) for s in re.findall(r"backup \S+\.dump done in (\d+)s", log)]
            assert len(times) >= 2, log

            # The repository out of reach: the process turns unhealthy and says why, in its
            # health check and its log; back in reach, Swarm's new task backs up at once.
            block = ("DOCKER-USER", "-d", SERVER_IP, "-j", "REJECT")
            _run("iptables", "-I", *block)
            try:
                checked, logged = wait_unhealthy(old)
            finally:
                subprocess.run(["iptables", "-D", *block], capture_output=True, check=False)
            for said in (checked, logged):
                assert re.search(
                    r"unhealthy: the last good backup is \d+s old, more than twice the "
                    r"schedule \(120s\)",
                    said,
                ), said
            wait_for_snapshot(repository, 3)
            listed = old.script("restore.sh", "--from-repository", "--list")
            assert listed.count(old.name) >= 2, listed

            # The documented route: the deploy command's --destroy --include-data.
            destroy(old.stack, include_data=True)
            assert volumes_of(old.name) == []

        with prod_stack(
            tmp_path_factory.mktemp("drill-b"),
            "drill",
            # A new stack with the same repository; its own first backup is an hour away.
            overrides={**offsite, **secrets, "backupSchedule": "1h"},
        ) as new:
            assert new.psql("SELECT to_regclass('drill_rows') IS NULL") == "t"
            (backup_before,) = new.containers("backup")
            began = time.monotonic()
            out = new.script("restore.sh", "--from-repository")
            restore_seconds = time.monotonic() - began
            assert "restored " in out, out
            new.wait_healthy("web", 2)
            # The scheduled backup was stopped through the restore, and runs again.
            assert new.wait_healthy("backup", 1) != [backup_before.id]
            assert new.psql(ROW_DIGEST) == rows
            assert new.psql(MESSAGE_DIGEST) == messages
            assert media_digests(new) == files
            some = next(iter(sorted(files)))
            assert new.get("/media/" + some.removeprefix("./")).status_code == 200

    figures.report(
        capsys,
        "drill",
        f"{rows.split()[0]} rows + {messages.split()[0]} messages, {len(files)} files "
        f"({FILES} x {FILE_BYTES // 1024} KiB random); scheduled backups took "
        f"{', '.join(f'{t} s' for t in times)} (dump, media archive, restic backup and forget); "
        f"restore from the repository {restore_seconds:.1f} s (fetch, pg_restore, media); "
        f"repository {one_backup / 2**20:.2f} MiB after one backup, "
        f"{two_backups / 2**20:.2f} MiB after two (+{(two_backups - one_backup) / 2**20:.2f} MiB)",
    )
