"""Stack configuration for realizing the real program on this machine's engine.

Starts from the stack's own `Pulumi.<stack>.yaml` and overrides only what this machine
needs: local stand-in images (no registry is reachable), free loopback ports, a self-signed
certificate, a unique name prefix, test secrets and the CA bundle of the TLS proxy for pip.
"""

from __future__ import annotations

import random
import socket
import tempfile
from pathlib import Path
from typing import Any

import yaml

from automation.deploy import make_self_signed

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = {
    "baseImage": "djangostack-testbed/python:3.13",
    "postgresImage": "djangostack-testbed/postgres:latest",
    "redisImage": "djangostack-testbed/redis:latest",
    "nginxImage": "djangostack-testbed/nginx:latest",
    "prometheusImage": "djangostack-testbed/prometheus:latest",
}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PORTS_FROM = 20000  # test stacks publish on 127.0.0.1 from here to the ephemeral range


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral
    range: a port the kernel hands out (bind to 0) is soon another connection's local port,
    and Docker's publishing of it then fails with "address already in use"."""
    ephemeral_start = int(EPHEMERAL_RANGE.read_text().split()[0])
    while True:
        port = random.randrange(PORTS_FROM, ephemeral_start)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def stack_file(stack: str) -> dict[str, Any]:
    """The `djangostack:` keys of Pulumi.<stack>.yaml, without the project prefix."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in raw.items()}


def config_for(
    stack: str, name_prefix: str, app_dir: Path | None = None, tls_dir: Path | None = None
) -> dict[str, Any]:
    """Config for deploying `stack` (dev or prod) under `name_prefix` on this machine; prod
    gets a self-signed pair for localhost in `tls_dir`, made as the deploy command makes one.
    The secrets are generated on the first `up`, as the deploy command generates them."""
    config = {
        **stack_file(stack),
        **STAND_INS,
        "namePrefix": name_prefix,
        "caBundleFile": CA_BUNDLE,
    }
    if app_dir is not None:
        config["appDir"] = str(app_dir)
    if stack == "dev":
        config["devPort"] = free_port()
    else:
        tls_dir = tls_dir or Path(tempfile.mkdtemp(prefix="djangostack-tls-"))
        cert, key = tls_dir / "site.crt", tls_dir / "site.key"
        if not cert.exists():
            make_self_signed(cert, key, "localhost")
        config |= {
            "httpPort": free_port(),
            "httpsPort": free_port(),
            "publicBindAddress": "127.0.0.1",
            "tlsCertFile": str(cert),
            "tlsKeyFile": str(key),
            "webWorkers": 2,
            "celeryConcurrency": 1,
        }
    return config
