"""nginx (prod only): TLS termination, HTTP->HTTPS redirect, static and media files, proxy to
web.
The only published container."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components import acme, app, renderers
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
# Maintenance mode (components/maintenance.py): nginx answers 503 with EDGE_DIR/MAINTENANCE_PAGE
# while the switch file EDGE_DIR/MAINTENANCE_SWITCH exists in the edge volume (mounted read-only
# here). Two files, because nginx checks the switch and opens the page at two moments: switching
# off removes only the switch, so a request that saw it still finds the page (one file removed
# in between answered 404). Retry-After: a maintenance lasts minutes, not a task restart.
EDGE_DIR = "/srv/edge"
MAINTENANCE_PAGE = "maintenance.html"
MAINTENANCE_SWITCH = "maintenance.on"
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
    return _template("media.conf.tmpl", media_url=media_url) if media_url else ""


def container_name(cfg: StackConfig) -> str:
    return f"{cfg.name_prefix}-nginx"


def _template(name: str, **values: object) -> str:
    return _Template((TEMPLATES / name).read_text()).substitute(values)


def _entries(keys: tuple[str, ...], value: int) -> str:
    """Lines of a geo or map block: each key with `value`."""
    return "".join(f"    {key} {value};\n" for key in keys)


def render_conf(cfg: StackConfig) -> str:
    suffix = "" if cfg.https_port == 443 else f":{cfg.https_port}"
    if cfg.acme:
        challenge = _template("acme-challenge.conf.tmpl", webroot=acme.WEBROOT_DIR)
        certificate = "$acme_tls_dir/tls.crt", "$acme_tls_dir/tls.key"
    else:
        challenge, certificate = "", (f"{CONF_DIR}/tls.crt", f"{CONF_DIR}/tls.key")
    return _template(
        "default.conf.tmpl",
        domain=" ".join(cfg.acme.names) if cfg.acme else cfg.domain,
        https_port_suffix=suffix,
        web_host=app.HOST,
        web_port=app.PORT,
        retry_after=RETRY_AFTER_SECONDS,
        static_url=cfg.static_url,
        media_location=render_media_location(cfg.media_url),
        edge_dir=EDGE_DIR,
        maintenance_page=MAINTENANCE_PAGE,
        maintenance_switch=MAINTENANCE_SWITCH,
        maintenance_uri=MAINTENANCE_URI,
        maintenance_retry_after=MAINTENANCE_RETRY_AFTER_SECONDS,
        maintenance_allow=_entries(cfg.maintenance_allow, 0),
        maintenance_exempt=_entries((*HEALTH_PATHS, MAINTENANCE_URI), 0),
        acme_challenge=challenge,
        certificate=certificate[0],
        certificate_key=certificate[1],
    )


def tls_files(cfg: StackConfig) -> dict[str, Upload]:
    """nginx's TLS files of conf.d: the configured pair, or with config acme the map naming
    the ACME process's pair (acme.conf.tmpl), which lives on the tls volume."""
    if cfg.acme:
        return {f"{CONF_DIR}/acme.conf": Upload(_template("acme.conf.tmpl", tls_dir=acme.TLS_DIR))}
    if cfg.tls_cert_file is None or cfg.tls_key_file is None:
        raise ValueError("nginx needs tlsCertFile and tlsKeyFile (config validation sets them)")
    # The key reaches nginx as a read-only file of its files volume; in the state, encrypted.
    return {
        f"{CONF_DIR}/tls.crt": Upload(cfg.tls_cert_file.read_text()),
        f"{CONF_DIR}/tls.key": Upload(
            pulumi.Output.secret(cfg.tls_key_file.read_text()), secret=True
        ),
    }


@dataclass(frozen=True)
class NginxArgs:
    cfg: StackConfig
    edge_network: docker.Network
    static_volume: pulumi.Input[str]
    media_volume: pulumi.Input[str]  # served read-only at the project's MEDIA_URL
    edge_volume: pulumi.Input[str]  # the maintenance page, when on (components/maintenance.py)
    depends_on: list[pulumi.Input[pulumi.Resource]]  # web, and the static sync's success
    # Config acme: the ACME process's certificate and challenge answers (read-only volumes).
    acme_mounts: tuple[Mount, ...] = ()


class Nginx(pulumi.ComponentResource):
    """Certificate from tlsCertFile/tlsKeyFile, with tlsSelfSigned the pair the deploy command
    made for `domain` (config.self_signed_pair), or with acme the ACME process's (`acme_mounts`).
    Outputs `certificate` (PEM; None with acme: the program never sees it) and `name`."""

    def __init__(self, name: str, args: NginxArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Nginx", name, None, opts)
        cfg = args.cfg
        tls = tls_files(cfg)
        certificate = tls.get(f"{CONF_DIR}/tls.crt")
        spec = ServiceSpec(
            name=container_name(cfg),
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
                *args.acme_mounts,
            ),
            uploads={
                f"{CONF_DIR}/default.conf": Upload(render_conf(cfg)),
                f"{CONF_DIR}/security-headers.inc": Upload(
                    (TEMPLATES / "security-headers.inc").read_text()
                ),
                **tls,
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
        self.certificate = (
            pulumi.Output.from_input(certificate.content) if certificate is not None else None
        )
        self.register_outputs({"name": self.name, "certificate": self.certificate})
