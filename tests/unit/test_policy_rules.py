"""Each policy rejects a resource that breaks its rule, with a message naming the resource and the
fix, and accepts a hardened one. The policies run exactly as the Pulumi engine calls them."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError
from test_hardening import GOOD

from components import hardening
from components.spec import Capability
from policy import rules
from policy.evaluate import evaluate

POLICIES = {p.name: p for p in rules.POLICIES}
NNP_CONFIG = {rules.DAEMON_NNP_KEY: True}
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the binding these tests reject


def urn(stack: str, typ: str, name: str) -> str:
    return f"urn:pulumi:{stack}::djangostack::{typ}::{name}"


def violations(
    policy_name: str,
    typ: str,
    props: dict[str, Any],
    stack: str = "prod",
    name: str = "res",
    config: dict[str, Any] | None = None,
) -> list[str]:
    resource = rules.StackResource(typ, name, urn(stack, typ, name), props)
    found = evaluate([resource], config, [POLICIES[policy_name]])
    return [v.message for v in found]


def stack_violations(resources: list[tuple[str, str, dict[str, Any]]], stack: str = "prod"):
    records = [rules.StackResource(t, n, urn(stack, t, n), p) for t, n, p in resources]
    found = evaluate(records, None, [POLICIES["datastores-on-internal-networks"]])
    return [(v.urn, v.message) for v in found]


def labels(role: str) -> list[dict[str, str]]:
    return [
        {"label": rules.ROLE_LABEL, "value": role},
        {"label": "djangostack.stack", "value": "prod"},
    ]


def hardened_container(role: str = "web") -> dict[str, Any]:
    return {
        "image": "registry.example:5000/djangostack/web@sha256:" + "a" * 64,
        "readOnly": True,
        "capabilities": {"drops": ["ALL"]},
        "user": "10001:10001",
        "securityOpts": ["no-new-privileges:true"],
        "healthcheck": {"tests": ["CMD", "python", "-c", "probe"], "interval": "10s"},
        "memory": 512,
        "cpuShares": 512,
        "networksAdvanced": [{"name": "prod-backend"}],
        "mounts": [{"type": "tmpfs", "target": "/tmp"}],
        "labels": labels(role),
    }


def hardened_service(role: str = "web") -> dict[str, Any]:
    return {
        "labels": labels(role),
        "taskSpec": {
            "containerSpec": {
                "image": "djangostack/web:1.4.0",
                "readOnly": True,
                "capDrops": ["ALL"],
                "user": "10001:10001",
                "healthcheck": {"tests": ["CMD", "probe"]},
                "mounts": [{"type": "tmpfs", "target": "/tmp"}],
            },
            "resources": {"limits": {"memoryBytes": 536870912, "nanoCpus": 500000000}},
            "networksAdvanceds": [{"name": "prod-backend"}],
        },
    }


def broken(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `props` with the dotted `path` set to `value` (or removed if value is ...)."""
    out = copy.deepcopy(props)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return out


ALL_RESOURCE_POLICIES = [p for p in rules.POLICIES if isinstance(p, ResourceValidationPolicy)]


@pytest.mark.parametrize("policy", ALL_RESOURCE_POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["container", "service"])
def test_hardened_resources_pass_every_policy(policy, kind):
    typ, props = (
        (rules.CONTAINER, hardened_container())
        if kind == "container"
        else (rules.SERVICE, hardened_service())
    )
    assert violations(policy.name, typ, props, config=NNP_CONFIG) == []


def test_every_policy_has_a_level_and_a_description():
    assert len(POLICIES) == len(rules.POLICIES), "policy names must be unique"
    for policy in rules.POLICIES:
        assert policy.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)
        assert policy.description


# (policy, resource type, dotted prop path, bad value, words the message must contain)
CONTAINER_BREAKS = [
    ("read-only-root", "readOnly", False, ["writable root", "readOnly: true"]),
    ("read-only-root", "readOnly", ..., ["writable root"]),
    ("drop-all-capabilities", "capabilities.drops", ["NET_RAW"], ['["ALL"]']),
    ("drop-all-capabilities", "capabilities.adds", ["SYS_ADMIN"], ["SYS_ADMIN", "allow-list"]),
    ("non-root-user", "user", "0:0", ["runs as root"]),
    ("non-root-user", "user", "root", ["runs as root"]),
    ("non-root-user", "user", ..., ["runs as root"]),
    ("no-new-privileges", "securityOpts", ["seccomp=default.json"], ["no-new-privileges:true"]),
    ("health-check", "healthcheck", ..., ["no health check"]),
    ("health-check", "healthcheck.tests", ["NONE"], ["no health check"]),
    ("resource-limits", "memory", ..., ["no memory limit", "memory"]),
    ("resource-limits", "cpuShares", ..., ["no CPU limit", "cpuShares or cpus"]),
    ("not-privileged", "privileged", True, ["privileged"]),
    ("no-host-namespaces", "networkMode", "host", ["host's network namespace"]),
    ("no-host-namespaces", "pidMode", "host", ["host's pid namespace"]),
    ("no-host-namespaces", "ipcMode", "host", ["host's ipc namespace"]),
    (
        "no-docker-socket",
        "mounts",
        [{"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}],
        ["Docker socket", "/var/run/docker.sock"],
    ),
    (
        "no-docker-socket",
        "volumes",
        [{"hostPath": "/run", "containerPath": "/host-run"}],
        ["Docker socket"],
    ),
    (
        "only-nginx-publishes",
        "ports",
        [{"internal": 8000, "external": 8000, "ip": ALL_INTERFACES}],
        ["only the nginx container"],
    ),
    ("only-nginx-publishes", "publishAllPorts", True, ["publishAllPorts"]),
    (
        "ports-bound-to-address",
        "ports",
        [{"internal": 8000, "external": 8000}],
        ["every host interface", "ports[].ip"],
    ),
    ("production-images-immutable", "image", "djangostack/web:latest", ["moving tag"]),
    ("production-images-immutable", "image", "djangostack/web", ["moving tag"]),
    (
        "production-images-immutable",
        "image",
        "registry.example:5000/djangostack/web:1.4.0",
        ["by digest", "registry.example:5000"],
    ),
]


@pytest.mark.parametrize(("policy", "path", "value", "words"), CONTAINER_BREAKS)
def test_container_breaking_a_rule_is_rejected(policy, path, value, words):
    found = violations(
        policy, rules.CONTAINER, broken(hardened_container(), path, value), name="web"
    )
    assert len(found) >= 1, f"{policy} accepted {path}={value!r}"
    for word in [*words, "container 'web'", "stack prod", "role web"]:
        assert any(word in message for message in found), (word, found)


SERVICE_BREAKS = [
    ("read-only-root", "taskSpec.containerSpec.readOnly", False, ["containerSpec.readOnly"]),
    ("drop-all-capabilities", "taskSpec.containerSpec.capDrops", [], ["capDrops"]),
    ("drop-all-capabilities", "taskSpec.containerSpec.capAdds", ["NET_ADMIN"], ["allow-list"]),
    ("non-root-user", "taskSpec.containerSpec.user", "0", ["runs as root"]),
    ("health-check", "taskSpec.containerSpec.healthcheck", ..., ["no health check"]),
    ("resource-limits", "taskSpec.resources.limits.memoryBytes", 0, ["memoryBytes"]),
    ("resource-limits", "taskSpec.resources.limits.nanoCpus", ..., ["nanoCpus"]),
    ("no-host-namespaces", "taskSpec.networksAdvanceds", [{"name": "host"}], ["network"]),
    (
        "no-docker-socket",
        "taskSpec.containerSpec.mounts",
        [{"type": "bind", "source": "/var/run/docker.sock", "target": "/s"}],
        ["Docker socket"],
    ),
    (
        "only-nginx-publishes",
        "endpointSpec",
        {"ports": [{"targetPort": 8000, "publishedPort": 8000}]},
        ["only the nginx container"],
    ),
    (
        "production-images-immutable",
        "taskSpec.containerSpec.image",
        "djangostack/web:latest",
        ["moving tag"],
    ),
]


@pytest.mark.parametrize(("policy", "path", "value", "words"), SERVICE_BREAKS)
def test_service_breaking_a_rule_is_rejected(policy, path, value, words):
    props = broken(hardened_service(), path, value)
    found = violations(policy, rules.SERVICE, props, name="web", config=NNP_CONFIG)
    assert len(found) >= 1, f"{policy} accepted {path}={value!r}"
    for word in [*words, "service 'web'"]:
        assert any(word in message for message in found), (word, found)


def test_swarm_services_need_the_daemon_wide_no_new_privileges_statement():
    found = violations("no-new-privileges", rules.SERVICE, hardened_service())
    assert len(found) == 1
    assert "daemon.json" in found[0] and rules.DAEMON_NNP_KEY in found[0]


def test_an_image_unknown_during_preview_only_defers_the_image_rule():
    props = broken(hardened_container(), "image", UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):  # the engine reports this rule as advisory in preview
        violations("production-images-immutable", rules.CONTAINER, props)
    assert violations("read-only-root", rules.CONTAINER, props) == []
    found = violations("read-only-root", rules.CONTAINER, broken(props, "readOnly", False))
    assert found and "writable root" in found[0]


def test_allow_listed_capability_is_accepted():
    props = broken(hardened_container(), "capabilities.adds", ["CAP_NET_BIND_SERVICE"])
    assert violations("drop-all-capabilities", rules.CONTAINER, props) == []


def test_nginx_may_publish_on_an_explicit_address_others_only_on_loopback():
    ports = [{"internal": 8443, "external": 443, "ip": "192.0.2.10"}]
    nginx = broken(hardened_container("nginx"), "ports", ports)
    assert violations("only-nginx-publishes", rules.CONTAINER, nginx) == []
    assert violations("ports-bound-to-address", rules.CONTAINER, nginx) == []
    assert violations(
        "only-nginx-publishes", rules.CONTAINER, broken(nginx, "labels", labels("web"))
    )
    dev_web = broken(
        hardened_container(), "ports", [{"internal": 8000, "external": 8000, "ip": "127.0.0.1"}]
    )
    assert violations("only-nginx-publishes", rules.CONTAINER, dev_web, stack="dev") == []


def test_nginx_on_every_interface_is_advised_against_not_blocked():
    ports = [{"internal": 8443, "external": 443, "ip": ALL_INTERFACES}]
    nginx = broken(hardened_container("nginx"), "ports", ports)
    assert violations("only-nginx-publishes", rules.CONTAINER, nginx) == []
    assert violations("ports-bound-to-address", rules.CONTAINER, nginx)
    assert POLICIES["ports-bound-to-address"].enforcement_level == EnforcementLevel.ADVISORY


def test_one_shot_containers_need_no_health_check():
    one_shot = broken(broken(hardened_container(), "healthcheck", ...), "attach", True)
    assert violations("health-check", rules.CONTAINER, one_shot) == []
    assert violations("read-only-root", rules.CONTAINER, broken(one_shot, "readOnly", False))


def test_dev_stack_may_use_latest_and_local_tags():
    props = broken(hardened_container(), "image", "localhost:5000/djangostack/web:latest")
    assert violations("production-images-immutable", rules.CONTAINER, props, stack="dev") == []
    assert len(violations("production-images-immutable", rules.CONTAINER, props)) == 2


def test_prod_image_builds_carry_a_version_tag():
    good = {"tags": ["registry.example/djangostack/web:1.4.0", "registry.example/web:sha-abc"]}
    assert violations("production-images-immutable", rules.IMAGE, good) == []
    for bad_tags in (["registry.example/djangostack/web:latest"], ["djangostack/web"], []):
        found = violations("production-images-immutable", rules.IMAGE, {"tags": bad_tags})
        assert found and "image build" in found[0], bad_tags
    assert violations("production-images-immutable", rules.IMAGE, {"tags": []}, stack="dev") == []


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("postgres:16-bookworm", ("postgres", "16-bookworm", "")),
        ("127.0.0.1:5000/app/web@sha256:ab", ("127.0.0.1:5000/app/web", "", "sha256:ab")),
        ("127.0.0.1:5000/app/web:1.0@sha256:ab", ("127.0.0.1:5000/app/web", "1.0", "sha256:ab")),
        ("localhost:5000/web", ("localhost:5000/web", "", "")),
    ],
)
def test_split_image_ref(ref, parts):
    assert rules.split_image_ref(ref) == parts


NETWORKS = [
    (rules.NETWORK, "backend", {"name": "prod-backend", "internal": True}),
    (rules.NETWORK, "frontend", {"name": "prod-frontend", "internal": False}),
]


@pytest.mark.parametrize("role", ["postgres", "redis"])
def test_datastores_only_on_internal_networks(role):
    good = hardened_container(role)
    assert stack_violations([*NETWORKS, (rules.CONTAINER, role, good)]) == []

    public = broken(good, "networksAdvanced", [{"name": "prod-backend"}, {"name": "prod-frontend"}])
    found = stack_violations([*NETWORKS, (rules.CONTAINER, role, public)])
    assert len(found) == 1
    assert found[0][0] == urn("prod", rules.CONTAINER, role)
    assert "'prod-frontend', which is not internal" in found[0][1]

    unknown = broken(good, "networksAdvanced", [{"name": "bridge"}])
    assert (
        "not a Network of this stack"
        in stack_violations([*NETWORKS, (rules.CONTAINER, role, unknown)])[0][1]
    )

    default = broken(good, "networksAdvanced", ...)
    assert (
        "default network" in stack_violations([*NETWORKS, (rules.CONTAINER, role, default)])[0][1]
    )


@pytest.mark.parametrize("role", ["postgres", "redis"])
def test_datastores_attached_by_id_are_known_by_the_network_they_came_from(role):
    """The program attaches containers by network id (a replaced network is a new id): the
    rule finds the Network through the attachment's property dependency."""
    networks = [rules.StackResource(t, n, urn("prod", t, n), p) for t, n, p in NETWORKS]
    by_name = {r.name: r.urn for r in networks}

    def messages(depends_on: list[str]) -> list[str]:
        props = broken(hardened_container(role), "networksAdvanced", [{"name": "a-network-id"}])
        container = rules.StackResource(
            rules.CONTAINER,
            role,
            urn("prod", rules.CONTAINER, role),
            props,
            {"networksAdvanced": tuple(by_name[n] for n in depends_on)},
        )
        return [m for _, m in rules.check_internal_networks([*networks, container])]

    assert messages(["backend"]) == []
    (public,) = messages(["frontend"])
    assert "'prod-frontend', which is not internal" in public
    (unknown,) = messages([])
    assert "'a-network-id', which is not a Network of this stack" in unknown


def test_web_may_join_the_public_network():
    web = broken(hardened_container("web"), "networksAdvanced", [{"name": "prod-frontend"}])
    assert stack_violations([*NETWORKS, (rules.CONTAINER, "web", web)]) == []


def holder() -> dict[str, Any]:
    """A files holder as components/renderers.py creates it: never started, so nothing of a
    running container's hardening applies (no user: Docker would look it up on the host; a
    writable root: Docker copies uploads only into one)."""
    return {
        "image": "djangostack/web:latest",
        "start": False,
        "mustRun": False,
        "networkMode": "none",
        "command": ["true"],
        "capabilities": {"drops": ["ALL"]},
        "mounts": [{"type": "volume", "source": "prod-web-files", "target": "/files"}],
        "uploads": [{"file": "/files/SECRET_KEY", "content": "x", "permissions": "0444"}],
        "labels": labels(hardening.HOLDER_ROLE),
    }


def test_a_holder_that_never_starts_is_no_workload():
    assert rules.workload(rules.CONTAINER, "web-files", "urn", holder()) is None
    for policy in ALL_RESOURCE_POLICIES:
        assert violations(policy.name, rules.CONTAINER, holder(), config=NNP_CONFIG) == [], policy
    # Exempt only when it is both labelled a holder and never started.
    for props in (
        broken(holder(), "start", True),
        broken(holder(), "start", ...),  # Docker's default: started
        broken(holder(), "labels", labels("web")),
    ):
        found = violations("read-only-root", rules.CONTAINER, props, name="web-files")
        assert found and "writable root" in found[0], props


@pytest.mark.parametrize("capability", sorted(hardening.ALLOWED_CAPABILITIES))
def test_the_pack_allows_exactly_the_programs_capabilities(capability):
    # One list (components/hardening.py) for the program's check and the pack.
    assert rules.ALLOWED_CAPABILITIES is hardening.ALLOWED_CAPABILITIES
    props = broken(hardened_container(), "capabilities.adds", [capability])
    assert violations("drop-all-capabilities", rules.CONTAINER, props) == []
    reason = hardening.ALLOWED_CAPABILITIES[capability]
    spec = dataclasses.replace(GOOD, capabilities=(Capability(capability, reason),))
    assert hardening.check(spec) == []


def test_a_capability_off_the_list_is_refused_by_the_pack_and_the_program():
    assert "SYS_ADMIN" not in hardening.ALLOWED_CAPABILITIES
    props = broken(hardened_container(), "capabilities.adds", ["SYS_ADMIN"])
    (message,) = violations("drop-all-capabilities", rules.CONTAINER, props)
    assert "ALLOWED_CAPABILITIES in components/hardening.py" in message
    for name, reason in hardening.ALLOWED_CAPABILITIES.items():
        assert f"{name} ({reason})" in message
    spec = dataclasses.replace(GOOD, capabilities=(Capability("SYS_ADMIN", "mounts"),))
    assert hardening.check(spec) == ["capability SYS_ADMIN is not on the allow-list"]
