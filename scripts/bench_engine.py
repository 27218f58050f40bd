#!/usr/bin/env python3
"""Engine benchmark (prints figures; not a test): deploys of the dev and prod stacks through
tests/support/engine.py, the deploy command's own engine path (the project's program inline
through the Automation API, the toolchain's CLI and plugins, the policy pack, generated
secrets), on this machine's Docker engine, loopback only. For each profile:

1. first `up` of a stack from nothing, wall time: with a cold image build (a base image made
   for this run, so no layer after FROM is cached; BuildKit's apt and pip download caches stay
   warm) and with the image already built once (a second new stack with the same inputs);
2. a no-change `preview` and a no-change `up` right after: wall time and the engine's change
   count (must be 0);
3. a one-line Python source change (a new line in core/views.py) end to end: `up` wall time
   and the resources the engine changed.

The quick ones (2, 3) run --repeat times; the median is printed with every run's figure. Wall
times include what the deploy command does around the engine (config, secrets, state reads).

    .venv/bin/python scripts/bench_engine.py [--repeat 3] [--profiles dev prod]

Removes every stack it deploys (stack.remove()), the base images it made and the app images
built on them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.docker.stack_config import STAND_INS  # noqa: E402
from tests.support.engine import EngineStack, Result, new_stack  # noqa: E402

IMAGE_BUILD = ("docker-build:index:Image", "djangostack-image-build")
# Component resources (djangostack:index:*) and the stack resource only group the real ones.
GROUPING = ("djangostack:index:", "pulumi:pulumi:Stack")


def docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {done.stderr[-2000:]}")
    return done.stdout


def fresh_base() -> str:
    """The stand-in base image plus a layer of this run's own, so BuildKit has nothing built
    on it and a build from it is cold after FROM. (A label alone is not enough: the engine's
    BuildKit keys a local base image by its layers, not by its image id.)"""
    tag = f"djangostack-bench/python-cold:{uuid.uuid4().hex[:12]}"
    recipe = f"FROM {STAND_INS['baseImage']}\nRUN echo {tag} > /etc/djangostack-bench\n"
    docker("buildx", "build", "--load", "-q", "-t", tag, "-", stdin=recipe)
    return tag


def timed(call: Callable[[], Result]) -> tuple[float, Result]:
    began = time.monotonic()
    result = call()
    return time.monotonic() - began, result


def build_seconds(result: Result) -> float | None:
    """Seconds from the engine starting the app image's build step to its outputs."""
    times = [t.at for t in result.timeline if (t.type_token, t.name) == IMAGE_BUILD]
    return max(times) - min(times) if len(times) > 1 else None


def changed_resources(result: Result) -> list[str]:
    """`op type name` of every real resource the operation did not leave as it was."""
    return sorted(
        f"{op} {type_token.rsplit(':', 1)[-1]} {name}"
        for (type_token, name), op in result.ops.items()
        if op != "same" and not type_token.startswith(GROUPING)
    )


def one_line_change(stack: EngineStack) -> None:
    """A new line of Python in the stack's copy of the app (never built before)."""
    views = stack.app_dir / "core" / "views.py"
    mark = uuid.uuid4().hex
    views.write_text(views.read_text() + f'BENCH_MARK = "{mark}"  # scripts/bench_engine.py\n')


@dataclass
class Row:
    what: str
    runs: list[tuple[float, Result]]  # (wall seconds, the engine's result) of each run

    def line(self) -> str:
        seconds = [s for s, _ in self.runs]
        builds = [b for _, r in self.runs if (b := build_seconds(r)) is not None]
        changes = {r.changed for _, r in self.runs}
        wall = statistics.median(seconds)
        build = f"{statistics.median(builds):8.1f}" if builds else f"{'-':>8}"
        each = " ".join(f"{s:.1f}" for s in seconds) if len(seconds) > 1 else ""
        count = "/".join(str(c) for c in sorted(changes))
        return f"{self.what:46} {wall:8.1f} {build} {count:>8}   {each}"


@dataclass
class Figures:
    rows: list[Row]
    created: int  # resources the first `up` created
    touched: list[str]  # resources the source changes touched (all runs)
    consistent: bool  # every source change touched the same resources


def bench_profile(profile: str, workdir: Path, repeat: int, images: list[str]) -> Figures:
    base = fresh_base()
    images.append(base)
    overrides = {"baseImage": base}
    print(f"[{profile}] first up from nothing, cold image build ({base})", flush=True)
    cold = new_stack(workdir / f"{profile}-cold", f"bench-{profile}", profile, overrides=overrides)
    try:
        cold_run = timed(cold.up)
        images.append(cold_run[1].outputs["imageRef"])
    finally:
        cold.remove()

    print(f"[{profile}] first up from nothing, image built once", flush=True)
    stack = new_stack(workdir / profile, f"bench-{profile}", profile, overrides=overrides)
    try:
        warm_run = timed(stack.up)
        print(f"[{profile}] no-change preview and up x{repeat}", flush=True)
        previews = [timed(stack.preview) for _ in range(repeat)]
        ups = [timed(stack.up) for _ in range(repeat)]
        print(f"[{profile}] one-line source change x{repeat}", flush=True)
        changes = []
        for _ in range(repeat):
            one_line_change(stack)
            changes.append(timed(stack.up))
            images.append(changes[-1][1].outputs["imageRef"])
    finally:
        stack.remove()

    rows = [
        Row("first up from nothing, cold image build", [cold_run]),
        Row("first up from nothing, image built once", [warm_run]),
        Row("no-change preview", previews),
        Row("no-change up", ups),
        Row("one-line source change, up", changes),
    ]
    for label, runs in (("no-change preview", previews), ("no-change up", ups)):
        for _, result in runs:
            if result.changed:  # sanity: an unchanged program must change nothing
                print(f"[{profile}] !! {label} reported changes: {changed_resources(result)}")
    return Figures(
        rows,
        created=cold_run[1].changes.get("create", 0),
        touched=sorted({r for _, res in changes for r in changed_resources(res)}),
        consistent=len({tuple(changed_resources(res)) for _, res in changes}) == 1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each quick measurement")
    parser.add_argument("--profiles", nargs="+", choices=("dev", "prod"), default=["dev", "prod"])
    args = parser.parse_args()

    images: list[str] = []
    results: dict[str, Figures] = {}
    began = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
            for profile in args.profiles:
                results[profile] = bench_profile(profile, Path(tmp), args.repeat, images)
    finally:
        for image in reversed(images):  # app images first, then the bases they came from
            try:
                docker("image", "rm", image)
            except RuntimeError as error:
                print(f"[cleanup] {error}")

    print(
        f"\nEngine benchmark ({time.monotonic() - began:.0f} s in all); wall seconds of the "
        f"EngineStack call, median of {args.repeat} where repeated; 'build' is the engine's "
        "image build step (start to outputs)"
    )
    for profile, figures in results.items():
        print(f"\n{profile:6} {'what':46} {'wall s':>8} {'build s':>8} {'changed':>8}   runs")
        for row in figures.rows:
            print(f"{'':6} {row.line()}")
        print(f"{'':6} resources created from nothing: {figures.created}")
        same = "" if figures.consistent else " (differs between runs)"
        print(f"{'':6} resources a one-line source change touched{same}:")
        for resource in figures.touched:
            print(f"{'':9} {resource}")


if __name__ == "__main__":
    main()
