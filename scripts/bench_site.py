#!/usr/bin/env python3
"""Site benchmark (prints figures; not a test). In one run, on this machine, loopback only:

1. the seed article's naive setup (docker/Dockerfile.naive: runserver, no nginx, plain HTTP on
   127.0.0.1) against the prod stack deployed by the Pulumi engine (tests/support/prodstack.py:
   nginx with TLS -> Gunicorn, 2 web replicas): requests/s and p50/p99 latency with `wrk` for a
   Django view (GET /version/) and a static file;
2. a release (a one-line change to a Python file and a new imageTag: image build from the
   cached dependency layers, backup, migration, static sync, then Swarm's rolling update of
   web and Celery) under continuous HTTPS load through nginx, once for each web replica count
   of --replicas (config webReplicas; default 2 and 4) and each test bed of --beds: this one
   host, and the three-node Swarm of scripts/multinode.sh (tests/support/multinode.py: the
   image pushed to its registry, web spread over the three nodes): time from the start of `up`
   to the first answer from the new release through nginx, time until every web replica is
   on it (each new web task healthy, by Docker's events on every node, and nginx's last
   answer from an old task behind), failed and total requests of the load (which runs until
   Swarm has ended the rolling update), and when `up` returned and Swarm ended the update; a
   change of replica count is deployed first (and waited for), and what it did to the running
   tasks is printed;
3. each release's timeline: the engine's resource steps (image build, backup, migration, static
   sync, the web service update...) from its events, each web task's start, health and stop
   from Docker's events and Swarm's task states, the switch as the load saw it (first answer
   of the new release, last of the old one) and when every replica was new.

    .venv/bin/python scripts/bench_site.py [--seconds 15] [--connections 8] [--replicas 2 4]
        [--beds one-host three-node] [--settings before now delay1s probe1s]

Bounded: each wrk run lasts --seconds, the load at most LOAD_MAX_SECONDS. Removes the stack
(stack.remove()), the naive image and the images of the releases it built.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_image import PIP_BASE, PIP_BASE_RECIPE, build  # noqa: E402
from bench_image import docker as docker_cli  # noqa: E402

from components.hardening import ROLE_LABEL, STACK_LABEL  # noqa: E402
from components.renderers import STEP_LABEL  # noqa: E402
from tests.docker.stack_config import free_port  # noqa: E402
from tests.support import multinode  # noqa: E402
from tests.support.checks import docker_time, wait_for  # noqa: E402
from tests.support.engine import Result  # noqa: E402
from tests.support.prodstack import ProdStack, prod_stack  # noqa: E402

RUN = uuid.uuid4().hex[:6]
BEDS = ("one-host", "three-node")
NAIVE = f"djangostack-bench/web:naive-{RUN}"
READY_TIMEOUT_SECONDS = 120
WRK_THREADS = 2
LOAD_MAX_SECONDS = 900  # bound of each release's load: no release here takes that long
SWARM_WAIT_SECONDS = 300  # bound of the wait for Swarm to end a rolling update
SWARM_IDLE_SECONDS = 30  # no rolling update started this long after a change: none will
SWARM_ENDED = ("completed", "paused", "rollback_completed", "rollback_paused")
CHANGED_SOURCE = "core/views.py"  # in the reference project (app/)
CONTAINER = "docker:index/container:Container"
STACK_TYPE = "pulumi:pulumi:Stack"
SERVICE = "docker:index/service:Service"
# The engine's steps of a release, by resource, as the timeline names them.
STEPS = {
    ("docker-build:index:Image", "djangostack-image-build"): "image build",
    (CONTAINER, "djangostack-backup-run"): "backup",
    (CONTAINER, "djangostack-migration-run"): "migration",
    (CONTAINER, "djangostack-static-run"): "static sync",
    (SERVICE, "djangostack-web"): "web service update (Swarm rollout, converged)",
    (SERVICE, "djangostack-celery"): "celery service update",
}
GROUPING = ("djangostack:index:", STACK_TYPE)  # component resources: not steps
# Docker's container events of a web task that the timeline shows.
WEB_ACTIONS = {"start": "started", "health_status: healthy": "healthy", "die": "exited"}


def wrk(
    url: str, seconds: int, connections: int, headers: tuple[str, ...] = ()
) -> dict[str, float]:
    """requests/s and p50/p99 latency (ms) from one bounded wrk run (`headers`: "Name: value"
    each; "Connection: close" makes every request a new connection)."""
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * units[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": errors,
    }


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {READY_TIMEOUT_SECONDS}s")
        time.sleep(0.5)


def bench_naive(seconds: int, connections: int) -> dict[str, dict[str, float]]:
    docker_cli("buildx", "build", "--load", "-q", "-t", PIP_BASE, "-", stdin=PIP_BASE_RECIPE)
    build("Dockerfile.naive", PIP_BASE, NAIVE, ROOT / "app")
    port = free_port()
    container = docker_cli(
        "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000",
        "-e", "DJANGO_SETTINGS_MODULE=config.settings.development", NAIVE,
    ).strip()  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/version/")
        return {
            "view": wrk(base + "/version/", seconds, connections),
            "static": wrk(base + "/static/core/site.css", seconds, connections),
        }
    finally:
        docker_cli("rm", "-f", container)
        docker_cli("image", "rm", NAIVE)


def bench_prod(stack: ProdStack, seconds: int, connections: int) -> dict[str, dict[str, float]]:
    css = re.search(r"/static/core/site\.[0-9a-f]{12}\.css", stack.get("/").text).group(0)
    return {
        "view": wrk(stack.url + "/version/", seconds, connections),
        "static": wrk(stack.url + css, seconds, connections),
    }


def swarm_update(stack: ProdStack, since: float) -> dict[str, Any] | None:
    """The web service's UpdateStatus once a rolling update that Swarm started after `since`
    (Unix time) has ended (its `monitor` window passed: Swarm's own "release done"); None when
    no update started within SWARM_IDLE_SECONDS or none ended within SWARM_WAIT_SECONDS."""
    waited = time.monotonic()
    while time.monotonic() - waited < SWARM_WAIT_SECONDS:
        status = stack.service("web").attrs.get("UpdateStatus") or {}
        started = docker_time(status["StartedAt"]).timestamp() if status.get("StartedAt") else 0.0
        if started >= since and status.get("State") in SWARM_ENDED:
            return status
        if started < since and time.monotonic() - waited > SWARM_IDLE_SECONDS:
            return None
        time.sleep(1)
    return None


def rollout_settings(stack: ProdStack) -> str:
    """The web service's update_config as Swarm has it."""
    config = stack.service("web").attrs["Spec"].get("UpdateConfig") or {}
    delay, monitor = config.get("Delay", 0) / 1e9, config.get("Monitor", 0) / 1e9
    return (
        f"parallelism {config.get('Parallelism', 1)}, order {config.get('Order', '?')}, "
        f"delay {delay:.0f} s, monitor {monitor:.0f} s"
    )


# The release settings compared side by side: the program's before issue 19 (10 s health
# interval, one task at a time, 5 s between tasks, 30 s monitor), its defaults now (2 s
# interval, half the tasks at a time, 5 s between batches, 10 s monitor), those with a 1 s
# pause (what a team trades the 5 s crash window for) and with a 1 s health interval (what a
# probe twice as often buys).
SETTINGS = {
    "before": {
        "webHealthInterval": "10s",
        "releaseParallelism": 1,
        "releaseDelay": "5s",
        "releaseMonitor": "30s",
    },
    "now": {
        "webHealthInterval": None,
        "releaseParallelism": None,
        "releaseDelay": None,
        "releaseMonitor": None,
    },
    "delay1s": {
        "webHealthInterval": None,
        "releaseParallelism": None,
        "releaseDelay": "1s",
        "releaseMonitor": None,
    },
    "probe1s": {
        "webHealthInterval": "1s",
        "releaseParallelism": None,
        "releaseDelay": None,
        "releaseMonitor": None,
    },
}


def running_web_tasks(stack: ProdStack) -> set[str]:
    return {t["ID"] for t in stack.running_tasks("web")}


def configure(stack: ProdStack, replicas: int, settings: dict[str, Any]) -> str:
    """`up` with webReplicas `replicas` and the release `settings` (None: the default), then
    wait until Swarm is done and runs them all; what it did."""
    before = running_web_tasks(stack)
    since, began = time.time(), time.monotonic()
    stack.up(webReplicas=replicas, **settings)
    status = swarm_update(stack, since)

    def all_running() -> set[str] | None:
        tasks = running_web_tasks(stack)
        return tasks if len(tasks) == replicas else None

    remaining = began + SWARM_WAIT_SECONDS - time.monotonic()  # the bound counts from `up`
    after = wait_for(f"{replicas} web tasks running", all_running, remaining, every=0.5)
    rolled = f", Swarm's update {status['State']}" if status else ", no rolling update"
    return (
        f"set web to {replicas} replicas and {settings} in {time.monotonic() - began:.1f} s: "
        f"kept {len(before & after)} of the {len(before)} running tasks{rolled}"
    )


Engines = Callable[[], list[docker.DockerClient]]  # new clients of every node's engine


@contextlib.contextmanager
def deployed(bed: str, workdir: Path) -> Iterator[tuple[ProdStack, Engines]]:
    """The prod stack deployed on test bed `bed`, and how to reach its nodes' engines (the
    manager's first); removed afterwards (the three-node bed too)."""
    if bed == "one-host":
        with prod_stack(workdir, "bench-site") as stack:
            yield stack, lambda: [stack.docker_client()]
        return
    with (
        multinode.testbed() as nodes,
        multinode.multinode_stack(nodes, workdir, "bench-mn", {}) as stack,
    ):
        yield stack, lambda: [multinode.engine(nodes, node) for node in multinode.NODES]


class DockerEvents:
    """Docker's events for the stack's containers on every engine and its web and Celery
    services (the first engine's: the manager), collected in the background between start()
    and stop()."""

    def __init__(self, engines: list[docker.DockerClient], stack: str):
        self.services = {f"{stack}-web", f"{stack}-celery"}
        containers = {"type": "container", "label": f"{STACK_LABEL}={stack}"}
        self._streams = [engine.events(decode=True, filters=containers) for engine in engines]
        self._streams.append(engines[0].events(decode=True, filters={"type": "service"}))
        self._threads = [threading.Thread(target=self._read, args=(s,)) for s in self._streams]
        self.events: list[dict[str, Any]] = []

    def _read(self, stream: Any) -> None:
        try:
            for event in stream:
                self.events.append(event)
        except Exception:  # noqa: S110 - the stream ends with an error when stop() closes it
            pass

    def start(self) -> DockerEvents:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        for stream in self._streams:
            stream.close()
        for thread in self._threads:
            thread.join(10)
        return self.events


@dataclass
class Release:
    bed: str  # one-host or three-node
    profile: str  # a key of SETTINGS
    replicas: int
    old: str
    new: str
    up_seconds: float
    first_new: float | None  # seconds from the start of `up`
    all_new: float | None
    swarm_done: float | None  # Swarm's UpdateStatus completed (after its monitor window)
    swarm_state: str
    settings: str  # the web service's update_config
    requests: int
    failures: collections.Counter
    p99_ms: float
    cpu: str  # the machine's CPU over `up`: busy and stolen (by the hypervisor) shares
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (s, source, what)


def versions_of(bodies: Iterable[str]) -> dict[str, str]:
    """Body text -> the release it names (JSON answers of /version/ only)."""
    found = {}
    for body in bodies:
        try:
            found[body] = json.loads(body)["version"]
        except (ValueError, KeyError, TypeError):
            continue
    return found


def engine_steps(result: Result, began: float) -> list[tuple[float, str, str]]:
    """Start and end of every resource the engine changed, from its events (wall clock)."""
    spans: dict[tuple[str, str], list] = {}
    for timed in result.timeline:
        key = (timed.type_token, timed.name)
        if timed.type_token.startswith(GROUPING) or result.ops.get(key, "same") == "same":
            continue
        span = spans.setdefault(key, [timed.at, timed.at, set()])
        span[0], span[1] = min(span[0], timed.at), max(span[1], timed.at)
        if timed.kind == "pre":
            span[2].add(timed.op)
        if timed.kind == "failed":
            span[2].add("FAILED")
    lines = []
    for key, (start, end, ops) in spans.items():
        what = STEPS.get(key, f"{key[0].rsplit(':', 1)[-1]} {key[1]}")
        ops_text = ", ".join(sorted(ops))
        lines.append((start - began, "engine", f"{what} [{ops_text}] starts"))
        lines.append((end - began, "engine", f"{what} done ({end - start:.1f} s)"))
    return lines


def healthy_times(events: list[dict[str, Any]], new_ref: str, began: float) -> list[float]:
    """When each web task of the release `new_ref` first turned healthy (Docker's events),
    in order."""
    healthy: dict[str, float] = {}
    for event in events:
        attributes = event.get("Actor", {}).get("Attributes", {})
        if (
            event.get("Action") == "health_status: healthy"
            and attributes.get(ROLE_LABEL) == "web"
            and attributes.get("image", "").startswith(new_ref)
        ):
            healthy.setdefault(event["Actor"]["ID"], event["timeNano"] / 1e9 - began)
    return sorted(healthy.values())


def task_slot(attributes: dict[str, str]) -> str:
    task = attributes.get("com.docker.swarm.task.name", attributes.get("name", "?"))
    parts = task.split(".")
    return f"{parts[0].rsplit('-', 1)[-1]}.{parts[1]}" if len(parts) > 2 else task


def docker_lines(
    events: list[dict[str, Any]], services: set[str], new_ref: str, began: float
) -> list[tuple[float, str, str]]:
    """Web tasks' start, health and stop, the steps' containers and the services' rollout
    states, from Docker's events."""
    lines = []
    for event in events:
        at = event.get("timeNano", 0) / 1e9 - began
        action, attributes = event.get("Action", ""), event.get("Actor", {}).get("Attributes", {})
        if event.get("Type") == "service":
            state = attributes.get("updatestate.new")
            if attributes.get("name") in services and state:
                lines.append((at, "docker", f"service {attributes['name']}: rollout {state}"))
            continue
        if attributes.get(ROLE_LABEL) == "web":
            release = "new" if attributes.get("image", "").startswith(new_ref) else "old"
            task = f"web task {task_slot(attributes)} ({release})"
            if action == "kill" and attributes.get("signal") == "15":
                lines.append((at, "docker", f"{task} stopping (SIGTERM)"))
            elif action in WEB_ACTIONS:
                lines.append((at, "docker", f"{task} {WEB_ACTIONS[action]}"))
        elif STEP_LABEL in attributes and action in ("start", "die"):
            code = f", exit {attributes.get('exitCode')}" if action == "die" else ""
            step = attributes[STEP_LABEL]
            lines.append((at, "docker", f"step container {step} {action}{code}"))
    return lines


def task_lines(stack: ProdStack, new_ref: str, began: float) -> list[tuple[float, str, str]]:
    """Swarm's task states of the web service: the new tasks' creation and running, the old
    ones' shutdown (the state each task reached last, with its time)."""
    lines = []
    for task in stack.service("web").tasks():
        image = task["Spec"]["ContainerSpec"]["Image"]
        release = "new" if image.startswith(new_ref) else "old"
        slot = f"web.{task.get('Slot', '?')}"
        created = docker_time(task["CreatedAt"]).timestamp() - began
        state_at = docker_time(task["Status"]["Timestamp"]).timestamp() - began
        if release == "new" and created >= 0:
            lines.append((created, "swarm", f"task {slot} (new) created"))
        if state_at >= 0:
            lines.append((state_at, "swarm", f"task {slot} ({release}) {task['Status']['State']}"))
    return lines


def release(
    stack: ProdStack,
    engines: Engines,
    bed: str,
    profile: str,
    new: str,
    replicas: int,
    workers: int,
) -> Release:
    """Deploy imageTag `new` under continuous HTTPS load through nginx; the figures and the
    timeline of that release."""
    old = stack.version()
    # Clients of their own: the event streams hold their connections until stop().
    events = DockerEvents(engines(), stack.name).start()
    load = stack.load(workers, LOAD_MAX_SECONDS)
    # What a team's one-line fix is: a changed line of Python (the image rebuilds from its
    # cached dependency layers, collectstatic included), released under a new imageTag.
    views = stack.app_dir / CHANGED_SOURCE
    views.write_text(views.read_text() + f"# release {new}\n")
    began_wall, began = time.time(), time.monotonic()
    cpu_before = cpu_times()
    result = stack.up(imageTag=new)
    up_seconds = time.monotonic() - began
    cpu = cpu_share(cpu_before, cpu_times())
    up_wall = time.time()
    # The load runs on until Swarm has ended the rolling update: the whole release.
    status = swarm_update(stack, began_wall) or {}
    done = load.stop()
    docker_events = events.stop()
    swarm_done = (
        docker_time(status["CompletedAt"]).timestamp() - began_wall
        if "CompletedAt" in status
        else None
    )

    versions = versions_of(done.bodies)
    first = [done.first_seen[b] - began for b, v in versions.items() if v == new]
    last_old = [done.last_seen[b] - began for b, v in versions.items() if v == old]
    served = {stack.version() for _ in range(10)}
    if served != {new}:  # sanity: the release must be what the site serves afterwards
        print(f"!! after the release {new} nginx served {served}")
    new_ref = result.outputs["imageRef"]
    timeline = engine_steps(result, began_wall)
    timeline += docker_lines(docker_events, events.services, new_ref, began_wall)
    timeline += task_lines(stack, new_ref, began_wall)
    timeline.append((0.0, "engine", f"`up` imageTag={new} starts ({replicas} web replicas)"))
    registered = [t.at for t in result.timeline if t.type_token == STACK_TYPE]
    if registered:  # config set, engine and providers started, the program running
        timeline.append((min(registered) - began_wall, "engine", "program registers the stack"))
    timeline.append((up_wall - began_wall, "engine", "`up` returns"))
    if first:
        timeline.append((min(first), "load", f"first answer of {new} through nginx"))
    if last_old:
        timeline.append((max(last_old), "load", f"last answer of {old} through nginx"))
    if swarm_done is not None:
        timeline.append((swarm_done, "swarm", f"web rolling update {status.get('State')}"))
    # Every replica is new once the last new task is healthy and nginx has sent its last
    # request to an old one.
    new_healthy = healthy_times(docker_events, new_ref, began_wall)
    all_new = None
    if len(new_healthy) >= replicas:
        all_new = max(new_healthy[replicas - 1], *last_old)
        timeline.append((all_new, "load", f"every web replica on {new}"))
    return Release(
        bed=bed,
        profile=profile,
        replicas=replicas,
        old=old,
        new=new,
        up_seconds=up_seconds,
        first_new=min(first) if first else None,
        all_new=all_new,
        swarm_done=swarm_done,
        swarm_state=status.get("State", "none seen"),
        settings=rollout_settings(stack),
        requests=done.requests,
        failures=collections.Counter(done.failures),
        p99_ms=done.percentile(99),
        cpu=cpu,
        timeline=sorted(timeline),
    )


def cpu_times() -> list[int]:
    """The machine's CPU times since boot (jiffies): user nice system idle iowait irq softirq
    steal, the first line of /proc/stat."""
    with open("/proc/stat") as stat:
        return [int(n) for n in stat.readline().split()[1:9]]


def cpu_share(before: list[int], after: list[int]) -> str:
    """How busy the machine's CPUs were between two cpu_times(), and how much of it the
    hypervisor took (steal): a slow release on a machine that others share shows here."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    idle = spent[3] + spent[4]
    return f"{100 * (total - idle) / total:.0f}/{100 * spent[7] / total:.0f}"


def load_average() -> str:
    return " ".join(f"{n:.1f}" for n in os.getloadavg())


def seconds_text(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "never"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument(
        "--replicas", type=int, nargs="+", default=[2, 4], help="web replicas of each release"
    )
    parser.add_argument("--load-workers", type=int, default=3, help="threads of release load")
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=sorted(SETTINGS),
        default=["before", "now", "delay1s"],
        help="release settings compared (SETTINGS), each with every --replicas",
    )
    parser.add_argument(
        "--beds",
        nargs="+",
        choices=BEDS,
        default=list(BEDS),
        help="test beds of the releases (the wrk figures: one-host only)",
    )
    args = parser.parse_args()

    notes: list[str] = []
    releases: list[Release] = []
    built: list[str] = []  # the releases' image tags
    throughput = "one-host" in args.beds
    if throughput:
        naive = bench_naive(args.seconds, args.connections)
        naive_load = load_average()
    try:
        for bed in args.beds:
            with (
                tempfile.TemporaryDirectory(prefix="bench-site-") as tmp,
                deployed(bed, Path(tmp)) as (stack, engines),
            ):
                if bed == "one-host":
                    prod = bench_prod(stack, args.seconds, args.connections)
                    prod_load = load_average()
                runs = [(p, r) for p in args.settings for r in args.replicas]
                for number, (profile, replicas) in enumerate(runs, start=1):
                    print(f"[site] {bed}: settings {profile}, {replicas} web replicas", flush=True)
                    notes.append(f"{bed}: {configure(stack, replicas, SETTINGS[profile])}")
                    new = f"1.0.{number}-bench.{RUN}"
                    print(f"[site] release {new} under load", flush=True)
                    releases.append(
                        release(stack, engines, bed, profile, new, replicas, args.load_workers)
                    )
                    # Both tags carry this run's imageTag: nobody else's.
                    built += [stack.outputs["imageRef"], stack.outputs["imageTag"]]
    finally:
        for image in built:
            subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)

    if throughput:
        print_throughput(args, naive, naive_load, prod, prod_load)
    print_releases(args, releases, notes)


def print_throughput(
    args: argparse.Namespace,
    naive: dict[str, dict[str, float]],
    naive_load: str,
    prod: dict[str, dict[str, float]],
    prod_load: str,
) -> None:
    print(
        f"\nwrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds}s, loopback, same machine "
        f"(load average after the naive runs {naive_load}, after the stack's {prod_load})"
    )
    print(f"{'setup':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    rows = [
        ("naive runserver  GET /version/", naive["view"]),
        ("nginx+gunicorn   GET /version/ (HTTPS)", prod["view"]),
        ("naive runserver  static site.css", naive["static"]),
        ("nginx            static site.css (HTTPS)", prod["static"]),
    ]
    for label, r in rows:
        print(f"{label:44} {r['rps']:9.1f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:7d}")


def print_releases(args: argparse.Namespace, releases: list[Release], notes: list[str]) -> None:
    print(
        f"\nReleases under continuous HTTPS load ({args.load_workers} threads through nginx), "
        "seconds from the start of `up`:"
    )
    print(
        f"{'bed':>10} {'settings':>8} {'web replicas':>12} {'first new':>10} {'all new':>8} "
        f"{'failed':>7} {'requests':>9} "
        f"{'up done':>8} {'swarm done':>11} {'p99 ms':>7} {'cpu %':>6}  release"
    )
    for r in releases:
        print(
            f"{r.bed:>10} {r.profile:>8} {r.replicas:12d} {seconds_text(r.first_new):>10} "
            f"{seconds_text(r.all_new):>8} "
            f"{sum(r.failures.values()):7d} {r.requests:9d} {r.up_seconds:8.1f} "
            f"{seconds_text(r.swarm_done):>11} {r.p99_ms:7.1f} {r.cpu:>6}  {r.old} -> {r.new}"
        )
        if r.failures:
            print(f"{'':12} failures: {dict(r.failures)}")
    print(
        "first new: first answer of the new release through nginx; all new: every new web task "
        "healthy and the last answer of an old one through nginx; up done: `up` returned; "
        "swarm done: Swarm ended the rolling update (after its monitor window); cpu %: the "
        "machine's CPUs busy / stolen by the hypervisor while `up` ran"
    )
    for note in notes:
        print(note)
    for r in releases:
        print(
            f"\nTimeline of the release {r.old} -> {r.new} ({r.bed}, {r.profile}, "
            f"{r.replicas} web replicas; "
            f"web update_config: {r.settings}; Swarm's update: {r.swarm_state}):"
        )
        for at, source, what in r.timeline:
            print(f"  {at:+7.1f} s  {source:6}  {what}")


if __name__ == "__main__":
    main()
