"""Maintenance mode (prod; docs/operations.md "Maintenance mode"): the edge volume nginx reads
the page and its switch from (read-only, components/nginx.py), and the one-shot step that writes
the page and the switch into it when config `maintenance` is on and removes the switch when off.
nginx looks for the switch on every request, so switching runs this step again and touches
nothing else: nginx is not replaced and no connection drops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components import nginx, renderers
from components.config import StackConfig
from components.spec import Limits, Mount, ServiceSpec, Upload

# Where the step reads the page: its files volume (read-only).
SOURCE_DIR = "/run/djangostack-maintenance"


def step_spec(cfg: StackConfig, edge_volume: pulumi.Input[str]) -> ServiceSpec:
    """The step, with nginx's image and user. The edge volume is mounted where a fresh volume
    takes /tmp's mode 1777 (renderers.WRITABLE_VOLUME_TARGET), so it can write there without
    chown whoever mounted the volume first. On: the page is copied in under a temporary name,
    then renamed, so nginx never reads half a page, then the switch is set; off: only the switch
    is removed (nginx.MAINTENANCE_SWITCH says why the page stays). The page travels only when
    on: editing it while off changes nothing."""
    target = renderers.WRITABLE_VOLUME_TARGET
    page = f"{target}/{nginx.MAINTENANCE_PAGE}"
    switch = f"{target}/{nginx.MAINTENANCE_SWITCH}"
    uploads = {}
    if cfg.maintenance:
        source = f"{SOURCE_DIR}/{nginx.MAINTENANCE_PAGE}"
        uploads[source] = Upload(cfg.maintenance_page.read_text(encoding="utf-8"))
        lines = (
            "set -eu",
            f"trap 'rm -f {page}.partial' EXIT",
            f"cp {source} {page}.partial",
            f"mv {page}.partial {page}",
            f"touch {switch}",
            "echo 'maintenance mode on: nginx answers 503 with the page'",
        )
    else:
        lines = ("set -eu", f"rm -f {switch}", "echo 'maintenance mode off'")
    return ServiceSpec(
        name=f"{cfg.name_prefix}-maintenance",
        role="job",
        image=cfg.nginx_image,
        user=nginx.USER,
        limits=Limits(memory_mb=64, cpus=0.5, pids=16),
        command=("sh", "-c", "\n".join(lines)),
        mounts=(Mount(target, edge_volume),),
        uploads=uploads,
    )


@dataclass(frozen=True)
class MaintenanceArgs:
    cfg: StackConfig
    # What the step waits for: off, web and the processes running the release (the site
    # comes back only once it is whole); on, nothing (it goes first).
    after: Sequence[pulumi.Input[pulumi.Resource]] = ()


class Maintenance(pulumi.ComponentResource):
    """`volume`: the edge volume `<namePrefix>-edge` (nothing in it worth keeping: not
    protected); `job`: the step, run again whenever it would change (switched, or a new page
    while on: renderers.fingerprint is its run key)."""

    def __init__(
        self, name: str, args: MaintenanceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("djangostack:index:Maintenance", name, None, opts)
        cfg = args.cfg
        self.volume = renderers.stack_volume(
            f"{name}-volume",
            f"{cfg.name_prefix}-edge",
            cfg.stack,
            pulumi.ResourceOptions(parent=self),
        )
        spec = step_spec(cfg, self.volume.name)
        self.job = renderers.run_once(
            f"{name}-run",
            spec,
            renderers.fingerprint(spec),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.register_outputs({"volume": self.volume.name})
