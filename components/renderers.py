"""Renderers: turn a hardened `ServiceSpec` into pulumi-docker resources.

- `render_container`: a `docker.Container` that `pulumi up` waits on until healthy.
- `render_service`: a Swarm `docker.Service` with rolling start-first updates (stop-first for
  a singleton), automatic rollback and secrets as Docker secrets.
- `run_once`: a one-shot step (migration, backup, static sync) as a `docker.Container` that
  runs to completion; the update fails with the step's exit code and last lines when it does
  not exit 0, and whatever takes `Job.succeeded` as an input is never touched then.

Secrets (`ServiceSpec.secret_env`) never become a value in a container's configuration (env,
command, labels): every engine turns KEY into a file `/run/secrets/KEY` and sets `KEY_FILE` to
its path (the app reads NAME_FILE, the postgres image POSTGRES_PASSWORD_FILE). Swarm: Docker
secrets. Containers and one-shot steps: read-only files in a files volume, mounted read-only;
a holder container that is created but never started receives them as uploads (Docker copies
into a container only when its root filesystem is writable, so the read-only service cannot
receive them itself).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import hardening
from components.spec import (
    Limits,
    Mount,
    Placement,
    RegistryAuth,
    ServiceSpec,
    Upload,
    whole_seconds,
)

# How long the provider waits for a service's rollout to converge before it reports a failure.
CONVERGE_TIMEOUT = "5m"
# A container's wait beyond its health check's own deadline for turning unhealthy: the
# provider's polling and a loaded machine.
WAIT_MARGIN_SECONDS = 30
# Files of a files volume: root's, read-only for the service's user (the only user in its
# containers; the volume is mounted read-only and only there), as Swarm's secrets by default.
FILE_MODE = "0444"
SECRET_FILE_MODE = 0o400  # Swarm secrets: the service's uid owns them
# Where every engine puts secret files (Swarm: Docker secrets; containers and one-shot steps:
# the files volume); the app reads NAME_FILE.
SECRETS_DIR = "/run/secrets"
# Where a holder mounts the files volume it fills (the holder never runs).
HOLDER_DIR = "/djangostack-files"
# A fresh named volume first mounted at /tmp inherits /tmp's mode 1777, so a non-root one-shot
# can write into it without chown or any capability.
WRITABLE_VOLUME_TARGET = "/tmp"  # noqa: S108 - a mount point inside the container
JOB_LIMITS = Limits(memory_mb=512, cpus=1.0, pids=256)
JOB_LOG_TAIL_LINES = 30  # of a failed step's output, in the deploy's error
# Labels of a one-shot step: what it ran for (a change re-runs it) and its step name.
RUN_KEY_LABEL = "djangostack.run-key"
SPEC_LABEL = "djangostack.spec"
STEP_LABEL = "djangostack.step"


# Every container and service has a fixed Docker name: a replacement must delete the old one
# before creating its successor. The provider says so for Container, but the engine does not
# ask it when a replacement is requested (`up --replace`, how a failed step runs again).
FIXED_NAME = pulumi.ResourceOptions(delete_before_replace=True)


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def swarm_duration(text: str) -> str:
    """A duration ("90s", "2m", "1h30m") as the docker provider reads a Swarm service's back
    (Go's time.Duration text without trailing zero units: 60s -> "1m", 3600s -> "1h"), so an
    unchanged service shows no difference on the next `up`."""
    hours, rest = divmod(whole_seconds(text), 3600)
    minutes, secs = divmod(rest, 60)
    if not hours and not minutes:
        return f"{secs}s"
    go_text = f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
    if go_text.endswith("m0s"):
        go_text = go_text[:-2]
    if go_text.endswith("h0m"):
        go_text = go_text[:-2]
    return go_text


def secret_file(key: str) -> str:
    """The path of the file holding secret `key` inside any container of the stack."""
    return posixpath.join(SECRETS_DIR, key)


def _secret_file_env(spec: ServiceSpec) -> dict[str, str]:
    """`KEY_FILE=/run/secrets/KEY` for each secret: the only trace of a secret in an env."""
    return {f"{key}_FILE": secret_file(key) for key in sorted(spec.secret_env)}


def _files_of(spec: ServiceSpec) -> dict[str, Upload]:
    """The spec's uploads plus one secret file per `secret_env` key (at `secret_file(key)`)."""
    files = dict(spec.uploads)
    for key, value in spec.secret_env.items():
        files[secret_file(key)] = Upload(value, secret=True)
    return files


def _files_directory(spec: ServiceSpec, files: Mapping[str, Upload]) -> str:
    directories = {posixpath.dirname(path) for path in files}
    if len(directories) != 1:
        raise hardening.HardeningError(
            f"service {spec.name}: uploads and secret files ({SECRETS_DIR}) must share one "
            f"directory (one files volume), got {sorted(directories)}"
        )
    return directories.pop()


@dataclass(frozen=True)
class Files:
    """A spec's files: the read-only mount for the service, a hash of their contents (a label,
    so the service is replaced when a file changes) and the holder that fills the volume."""

    mount: Mount
    hash: pulumi.Output[str]
    holder: docker.Container


def _files(name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions) -> Files:
    """A volume with the spec's uploads and secret files (FILE_MODE), filled by a holder: a
    container of the service's image that is created, receives the files as uploads into the
    volume, and is never started."""
    files = _files_of(spec)
    directory = _files_directory(spec, files)
    volume = docker.Volume(
        f"{name}-files",
        name=f"{spec.name}-files",
        labels=_volume_labels(spec.role),
        opts=opts,
    )
    names = sorted(files)
    # The hash (never the content) goes into a label; unsecret: a sha256 of the files reveals
    # nothing about them.
    files_hash = pulumi.Output.unsecret(
        pulumi.Output.all(*[files[n].content for n in names]).apply(
            lambda contents: digest(*names, *contents)[:16]
        )
    )
    holder = docker.Container(
        f"{name}-files",
        docker.ContainerArgs(
            name=f"{spec.name}-files",
            image=spec.image,
            # Never started: no process, no network, nothing to harden at run time; a writable
            # root is what lets Docker copy the uploads in (policy/rules.py knows holders).
            # No user: Docker would look a uid:gid up in the host's passwd to own the copies.
            start=False,
            must_run=False,
            network_mode="none",
            command=["true"],
            capabilities=docker.ContainerCapabilitiesArgs(drops=list(hardening.CAP_DROP)),
            security_opts=list(hardening.SECURITY_OPTS),
            mounts=[
                docker.ContainerMountArgs(target=HOLDER_DIR, source=volume.name, type="volume")
            ],
            uploads=[
                docker.ContainerUploadArgs(
                    file=posixpath.join(HOLDER_DIR, posixpath.basename(path)),
                    content=pulumi.Output.secret(files[path].content)
                    if files[path].secret
                    else files[path].content,
                    permissions=FILE_MODE,
                )
                for path in names
            ],
            labels=_labels({**_fixed_labels(spec), hardening.ROLE_LABEL: hardening.HOLDER_ROLE}),
            log_driver=hardening.LOG_DRIVER,
            log_opts=dict(hardening.LOG_OPTS),
        ),
        opts=pulumi.ResourceOptions.merge(opts, FIXED_NAME),
    )
    return Files(Mount(directory, volume.name, read_only=True), files_hash, holder)


def _fixed_labels(spec: ServiceSpec) -> dict[str, str]:
    return {
        k: v
        for k, v in spec.labels.items()
        if k in (hardening.STACK_LABEL, hardening.PROJECT_LABEL)
    }


def _labels(labels: Mapping[str, pulumi.Input[str]]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(labels.items())]


def stack_volume(
    name: str, docker_name: str, stack: str, opts: pulumi.ResourceOptions, protect: bool = False
) -> docker.Volume:
    """A named volume labelled with its stack; `protect` keeps `pulumi destroy` off data."""
    return docker.Volume(
        name,
        name=docker_name,
        labels=[docker.VolumeLabelArgs(label=hardening.STACK_LABEL, value=stack)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )


def _volume_labels(role: str) -> list[docker.VolumeLabelArgs]:
    return [
        docker.VolumeLabelArgs(label=hardening.ROLE_LABEL, value=role),
        docker.VolumeLabelArgs(label=hardening.STACK_LABEL, value=pulumi.get_stack()),
    ]


def _container_args(
    spec: ServiceSpec,
    mounts: Sequence[Mount],
    labels: Mapping[str, pulumi.Input[str]],
    **engine: object,
) -> docker.ContainerArgs:
    """The hardened `ContainerArgs` of a spec, shared by services and one-shot steps; `engine`
    adds what differs between them (health wait, restart, run to completion)."""
    tmpfs = {path: hardening.TMPFS_OPTIONS for path in spec.tmpfs}
    # The provider "updates" some fields in place that Docker cannot change in a container
    # (health check, tmpfs): a digest of the spec as a label (labels force a new container)
    # replaces the container instead. Memory stays out: Docker updates it in place.
    in_place = dataclasses.replace(spec, limits=dataclasses.replace(spec.limits, memory_mb=0))
    labels = {**labels, SPEC_LABEL: fingerprint(in_place)}
    return docker.ContainerArgs(
        name=spec.name,
        image=spec.image,
        user=spec.user,
        command=list(spec.command) or None,
        envs=[
            pulumi.Output.concat(k, "=", v)
            for k, v in sorted({**spec.env, **_secret_file_env(spec)}.items())
        ]
        or None,
        read_only=True,
        capabilities=docker.ContainerCapabilitiesArgs(
            drops=list(hardening.CAP_DROP), adds=[c.name for c in spec.capabilities] or None
        ),
        security_opts=list(hardening.SECURITY_OPTS),
        tmpfs=tmpfs or None,
        mounts=[
            docker.ContainerMountArgs(
                target=m.target, source=m.source, type=m.type, read_only=m.read_only
            )
            for m in mounts
        ]
        or None,
        # By id: a network replaced under the same name (a new driver) is a new id, so the
        # container is replaced with it instead of silently losing its attachment.
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=n.id, aliases=list(n.aliases) or None)
            for n in spec.networks
        ]
        or None,
        network_mode=None if spec.networks else "none",
        ports=[
            docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.host_ip)
            for p in spec.ports
        ]
        or None,
        memory=spec.limits.memory_mb,
        # No swap beyond the memory limit; unset, Docker reads back twice the memory and every
        # `up` would show a change.
        memory_swap=spec.limits.memory_mb,
        cpus=str(spec.limits.cpus),
        ulimits=[
            docker.ContainerUlimitArgs(name="nofile", soft=hardening.NOFILE, hard=hardening.NOFILE)
        ],
        log_driver=hardening.LOG_DRIVER,
        log_opts=dict(hardening.LOG_OPTS),
        stop_signal=spec.stop_signal,
        stop_timeout=spec.stop_grace_seconds,
        destroy_grace_seconds=spec.stop_grace_seconds,
        labels=_labels(labels),
        **engine,
    )


def _with_files(
    name: str,
    spec: ServiceSpec,
    opts: pulumi.ResourceOptions,
    holder_opts: pulumi.ResourceOptions | None = None,
) -> tuple[list[Mount], dict[str, pulumi.Input[str]], pulumi.ResourceOptions]:
    """The spec's mounts and labels, plus its files volume (read-only) when it has uploads or
    secrets, and options that wait for the volume's holder (made with `holder_opts`, else
    `opts`)."""
    mounts = list(spec.mounts)
    labels: dict[str, pulumi.Input[str]] = dict(spec.labels)
    if spec.uploads or spec.secret_env:
        files = _files(name, spec, holder_opts or opts)
        mounts.append(files.mount)
        labels["djangostack.files"] = files.hash
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[files.holder]))
    return mounts, labels, opts


def render_container(
    name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> docker.Container:
    """One hardened long-running container (spec.replicas must be 1; callers render one spec
    per replica); `pulumi up` waits until its health check passes.

    pulumi-docker's Container has no pids-limit argument: CIS 5.29 is a documented gap
    (docs/design.md, "Hardening")."""
    spec = hardening.harden(spec)
    if spec.replicas != 1:
        raise hardening.HardeningError(f"service {spec.name}: a container has exactly one replica")
    if spec.placement is not None:
        # A container runs on the engine the provider talks to; pretending otherwise would
        # silently ignore the operator's constraint.
        raise hardening.HardeningError(f"service {spec.name}: placement is for Swarm services")
    mounts, labels, opts = _with_files(name, spec, opts)
    health = spec.health
    return docker.Container(
        name,
        _container_args(
            spec,
            mounts,
            labels,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=list(health.test),
                interval=health.interval,
                timeout=health.timeout,
                retries=health.retries,
                start_period=health.start_period,
            ),
            restart=hardening.RESTART,
            # `pulumi up` waits until the health check passes, and fails once Docker would have
            # called the container unhealthy (Swarm would replace such a task): a broken
            # release fails in about a minute and a half, not a fixed three.
            wait=True,
            wait_timeout=health.seconds_to_unhealthy() + WAIT_MARGIN_SECONDS,
        ),
        opts=pulumi.ResourceOptions.merge(opts, FIXED_NAME),
    )


def _docker_secret(
    name: str, spec: ServiceSpec, key: str, value: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> docker.Secret:
    # Docker secrets are immutable: the name carries a hash of the value so a new value
    # creates a new secret (create-before-replace) and the service update switches to it.
    suffix = pulumi.Output.unsecret(pulumi.Output.from_input(value).apply(lambda v: digest(v)[:10]))
    return docker.Secret(
        f"{name}-{key.lower().replace('_', '-')}",
        docker.SecretArgs(
            name=pulumi.Output.concat(spec.name, "-", key.lower(), "-", suffix),
            data=pulumi.Output.secret(value).apply(lambda v: base64.b64encode(v.encode()).decode()),
            labels=[
                docker.SecretLabelArgs(label=hardening.ROLE_LABEL, value=spec.role),
                docker.SecretLabelArgs(label=hardening.STACK_LABEL, value=pulumi.get_stack()),
            ],
        ),
        opts=opts,
    )


def render_service(
    name: str,
    spec: ServiceSpec,
    opts: pulumi.ResourceOptions,
    registry_auth: RegistryAuth | None = None,
) -> docker.Service:
    """A Swarm service: native replicas, rolling start-first updates gated on the health check,
    automatic rollback, secrets as files under /run/secrets (the app reads NAME_FILE).

    Not expressible per service in Swarm: no-new-privileges (set daemon-wide in
    /etc/docker/daemon.json), pids limit and ulimits (documented gap, docs/config.md)."""
    spec = hardening.harden(spec)
    if spec.uploads or spec.ports:
        raise hardening.HardeningError(
            f"service {spec.name}: uploads and published ports are container-only here"
        )
    uid, _, gid = spec.user.partition(":")
    secrets = []
    env: dict[str, pulumi.Input[str]] = {**spec.env, **_secret_file_env(spec)}
    for key, value in sorted(spec.secret_env.items()):
        secret = _docker_secret(name, spec, key, value, opts)
        secrets.append(
            docker.ServiceTaskSpecContainerSpecSecretArgs(
                secret_id=secret.id,
                secret_name=secret.name,
                file_name=secret_file(key),
                file_uid=uid,
                file_gid=gid or uid,
                file_mode=SECRET_FILE_MODE,
            )
        )
    health = spec.health
    rollout = {
        # A singleton never runs two tasks: one at a time.
        "parallelism": 1 if spec.singleton else spec.rollout.parallelism,
        # A singleton's old task stops before the new one starts (a short gap instead of two
        # at once); everything else starts the new task first (no gap).
        "order": "stop-first" if spec.singleton else "start-first",
        "failure_action": "rollback",
        "monitor": swarm_duration(spec.rollout.monitor),
        "delay": swarm_duration(spec.rollout.delay),
    }
    # A release that fails after its last batch (a crash soon after turning healthy) has no old
    # task left: every task goes back at once, started before the failing ones are stopped, so
    # the old release serves again before the last new task dies. A singleton keeps its order.
    rollback = rollout | {"failure_action": "pause"}
    if not spec.singleton:
        rollback |= {"parallelism": 0, "delay": swarm_duration("0s")}
    return docker.Service(
        name,
        docker.ServiceArgs(
            name=spec.name,
            # Without credentials only a node that already holds the image (pulled by a
            # one-shot job there) could start a task from a private registry.
            auth=docker.ServiceAuthArgs(
                server_address=registry_auth.server,
                username=registry_auth.username,
                password=pulumi.Output.secret(registry_auth.password),
            )
            if registry_auth
            else None,
            labels=[
                docker.ServiceLabelArgs(label=k, value=v) for k, v in sorted(spec.labels.items())
            ],
            mode=docker.ServiceModeArgs(
                replicated=docker.ServiceModeReplicatedArgs(replicas=spec.replicas)
            ),
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=spec.image,
                    user=spec.user,
                    args=list(spec.command) or None,
                    env=env or None,
                    read_only=True,
                    cap_drops=list(hardening.CAP_DROP),
                    cap_adds=[c.name for c in spec.capabilities] or None,
                    healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                        tests=list(health.test),
                        interval=swarm_duration(health.interval),
                        timeout=swarm_duration(health.timeout),
                        retries=health.retries,
                        start_period=swarm_duration(health.start_period),
                    ),
                    mounts=[
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=m.target, source=m.source, type=m.type, read_only=m.read_only
                        )
                        for m in spec.mounts
                    ]
                    + [
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=path,
                            type="tmpfs",
                            tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                                size_bytes=64 * 1024 * 1024, mode=0o1777
                            ),
                        )
                        for path in spec.tmpfs
                    ],
                    secrets=secrets or None,
                    stop_signal=spec.stop_signal,
                    stop_grace_period=swarm_duration(f"{spec.stop_grace_seconds}s"),
                    # Unset, the provider plans it as unknown on every `up`.
                    sysctl={},
                    labels=[
                        docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v)
                        for k, v in sorted(spec.labels.items())
                    ],
                ),
                networks_advanceds=[
                    docker.ServiceTaskSpecNetworksAdvancedArgs(
                        id=n.id, aliases=list(n.aliases) or None
                    )
                    for n in spec.networks
                ],
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                        memory_bytes=spec.limits.memory_mb * 1024 * 1024,
                        nano_cpus=int(spec.limits.cpus * 1e9),
                    )
                ),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                    condition=hardening.SWARM_RESTART["condition"],
                    delay=swarm_duration(hardening.SWARM_RESTART["delay"]),
                    window=swarm_duration(hardening.SWARM_RESTART["window"]),
                ),
                placement=_placement(spec.placement),
                log_driver=docker.ServiceTaskSpecLogDriverArgs(
                    name=hardening.LOG_DRIVER, options=dict(hardening.LOG_OPTS)
                ),
            ),
            update_config=docker.ServiceUpdateConfigArgs(**rollout),
            rollback_config=docker.ServiceRollbackConfigArgs(**rollback),
            converge_config=docker.ServiceConvergeConfigArgs(
                delay=swarm_duration("2s"), timeout=swarm_duration(CONVERGE_TIMEOUT)
            ),
            # DNS round-robin, not a virtual IP: nginx sees every task's address, balances over
            # them and retries the next one when a draining task refuses (proxy_next_upstream);
            # a VIP also needs IPVS in the host kernel, which not every host has.
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
        ),
        opts=pulumi.ResourceOptions.merge(opts, FIXED_NAME),
    )


def _placement(placement: Placement | None) -> docker.ServiceTaskSpecPlacementArgs | None:
    """Swarm placement; None leaves the spec as before placement existed, so a single-host
    stack's services are not rolled by an upgrade of this program."""
    if placement is None:
        return None
    return docker.ServiceTaskSpecPlacementArgs(
        constraints=list(placement.constraints) or None,
        max_replicas=placement.max_replicas_per_node or None,
    )


def fingerprint(spec: ServiceSpec) -> pulumi.Output[str]:
    """A digest of everything a container of `spec` runs with (image, command, environment,
    secrets, files, mounts, networks, labels, health check, limits, ports) and of the fixed
    hardening. A step whose run key it is runs again exactly when its container would change;
    as a label (SPEC_LABEL) it makes every change to a container effective."""
    env, secrets, labels, uploads = (
        sorted(m.items()) for m in (spec.env, spec.secret_env, spec.labels, spec.uploads)
    )
    fixed = repr(
        (
            spec.name, spec.role, spec.user, spec.command, spec.limits, spec.tmpfs,
            spec.stop_signal, spec.stop_grace_seconds, spec.health, spec.ports,
            spec.capabilities, spec.replicas, spec.placement, spec.singleton, spec.rollout,
            [(m.target, m.type, m.read_only) for m in spec.mounts],
            [n.aliases for n in spec.networks],
            [k for k, _ in env], [k for k, _ in secrets], [k for k, _ in labels],
            [(k, u.secret) for k, u in uploads],
            hardening.CAP_DROP, hardening.SECURITY_OPTS, hardening.LOG_OPTS, hardening.NOFILE,
            hardening.TMPFS_OPTIONS, hardening.RESTART,
        )
    )  # fmt: skip
    values = [
        spec.image,
        *(v for _, v in env),
        *(v for _, v in secrets),
        *(v for _, v in labels),
        *(u.content for _, u in uploads),
        *(m.source for m in spec.mounts),
        *(n.name for n in spec.networks),
    ]
    return pulumi.Output.unsecret(
        pulumi.Output.all(*values).apply(lambda resolved: digest(fixed, *map(str, resolved))[:32])
    )


class StepFailed(pulumi.RunError):
    """A one-shot step exited non-zero: the update stops there (the message is the error)."""


@dataclass(frozen=True)
class Job:
    """A one-shot step's container, and `succeeded`: its run key once the step has exited 0
    (StepFailed otherwise)."""

    container: docker.Container
    succeeded: pulumi.Output[str]

    def done(self) -> pulumi.Output[pulumi.Resource]:
        """For `depends_on` of whatever must wait for the step's success: when the step
        fails, that resource is never registered and stays as it was. No input of it changes
        with the step, so a preview shows only its own changes."""
        return self.succeeded.apply(lambda _: self.container)


def _tail(logs: str | None, lines: int = JOB_LOG_TAIL_LINES) -> str:
    kept = (logs or "").rstrip().splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in kept) or "  | (no output)"


def _check_step(step: str, stack: str) -> object:
    def check(args: list) -> str:
        code, logs, urn, key = args
        if code == 0:
            return key
        raise StepFailed(
            f"deploy step '{step}' exited with code {code}; nothing after it changed and the "
            f"running release keeps serving. Its last lines:\n{_tail(logs)}\n"
            f"Fix the cause, then deploy again: `bash scripts/deploy.sh {stack}` runs the step "
            f"again (with the plain CLI: pulumi up --replace '{urn}')."
        )

    return check


def run_once(
    name: str,
    spec: ServiceSpec,
    run_key: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> Job:
    """A hardened one-shot step: a container that runs `spec.command` to completion, again
    whenever `run_key` changes (a label, and Docker labels force a new container). Its secrets
    are files of a read-only files volume; its output is kept, encrypted, in the state."""
    spec = hardening.harden(spec, long_running=False)
    # A step's files volume serves no running container: its holder need not wait for the
    # steps before this one (it is filled meanwhile).
    holder_opts = pulumi.ResourceOptions(parent=opts.parent, provider=opts.provider)
    mounts, labels, opts = _with_files(name, spec, opts, holder_opts)
    labels[RUN_KEY_LABEL] = run_key
    labels[STEP_LABEL] = spec.name
    container = docker.Container(
        name,
        _container_args(
            spec,
            mounts,
            labels,
            restart="no",
            must_run=False,  # it exits, and that is its success
            attach=True,  # `pulumi up` waits for it to exit and records the exit code
            logs=True,
        ),
        # What the step prints could include what it read: encrypted like any secret.
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                additional_secret_outputs=["containerLogs"], delete_before_replace=True
            ),
        ),
    )
    # Unsecret: the run key is a digest, but the step's (secret) output goes into the check.
    succeeded = pulumi.Output.unsecret(
        pulumi.Output.all(
            container.exit_code, container.container_logs, container.urn, run_key
        ).apply(_check_step(spec.name, pulumi.get_stack()))
    )
    return Job(container, succeeded)
