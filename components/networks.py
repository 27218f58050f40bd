"""The networks: edge (nginx and web), backend (internal: no route out) and, only when a
process opts in (`processes.NAME.egress`) or the scheduled backup copies to a repository,
egress (a route out for those processes alone)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import hardening
from components.config import StackConfig
from components.spec import NetworkAttachment


@dataclass(frozen=True)
class NetworksArgs:
    cfg: StackConfig


class Networks(pulumi.ComponentResource):
    """`edge`: nginx and web. `backend`: web, processes, Postgres, Redis, one-shot jobs;
    created `internal` so nothing on it reaches outside or is reachable from the host.
    `egress` (None unless a process has `egress: true` or backupRepository is set): not
    internal, only those processes (and the scheduled backup) join it, so they get a default
    route out while the backend stays internal. In swarm mode all are attachable overlays so
    services and plain containers share them."""

    def __init__(self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("djangostack:index:Networks", name, None, opts)
        cfg = args.cfg
        swarm = cfg.orchestrator == "swarm"

        def network(role: str, internal: bool) -> docker.Network:
            return docker.Network(
                f"{name}-{role}",
                docker.NetworkArgs(
                    name=f"{cfg.name_prefix}-{role}",
                    driver="overlay" if swarm else "bridge",
                    attachable=True if swarm else None,
                    internal=internal,
                    labels=[
                        docker.NetworkLabelArgs(label=hardening.STACK_LABEL, value=cfg.stack),
                        docker.NetworkLabelArgs(label="djangostack.network", value=role),
                    ],
                ),
                # A fixed Docker name: a replacement (a new driver when the orchestrator
                # changes) must delete the old network before creating its successor.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )

        self.edge = network("edge", internal=False)
        self.backend = network("backend", internal=True)
        self.egress: docker.Network | None = None
        backup = cfg.scheduled_backup
        offsite = backup is not None and backup.repository is not None
        if offsite or any(process.egress for process in cfg.processes):
            self.egress = network("egress", internal=False)
        outputs = {"edge": self.edge.name, "backend": self.backend.name}
        if self.egress is not None:
            outputs["egress"] = self.egress.name
        self.register_outputs(outputs)

    @staticmethod
    def attach(network: docker.Network, *aliases: str) -> NetworkAttachment:
        return NetworkAttachment(network.name, network.id, aliases)
