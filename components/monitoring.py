"""Optional Prometheus (config `monitoring`): scrapes web's `/metrics` over the backend network,
keeps 7 days of data on a volume, publishes nothing. Grafana is not part of the stack: point one
at this Prometheus (attached to the backend network) if dashboards are wanted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import renderers
from components.config import StackConfig
from components.networks import Networks
from components.spec import TMP, HealthCheck, Limits, Mount, ServiceSpec, Upload

USER = "65534:65534"  # nobody, as the official image runs
PORT = 9090
CONFIG_DIR = "/etc/prometheus/djangostack"
DATA_DIR = "/prometheus"
WEB_METRICS_PORT = 8000
SCRAPE_INTERVAL = "15s"
RETENTION = "7d"
HEALTH = HealthCheck(
    test=("CMD", "wget", "-q", "--spider", f"http://127.0.0.1:{PORT}/-/healthy"),
    interval="10s",
    start_period="20s",
)


def scrape_config(web_hosts: Sequence[str], swarm: bool) -> str:
    """prometheus.yml scraping every web replica's /metrics. Swarm: each task of each service
    (DNS `tasks.<service>`); containers: each container by name."""
    if swarm:
        names = ", ".join(f"tasks.{host}" for host in web_hosts)
        discovery = (
            f"    dns_sd_configs:\n"
            f"      - names: [{names}]\n"
            f"        type: A\n"
            f"        port: {WEB_METRICS_PORT}\n"
        )
    else:
        targets = ", ".join(f"{host}:{WEB_METRICS_PORT}" for host in web_hosts)
        discovery = f"    static_configs:\n      - targets: [{targets}]\n"
    return (
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n"
        "scrape_configs:\n"
        "  - job_name: web\n"
        "    metrics_path: /metrics\n"
        f"{discovery}"
    )


@dataclass(frozen=True)
class MonitoringArgs:
    cfg: StackConfig
    backend_network: docker.Network
    web_hosts: Sequence[str]  # Docker names of web (services or containers)


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Monitoring", name, None, opts)
        cfg = args.cfg
        config = scrape_config(args.web_hosts, swarm=cfg.orchestrator == "swarm")
        self.data_volume = renderers.stack_volume(
            f"{name}-data",
            f"{cfg.name_prefix}-prometheus-data",
            cfg.stack,
            pulumi.ResourceOptions(parent=self),
        )
        spec = ServiceSpec(
            name=f"{cfg.name_prefix}-prometheus",
            role="prometheus",
            image=cfg.prometheus_image,
            user=USER,
            limits=Limits(memory_mb=256, cpus=0.5, pids=128),
            health=HEALTH,
            command=(
                f"--config.file={CONFIG_DIR}/prometheus.yml",
                f"--storage.tsdb.path={DATA_DIR}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address=:{PORT}",
            ),
            tmpfs=(TMP,),
            mounts=(Mount(DATA_DIR, self.data_volume.name),),
            uploads={f"{CONFIG_DIR}/prometheus.yml": Upload(config)},
            networks=(Networks.attach(args.backend_network, "prometheus"),),
        )
        self.container = renderers.render_container(
            f"{name}-container", spec, pulumi.ResourceOptions(parent=self)
        )
        self.name = spec.name
        self.register_outputs({"name": self.name, "config": config})
