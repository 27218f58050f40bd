"""The three-node Swarm test bed (scripts/multinode.sh) and a prod stack deployed on it, as a
user deploys to a remote manager: for tests/docker/test_multinode.py and the site benchmark.

The Docker provider talks to the manager (config `docker:host`), while the image is built by
this machine's engine (docker-build runs the local `docker buildx`), pushed (config `registry`)
and run by digest on every node; Postgres, Redis and nginx are containers on the manager. nginx
publishes on the manager's bridge address; a loopback forwarder stands in for the load balancer
or DNS name in front of the edge node. The host engine and its single-node Swarm are never
touched.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker

from tests.docker.stack_config import free_port
from tests.support.prodstack import ProdStack, prod_stack

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "multinode.sh"
RUN_DIR = Path("/run/dsmn")  # scripts/multinode.sh: sockets and pid files of the nodes
NODES = ("n1", "n2", "n3")  # n1 is the manager
WORKERS = ("n2", "n3")
APP_LABEL = "djangostack.app=true"  # every node carries it (scripts/multinode.sh)
MAX_WEB_PER_NODE = 2


def script(action: str) -> str:
    """Run `multinode.sh <action>`; its output (it must succeed)."""
    done = subprocess.run(
        ["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"multinode.sh {action} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def testbed() -> Iterator[dict[str, str]]:
    """The three-engine Swarm (its MULTINODE_* addresses), up for the block and gone
    afterwards, even on failure."""
    try:
        script("up")
        yield dict(line.split("=", 1) for line in script("env").split())
    finally:
        script("down")


def engine(bed: Mapping[str, str], node: str) -> docker.DockerClient:
    return docker.DockerClient(base_url=bed[f"MULTINODE_HOST_{node.upper()}"], timeout=300)


@contextlib.contextmanager
def multinode_stack(
    bed: Mapping[str, str], workdir: Path, label: str, overrides: Mapping[str, Any]
) -> Iterator[ProdStack]:
    """A prod stack deployed on the test bed with `overrides` (prod_stack), its URL
    (https://localhost:<httpsPort>, the certificate's name) forwarded to nginx on the manager;
    removed afterwards, and the pushed tags untagged on this machine's engine."""
    https_port = free_port()
    on_the_bed = {
        # The Docker provider's own host: every container, service, network, volume and secret
        # on the manager. Not DOCKER_HOST: docker-build's `docker buildx` runs on this machine's
        # engine (its BuildKit cache and base image), and the nodes pull the pushed digest.
        "docker:host": bed["MULTINODE_MANAGER_HOST"],
        "registry": bed["MULTINODE_REGISTRY"],
        # nginx publishes on the edge (manager) node's own address, not the manager's loopback.
        "publicBindAddress": bed["MULTINODE_IP_N1"],
        "httpsPort": https_port,
        "appNodeLabel": APP_LABEL,
        "webMaxReplicasPerNode": MAX_WEB_PER_NODE,
        "monitoring": False,
    }
    # A load balancer in front of the edge node, as it were.
    front = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{https_port},bind=127.0.0.1,reuseaddr,fork",
            f"TCP:{bed['MULTINODE_IP_N1']}:{https_port}",
        ]
    )
    try:
        with prod_stack(workdir, label, overrides={**on_the_bed, **overrides}) as site:
            yield site
    finally:
        front.terminate()
        front.wait(timeout=10)
        # The build engine keeps the pushed tags; untag them (the image ids may be shared).
        host = docker.from_env()
        pushed = f"{bed['MULTINODE_REGISTRY']}/"
        for image in host.images.list():
            for tag in (t for t in image.tags if t.startswith(pushed)):
                host.images.remove(tag)
