"""Renderers: turn a hardened `ServiceSpec` into engine resources.

- `render_container`: a pulumi-docker `Container` (plus a `docker update --pids-limit` step,
  since `Container` has no pids-limit argument, and a files volume for uploads).
- `render_service`: a Swarm `docker.Service` with rolling start-first updates, automatic
  rollback and secrets as Docker secrets.
- `run_once`: a one-shot `docker run --rm` as a pulumi-command `Command` (migrations, backups,
  static sync, file writers); a non-zero exit fails the deploy.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import shlex

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components import hardening
from components.spec import TMP, Limits, Mount, ServiceSpec

# Swarm rollout: one task at a time, new one started (and healthy) before the old one stops,
# watched for `monitor` after it starts; any failure rolls the service back.
UPDATE_MONITOR = "30s"
CONVERGE_TIMEOUT = "5m"
SECRET_FILE_MODE = 0o400
# A fresh named volume first mounted at /tmp inherits /tmp's mode 1777, so a non-root one-shot
# can write into it without chown or any capability.
WRITABLE_VOLUME_TARGET = TMP
JOB_LIMITS = Limits(memory_mb=512, cpus=1.0, pids=256)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _env_list(spec: ServiceSpec) -> list[pulumi.Input[str]]:
    plain = [pulumi.Output.concat(k, "=", v) for k, v in spec.env.items()]
    secret = [
        pulumi.Output.secret(pulumi.Output.concat(k, "=", v)) for k, v in spec.secret_env.items()
    ]
    return plain + secret


def _upload_directory(spec: ServiceSpec) -> str:
    directories = {posixpath.dirname(path) for path in spec.uploads}
    if len(directories) != 1:
        raise hardening.HardeningError(
            f"service {spec.name}: uploads must share one directory, got {sorted(directories)}"
        )
    return directories.pop()


def _uploads_volume(
    name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> tuple[Mount, pulumi.Output[str], command.local.Command]:
    """A volume filled with the spec's uploads by a one-shot run of `spec.files_image` (default:
    the service's own image; a read-only container cannot receive `docker cp`); mounted
    read-only by the service."""
    directory = _upload_directory(spec)
    volume = docker.Volume(
        f"{name}-files",
        name=f"{spec.name}-files",
        labels=_volume_labels(spec.role),
        opts=opts,
    )
    env: dict[str, pulumi.Input[str]] = {}
    script = ["umask 077"]
    for index, (path, upload) in enumerate(sorted(spec.uploads.items())):
        var = f"DJANGOSTACK_FILE_{index}"
        env[var] = pulumi.Output.secret(upload.content) if upload.secret else upload.content
        target = posixpath.join(WRITABLE_VOLUME_TARGET, posixpath.basename(path))
        script.append(f'printf "%s" "${var}" > {shlex.quote(target)}')
    # The hash (never the content) goes into a label so the service is replaced when a file
    # changes; unsecret: a sha256 of the files reveals nothing about them.
    files_hash = pulumi.Output.unsecret(
        pulumi.Output.all(*[spec.uploads[p].content for p in sorted(spec.uploads)]).apply(
            lambda contents: _digest(*contents)[:16]
        )
    )
    writer = run_once(
        f"{name}-files",
        ServiceSpec(
            name=f"{spec.name}-files",
            role="job",
            image=spec.image if spec.files_image is None else spec.files_image,
            user=spec.user,
            limits=JOB_LIMITS,
            command=("sh", "-c", "; ".join(script)),
            secret_env=env,
            mounts=(Mount(WRITABLE_VOLUME_TARGET, volume.name),),
        ),
        triggers=[files_hash],
        opts=opts,
    )
    return Mount(directory, volume.name, read_only=True), files_hash, writer


def stack_volume(
    name: str, docker_name: str, stack: str, parent: pulumi.Resource, protect: bool = False
) -> docker.Volume:
    """A named volume labelled with its stack; `protect` keeps `pulumi destroy` off data."""
    return docker.Volume(
        name,
        name=docker_name,
        labels=[docker.VolumeLabelArgs(label=hardening.STACK_LABEL, value=stack)],
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )


def _volume_labels(role: str) -> list[docker.VolumeLabelArgs]:
    return [
        docker.VolumeLabelArgs(label=hardening.ROLE_LABEL, value=role),
        docker.VolumeLabelArgs(label=hardening.STACK_LABEL, value=pulumi.get_stack()),
    ]


def render_container(
    name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> docker.Container:
    """One hardened container (spec.replicas must be 1; callers render one spec per replica)."""
    spec = hardening.harden(spec)
    if spec.replicas != 1:
        raise hardening.HardeningError(f"service {spec.name}: a container has exactly one replica")
    mounts = list(spec.mounts)
    labels: dict[str, pulumi.Input[str]] = dict(spec.labels)
    depends_on: list[pulumi.Resource] = []
    if spec.uploads:
        mount, files_hash, writer = _uploads_volume(name, spec, opts)
        mounts.append(mount)
        labels["djangostack.files"] = files_hash
        depends_on.append(writer)
    health = spec.health
    container = docker.Container(
        name,
        docker.ContainerArgs(
            name=spec.name,
            image=spec.image,
            user=spec.user,
            command=list(spec.command) or None,
            envs=_env_list(spec) or None,
            read_only=True,
            capabilities=docker.ContainerCapabilitiesArgs(
                drops=list(hardening.CAP_DROP), adds=[c.name for c in spec.capabilities] or None
            ),
            security_opts=list(hardening.SECURITY_OPTS),
            tmpfs={path: hardening.TMPFS_OPTIONS for path in spec.tmpfs} or None,
            mounts=[
                docker.ContainerMountArgs(
                    target=m.target, source=m.source, type=m.type, read_only=m.read_only
                )
                for m in mounts
            ]
            or None,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=n.name, aliases=list(n.aliases) or None)
                for n in spec.networks
            ],
            ports=[
                docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.host_ip)
                for p in spec.ports
            ]
            or None,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=list(health.test),
                interval=health.interval,
                timeout=health.timeout,
                retries=health.retries,
                start_period=health.start_period,
            ),
            memory=spec.limits.memory_mb,
            cpus=str(spec.limits.cpus),
            ulimits=[
                docker.ContainerUlimitArgs(
                    name="nofile", soft=hardening.NOFILE, hard=hardening.NOFILE
                )
            ],
            log_driver=hardening.LOG_DRIVER,
            log_opts=dict(hardening.LOG_OPTS),
            restart=hardening.RESTART,
            stop_signal=spec.stop_signal,
            stop_timeout=spec.stop_grace_seconds,
            destroy_grace_seconds=spec.stop_grace_seconds,
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(labels.items())],
            wait=True,  # `pulumi up` waits until the health check passes
            wait_timeout=180,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends_on)),
    )
    # pulumi-docker's Container has no pids-limit argument (CIS 5.29): set it right after
    # creation, on every new container id.
    command.local.Command(
        f"{name}-pids-limit",
        command.local.CommandArgs(
            create=container.id.apply(
                lambda cid: shlex.join(
                    ["docker", "update", "--pids-limit", str(spec.limits.pids), cid]
                )
            ),
            triggers=[container.id],
        ),
        opts=opts,
    )
    return container


def _docker_secret(
    name: str, spec: ServiceSpec, key: str, value: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> docker.Secret:
    # Docker secrets are immutable: the name carries a hash of the value so a new value
    # creates a new secret (create-before-replace) and the service update switches to it.
    suffix = pulumi.Output.unsecret(
        pulumi.Output.from_input(value).apply(lambda v: _digest(v)[:10])
    )
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


def render_service(name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions) -> docker.Service:
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
    env: dict[str, pulumi.Input[str]] = dict(spec.env)
    for key, value in sorted(spec.secret_env.items()):
        secret = _docker_secret(name, spec, key, value, opts)
        secrets.append(
            docker.ServiceTaskSpecContainerSpecSecretArgs(
                secret_id=secret.id,
                secret_name=secret.name,
                file_name=f"/run/secrets/{key}",
                file_uid=uid,
                file_gid=gid or uid,
                file_mode=SECRET_FILE_MODE,
            )
        )
        env[f"{key}_FILE"] = f"/run/secrets/{key}"
    health = spec.health
    rollout = {
        "parallelism": 1,
        "order": "start-first",
        "failure_action": "rollback",
        "monitor": UPDATE_MONITOR,
        "delay": "5s",
    }
    return docker.Service(
        name,
        docker.ServiceArgs(
            name=spec.name,
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
                        interval=health.interval,
                        timeout=health.timeout,
                        retries=health.retries,
                        start_period=health.start_period,
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
                    stop_grace_period=f"{spec.stop_grace_seconds}s",
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
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(**hardening.SWARM_RESTART),
                log_driver=docker.ServiceTaskSpecLogDriverArgs(
                    name=hardening.LOG_DRIVER, options=dict(hardening.LOG_OPTS)
                ),
            ),
            update_config=docker.ServiceUpdateConfigArgs(**rollout),
            rollback_config=docker.ServiceRollbackConfigArgs(
                **rollout | {"failure_action": "pause"}
            ),
            converge_config=docker.ServiceConvergeConfigArgs(delay="2s", timeout=CONVERGE_TIMEOUT),
            # DNS round-robin, not a virtual IP: nginx sees every task's address, balances over
            # them and retries the next one when a draining task refuses (proxy_next_upstream);
            # a VIP also needs IPVS in the host kernel, which not every host has.
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
        ),
        opts=opts,
    )


def docker_run_args(spec: ServiceSpec) -> list[pulumi.Input[str]]:
    """`docker run` arguments for a hardened one-shot; env values are passed by name only
    (`-e NAME`), so they never appear on a command line."""
    args: list[pulumi.Input[str]] = [
        "docker", "run", "--rm", "--read-only",
        "--user", spec.user,
        "--memory", f"{spec.limits.memory_mb}m",
        "--cpus", str(spec.limits.cpus),
        "--pids-limit", str(spec.limits.pids),
        "--log-driver", hardening.LOG_DRIVER,
    ]  # fmt: skip
    for cap in hardening.CAP_DROP:
        args += ["--cap-drop", cap]
    for cap in spec.capabilities:
        args += ["--cap-add", cap.name]
    for opt in hardening.SECURITY_OPTS:
        args += ["--security-opt", opt]
    for key, value in hardening.LOG_OPTS.items():
        args += ["--log-opt", f"{key}={value}"]
    for key, value in sorted(spec.labels.items()):
        args += ["--label", f"{key}={value}"]
    for path in spec.tmpfs:
        args += ["--tmpfs", f"{path}:{hardening.TMPFS_OPTIONS}"]
    # One network at most: a one-shot needs only the backend (or none at all).
    args += ["--network", spec.networks[0].name if spec.networks else "none"]
    for m in spec.mounts:
        readonly = ",readonly" if m.read_only else ""
        args += [
            "--mount",
            pulumi.Output.concat(
                "type=", m.type, ",source=", m.source, ",target=", m.target, readonly
            ),
        ]
    for key in sorted({*spec.env, *spec.secret_env}):
        args += ["-e", key]
    return [*args, spec.image, *spec.command]


def run_once(
    name: str,
    spec: ServiceSpec,
    triggers: list[pulumi.Input],
    opts: pulumi.ResourceOptions,
) -> command.local.Command:
    """A hardened one-shot job, re-run when `triggers` change; the deploy fails when it exits
    non-zero."""
    spec = hardening.harden(spec, long_running=False)
    environment: dict[str, pulumi.Input[str]] = dict(spec.env)
    environment.update({k: pulumi.Output.secret(v) for k, v in spec.secret_env.items()})
    return command.local.Command(
        name,
        command.local.CommandArgs(
            create=pulumi.Output.all(*docker_run_args(spec)).apply(shlex.join),
            environment=environment or None,
            triggers=triggers,
            logging=command.local.Logging.STDOUT_AND_STDERR,
        ),
        opts=opts,
    )
