"""nginx (prod only): TLS termination, HTTP->HTTPS redirect, static and media files, proxy to
web.
The only published container."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components import app, renderers
from components.config import StackConfig
from components.jobs import STATIC_DIR
from components.networks import Networks
from components.spec import TMP, HealthCheck, Limits, Mount, Port, ServiceSpec, Upload

TEMPLATES = Path(__file__).resolve().parent / "nginx"
CONF_DIR = "/etc/nginx/conf.d"
USER = "101:101"  # nginx-unprivileged
HTTP_PORT, HTTPS_PORT = 8080, 8443  # inside the container: no capability needed
# Retry-After of nginx's 503 while web is unreachable: about one web restart or task start.
RETRY_AFTER_SECONDS = 5
# Maintenance mode (components/maintenance.py): nginx answers 503 with the page while the file
# EDGE_DIR/MAINTENANCE_PAGE exists in the edge volume (mounted read-only here). Retry-After: a
# maintenance lasts minutes, not a task restart.
EDGE_DIR = "/srv/edge"
MAINTENANCE_PAGE = "maintenance.html"
MAINTENANCE_URI = "/_djangostack/maintenance.html"  # internal: clients cannot request it
MAINTENANCE_RETRY_AFTER_SECONDS = 300
# What maintenance mode never answers for: probes and load balancers keep seeing the truth.
HEALTH_PATHS = ("/nginx-health", app.HEALTH_PATH)
# What nginx sends on every HTTPS answer when the app has not (the header maps of the template).
SECURITY_HEADERS = (
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Content-Security-Policy",
)


class _Template(string.Template):
    delimiter = "@@"  # nginx itself uses $ and braces


def render_media_location(media_url: str) -> str:
    """nginx's media location for `media_url` (media.conf.tmpl); "" when the project has no
    MEDIA_URL (no uploads to serve)."""
    if not media_url:
        return ""
    return _Template((TEMPLATES / "media.conf.tmpl").read_text()).substitute(media_url=media_url)


def _entries(keys: tuple[str, ...], value: int) -> str:
    """Lines of a geo or map block: each key with `value`."""
    return "".join(f"    {key} {value};\n" for key in keys)


def render_conf(cfg: StackConfig) -> str:
    suffix = "" if cfg.https_port == 443 else f":{cfg.https_port}"
    return _Template((TEMPLATES / "default.conf.tmpl").read_text()).substitute(
        domain=cfg.domain,
        https_port_suffix=suffix,
        web_host=app.HOST,
        web_port=app.PORT,
        retry_after=RETRY_AFTER_SECONDS,
        static_url=cfg.static_url,
        media_location=render_media_location(cfg.media_url),
        edge_dir=EDGE_DIR,
        maintenance_page=MAINTENANCE_PAGE,
        maintenance_uri=MAINTENANCE_URI,
        maintenance_retry_after=MAINTENANCE_RETRY_AFTER_SECONDS,
        maintenance_allow=_entries(cfg.maintenance_allow, 0),
        maintenance_exempt=_entries((*HEALTH_PATHS, MAINTENANCE_URI), 0),
    )


@dataclass(frozen=True)
class NginxArgs:
    cfg: StackConfig
    edge_network: docker.Network
    static_volume: pulumi.Input[str]
    media_volume: pulumi.Input[str]  # served read-only at the project's MEDIA_URL
    edge_volume: pulumi.Input[str]  # the maintenance page, when on (components/maintenance.py)
    depends_on: list[pulumi.Input[pulumi.Resource]]  # web, and the static sync's success


class Nginx(pulumi.ComponentResource):
    """Certificate from tlsCertFile/tlsKeyFile, or with tlsSelfSigned the pair the deploy
    command made for `domain` (config.self_signed_pair). Outputs `certificate` (PEM) and
    `name`."""

    def __init__(self, name: str, args: NginxArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Nginx", name, None, opts)
        cfg = args.cfg
        if cfg.tls_cert_file is None or cfg.tls_key_file is None:
            raise ValueError("nginx needs tlsCertFile and tlsKeyFile (config validation sets them)")
        # The key reaches nginx as a read-only file of its files volume; in the state, encrypted.
        cert = cfg.tls_cert_file.read_text()
        key = pulumi.Output.secret(cfg.tls_key_file.read_text())
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-nginx",
            role="nginx",
            image=cfg.nginx_image,
            user=USER,
            limits=Limits(memory_mb=cfg.memory_mb["nginx"], cpus=1.0, pids=256),
            health=HealthCheck(
                test=("CMD", "curl", "-fsk", f"https://127.0.0.1:{HTTPS_PORT}/nginx-health"),
                interval="10s",
                start_period="10s",
            ),
            tmpfs=(TMP,),  # pid file and temp paths of nginx-unprivileged
            mounts=(
                Mount(STATIC_DIR, args.static_volume, read_only=True),
                Mount(app.MEDIA_DIR, args.media_volume, read_only=True),
                Mount(EDGE_DIR, args.edge_volume, read_only=True),
            ),
            uploads={
                f"{CONF_DIR}/default.conf": Upload(render_conf(cfg)),
                f"{CONF_DIR}/security-headers.inc": Upload(
                    (TEMPLATES / "security-headers.inc").read_text()
                ),
                f"{CONF_DIR}/tls.crt": Upload(cert),
                f"{CONF_DIR}/tls.key": Upload(key, secret=True),
            },
            networks=(Networks.attach(args.edge_network),),
            ports=(
                Port(HTTPS_PORT, cfg.https_port, cfg.public_bind_address),
                Port(HTTP_PORT, cfg.http_port, cfg.public_bind_address),
            ),
            stop_signal="SIGQUIT",  # graceful: finish open requests
            stop_grace_seconds=30,
        )
        self.container = renderers.render_container(
            f"{name}-container",
            spec,
            pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.name = spec.name
        self.certificate = pulumi.Output.from_input(cert)
        self.register_outputs({"name": self.name, "certificate": self.certificate})
