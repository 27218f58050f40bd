"""Automatic HTTPS (prod, config `acme`): nginx's certificate from an ACME CA (Let's Encrypt by
default), issued and renewed over HTTP-01 by the stack's ACME process (docker/acme), kept on a
protected volume: never in the Pulumi state or a container's configuration.

Volumes: `<namePrefix>-tls` (the key and the certificate; the process writes, nginx reads),
`<namePrefix>-acme` (the ACME account and the client's state; the process only, so nginx never
holds the account key) and `<namePrefix>-acme-webroot` (the challenge answers the process
writes and nginx serves on port 80). The two holding keys are protected like the data volumes:
a lost account or key is recoverable (a new one is made), but every new certificate counts
against the CA's rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import renderers
from components.config import StackConfig
from components.spec import Mount

TLS_DIR = "/srv/tls"  # tls.key and tls.crt, in the process and in nginx
STATE_DIR = "/srv/acme"
WEBROOT_DIR = "/srv/acme-webroot"  # <webroot>/.well-known/acme-challenge/<token>


@dataclass(frozen=True)
class AcmeArgs:
    cfg: StackConfig


class Acme(pulumi.ComponentResource):
    """The volumes of config `acme`; `nginx_mounts`: what nginx mounts of them (read-only)."""

    def __init__(self, name: str, args: AcmeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Acme", name, None, opts)
        cfg = args.cfg
        child = pulumi.ResourceOptions(parent=self)
        prefix = cfg.name_prefix
        self.tls_volume = renderers.stack_volume(
            f"{name}-tls", f"{prefix}-tls", cfg.stack, child, protect=True
        )
        self.state_volume = renderers.stack_volume(
            f"{name}-state", f"{prefix}-acme", cfg.stack, child, protect=True
        )
        self.webroot_volume = renderers.stack_volume(
            f"{name}-webroot", f"{prefix}-acme-webroot", cfg.stack, child
        )
        self.nginx_mounts = (
            Mount(TLS_DIR, self.tls_volume.name, read_only=True),
            Mount(WEBROOT_DIR, self.webroot_volume.name, read_only=True),
        )
        self.register_outputs({"tlsVolume": self.tls_volume.name})
