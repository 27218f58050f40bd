"""scripts/audit.py end to end: the runtime image with one known-vulnerable distribution planted
in its venv (pycrypto 2.6.1, whose advisories have no fixed release) must fail the scan, naming
it, and pass once the reviewed ignore list holds its advisories. scripts/test.sh runs the same
scan on the unmodified runtime image after the Docker layer."""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import docker
import pytest
from docker.models.images import Image

from scripts import audit

AUDIT = audit.ROOT / "scripts" / "audit.py"
# Only metadata: importlib.metadata (what the scan reads) sees an installed distribution.
PLANT = """FROM {base}
USER root
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \\
 && mkdir "$site/pycrypto-2.6.1.dist-info" \\
 && printf 'Metadata-Version: 2.1\\nName: pycrypto\\nVersion: 2.6.1\\n' \\
      > "$site/pycrypto-2.6.1.dist-info/METADATA"
USER 10001:10001
"""
# PYSEC-2017-94 and PYSEC-2018-97, by their CVE aliases (GHSA duplicates share them).
PYCRYPTO_CVES = ("CVE-2013-7459", "CVE-2018-6594")


@pytest.fixture(scope="module")
def vulnerable_image(docker_client: docker.DockerClient, runtime_image: Image) -> Iterator[str]:
    tag = f"djangostack/web:audit-{secrets.token_hex(6)}"
    dockerfile = PLANT.format(base=runtime_image.id).encode()
    docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def run_audit(image: str, ignore_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(AUDIT), image, "--ignore-file", str(ignore_file)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_known_vulnerable_distribution_fails_the_scan(
    vulnerable_image: str,
    runtime_image: Image,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("# nothing ignored\n")
    done = run_audit(vulnerable_image, ignore)
    _, runtime_pins = audit.image_distributions(runtime_image.id)
    image_id = docker_client.images.get(vulnerable_image).id
    assert done.returncode == 1, done.stdout + done.stderr
    # Every distribution of the image was scanned: the runtime's and the planted one.
    expected = f"{vulnerable_image} ({image_id[:19]}): {len(runtime_pins) + 1} Python distributions"
    assert expected in done.stdout
    assert "VULNERABLE pycrypto 2.6.1: PYSEC-2017-94" in done.stdout
    assert "VULNERABLE pycrypto 2.6.1: PYSEC-2018-97" in done.stdout


def test_reviewed_ignore_entries_let_it_pass(vulnerable_image: str, tmp_path: Path) -> None:
    ignore = tmp_path / "ignore.txt"
    ignore.write_text(
        "".join(f"{cve}  # planted by the test, reviewed {date.today()}\n" for cve in PYCRYPTO_CVES)
    )
    done = run_audit(vulnerable_image, ignore)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ignored pycrypto 2.6.1: PYSEC-2017-94" in done.stdout
    assert "VULNERABLE" not in done.stdout
