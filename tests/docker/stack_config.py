"""Stack configuration for realizing the real program on this machine's engine.

Starts from the stack's own `Pulumi.<stack>.yaml` and overrides only what this machine
needs: local stand-in images (no registry is reachable), free loopback ports, a self-signed
certificate, a unique name prefix, test secrets and the CA bundle of the TLS proxy for pip.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = {
    "baseImage": "djangostack-testbed/python:3.13",
    "postgresImage": "djangostack-testbed/postgres:latest",
    "redisImage": "djangostack-testbed/redis:latest",
    "nginxImage": "djangostack-testbed/nginx:latest",
    "prometheusImage": "djangostack-testbed/prometheus:latest",
}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SECRET_KEYS = ("djangoSecretKey", "postgresPassword")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_file(stack: str) -> dict[str, Any]:
    """The `djangostack:` keys of Pulumi.<stack>.yaml, without the project prefix."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in raw.items()}


def config_for(stack: str, name_prefix: str, app_dir: Path | None = None) -> dict[str, Any]:
    """Config for realizing `stack` (dev or prod) under `name_prefix` on this machine."""
    config = {
        **stack_file(stack),
        **STAND_INS,
        "namePrefix": name_prefix,
        "caBundleFile": CA_BUNDLE,
        "djangoSecretKey": secrets.token_urlsafe(64),
        "postgresPassword": secrets.token_urlsafe(24),
    }
    if app_dir is not None:
        config["appDir"] = str(app_dir)
    if stack == "dev":
        config["devPort"] = free_port()
    else:
        config |= {
            "httpPort": free_port(),
            "httpsPort": free_port(),
            "publicBindAddress": "127.0.0.1",
            "tlsSelfSigned": True,
            "webWorkers": 2,
            "celeryConcurrency": 1,
        }
    return config
