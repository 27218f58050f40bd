"""What both stacks register: hardened containers and services, files handed over by holders
that never run, isolated data services, only nginx published in prod, and the deploy order
backup -> migration -> web/processes, where a failed step stops the deploy before anything
that serves users changes."""

from __future__ import annotations

import pytest
from conftest import (
    CONTAINER,
    NETWORK,
    PROD_TLS,
    SECRETS,
    SERVICE,
    FakeEngine,
    app_image,
    by_role,
    failed_deploy,
    holders,
    labels_of,
    network_names,
    role,
    run,
    step,
    steps,
)

from components import hardening, renderers
from components.app import ENTRYPOINT
from components.spec import whole_seconds
from tests.program import UNKNOWN, ProgramResult, Registration

STACKS = ["dev", "prod", "prod_containers", "prod_monitoring", "prod_acme"]
LONG_RUNNING_ROLES = ("web", "celery", "postgres", "redis", "nginx", "prometheus", "acme")


@pytest.fixture(params=STACKS)
def result(request) -> ProgramResult:
    return request.getfixturevalue(request.param)


def non_root(user: str) -> bool:
    return user.split(":")[0] not in ("", "0", "root")


def long_running(result: ProgramResult) -> list[Registration]:
    return [c for c in result.of_type(CONTAINER) if role(c) in LONG_RUNNING_ROLES]


def test_every_long_running_container_is_hardened(result):
    containers = long_running(result)
    assert containers
    # Nothing else but the one-shot steps and the holders (tested below).
    others = {role(c) for c in result.of_type(CONTAINER)} - set(LONG_RUNNING_ROLES)
    assert others == {"job", hardening.HOLDER_ROLE}
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
        # No swap beyond the memory limit (unset, Docker reads back twice the memory).
        assert i["memorySwap"] == i["memory"], c.name
        nofile = {"name": "nofile", "soft": hardening.NOFILE, "hard": hardening.NOFILE}
        assert i["ulimits"] == [nofile], c.name
        assert i["logDriver"] == "json-file" and i["logOpts"] == hardening.LOG_OPTS, c.name
        assert i["wait"] is True, c.name
        assert not i.get("privileged") and not i.get("networkMode"), c.name
        tags = labels_of(c)
        assert tags[hardening.STACK_LABEL] in ("dev", "prod")


def test_up_waits_for_a_container_until_docker_would_call_it_unhealthy(result):
    """`pulumi up` gives a new container the time its health check allows (start period, then
    the probes that must fail) and not much more: a release that never gets healthy fails the
    deploy about when Docker calls it unhealthy."""
    for c in long_running(result):
        i = c.plain_inputs
        check = i["healthcheck"]
        probe = whole_seconds(check["interval"]) + whole_seconds(check["timeout"])
        unhealthy = whole_seconds(check["startPeriod"]) + check["retries"] * probe
        assert unhealthy < i["waitTimeout"] <= unhealthy + probe + 60, c.name
    # web's check probes every 2 s by default: a broken release fails within a minute and a half.
    for web in (c for c in long_running(result) if role(c) == "web"):
        assert web.plain_inputs["waitTimeout"] <= 90, web.name


def test_files_reach_a_container_through_a_holder_that_never_runs(result):
    """A container's files (secrets, configuration) go into a volume through a holder: created
    with the files as uploads, never started; the container mounts the volume read-only and
    waits for the holder."""
    found = holders(result)
    assert found
    volumes = [h.plain_inputs["mounts"][0]["source"] for h in found]
    assert len(set(volumes)) == len(volumes), "one files volume per holder"
    for holder in found:
        i = holder.plain_inputs
        assert i["start"] is False and i["mustRun"] is False, holder.name
        assert i["networkMode"] == "none" and not i.get("ports"), holder.name
        assert i["capabilities"]["drops"] == ["ALL"], holder.name
        assert "no-new-privileges:true" in i["securityOpts"], holder.name
        assert not i.get("envs") and not i.get("privileged"), holder.name
        (mount,) = i["mounts"]
        assert (mount["type"], mount["target"]) == ("volume", renderers.HOLDER_DIR)
        assert i["uploads"], holder.name
        for upload in i["uploads"]:
            assert upload["file"].startswith(renderers.HOLDER_DIR + "/"), holder.name
            assert upload["permissions"] == renderers.FILE_MODE, holder.name
        # Its one consumer: the container of the same Pulumi name without "-files".
        consumer = result.one(CONTAINER, holder.name.removesuffix("-files"))
        assert consumer.plain_inputs["image"] == i["image"]  # no other image to pull
        files = [m for m in consumer.plain_inputs["mounts"] if m["source"] == mount["source"]]
        assert len(files) == 1 and files[0]["readOnly"] is True, consumer.name
        assert files[0]["type"] == "volume", consumer.name
        assert result.depends_on(consumer, holder), consumer.name
        # A changed file changes this label, and labels replace the container.
        assert labels_of(consumer)["djangostack.files"], consumer.name
        users = [
            c.name
            for c in result.of_type(CONTAINER)
            if any(m["source"] == mount["source"] for m in c.plain_inputs.get("mounts") or [])
        ]
        assert sorted(users) == sorted([holder.name, consumer.name])


SWARM_DURATIONS = (
    ("updateConfig", "monitor"),
    ("updateConfig", "delay"),
    ("rollbackConfig", "monitor"),
    ("rollbackConfig", "delay"),
    ("convergeConfig", "delay"),
    ("convergeConfig", "timeout"),
    ("taskSpec", "restartPolicy", "delay"),
    ("taskSpec", "restartPolicy", "window"),
    ("taskSpec", "containerSpec", "healthcheck", "interval"),
    ("taskSpec", "containerSpec", "healthcheck", "timeout"),
    ("taskSpec", "containerSpec", "healthcheck", "startPeriod"),
    ("taskSpec", "containerSpec", "stopGracePeriod"),
)


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
        # Written as the provider reads them back, so an unchanged service shows no change
        # on the next `up` (no rolling restart of a no-change deploy).
        for path in SWARM_DURATIONS:
            value = i
            for key in path:
                value = value[key]
            assert value == renderers.swarm_duration(value), (s.name, path, value)
        assert i["taskSpec"]["restartPolicy"]["window"] == "1m"  # 60s, as read back
        assert spec["sysctl"] == {}, s.name  # unset, the provider plans it as unknown
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


def test_one_shot_steps_are_hardened_containers_run_to_completion(result):
    jobs = steps(result)
    expected = {"djangostack-backup-run", "djangostack-migration-run"}
    if result.outputs["profile"] == "prod":
        expected |= {"djangostack-static-run", "djangostack-maintenance-run"}
    assert {j.name for j in jobs} == expected
    for job in jobs:
        i = job.plain_inputs
        assert i["readOnly"] is True, job.name
        assert i["capabilities"]["drops"] == ["ALL"], job.name
        assert not i["capabilities"].get("adds"), job.name
        assert "no-new-privileges:true" in i["securityOpts"], job.name
        assert non_root(i["user"]), job.name
        assert not i.get("privileged") and not i.get("ports"), job.name
        assert i["memory"] > 0 and i["memorySwap"] == i["memory"] and float(i["cpus"]) > 0
        # Runs once to completion: `up` waits for its exit and records code and output.
        assert (i["attach"], i["logs"], i["mustRun"], i["restart"]) == (True, True, False, "no")
        assert not i.get("wait"), job.name
        tags = labels_of(job)
        assert tags[hardening.ROLE_LABEL] == "job", job.name
        assert tags[renderers.STEP_LABEL] == i["name"], job.name
        assert tags[renderers.RUN_KEY_LABEL], job.name
        # What a step prints could include what it read: stored encrypted.
        assert job.additional_secret_outputs == ("containerLogs",), job.name


def test_postgres_and_redis_are_only_on_the_internal_network(result):
    internal = {
        n.plain_inputs["name"] for n in result.of_type(NETWORK) if n.plain_inputs.get("internal")
    }
    assert len(internal) == 1
    for wanted in ("postgres", "redis"):
        (container,) = by_role(result, wanted)
        assert network_names(result, container) == internal
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


def test_migration_waits_for_healthy_postgres_the_backup_and_the_new_image(result):
    migration = step(result, "-migration-run")
    backup = step(result, "-backup-run")
    (postgres,) = by_role(result, "postgres")
    image = app_image(result)
    assert postgres.plain_inputs["wait"] is True  # registered only once healthy
    assert result.depends_on(migration, postgres)
    assert result.depends_on(migration, backup)
    assert result.depends_on(migration, image)
    assert result.depends_on(backup, postgres)
    i = migration.plain_inputs
    assert i["image"] == result.outputs["imageRef"]
    assert i["command"] == [ENTRYPOINT, "python", "manage.py", "migrate", "--noinput"]
    # One run key: a backup is taken before every migration run.
    key = labels_of(migration)[renderers.RUN_KEY_LABEL]
    assert labels_of(backup)[renderers.RUN_KEY_LABEL] == key
    assert migration.index > backup.index > postgres.index


def test_no_docker_object_is_created_before_the_image_builds(result):
    """A project whose dependencies fail to install leaves nothing behind: every container,
    service, network, volume, secret and step waits for the build."""
    image = app_image(result)
    docker_objects = [r for r in result.resources if r.custom and r.type.split(":")[0] == "docker"]
    assert len(docker_objects) > 10
    for r in docker_objects:
        assert result.depends_on(r, image), f"{r.type} {r.name} does not wait for the build"


def test_web_and_celery_run_the_release_once_the_migration_succeeded(result):
    migration = step(result, "-migration-run")
    for wanted in ("web", "celery"):
        for r in by_role(result, wanted):
            assert result.depends_on(r, migration), r.name
            assert r.index > migration.index
            image = (
                r.plain_inputs["image"]
                if r.type == CONTAINER
                else r.plain_inputs["taskSpec"]["containerSpec"]["image"]
            )
            assert image == result.outputs["imageRef"], r.name


def test_the_static_sync_runs_for_every_new_image(prod):
    sync = step(prod, "-static-run")
    ref = prod.outputs["imageRef"]
    assert sync.plain_inputs["image"] == ref
    assert labels_of(sync)[renderers.RUN_KEY_LABEL] == ref
    (nginx,) = by_role(prod, "nginx")
    assert prod.depends_on(nginx, sync)


@pytest.mark.parametrize(
    ("stack", "config", "failing", "docker_name"),
    [
        ("prod", PROD_TLS, "djangostack-migration-run", "djangostack-prod-migrate"),
        (
            "prod",
            {**PROD_TLS, "orchestrator": "containers"},
            "djangostack-backup-run",
            "djangostack-prod-backup",
        ),
        ("dev", {}, "djangostack-migration-run", "djangostack-dev-migrate"),
    ],
)
def test_a_failed_step_fails_the_deploy_before_web_and_the_processes_change(
    stack, config, failing, docker_name
):
    error = failed_deploy(stack, config, failing)
    message = error.message
    assert f"deploy step '{docker_name}' exited with code 3" in message
    # Its last 30 lines, not more.
    shown = [line for line in message.splitlines() if "step output line" in line]
    assert shown == [f"  | step output line {n}" for n in range(11, 41)]
    ran = error.result.one(CONTAINER, failing)
    assert f"bash scripts/deploy.sh {stack}" in message
    assert f"pulumi up --replace '{ran.urn}'" in message
    registered = error.result
    for wanted in ("web", "celery", "nginx", "process"):
        assert by_role(registered, wanted) == [], wanted
    # Nor the files the running release reads (its holders would rewrite its volumes).
    app_holders = ("djangostack-web", "djangostack-celery", "djangostack-nginx")
    assert [h.name for h in holders(registered) if h.name.startswith(app_holders)] == []
    if failing.endswith("backup-run"):  # the migration never runs without its backup
        assert [s.name for s in steps(registered) if s.name.endswith("-migration-run")] == []


def test_a_failed_static_sync_leaves_nginx_as_it_was():
    error = failed_deploy("prod", PROD_TLS, "djangostack-static-run")
    assert "deploy step 'djangostack-prod-static-sync' exited with code 3" in error.message
    assert by_role(error.result, "nginx") == []


class PreviewEngine(FakeEngine):
    """A preview of a release whose steps change: the engine knows no exit code yet."""

    def new_resource(self, args):
        resource_id, state = super().new_resource(args)
        if "exitCode" in state:
            state.update(exitCode=UNKNOWN, containerLogs=UNKNOWN)
        return resource_id, state


def test_a_preview_shows_web_and_the_processes_with_their_real_change():
    """Web and the processes wait for the steps' success through `depends_on` (Job.done()),
    not through an input: a preview, where the steps' results are unknown, still shows their
    new image, and they depend on the migration and the static sync."""
    result = run("prod", PROD_TLS, engine=PreviewEngine(), preview=True)
    migration, static = step(result, "-migration-run"), step(result, "-static-run")
    for wanted in ("web", "celery"):
        (service,) = by_role(result, wanted)
        image = service.plain_inputs["taskSpec"]["containerSpec"]["image"]
        assert image == result.outputs["imageRef"]
        assert result.depends_on(service, migration) and result.depends_on(service, static)
    assert by_role(result, "nginx")


def test_prod_image_is_a_versioned_runtime_build(request):
    for stack in ("prod", "prod_containers"):
        image = app_image(request.getfixturevalue(stack))
        i = image.plain_inputs
        assert i["target"] == "runtime"
        assert all(not t.endswith(":latest") for t in i["tags"])
        assert i["buildArgs"]["VERSION"] == "1.0.0"
        assert i["buildOnPreview"] is False


def test_images_build_through_the_local_buildx_on_the_engines_builder(dev, prod):
    # docker-build's own BuildKit client would create a docker-container builder (pulling
    # moby/buildkit); exec mode on `default` builds with the engine's BuildKit.
    for result in (dev, prod):
        for image in result.of_type("docker-build:index:Image"):
            assert image.plain_inputs["exec"] is True, image.name
            assert image.plain_inputs["builder"] == {"name": "default"}, image.name
            assert not image.plain_inputs.get("cacheTo"), image.name


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
    assert network_names(prod_monitoring, prometheus) == internal
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
        {**PROD_TLS, "registry": "registry.example.com:5000", "registryUsername": "deploy"},
        {**SECRETS, "registryPassword": password},
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
        "prod", {**PROD_TLS, "appNodeLabel": "djangostack.app=true", "webMaxReplicasPerNode": 2}
    )
    placements = {role(s): s.plain_inputs["taskSpec"]["placement"] for s in placed.of_type(SERVICE)}
    assert placements == {
        "web": {"constraints": ["node.labels.djangostack.app==true"], "maxReplicas": 2},
        "celery": {"constraints": ["node.labels.djangostack.app==true"]},
    }
    assert all("placement" not in s.plain_inputs["taskSpec"] for s in prod.of_type(SERVICE))


def test_releases_replace_half_the_tasks_at_a_time_by_default(prod):
    """webReplicas 2: one task at a time (the other keeps serving); 5 s after a batch turns
    healthy before the next one replaces more old tasks (a crash in that window rolls back
    while they serve); each new task is watched for a failure."""
    (web,) = by_role(prod, "web")
    update = web.plain_inputs["updateConfig"]
    assert update["parallelism"] == 1 and update["order"] == "start-first"
    assert update["delay"] == "5s" and update["monitor"] == "10s"
    assert update["failureAction"] == "rollback"
    # A rollback brings every task back at once, each started before a failing one stops.
    rollback = web.plain_inputs["rollbackConfig"]
    assert rollback["parallelism"] == 0 and rollback["delay"] == "0s"
    assert rollback["order"] == "start-first" and rollback["failureAction"] == "pause"
    health = web.plain_inputs["taskSpec"]["containerSpec"]["healthcheck"]
    assert health["interval"] == "2s"


def test_release_settings_come_from_config():
    result = run(
        "prod",
        {**PROD_TLS, "webReplicas": 4, "releaseDelay": "90s", "releaseMonitor": "1m",
         "webHealthInterval": "5s"},
    )  # fmt: skip
    (web,) = by_role(result, "web")
    update = web.plain_inputs["updateConfig"]
    assert update["parallelism"] == 2  # half of 4
    assert update["delay"] == "1m30s" and update["monitor"] == "1m"  # as Swarm reads them back
    assert web.plain_inputs["taskSpec"]["containerSpec"]["healthcheck"]["interval"] == "5s"
    (celery,) = by_role(result, "celery")
    assert celery.plain_inputs["updateConfig"]["parallelism"] == 1  # one worker task
