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
import pulumi_docker as docker

from components import renderers
from components.config import AcmeConfig, StackConfig
from components.image import product_image
from components.networks import Networks
from components.spec import TMP, HealthCheck, Limits, Mount, ServiceSpec, Upload

TLS_DIR = "/srv/tls"  # tls.key and tls.crt, in the process and in nginx
STATE_DIR = "/srv/acme"
WEBROOT_DIR = "/srv/acme-webroot"  # <webroot>/.well-known/acme-challenge/<token>
CONFIG_DIR = "/etc/djangostack-acme"  # the CA bundle of acmeCaBundleFile (its files volume)
# nginx's user (docker/acme builds on the nginx image): the key it writes is nginx's to read.
USER = "101:101"
COMMAND = "djangostack-acme"  # docker/acme/djangostack-acme
# Fails only in the last sixth of the certificate's validity: renewals failing for a while.
HEALTH = HealthCheck(test=("CMD", COMMAND, "health"), interval="10s", start_period="10s")


def environment(acme: AcmeConfig, nginx_address: str) -> dict[str, str]:
    """What the process reads (docker/acme/djangostack-acme): the CA, the account, the names
    and where nginx serves the challenge directory on the edge network."""
    env = {
        "ACME_DIRECTORY": acme.directory,
        "ACME_EMAIL": acme.email,
        "ACME_NAMES": " ".join(acme.names),
        "ACME_NGINX": nginx_address,
    }
    if acme.ca_bundle_file:
        env["LEGO_CA_CERTIFICATES"] = f"{CONFIG_DIR}/ca.pem"
    return env


@dataclass(frozen=True)
class AcmeArgs:
    cfg: StackConfig
    edge_network: docker.Network  # a route out to the CA, and to nginx's HTTP server
    nginx_address: str  # host:port of nginx's HTTP server on the edge network


class Acme(pulumi.ComponentResource):
    """The volumes of config `acme` and the ACME process: one container on the engine nginx
    runs on (its volumes are local to that engine), like nginx and Postgres, never a Swarm
    task another node could take. `nginx_mounts`: what nginx mounts (read-only); `container`
    is healthy once a certificate is in place (the temporary one on a first deploy)."""

    def __init__(self, name: str, args: AcmeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Acme", name, None, opts)
        cfg = args.cfg
        if cfg.acme is None:
            raise ValueError("the ACME process needs config acme (config validation sets it)")
        settings = cfg.acme
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
        self.image = product_image(
            f"{name}-image",
            cfg,
            cfg.root / "docker" / "acme",
            "acme",
            child,
            build_args={"BASE_IMAGE": cfg.nginx_image},
        )
        uploads = {}
        if settings.ca_bundle_file:
            uploads[f"{CONFIG_DIR}/ca.pem"] = Upload(settings.ca_bundle_file.read_text())
        spec = ServiceSpec(
            name=f"{prefix}-acme",
            role="acme",
            image=self.image.ref,
            user=USER,
            limits=Limits(memory_mb=128, cpus=0.5, pids=64),
            health=HEALTH,
            command=(COMMAND, "run"),
            env=environment(settings, args.nginx_address),
            tmpfs=(TMP,),
            mounts=(
                Mount(TLS_DIR, self.tls_volume.name),
                Mount(STATE_DIR, self.state_volume.name),
                Mount(WEBROOT_DIR, self.webroot_volume.name),
            ),
            uploads=uploads,
            networks=(Networks.attach(args.edge_network),),
        )
        self.container = renderers.render_container(f"{name}-container", spec, child)
        self.name = spec.name
        self.register_outputs({"name": self.name, "tlsVolume": self.tls_volume.name})
