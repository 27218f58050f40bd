"""What the Pulumi engine does with the program that a mock never shows: a bad config stops
`preview` with the program's one message and nothing made; the policy pack stops a weakened
container at preview; another stack reads the outputs with a real StackReference; a preview
names the migrations a release will apply; a container that never gets healthy fails the
deploy and the next deploy replaces it; health check and tmpfs changes (which the provider
would "update" in place, without effect) replace the container; a network replaced under its
fixed name (the orchestrator switched) takes its containers with it instead of colliding."""

from __future__ import annotations

import secrets
import shutil
import uuid
from pathlib import Path

import docker
import pulumi
import pulumi_docker
import pytest

from automation.engine import ROOT, open_stack, policy_args
from components import renderers
from components.spec import HealthCheck, Limits, ServiceSpec
from tests.support.engine import (
    BACKEND_DIR,
    PASSPHRASE,
    DeployFailed,
    EngineStack,
    leftovers,
    new_stack,
    sweep,
)

pytestmark = pytest.mark.slow
CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
SERVICE = "docker:index/service:Service"
PROBE_IMAGE = "djangostack-testbed/debian:bookworm"  # scripts/testbed.sh builds it


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


def inline_stack(tmp_path: Path, label: str, program) -> tuple[str, object]:
    """A stack of this project running `program` instead of __main__.py (same backend)."""
    name = f"{label}-{uuid.uuid4().hex[:6]}"
    work_dir = tmp_path / name
    work_dir.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", work_dir / "Pulumi.yaml")
    BACKEND_DIR.mkdir(parents=True, exist_ok=True)
    env = {"PULUMI_BACKEND_URL": BACKEND_DIR.as_uri(), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}
    return name, open_stack(name, work_dir, env, inline=program)


def test_bad_config_fails_preview_with_one_message_and_creates_nothing(tmp_path, client) -> None:
    stack = new_stack(
        tmp_path, "engine-badcfg", "prod", overrides={"domain": "not a host", "httpsPort": 0}
    )
    try:
        with pytest.raises(DeployFailed) as failed:
            stack.preview()
        output = failed.value.output
        assert "invalid configuration for stack" in output
        assert "djangostack:domain: is not a valid host name: 'not a host'" in output
        assert "djangostack:httpsPort: must be between 1 and 65535" in output
        assert "Fix: pulumi config set" in output
        assert leftovers(stack.name, client) == []
    finally:
        stack.remove()


def _weak_container() -> None:
    """A container like the product's but with a writable root filesystem."""
    pulumi_docker.Container(
        "weak",
        name=f"weak-{pulumi.get_stack()}",
        image=PROBE_IMAGE,
        user="10001:10001",
        read_only=False,
        capabilities=pulumi_docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=["no-new-privileges:true"],
        memory=64,
        cpus="0.5",
        healthcheck=pulumi_docker.ContainerHealthcheckArgs(tests=["CMD", "true"]),
        labels=[
            pulumi_docker.ContainerLabelArgs(label="djangostack.stack", value=pulumi.get_stack())
        ],
    )


def test_policy_pack_stops_a_weakened_container_at_preview(tmp_path, client) -> None:
    name, stack = inline_stack(tmp_path, "engine-policy", _weak_container)
    try:
        lines: list[str] = []
        with pytest.raises(Exception) as failed:  # the CLI's CommandError
            stack.preview(on_output=lines.append, **policy_args())
        output = "\n".join(lines) + str(failed.value)
        assert "read-only-root" in output and "writable root filesystem" in output
        assert "mandatory" in output
        assert leftovers(name, client) == []
    finally:
        stack.workspace.remove_stack(name, force=True)


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> EngineStack:
    stack = new_stack(tmp_path_factory.mktemp("engine-dev"), "engine-dev", "dev")
    try:
        stack.up()
        yield stack
    finally:
        stack.remove()


def test_another_stack_reads_the_outputs_with_a_stack_reference(dev, tmp_path) -> None:
    def consumer() -> None:
        ref = pulumi.StackReference(f"organization/djangostack/{dev.name}")
        pulumi.export("siteUrl", ref.require_output("url"))
        pulumi.export("web", ref.require_output("webNames"))
        pulumi.export("db", ref.require_output("databaseUrl"))

    name, stack = inline_stack(tmp_path, "engine-consumer", consumer)
    try:
        outputs = stack.up().outputs
        assert outputs["siteUrl"].value == dev.outputs["url"]
        assert outputs["web"].value == dev.outputs["webNames"]
        assert outputs["db"].secret is True  # a secret output stays secret through the reference
        assert outputs["db"].value.startswith("postgres://")
    finally:
        stack.destroy()
        stack.workspace.remove_stack(name, force=True)


MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "{previous}")]
    operations = []
"""


def test_preview_names_the_migrations_a_release_will_apply(dev) -> None:
    migrations = dev.app_dir / "core" / "migrations"
    previous = sorted(p.stem for p in migrations.glob("0*.py"))[-1]
    # Unique content: identical source is an identical image tag, which another run's stack
    # (or an earlier run of this test) may have built already.
    unique = f"# {secrets.token_hex(8)}\n"
    (migrations / "0099_release_note.py").write_text(MIGRATION.format(previous=previous) + unique)
    preview = dev.preview(diff=True)
    # The migration step's label for the app changes: the diff shows the new name, and the
    # deploy command's summary lists it (what a pull request's preview comment shows).
    assert preview.op(CONTAINER, "djangostack-migration-run") == "replace"
    assert "0099_release_note" in preview.stdout
    assert preview.migrations == ("core.0099_release_note",)
    print(f"\npreview diff of the migration step:\n{migration_diff(preview.stdout)}")
    dev.up()
    code, out = dev_postgres(dev).exec_run(
        ["psql", "-U", "app", "-d", "app", "-tAc",
         "select name from django_migrations where app = 'core' order by id desc limit 1"]
    )  # fmt: skip
    assert code == 0 and out.decode().strip() == "0099_release_note"


def migration_diff(stdout: str) -> str:
    """The migration step's part of a `preview --diff`."""
    start = stdout.index("djangostack-migration-run]")
    return "\n".join(stdout[start:].splitlines()[:12])


def dev_postgres(stack: EngineStack):
    return docker.from_env().containers.get(f"{stack.name}-postgres")


def test_a_container_that_never_gets_healthy_fails_the_deploy_then_is_replaced(dev, client) -> None:
    """A health check change is one the provider would "update" in place without effect (the
    running container keeps its old check); the renderer's spec label replaces the container,
    the deploy waits for it and fails when it never gets healthy, and the next deploy with the
    fix replaces it again."""
    healthy_id = client.containers.get(f"{dev.name}-web").id
    with pytest.raises(DeployFailed) as failed:
        dev.up(healthPath="/no-such-page/")
    assert "container failed to be in healthy state" in failed.value.output
    assert failed.value.ops[(CONTAINER, "djangostack-web")] == "replace"
    again = dev.up()  # the config as it was
    assert again.op(CONTAINER, "djangostack-web") == "replace"
    web = client.containers.get(f"{dev.name}-web")
    assert web.id != healthy_id
    assert web.attrs["State"]["Health"]["Status"] == "healthy"
    assert dev.up().changed == 0


def _probe(tmpfs: tuple[str, ...]):
    def program() -> None:
        spec = ServiceSpec(
            name=f"probe-{pulumi.get_stack()}",
            role="job",
            image=PROBE_IMAGE,
            user="65534:65534",
            limits=Limits(memory_mb=32, cpus=0.2, pids=16),
            health=HealthCheck(test=("CMD", "true"), interval="2s", start_period="0s"),
            command=("sleep", "infinity"),
            tmpfs=tmpfs,
            stop_grace_seconds=1,
        )
        container = renderers.render_container("probe", spec, pulumi.ResourceOptions())
        pulumi.export("id", container.id)

    return program


def test_a_tmpfs_change_replaces_the_container(tmp_path, client) -> None:
    """pulumi-docker plans a tmpfs change as an in-place update that changes nothing in
    Docker; the renderer's spec label turns it into a replacement."""
    name, stack = inline_stack(tmp_path, "engine-tmpfs", _probe(("/tmp",)))
    try:
        first = stack.up().outputs["id"].value
        second = stack.up(program=_probe(("/tmp", "/var/tmp"))).outputs["id"].value
        assert second != first
        mounts = client.containers.get(second).attrs["HostConfig"]["Tmpfs"]
        assert set(mounts) == {"/tmp", "/var/tmp"}
    finally:
        stack.destroy()
        stack.workspace.remove_stack(name, force=True)
        sweep(name, client)


def test_switching_the_orchestrator_replaces_the_networks_and_keeps_serving(
    tmp_path, client
) -> None:
    """containers -> swarm in one `up` (a team adding hosts): the networks are replaced under
    their fixed names (bridge -> overlay) and every container on them with them."""
    stack = new_stack(tmp_path, "engine-switch", "prod", overrides={"orchestrator": "containers"})
    try:
        stack.up()
        switched = stack.up(orchestrator="swarm")
        assert switched.op(NETWORK, "djangostack-networks-backend") == "replace"
        assert switched.op(CONTAINER, "djangostack-postgres-container") == "replace"
        assert switched.op(SERVICE, "djangostack-web") == "create"
        backend = client.networks.get(f"{stack.name}-backend")
        assert backend.attrs["Driver"] == "overlay"
        postgres = client.containers.get(f"{stack.name}-postgres")
        assert f"{stack.name}-backend" in postgres.attrs["NetworkSettings"]["Networks"]
        assert stack.up().changed == 0
    finally:
        stack.remove()
