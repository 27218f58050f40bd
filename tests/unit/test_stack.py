"""What both stacks register: hardened containers and services, isolated data services, only
nginx published in prod, and the deploy order backup -> migration -> web/Celery."""

from __future__ import annotations

import shlex

import pytest
from conftest import COMMAND, CONTAINER, NETWORK, PROD_SECRETS, SERVICE, app_image, run

from components import hardening
from tests.program import ProgramResult, Registration

STACKS = ["dev", "prod", "prod_containers", "prod_monitoring"]


@pytest.fixture(params=STACKS)
def result(request) -> ProgramResult:
    return request.getfixturevalue(request.param)


def labels(items: list[dict]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in items}


def role(r: Registration) -> str:
    inputs = r.plain_inputs
    items = (
        inputs["labels"] if r.type == CONTAINER else inputs["taskSpec"]["containerSpec"]["labels"]
    )
    return labels(items)[hardening.ROLE_LABEL]


def by_role(result: ProgramResult, wanted: str) -> list[Registration]:
    return [r for r in result.of_type(CONTAINER) + result.of_type(SERVICE) if role(r) == wanted]


def non_root(user: str) -> bool:
    return user.split(":")[0] not in ("", "0", "root")


def test_every_container_is_hardened(result):
    containers = result.of_type(CONTAINER)
    assert containers
    pids_targets = {
        r.plain_inputs["create"].split()[-1]
        for r in result.of_type(COMMAND)
        if r.plain_inputs["create"].startswith("docker update --pids-limit")
    }
    for c in containers:
        i = c.plain_inputs
        assert i["readOnly"] is True, c.name
        assert i["capabilities"]["drops"] == ["ALL"], c.name
        assert not i["capabilities"].get("adds"), c.name
        assert non_root(i["user"]), c.name
        assert "no-new-privileges:true" in i["securityOpts"], c.name
        assert i["healthcheck"]["tests"], c.name
        assert i["restart"] == "unless-stopped", c.name
        assert i["memory"] > 0 and float(i["cpus"]) > 0, c.name
        assert i["logDriver"] == "json-file" and i["logOpts"]["max-size"], c.name
        assert i["wait"] is True, c.name
        assert not i.get("privileged") and not i.get("networkMode"), c.name
        assert f"{c.name}-id" in pids_targets, f"{c.name} has no pids limit step"
        tags = labels(i["labels"])
        assert tags[hardening.ROLE_LABEL] in (
            "web",
            "celery",
            "postgres",
            "redis",
            "nginx",
            "prometheus",
        )
        assert tags[hardening.STACK_LABEL] in ("dev", "prod")


def test_every_swarm_service_is_hardened_and_rolls_safely(prod):
    services = prod.of_type(SERVICE)
    assert {role(s) for s in services} == {"web", "celery"}
    for s in services:
        i = s.plain_inputs
        spec = i["taskSpec"]["containerSpec"]
        assert spec["readOnly"] is True and spec["capDrops"] == ["ALL"], s.name
        assert non_root(spec["user"]) and spec["healthcheck"]["tests"], s.name
        assert i["taskSpec"]["restartPolicy"]["condition"] == "any"
        assert i["taskSpec"]["resources"]["limits"]["memoryBytes"] > 0
        assert i["updateConfig"]["order"] == "start-first"
        assert i["updateConfig"]["failureAction"] == "rollback"
        assert i["updateConfig"]["parallelism"] == 1
        assert i["rollbackConfig"]["order"] == "start-first"
        assert i["convergeConfig"]["timeout"]
        assert i["endpointSpec"]["mode"] == "dnsrr"
        # Secrets are files, not environment variables.
        assert "SECRET_KEY" not in spec["env"] and "DATABASE_URL" not in spec["env"]
        assert spec["env"]["SECRET_KEY_FILE"] == "/run/secrets/SECRET_KEY"
        for secret in spec["secrets"]:
            assert (secret["fileUid"], secret["fileGid"], secret["fileMode"]) == (
                "10001",
                "10001",
                0o400,
            )
    web = next(s for s in services if role(s) == "web").plain_inputs
    assert web["mode"]["replicated"]["replicas"] == 2
    assert int(web["taskSpec"]["containerSpec"]["stopGracePeriod"].rstrip("s")) > 30


def test_celery_is_never_gated_on_web_http_health(result):
    for celery in by_role(result, "celery"):
        i = celery.plain_inputs
        health = (
            i["healthcheck"]
            if celery.type == CONTAINER
            else i["taskSpec"]["containerSpec"]["healthcheck"]
        )
        assert "inspect ping" in " ".join(health["tests"])
        assert "/health/" not in " ".join(health["tests"])


def test_one_shot_jobs_are_hardened(result):  # their secrets: tests/unit/test_secrets.py
    jobs = [r for r in result.of_type(COMMAND) if r.plain_inputs["create"].startswith("docker run")]
    assert {j.name.rsplit("-", 1)[-1] for j in jobs} >= {"run"}
    for job in jobs:
        argv = shlex.split(job.plain_inputs["create"])
        for flag in (
            ["--read-only"],
            ["--cap-drop", "ALL"],
            ["--security-opt", "no-new-privileges:true"],
        ):
            assert any(argv[k : k + len(flag)] == flag for k in range(len(argv))), (job.name, flag)
        assert non_root(argv[argv.index("--user") + 1])


def network_names(c: Registration) -> set[str]:
    return {n["name"] for n in c.plain_inputs["networksAdvanced"]}


def test_postgres_and_redis_are_only_on_the_internal_network(result):
    internal = {
        n.plain_inputs["name"] for n in result.of_type(NETWORK) if n.plain_inputs.get("internal")
    }
    assert len(internal) == 1
    for wanted in ("postgres", "redis"):
        (container,) = by_role(result, wanted)
        assert network_names(container) == internal
        assert not container.plain_inputs.get("ports")


def test_in_prod_only_nginx_publishes_ports(request):
    for stack in ("prod", "prod_containers", "prod_monitoring"):
        result = request.getfixturevalue(stack)
        published = {role(c) for c in result.of_type(CONTAINER) if c.plain_inputs.get("ports")}
        assert published == {"nginx"}
        assert not any(
            s.plain_inputs.get("endpointSpec", {}).get("ports") for s in result.of_type(SERVICE)
        )
        (nginx,) = by_role(result, "nginx")
        ports = {(p["internal"], p["external"]) for p in nginx.plain_inputs["ports"]}
        assert ports == {(8443, 443), (8080, 80)}


def test_dev_has_no_nginx_and_publishes_only_on_loopback(dev):
    assert not by_role(dev, "nginx")
    ports = [p for c in dev.of_type(CONTAINER) for p in c.plain_inputs.get("ports") or []]
    assert ports and all(p["ip"] == "127.0.0.1" for p in ports)
    (web,) = by_role(dev, "web")
    (source,) = [m for m in web.plain_inputs["mounts"] if m["target"] == "/app"]
    assert source["type"] == "bind" and source["readOnly"] is True
    assert source["source"].endswith("/app")
    assert web.plain_inputs["ports"] == [{"internal": 8000, "external": 8000, "ip": "127.0.0.1"}]


def command_named(result: ProgramResult, suffix: str) -> Registration:
    (match,) = [r for r in result.of_type(COMMAND) if r.name.endswith(suffix)]
    return match


def test_migration_waits_for_healthy_postgres_the_backup_and_the_new_image(result):
    migration = command_named(result, "migration-run")
    backup = command_named(result, "backup-run")
    (postgres,) = by_role(result, "postgres")
    image = app_image(result)
    assert postgres.plain_inputs["wait"] is True  # registered only once healthy
    assert result.depends_on(migration, postgres)
    assert result.depends_on(migration, backup)
    assert result.depends_on(migration, image)
    assert result.depends_on(backup, postgres)
    ref = result.outputs["imageRef"]
    assert migration.plain_inputs["triggers"] == [ref]
    assert (
        shlex.split(migration.plain_inputs["create"])[-4:]
        == [ref, "python", "manage.py", "migrate", "--noinput"][-4:]
    )
    assert migration.index > backup.index > postgres.index


def test_no_docker_object_is_created_before_the_image_builds(result):
    """A project whose dependencies fail to install leaves nothing behind: every container,
    service, network, volume, secret and job waits for the build."""
    image = app_image(result)
    docker_objects = [
        r for r in result.resources if r.custom and r.type.split(":")[0] in ("docker", "command")
    ]
    assert len(docker_objects) > 10
    for r in docker_objects:
        assert result.depends_on(r, image), f"{r.type} {r.name} does not wait for the build"


def test_web_and_celery_depend_on_the_migration(result):
    migration = command_named(result, "migration-run")
    for wanted in ("web", "celery"):
        for r in by_role(result, wanted):
            assert result.depends_on(r, migration), r.name
            assert r.index > migration.index


def test_prod_image_is_a_versioned_runtime_build(request):
    for stack in ("prod", "prod_containers"):
        image = app_image(request.getfixturevalue(stack))
        i = image.plain_inputs
        assert i["target"] == "runtime"
        assert all(not t.endswith(":latest") for t in i["tags"])
        assert i["buildArgs"]["VERSION"] == "1.0.0"
        assert i["buildOnPreview"] is False


def test_dev_image_is_the_development_target(dev):
    image = app_image(dev)
    assert image.plain_inputs["target"] == "development"
    assert image.plain_inputs["load"] is True and image.plain_inputs["push"] is False


def test_monitoring_adds_prometheus_on_the_internal_network_only(prod, prod_monitoring):
    assert by_role(prod, "prometheus") == []
    (prometheus,) = by_role(prod_monitoring, "prometheus")
    internal = {
        n.plain_inputs["name"]
        for n in prod_monitoring.of_type(NETWORK)
        if n.plain_inputs.get("internal")
    }
    assert network_names(prometheus) == internal
    assert not prometheus.plain_inputs.get("ports")
    (web,) = by_role(prod_monitoring, "web")
    # The component waits for web (depends_on), so its children register after web.
    assert prometheus.index > web.index


def test_swarm_services_carry_the_registry_credentials(prod):
    """Every node pulls a service's image itself: without `auth`, a private registry works only
    on a node where a one-shot job happened to pull the image first."""
    password = "registry-pw-0123"
    pushed = run(
        "prod",
        {
            "tlsSelfSigned": True,
            "registry": "registry.example.com:5000",
            "registryUsername": "deploy",
            "registryPassword": password,
        },
        {**PROD_SECRETS, "registryPassword": password},
    )
    services = pushed.of_type(SERVICE)
    assert {role(s) for s in services} == {"web", "celery"}
    for service in services:
        auth = service.plain_inputs["auth"]
        assert auth == {
            "serverAddress": "registry.example.com:5000",
            "username": "deploy",
            "password": password,
        }, service.name
        assert {"auth", "auth.password"} & service.secret_inputs, service.name
    assert all("auth" not in s.plain_inputs for s in prod.of_type(SERVICE))


def test_multinode_placement_constrains_web_and_celery_only_when_configured(prod):
    """appNodeLabel keeps app tasks on labelled nodes, webMaxReplicasPerNode caps web per node;
    unset, the services carry no placement (a single-host stack's spec is unchanged)."""
    placed = run(
        "prod",
        {"tlsSelfSigned": True, "appNodeLabel": "djangostack.app=true", "webMaxReplicasPerNode": 2},
        PROD_SECRETS,
    )
    placements = {role(s): s.plain_inputs["taskSpec"]["placement"] for s in placed.of_type(SERVICE)}
    assert placements == {
        "web": {"constraints": ["node.labels.djangostack.app==true"], "maxReplicas": 2},
        "celery": {"constraints": ["node.labels.djangostack.app==true"]},
    }
    assert all("placement" not in s.plain_inputs["taskSpec"] for s in prod.of_type(SERVICE))
