"""The prod stack deployed from nothing by the Pulumi engine on the local Docker engine.

One stack per module; the tests run in file order: the site works, everything is hardened, an
unchanged second `up` changes nothing, a config-only change runs no deploy step, a source
change rolls forward through exactly the release's resources keeping the data, and `destroy`
keeps the protected data until told otherwise."""

from __future__ import annotations

import json
import re
import ssl
import time

import docker
import pytest
import requests
import urllib3

from components.hardening import STACK_LABEL
from tests.support.checks import (
    assert_destroy_keeps_data_then_removes_all,
    assert_hardened_and_healthy,
    assert_second_up_changes_nothing,
    docker_time,
    http_get_in,
)
from tests.support.engine import new_stack

pytestmark = pytest.mark.slow
CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
IMAGE = "docker-build:index:Image"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    # Prometheus scraping the Swarm web tasks, too; a scheduled backup (its service is hardened,
    # unchanged by a second up and by a release), which never runs during the module.
    overrides = {"monitoring": True, "backupSchedule": "24h"}
    stack = new_stack(tmp_path_factory.mktemp("prod"), "e2e-prod", "prod", overrides=overrides)
    try:
        stack.first = stack.up()
        yield stack
    finally:
        stack.remove()


@pytest.fixture(scope="module")
def site(prod):
    """A session for the stack's HTTPS URL, after checking that nginx presents exactly the
    stack's own self-signed certificate (a leaf with CA:false, which OpenSSL will not take
    as a trust anchor, so verification is replaced by this comparison)."""
    host, port = prod.first.outputs["url"].removeprefix("https://").split(":")
    presented = ssl.get_server_certificate((host, int(port)), timeout=10)
    assert ssl.PEM_cert_to_DER_cert(presented) == ssl.PEM_cert_to_DER_cert(
        prod.first.outputs["tlsCertificate"]
    )
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session = requests.Session()
    session.trust_env = False  # no proxy or CA bundle from the environment: loopback only
    session.verify = False
    return session


def url(prod, path: str) -> str:
    return prod.first.outputs["url"].rstrip("/") + path


def named(prod, client, role: str):
    return client.containers.get(f"{prod.name}-{role}")


def web_tasks(prod, client) -> list:
    label = f"com.docker.swarm.service.name={prod.name}-web"
    return client.containers.list(filters={"label": label})


def test_health_through_nginx_over_https(prod, site) -> None:
    response = site.get(url(prod, "/health/"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


def test_http_redirects_to_https(prod) -> None:
    port = prod.config["httpPort"]
    response = requests.get(f"http://127.0.0.1:{port}/some/page", allow_redirects=False, timeout=10)
    assert response.status_code in (301, 308)
    assert response.headers["Location"].startswith("https://")


def test_security_headers(prod, site) -> None:
    headers = site.get(url(prod, "/"), timeout=10).headers
    assert "max-age=" in headers["Strict-Transport-Security"]
    assert "nosniff" in headers["X-Content-Type-Options"]
    assert "DENY" in headers["X-Frame-Options"]
    assert headers["Referrer-Policy"]


def test_static_file_served_by_nginx_with_long_cache(prod, site, client) -> None:
    page = site.get(url(prod, "/"), timeout=10).text
    path = re.search(r'href="(/static/core/site\.[0-9a-f]+\.css)"', page).group(1)
    response = site.get(url(prod, path), timeout=10)
    assert response.status_code == 200 and "text/css" in response.headers["Content-Type"]
    max_age = int(re.search(r"max-age=(\d+)", response.headers["Cache-Control"]).group(1))
    assert max_age >= 30 * 24 * 3600
    # Django itself does not serve it: the same path asked of a web task directly is a 404.
    status, _ = http_get_in(
        web_tasks(prod, client)[0],
        f"http://127.0.0.1:8000{path}",
        {"Host": prod.config.get("domain", "localhost"), "X-Forwarded-Proto": "https"},
    )
    assert status == 404


def test_sample_view_writes_to_postgres(prod, site, client) -> None:
    created = site.post(
        url(prod, "/api/messages/"), json={"text": "kept across releases"}, timeout=10
    )
    assert created.status_code == 201
    listed = site.get(url(prod, "/api/messages/"), timeout=10).json()
    assert "kept across releases" in [m["text"] for m in listed["messages"]]
    postgres = named(prod, client, "postgres")
    user, db = prod.config.get("postgresUser", "app"), prod.config.get("postgresDb", "app")
    code, out = postgres.exec_run(
        ["psql", "-U", user, "-d", db, "-tAc", "select count(*) from core_message"]
    )
    assert code == 0 and int(out.decode().strip()) >= 1


def test_celery_task_round_trips_through_redis(prod, site) -> None:
    started = site.post(url(prod, "/api/tasks/word-count/"), json={"text": "a b c"}, timeout=10)
    assert started.status_code == 202
    task_url = url(prod, f"/api/tasks/{started.json()['task_id']}/")
    deadline = time.monotonic() + 60
    while (state := site.get(task_url, timeout=10).json())["state"] != "SUCCESS":
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state["result"] == 3


def test_migrations_finished_before_the_first_web_task_started(prod, client) -> None:
    postgres = named(prod, client, "postgres")
    user, db = prod.config.get("postgresUser", "app"), prod.config.get("postgresDb", "app")
    code, out = postgres.exec_run(
        [
            "psql",
            "-U",
            user,
            "-d",
            db,
            "-tAc",
            "select extract(epoch from max(applied)) from django_migrations",
        ]
    )
    assert code == 0
    migrated = float(out.decode().strip())
    for task in web_tasks(prod, client):
        assert docker_time(task.attrs["State"]["StartedAt"]).timestamp() > migrated


def test_postgres_and_redis_unreachable_from_host_and_nginx(prod, client) -> None:
    nginx = named(prod, client, "nginx")
    for role, port in (("postgres", 5432), ("redis", 6379)):
        container = named(prod, client, role)
        # From the host: nothing published, and only on the internal network. (No connect
        # attempt: the host has no route into overlay networks, packets would leave the machine.)
        assert not container.attrs["HostConfig"]["PortBindings"]
        assert not any(container.attrs["NetworkSettings"]["Ports"].values())
        for network in container.attrs["NetworkSettings"]["Networks"]:
            assert client.networks.get(network).attrs["Internal"] is True, network
        # From nginx: it shares no network with them, and their names do not resolve or
        # connect. (No attempt by address: it would leave through nginx's default route.)
        shared = set(container.attrs["NetworkSettings"]["Networks"]) & set(
            nginx.attrs["NetworkSettings"]["Networks"]
        )
        assert not shared, f"nginx shares {shared} with {role}"
        code, _ = nginx.exec_run(["bash", "-c", f"timeout 3 bash -c '</dev/tcp/{role}/{port}'"])
        assert code != 0, f"{role} reachable from nginx by name"


def web_targets_up(prometheus) -> set[str]:
    """Addresses of the web targets Prometheus last scraped successfully."""
    code, body = prometheus.exec_run(
        ["wget", "-q", "-O", "-", "http://127.0.0.1:9090/api/v1/targets"]
    )
    assert code == 0, body.decode(errors="replace")
    targets = json.loads(body)["data"]["activeTargets"]
    return {t["labels"]["instance"].rsplit(":", 1)[0] for t in targets if t["health"] == "up"}


def test_prometheus_scrapes_every_web_task(prod, client) -> None:
    prometheus = named(prod, client, "prometheus")
    task_addresses = {
        net["IPAddress"]
        for task in web_tasks(prod, client)
        for net in task.attrs["NetworkSettings"]["Networks"].values()
    }
    deadline = time.monotonic() + 90  # the first scrape comes within one 15 s interval
    while not (len(up := web_targets_up(prometheus)) == 2 and up <= task_addresses):
        assert time.monotonic() < deadline, f"up: {up}; web tasks: {task_addresses}"
        time.sleep(3)


def test_every_container_read_only_non_root_no_capabilities_and_healthy(prod, client) -> None:
    # postgres, redis, nginx, prometheus, 2 web tasks, 1 celery task, the scheduled backup's
    assert_hardened_and_healthy(prod, client, minimum=8)


def test_second_up_of_an_unchanged_program_changes_nothing(prod, client) -> None:
    assert_second_up_changes_nothing(prod, client)


def test_config_only_change_runs_no_deploy_step(prod, client) -> None:
    """A new `webWorkers` (Gunicorn's, web's alone) updates web and nothing else: the backup and
    the migration run only when what the migration runs with changes, and then together."""
    since = int(time.time()) - 1
    changed = prod.up(webWorkers=prod.config["webWorkers"] + 1)
    until = int(time.time()) + 1
    touched = {key: op for key, op in changed.ops.items() if op != "same"}
    assert touched == {(SERVICE, "djangostack-web"): "update"}, touched
    jobs = client.events(
        since=since,
        until=until,
        decode=True,
        filters={
            "type": "container",
            "event": "create",
            # This stack's steps only: other modules' stacks deploy in parallel workers.
            "label": ["djangostack.role=job", f"{STACK_LABEL}={prod.name}"],
        },
    )
    assert [event["Actor"]["Attributes"].get("name") for event in jobs] == []


def test_changed_source_updates_exactly_the_release(prod, site, client) -> None:
    """A one-line source change: the image, the backup and the migration (one run key), the
    static sync, web and the worker; nothing else (data services, networks, volumes)."""
    views = prod.app_dir / "core" / "views.py"
    views.write_text(views.read_text() + "\n# release 2\n")
    postgres_before = named(prod, client, "postgres").id
    redis_before = named(prod, client, "redis").id
    changed = prod.up()
    touched = {key for key, op in changed.ops.items() if op != "same"}
    assert touched == {
        (IMAGE, "djangostack-image-build"),
        (CONTAINER, "djangostack-backup-run"),
        (CONTAINER, "djangostack-migration-run"),
        # The migration's files holder is a container of the release image.
        (CONTAINER, "djangostack-migration-run-files"),
        (CONTAINER, "djangostack-static-run"),
        (SERVICE, "djangostack-web"),
        (SERVICE, "djangostack-celery"),
    }, sorted(touched)
    assert named(prod, client, "postgres").id == postgres_before
    assert named(prod, client, "redis").id == redis_before
    digest = changed.outputs["imageDigest"]
    assert digest != prod.first.outputs["imageDigest"]
    listed = site.get(url(prod, "/api/messages/"), timeout=10).json()
    assert "kept across releases" in [m["text"] for m in listed["messages"]]


def test_destroy_keeps_the_data_until_told_otherwise(prod) -> None:
    assert_destroy_keeps_data_then_removes_all(prod)
