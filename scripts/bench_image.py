#!/usr/bin/env python3
"""Image benchmark (prints figures; not a test). In one run, on the same local base image:
the article's naive single-stage image against the multi-stage runtime image (sizes and ratio),
the bytes the runtime image adds to its base against its floor (venv + app + static measured
inside it), and cold build time against rebuild time after a one-line source change.

    .venv/bin/python scripts/bench_image.py   (after bash scripts/testbed.sh)

Cold means `--no-cache` and BuildKit's cache mounts (pip and apt caches) pruned first.
Removes the images it builds; prunes every cache mount of the engine's builder.
"""

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "djangostack-testbed/python:3.13"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The naive Dockerfile runs the base's own pip, as python:3.12 has one; the local stand-in (Debian's
# python3) has none, so for the naive build the base gets pip from the wheel python3-venv ships,
# and loses Debian's "externally managed" marker (python:3.12 has none either).
PIP_BASE = "djangostack-bench/python-pip:latest"
PIP_BASE_RECIPE = f"""FROM {BASE_IMAGE}
RUN set -- /usr/share/python-wheels/pip-*.whl \\
 && python3 "$1/pip" install --no-index --no-cache-dir --break-system-packages "$1" \\
 && rm /usr/lib/python3*/EXTERNALLY-MANAGED
"""
NAIVE, RUNTIME = "djangostack-bench/web:naive", "djangostack-bench/web:runtime"
SUPPORT_IMAGE = "djangostack/support:latest"  # docker/Dockerfile's default SUPPORT_IMAGE


def docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:3])} ... failed:\n{done.stderr[-3000:]}")
    return done.stdout


def build(dockerfile: str, base: str, tag: str, context: Path, *extra: str) -> float:
    """Seconds taken by one BuildKit build."""
    started = time.monotonic()
    docker(
        "buildx", "build", "--load", "-q", "-f", str(ROOT / "docker" / dockerfile),
        "--build-arg", f"BASE_IMAGE={base}", "--secret", f"id=ca_bundle,src={CA_BUNDLE}",
        "-t", tag, *extra, str(context),
    )  # fmt: skip
    return time.monotonic() - started


def cold_and_rebuild(
    dockerfile: str, base: str, tag: str, context: Path, *extra: str
) -> tuple[float, float]:
    docker("buildx", "prune", "--force", "--filter", "type=exec.cachemount")
    cold = build(dockerfile, base, tag, context, "--no-cache", *extra)
    views = context / "core" / "views.py"
    original = views.read_text()
    # A line never built before: an earlier run's build of the same change would be a cache hit.
    views.write_text(original + f"\n# one-line source change {uuid.uuid4().hex}\n")
    try:
        rebuild = build(dockerfile, base, tag, context, *extra)
    finally:
        views.write_text(original)
    return cold, rebuild


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag))


def bytes_inside(tag: str, *paths: str) -> list[int]:
    """Bytes of the regular files under each path inside the image (what its layers hold)."""
    script = "; ".join(
        f"find {path} -type f -printf '%s\\n' | awk '{{s+=$1}} END {{print s}}'" for path in paths
    )
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", tag, "-c", script)
    return [int(line.split()[0]) for line in out.splitlines()]


def mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB" if abs(size) >= 1e5 else f"{size / 1e3:.1f} kB"


def main() -> None:
    docker("buildx", "build", "--load", "-q", "-t", PIP_BASE, "-", stdin=PIP_BASE_RECIPE)
    # The product's support files: docker/Dockerfile's default SUPPORT_IMAGE (docs/image.md).
    docker("buildx", "build", "--load", "-q", "-t", SUPPORT_IMAGE, str(ROOT / "docker" / "support"))
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(shutil.copytree(ROOT / "app", Path(tmp) / "app"))
        naive_cold, naive_rebuild = cold_and_rebuild("Dockerfile.naive", PIP_BASE, NAIVE, context)
        cold, rebuild = cold_and_rebuild(
            "Dockerfile", BASE_IMAGE, RUNTIME, context, "--target", "runtime"
        )
    base, pip_base = image_size(BASE_IMAGE), image_size(PIP_BASE)
    naive, runtime = image_size(NAIVE), image_size(RUNTIME)
    venv, app, static = bytes_inside(RUNTIME, "/opt/venv", "/app", "/app/staticfiles")
    floor = venv + app
    rows = [
        (f"base image {BASE_IMAGE}", mb(base)),
        ("base + pip (naive build only)", mb(pip_base)),
        ("naive image (docker/Dockerfile.naive)", f"{mb(naive)}, adds {mb(naive - pip_base)}"),
        ("runtime image (docker/Dockerfile)", f"{mb(runtime)}, adds {mb(runtime - base)}"),
        ("size ratio naive / runtime", f"{naive / runtime:.2f}"),
        ("floor: venv + app + static", f"{mb(venv)} + {mb(app - static)} + {mb(static)}"),
        ("runtime adds beyond the floor", f"{mb(runtime - base - floor)} (floor {mb(floor)})"),
        ("runtime build: cold / after one-line change", f"{cold:.1f} s / {rebuild:.1f} s"),
        (
            "naive build: cold / after one-line change",
            f"{naive_cold:.1f} s / {naive_rebuild:.1f} s",
        ),
    ]
    for label, value in rows:
        print(f"{label:48} {value}")
    docker("image", "rm", NAIVE, RUNTIME, PIP_BASE)


if __name__ == "__main__":
    main()
