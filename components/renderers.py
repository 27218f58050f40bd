"""Renderers: turn a hardened `ServiceSpec` into engine resources.

- `render_container`: a pulumi-docker `Container` (plus a `docker update --pids-limit` step,
  since `Container` has no pids-limit argument, and a files volume for uploads).
- `render_service`: a Swarm `docker.Service` with rolling start-first updates (stop-first for
  a singleton), automatic rollback and secrets as Docker secrets.
- `run_once`: a one-shot `docker run --rm` as a pulumi-command `Command` (migrations, backups,
  static sync, file writers); a non-zero exit fails the deploy.

Secrets (`ServiceSpec.secret_env`) never become a value in a container's configuration (env,
command, labels): every engine turns KEY into a file `/run/secrets/KEY` and sets `KEY_FILE` to
its path (the app reads NAME_FILE, the postgres image POSTGRES_PASSWORD_FILE). Swarm: Docker
secrets. Containers: 0400 files in the container's files volume, written by a one-shot writer.
One-shot jobs: written into a tmpfs by a shell prologue of the job itself. The writer and the
jobs receive the contents on stdin (a secret input of the `Command`), never in their env.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import posixpath
import re
import shlex
from collections.abc import Mapping

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components import hardening
from components.spec import TMP, Limits, Mount, Placement, RegistryAuth, ServiceSpec, Upload

# Swarm rollout: one task at a time, new one started (and healthy) before the old one stops,
# watched for `monitor` after it starts; any failure rolls the service back.
UPDATE_MONITOR = "30s"
CONVERGE_TIMEOUT = "5m"
SECRET_FILE_MODE = 0o400
# Where every engine puts secret files (Swarm: Docker secrets; containers: the files volume;
# one-shot jobs: a tmpfs); the app reads NAME_FILE.
SECRETS_DIR = "/run/secrets"
# A fresh named volume first mounted at /tmp inherits /tmp's mode 1777, so a non-root one-shot
# can write into it without chown or any capability.
WRITABLE_VOLUME_TARGET = TMP
JOB_UPDATE_NOOP = ":"  # the shell's no-op: an input change without a trigger change
JOB_LIMITS = Limits(memory_mb=512, cpus=1.0, pids=256)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def secret_file(key: str) -> str:
    """The path of the file holding secret `key` inside any container of the stack."""
    return posixpath.join(SECRETS_DIR, key)


def _secret_file_env(spec: ServiceSpec) -> dict[str, str]:
    """`KEY_FILE=/run/secrets/KEY` for each secret: the only trace of a secret in an env."""
    return {f"{key}_FILE": secret_file(key) for key in sorted(spec.secret_env)}


# File names the writer accepts: one shell word, no path, no leading dot or dash.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def _write_files_script(directory: str, names: list[str]) -> str:
    """POSIX sh (busybox too) that reads `name base64` lines from stdin (`_files_stdin`) and
    writes each file into `directory`, mode 0400 under umask 077; a write goes to a new file
    renamed over the old one (a 0400 file cannot be reopened for writing without
    CAP_DAC_OVERRIDE). Fails unless exactly `names` arrived, so a missing stdin fails loudly."""
    bad = [n for n in names if not _FILE_NAME.match(n)]
    if bad:
        raise hardening.HardeningError(f"file names {bad} must match {_FILE_NAME.pattern}")
    expected = " ".join(sorted(names))
    return (
        "set -eu; umask 077; seen=''; "
        "while read -r name data; do "
        f'f="{directory}/.$name.new"; rm -f "$f"; '
        'printf %s "$data" | base64 -d > "$f"; '
        f'chmod {SECRET_FILE_MODE:o} "$f"; mv -f "$f" "{directory}/$name"; '
        'seen="${seen:+$seen }$name"; '
        "done; "
        f'[ "$seen" = {shlex.quote(expected)} ] || '
        f'{{ echo "expected files {expected} on stdin, got: $seen" >&2; exit 1; }}'
    )


def _files_stdin(files: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    """One `name base64(content)` line per file, sorted by name (what `_write_files_script`
    reads)."""
    names = sorted(files)
    return pulumi.Output.all(*[files[n] for n in names]).apply(
        lambda contents: "".join(
            f"{n} {base64.b64encode(c.encode()).decode()}\n"
            for n, c in zip(names, contents, strict=True)
        )
    )


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


def _files_volume(
    name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> tuple[Mount, pulumi.Output[str], command.local.Command]:
    """A volume filled with the spec's uploads and secret files by a one-shot run of
    `spec.files_image` (default: the service's own image; a read-only container cannot receive
    `docker cp`), as the service's user; mounted read-only by the service. The contents reach
    the writer on stdin, never in its env or command line."""
    files = _files_of(spec)
    directory = _files_directory(spec, files)
    volume = docker.Volume(
        f"{name}-files",
        name=f"{spec.name}-files",
        labels=_volume_labels(spec.role),
        opts=opts,
    )
    by_name = {posixpath.basename(path): upload for path, upload in files.items()}
    stdin = _files_stdin({n: u.content for n, u in by_name.items()})
    # The hash (never the content) goes into a label so the service is replaced when a file
    # changes; unsecret: a sha256 of the files reveals nothing about them.
    names = sorted(by_name)
    files_hash = pulumi.Output.unsecret(
        pulumi.Output.all(*[by_name[n].content for n in names]).apply(
            lambda contents: _digest(*names, *contents)[:16]
        )
    )
    writer_spec = hardening.harden(
        ServiceSpec(
            name=f"{spec.name}-files",
            role="job",
            image=spec.image if spec.files_image is None else spec.files_image,
            user=spec.user,
            limits=JOB_LIMITS,
            command=("sh", "-c", _write_files_script(WRITABLE_VOLUME_TARGET, names)),
            mounts=(Mount(WRITABLE_VOLUME_TARGET, volume.name),),
        ),
        long_running=False,
    )
    secret = any(upload.secret for upload in by_name.values())
    writer = _docker_run(
        f"{name}-files",
        writer_spec,
        pulumi.Output.secret(stdin) if secret else stdin,
        triggers=[files_hash],
        opts=opts,
    )
    return Mount(directory, volume.name, read_only=True), files_hash, writer


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


def render_container(
    name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions
) -> docker.Container:
    """One hardened container (spec.replicas must be 1; callers render one spec per replica)."""
    spec = hardening.harden(spec)
    if spec.replicas != 1:
        raise hardening.HardeningError(f"service {spec.name}: a container has exactly one replica")
    if spec.placement is not None:
        # A container runs on the engine the provider talks to; pretending otherwise would
        # silently ignore the operator's constraint.
        raise hardening.HardeningError(f"service {spec.name}: placement is for Swarm services")
    mounts = list(spec.mounts)
    labels: dict[str, pulumi.Input[str]] = dict(spec.labels)
    depends_on: list[pulumi.Resource] = []
    if spec.uploads or spec.secret_env:
        mount, files_hash, writer = _files_volume(name, spec, opts)
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
            envs=[
                pulumi.Output.concat(k, "=", v)
                for k, v in {**spec.env, **_secret_file_env(spec)}.items()
            ]
            or None,
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
        "parallelism": 1,
        # A singleton's old task stops before the new one starts (a short gap instead of two
        # at once); everything else starts the new task first (no gap).
        "order": "stop-first" if spec.singleton else "start-first",
        "failure_action": "rollback",
        "monitor": UPDATE_MONITOR,
        "delay": "5s",
    }
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
                placement=_placement(spec.placement),
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


def _placement(placement: Placement | None) -> docker.ServiceTaskSpecPlacementArgs | None:
    """Swarm placement; None leaves the spec as before placement existed, so a single-host
    stack's services are not rolled by an upgrade of this program."""
    if placement is None:
        return None
    return docker.ServiceTaskSpecPlacementArgs(
        constraints=list(placement.constraints) or None,
        max_replicas=placement.max_replicas_per_node or None,
    )


def secrets_tmpfs_options(user: str) -> str:
    """Options of a job's tmpfs at SECRETS_DIR: owned by the job's user, private to it. An
    owner, not only a mode: when the image already has that directory (BuildKit leaves an
    empty /run/secrets behind a `RUN --mount=type=secret`), Docker gives the tmpfs the
    directory's mode (root 0755), whatever `mode=` says."""
    uid, _, gid = user.partition(":")
    return f"rw,noexec,nosuid,nodev,size=1m,mode=0700,uid={uid},gid={gid or uid}"


def docker_run_args(
    spec: ServiceSpec, stdin: bool = False, secrets_tmpfs: bool = False
) -> list[pulumi.Input[str]]:
    """`docker run` arguments for a hardened one-shot (`-i` when it reads stdin, a private tmpfs
    at SECRETS_DIR with `secrets_tmpfs`); env values are passed by name only (`-e NAME`), so
    they never appear on a command line. A spec with `secret_env` goes through `run_once`,
    which turns it into stdin."""
    if spec.secret_env:
        raise hardening.HardeningError(f"job {spec.name}: secret_env is for run_once only")
    args: list[pulumi.Input[str]] = [
        "docker", "run", "--rm", "--read-only",
        "--user", spec.user,
        "--memory", f"{spec.limits.memory_mb}m",
        "--cpus", str(spec.limits.cpus),
        "--pids-limit", str(spec.limits.pids),
        "--log-driver", hardening.LOG_DRIVER,
    ]  # fmt: skip
    if stdin:
        args.append("--interactive")
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
    if secrets_tmpfs:
        args += ["--tmpfs", f"{SECRETS_DIR}:{secrets_tmpfs_options(spec.user)}"]
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
    for key in sorted(spec.env):
        args += ["-e", key]
    return [*args, spec.image, *spec.command]


def _docker_run(
    name: str,
    spec: ServiceSpec,
    stdin: pulumi.Input[str] | None,
    triggers: list[pulumi.Input],
    opts: pulumi.ResourceOptions,
    secrets_tmpfs: bool = False,
) -> command.local.Command:
    """`docker run` of an already hardened spec without secret_env, fed `stdin` when given."""
    secret_outputs = None
    if stdin is not None:
        # What the job prints is kept encrypted in the state like its input: it could echo it.
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"])
    return command.local.Command(
        name,
        command.local.CommandArgs(
            create=pulumi.Output.all(
                *docker_run_args(spec, stdin is not None, secrets_tmpfs)
            ).apply(shlex.join),
            # A job runs when its triggers change, never because another input did (pulumi-command
            # runs `create` again on any change when `update` is unset): a config-only change
            # would re-run the migration without the backup that must precede it.
            update=JOB_UPDATE_NOOP,
            environment=dict(spec.env) or None,
            stdin=stdin,
            triggers=triggers,
            logging=command.local.Logging.STDOUT_AND_STDERR,
        ),
        opts=pulumi.ResourceOptions.merge(opts, secret_outputs),
    )


def run_once(
    name: str,
    spec: ServiceSpec,
    triggers: list[pulumi.Input],
    opts: pulumi.ResourceOptions,
) -> command.local.Command:
    """A hardened one-shot job, re-run when `triggers` change; the deploy fails when it exits
    non-zero.

    Secrets arrive on the job's stdin (a secret input of the `Command`): a shell prologue writes
    them as 0400 files into a private tmpfs at SECRETS_DIR, then `exec`s the job's command with
    `KEY_FILE` set. The job's image needs a POSIX shell with `base64`."""
    spec = hardening.harden(spec, long_running=False)
    if not spec.secret_env:
        return _docker_run(name, spec, None, triggers, opts)
    if not spec.command:
        raise hardening.HardeningError(
            f"job {spec.name}: a job with secrets needs an explicit command"
        )
    names = sorted(spec.secret_env)
    prologue = _write_files_script(SECRETS_DIR, names) + '; exec "$@" </dev/null'
    stdin = pulumi.Output.secret(_files_stdin(spec.secret_env))
    job = dataclasses.replace(
        spec,
        command=("sh", "-c", prologue, "sh", *spec.command),
        env={**spec.env, **_secret_file_env(spec)},
        secret_env={},
    )
    return _docker_run(name, job, stdin, triggers, opts, secrets_tmpfs=True)
