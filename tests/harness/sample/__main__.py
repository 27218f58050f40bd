"""A small Pulumi program exercising every resource type the harness realizes.

Config (project `djangostack`): `prefix` (names), `context` (build context dir), `port`
(host port on 127.0.0.1), `token` (secret, build secret), `replicas`, `serviceHealthy`, `notes`
(whether the uploads container exists), `deleteMarker` (file the command's `delete` writes).
"""

import base64

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_docker_build as docker_build
import pulumi_random as random
import pulumi_tls as tls

config = pulumi.Config()
prefix = config.require("prefix")
context = config.require("context")
token = config.require_secret("token")
health = [
    "CMD",
    "python",
    "-c",
    "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')",
]
service_health = health if config.get_bool("serviceHealthy", True) else ["CMD", "false"]

image = docker_build.Image(
    "image",
    context=docker_build.BuildContextArgs(location=context),
    dockerfile=docker_build.DockerfileArgs(location=f"{context}/Dockerfile"),
    build_args={"EXPECTED_TOKEN": token},
    secrets={"token": token},
    tags=[f"{prefix}/sample:latest"],
    load=True,
    push=False,
)
password = random.RandomPassword("password", length=24, special=False)
key = tls.PrivateKey("key", algorithm="ECDSA", ecdsa_curve="P256")
cert = tls.SelfSignedCert(
    "cert",
    private_key_pem=key.private_key_pem,
    subject=tls.SelfSignedCertSubjectArgs(common_name="localhost"),
    dns_names=["localhost"],
    validity_period_hours=24,
    allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
)
network = docker.Network(
    "net", name=f"{prefix}-net", labels=[docker.NetworkLabelArgs(label="role", value="sample")]
)
overlay = docker.Network("overlay", name=f"{prefix}-overlay", driver="overlay", attachable=True)
data = docker.Volume("data", name=f"{prefix}-data")
seed = command.local.Command(
    "seed",
    create=f'docker run --rm --user 0 -v {prefix}-data:/data -e MARKER "$IMAGE"'
    " sh -c 'echo \"$MARKER\" > /data/marker && chown 65534 /data && echo seeded'",
    delete=f"echo deleted > {config.require('deleteMarker')}",
    environment={"MARKER": image.digest, "IMAGE": image.ref},
    triggers=[image.digest],
    opts=pulumi.ResourceOptions(depends_on=[data]),
)
server = docker.Container(
    "server",
    name=f"{prefix}-server",
    image=image.ref,
    envs=[password.result.apply(lambda p: f"PASSWORD={p}")],
    labels=[docker.ContainerLabelArgs(label="image-digest", value=image.digest)],
    read_only=True,
    user="65534:65534",
    capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
    security_opts=["no-new-privileges"],
    mounts=[docker.ContainerMountArgs(type="volume", source=data.name, target="/data")],
    tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
    healthcheck=docker.ContainerHealthcheckArgs(
        tests=health, interval="1s", timeout="3s", retries=20
    ),
    wait=True,
    wait_timeout=60,
    restart="on-failure",
    max_retry_count=3,
    memory=128,
    cpu_shares=512,
    ports=[
        docker.ContainerPortArgs(internal=8000, external=config.require_int("port"), ip="127.0.0.1")
    ],
    networks_advanced=[
        docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["server"]),
        docker.ContainerNetworksAdvancedArgs(name=overlay.name, aliases=["server"]),
    ],
    ulimits=[docker.ContainerUlimitArgs(name="nofile", soft=1024, hard=1024)],
    log_driver="json-file",
    log_opts={"max-size": "1m"},
    stop_signal="SIGTERM",
    stop_timeout=5,
    destroy_grace_seconds=5,
    opts=pulumi.ResourceOptions(depends_on=[seed]),
)
# Uploads need a writable root filesystem (the provider extracts them at "/" before start).
if config.get_bool("notes", True):
    notes = docker.Container(
        "notes",
        name=f"{prefix}-notes",
        image=image.ref,
        command=["python", "-c", "import time; time.sleep(10**6)"],
        user="65534:65534",
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
        uploads=[
            docker.ContainerUploadArgs(file="/srv/cert.pem", content=cert.cert_pem),
            docker.ContainerUploadArgs(
                file="/srv/run.sh",
                content_base64=base64.b64encode(b"echo hi").decode(),
                executable=True,
            ),
        ],
    )
secret = docker.Secret(
    "secret",
    name=f"{prefix}-pw",
    data=password.result.apply(lambda p: base64.b64encode(p.encode()).decode()),
)
service = docker.Service(
    "service",
    name=f"{prefix}-svc",
    task_spec=docker.ServiceTaskSpecArgs(
        container_spec=docker.ServiceTaskSpecContainerSpecArgs(
            image=image.ref,
            labels=[
                docker.ServiceTaskSpecContainerSpecLabelArgs(
                    label="image-digest", value=image.digest
                )
            ],
            env={"ROLE": "service"},
            user="65534:65534",
            read_only=True,
            cap_drops=["ALL"],
            healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                tests=service_health, interval="1s", timeout="3s", retries=3
            ),
            mounts=[
                docker.ServiceTaskSpecContainerSpecMountArgs(
                    type="volume", source=data.name, target="/data", read_only=True
                ),
                docker.ServiceTaskSpecContainerSpecMountArgs(type="tmpfs", target="/tmp"),
            ],
            secrets=[
                docker.ServiceTaskSpecContainerSpecSecretArgs(
                    secret_id=secret.id,
                    secret_name=secret.name,
                    file_name="pw",
                    file_uid="65534",
                    file_gid="65534",
                    file_mode=0o400,
                )
            ],
            stop_grace_period="5s",
            stop_signal="SIGTERM",
        ),
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                memory_bytes=128 * 1024 * 1024, nano_cpus=500_000_000
            )
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
            condition="on-failure", max_attempts=3
        ),
        networks_advanceds=[
            docker.ServiceTaskSpecNetworksAdvancedArgs(id=overlay.id, aliases=["svc"])
        ],
    ),
    mode=docker.ServiceModeArgs(
        replicated=docker.ServiceModeReplicatedArgs(replicas=config.get_int("replicas") or 1)
    ),
    # DNS round robin: this kernel has no IPVS, so Swarm's virtual IPs do not route here.
    endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
    update_config=docker.ServiceUpdateConfigArgs(
        parallelism=1, delay="1s", failure_action="rollback", monitor="5s", order="start-first"
    ),
    rollback_config=docker.ServiceRollbackConfigArgs(
        parallelism=1, order="start-first", monitor="2s"
    ),
    converge_config=docker.ServiceConvergeConfigArgs(delay="1s", timeout="90s"),
    opts=pulumi.ResourceOptions(depends_on=[seed]),
)

pulumi.export("url", f"http://127.0.0.1:{config.require_int('port')}")
pulumi.export("password", password.result)
pulumi.export("certPem", cert.cert_pem)
pulumi.export("imageRef", image.ref)
pulumi.export("imageDigest", image.digest)
pulumi.export("seedStdout", seed.stdout)
pulumi.export("serverName", server.name)
pulumi.export("serviceName", service.name)
