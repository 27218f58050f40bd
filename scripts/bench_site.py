#!/usr/bin/env python3
"""Site benchmark (prints figures; not a test). In one run, on this machine, loopback only:

1. the seed article's naive setup (docker/Dockerfile.naive: runserver, no nginx, published
   on 127.0.0.1) against the prod stack (nginx TLS -> Gunicorn, realized through the test
   harness exactly as the program describes it): requests/s and p50/p99 latency with `wrk`
   for a Django view (/version/) and a static file;
2. the time from an image change (a new imageTag deployed) to the new version serving:
   first answer from the new version, and the rollout complete (every answer new).

    .venv/bin/python scripts/bench_site.py [--seconds 15] [--connections 8]

Bounded: each wrk run lasts --seconds; everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_image import PIP_BASE, PIP_BASE_RECIPE, build, docker  # noqa: E402

from tests.docker.stack_config import free_port  # noqa: E402
from tests.support.prodstack import ProdStack, prod_stack  # noqa: E402

NAIVE = f"djangostack-bench/web:naive-{uuid.uuid4().hex[:8]}"
READY_TIMEOUT_SECONDS = 120
WRK_THREADS = 2


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    """requests/s and p50/p99 latency (ms) from one bounded wrk run."""
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
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
            if requests.get(url, timeout=2, verify=False).status_code == 200:  # noqa: S501 - loopback, self-signed
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {READY_TIMEOUT_SECONDS}s")
        time.sleep(0.5)


def bench_naive(seconds: int, connections: int) -> dict[str, dict[str, float]]:
    docker("buildx", "build", "--load", "-q", "-t", PIP_BASE, "-", stdin=PIP_BASE_RECIPE)
    build("Dockerfile.naive", PIP_BASE, NAIVE, ROOT / "app")
    port = free_port()
    container = docker(
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
        docker("rm", "-f", container)
        docker("image", "rm", NAIVE)


def bench_prod(stack: ProdStack, seconds: int, connections: int) -> dict[str, dict[str, float]]:
    css = re.search(r"/static/core/site\.[0-9a-f]{12}\.css", stack.get("/").text).group(0)
    return {
        "view": wrk(stack.url + "/version/", seconds, connections),
        "static": wrk(stack.url + css, seconds, connections),
    }


def image_change_to_serving(stack: ProdStack) -> tuple[float, float]:
    """Deploy a new imageTag; seconds until the first answer from it, and until the deploy
    (build, backup, migration, rolling update) has finished with every answer new."""
    new = "1.0.1"
    first: list[float] = []
    done = threading.Event()
    began = time.monotonic()

    def poll() -> None:
        while not done.is_set() and not first:
            try:
                if stack.version() == new:
                    first.append(time.monotonic() - began)
            except requests.RequestException:
                pass
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stack.realize(imageTag=new)
    complete = time.monotonic() - began
    done.set()
    poller.join(5)
    assert {stack.version() for _ in range(10)} == {new}, "rollout incomplete"
    return (first[0] if first else complete), complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args()

    naive = bench_naive(args.seconds, args.connections)
    with (
        tempfile.TemporaryDirectory(prefix="bench-site-") as tmp,
        prod_stack(Path(tmp), "bench") as stack,
    ):
        prod = bench_prod(stack, args.seconds, args.connections)
        first, complete = image_change_to_serving(stack)

    print(f"\nwrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds}s, loopback, same machine")
    print(f"{'setup':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    rows = [
        ("naive runserver  GET /version/", naive["view"]),
        ("nginx+gunicorn   GET /version/ (HTTPS)", prod["view"]),
        ("naive runserver  static site.css", naive["static"]),
        ("nginx            static site.css (HTTPS)", prod["static"]),
    ]
    for label, r in rows:
        print(f"{label:44} {r['rps']:9.1f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:7d}")
    print(f"image change -> first answer from the new version: {first:.1f} s")
    print(f"image change -> rollout complete (all answers new): {complete:.1f} s")


if __name__ == "__main__":
    main()
