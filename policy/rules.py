"""The stack's hardening rules as code (pulumi-policy), imported by the pack and by the tests.

Each rule is a pure check over a neutral `Workload` view of a container (`docker.Container`) or
Swarm service (`docker.Service`), so every renderer of the program is held to the same bar.
Checks yield violation messages that say what is wrong, where, and how to fix it. `POLICIES`
wraps them as pulumi-policy objects with an enforcement level. Props are the providers' wire
(camelCase) names; during `pulumi preview` pulumi-policy wraps them in read-only proxies, so
this module only relies on the `Mapping`/`Sequence` interfaces.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.hardening import ALLOWED_CAPABILITIES, HOLDER_ROLE, ROLE_LABEL

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
NETWORK = "docker:index/network:Network"
IMAGE = "docker-build:index:Image"

# Stacks whose images must be immutable. Adding a production-like stack means adding it here.
PRODUCTION_STACKS = frozenset({"prod"})
# Roles whose data must never be reachable from outside the stack's internal network.
INTERNAL_ONLY_ROLES = frozenset({"postgres", "redis"})
# Host paths that hand out control of the Docker engine (CIS 5.32).
DOCKER_SOCKET_PATHS = frozenset({"/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run"})
# Policy config of `no-new-privileges`: the operator's statement that every engine (and every
# Swarm node) runs with `"no-new-privileges": true` in /etc/docker/daemon.json.
DAEMON_NNP_KEY = "daemonNoNewPrivileges"
# Environment variables whose name says they hold a secret. `docker inspect` shows a container's
# env to anyone with Docker API access: such a value must be a file, named by NAME_FILE
# (`ServiceSpec.secret_env` in the program does that, components/renderers.py).
SECRET_ENV_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL|DATABASE_URL", re.IGNORECASE
)


# Variables whose name matches but whose value is a list of names, never a secret: the
# product's entrypoint exports each listed NAME from NAME_FILE (config secretEnv,
# docker/support/entrypoint).
SECRET_NAME_LISTS = frozenset({"DJANGOSTACK_SECRET_ENV"})


def is_secret_env_name(name: str) -> bool:
    """Whether env variable `name` holds a secret value (its `_FILE` form holds a path)."""
    if name.upper() in SECRET_NAME_LISTS:
        return False
    return bool(SECRET_ENV_NAME.search(name)) and not name.upper().endswith("_FILE")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _labels(*label_lists: Any) -> dict[str, str]:
    """Pulumi's docker labels are lists of `{label, value}` objects."""
    return {
        _map(item).get("label", ""): _map(item).get("value", "")
        for labels in label_lists
        for item in _seq(labels)
    }


@dataclass(frozen=True)
class Port:
    host_ip: str  # "" when the engine chooses (all interfaces)
    published: float | None
    target: float | None

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host_ip).is_loopback
        except ValueError:
            return False

    @property
    def all_interfaces(self) -> bool:
        try:
            return ipaddress.ip_address(self.host_ip).is_unspecified
        except ValueError:
            return True  # no address: Docker binds 0.0.0.0 and ::

    def __str__(self) -> str:
        def num(port: float | None) -> str:  # wire numbers arrive as floats
            return str(int(port)) if port else "?"

        return f"{self.host_ip or '*'}:{num(self.published)}->{num(self.target)}"


def stack_of(urn: str) -> str:
    """The stack name of a URN `urn:pulumi:<stack>::<project>::<type>::<name>`."""
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0] if urn else ""


def _bind_sources(mounts: Any) -> list[str]:
    return [_map(m).get("source") or "" for m in _seq(mounts) if _map(m).get("type") == "bind"]


def _names(networks: Any) -> tuple[str, ...]:
    """Network references: by name, or (Swarm services) by id."""
    return tuple(_map(n).get("name") or _map(n).get("id") or "" for n in _seq(networks))


class Workload:
    """What the rules need to know about one container or Swarm service.

    Properties read the props only when a check asks: during preview a value that is not known
    yet (say, the image digest) then only turns the rule that reads it advisory, not all rules.
    """

    kind = ""
    # Where each setting lives in this resource type, for the messages.
    read_only_field = cap_drops_field = memory_field = cpu_field = ""
    # What every view provides (as properties or class constants):
    image: str
    read_only: bool
    cap_drops: tuple[str, ...]
    cap_adds: tuple[str, ...]
    user: str
    security_opts: tuple[str, ...] | None  # None: the resource type cannot set any
    health_tests: tuple[str, ...]
    memory: int
    cpu_limited: bool
    privileged: bool
    host_namespaces: tuple[str, ...]  # namespaces shared with the host
    networks: tuple[str, ...]
    host_paths: tuple[str, ...]  # host paths mounted into it
    ports: tuple[Port, ...]
    publish_all_ports: bool
    one_shot: bool  # runs to completion (attach: true), like the migration step
    env_names: tuple[str, ...]  # names of the environment variables it is given

    def __init__(self, name: str, urn: str, props: Mapping[str, Any]):
        self.name, self.stack, self.props = name, stack_of(urn), props

    def _role_labels(self) -> dict[str, str]:
        return _labels(self.props.get("labels"))

    @property
    def role(self) -> str:
        """Value of the djangostack.role label, "" if absent."""
        return self._role_labels().get(ROLE_LABEL, "")

    @property
    def where(self) -> str:
        role = f", role {self.role}" if self.role else ""
        return f"{self.kind} '{self.name}' (stack {self.stack or '?'}{role})"


class Container(Workload):
    kind = "container"
    read_only_field, cap_drops_field = "readOnly", "capabilities.drops"
    memory_field, cpu_field = "memory", "cpuShares or cpus"

    @property
    def image(self) -> str:
        return self.props.get("image") or ""

    @property
    def read_only(self) -> bool:
        return self.props.get("readOnly") is True

    @property
    def cap_drops(self) -> tuple[str, ...]:
        return tuple(_seq(_map(self.props.get("capabilities")).get("drops")))

    @property
    def cap_adds(self) -> tuple[str, ...]:
        return tuple(_seq(_map(self.props.get("capabilities")).get("adds")))

    @property
    def user(self) -> str:
        return str(self.props.get("user") or "")

    @property
    def security_opts(self) -> tuple[str, ...] | None:
        return tuple(_seq(self.props.get("securityOpts")))

    @property
    def health_tests(self) -> tuple[str, ...]:
        return tuple(_seq(_map(self.props.get("healthcheck")).get("tests")))

    @property
    def memory(self) -> int:
        return int(self.props.get("memory") or 0)

    @property
    def cpu_limited(self) -> bool:
        return bool(self.props.get("cpuShares") or self.props.get("cpus"))

    @property
    def privileged(self) -> bool:
        return self.props.get("privileged") is True

    @property
    def host_namespaces(self) -> tuple[str, ...]:
        modes = {"network": "networkMode", "pid": "pidMode", "ipc": "ipcMode", "user": "usernsMode"}
        return tuple(ns for ns, prop in modes.items() if self.props.get(prop) == "host")

    @property
    def networks(self) -> tuple[str, ...]:
        return _names(self.props.get("networksAdvanced"))

    @property
    def host_paths(self) -> tuple[str, ...]:
        volumes = [_map(v).get("hostPath") for v in _seq(self.props.get("volumes"))]
        return tuple(_bind_sources(self.props.get("mounts")) + [v for v in volumes if v])

    @property
    def ports(self) -> tuple[Port, ...]:
        return tuple(
            Port(_map(p).get("ip") or "", _map(p).get("external"), _map(p).get("internal"))
            for p in _seq(self.props.get("ports"))
        )

    @property
    def publish_all_ports(self) -> bool:
        return self.props.get("publishAllPorts") is True

    @property
    def one_shot(self) -> bool:
        return self.props.get("attach") is True

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(str(item).split("=", 1)[0] for item in _seq(self.props.get("envs")))


class Service(Workload):
    kind = "service"
    read_only_field, cap_drops_field = "taskSpec.containerSpec.readOnly", "containerSpec.capDrops"
    memory_field = "taskSpec.resources.limits.memoryBytes"
    cpu_field = "taskSpec.resources.limits.nanoCpus"
    security_opts = None  # Swarm services cannot set security options
    privileged = False  # Swarm has no privileged mode
    publish_all_ports = one_shot = False

    @property
    def _task(self) -> Mapping[str, Any]:
        return _map(self.props.get("taskSpec"))

    @property
    def _spec(self) -> Mapping[str, Any]:
        return _map(self._task.get("containerSpec"))

    @property
    def _limits(self) -> Mapping[str, Any]:
        return _map(_map(self._task.get("resources")).get("limits"))

    def _role_labels(self) -> dict[str, str]:
        return _labels(self.props.get("labels"), self._spec.get("labels"))

    @property
    def image(self) -> str:
        return self._spec.get("image") or ""

    @property
    def read_only(self) -> bool:
        return self._spec.get("readOnly") is True

    @property
    def cap_drops(self) -> tuple[str, ...]:
        return tuple(_seq(self._spec.get("capDrops")))

    @property
    def cap_adds(self) -> tuple[str, ...]:
        return tuple(_seq(self._spec.get("capAdds")))

    @property
    def user(self) -> str:
        return str(self._spec.get("user") or "")

    @property
    def health_tests(self) -> tuple[str, ...]:
        return tuple(_seq(_map(self._spec.get("healthcheck")).get("tests")))

    @property
    def memory(self) -> int:
        return int(self._limits.get("memoryBytes") or 0)

    @property
    def cpu_limited(self) -> bool:
        return bool(self._limits.get("nanoCpus"))

    @property
    def host_namespaces(self) -> tuple[str, ...]:
        return ("network",) if "host" in self.networks else ()

    @property
    def networks(self) -> tuple[str, ...]:
        return _names(self._task.get("networksAdvanceds"))

    @property
    def host_paths(self) -> tuple[str, ...]:
        return tuple(_bind_sources(self._spec.get("mounts")))

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(_map(self._spec.get("env")))

    @property
    def ports(self) -> tuple[Port, ...]:
        # Swarm publishes on every interface of every node: there is no host address to bind.
        return tuple(
            Port("", _map(p).get("publishedPort"), _map(p).get("targetPort"))
            for p in _seq(_map(self.props.get("endpointSpec")).get("ports"))
        )


def never_started(resource_type: str, props: Mapping[str, Any]) -> bool:
    """A files holder (components/renderers.py): a container created only to receive uploads
    into its files volume, never started, so no rule about a running container applies."""
    return (
        resource_type == CONTAINER
        and props.get("start") is False
        and _labels(props.get("labels")).get(ROLE_LABEL) == HOLDER_ROLE
    )


def workload(resource_type: str, name: str, urn: str, props: Mapping[str, Any]) -> Workload | None:
    """The `Workload` view of a container or service resource, None for any other type and for
    a container that never runs."""
    view = {CONTAINER: Container, SERVICE: Service}.get(resource_type)
    if view is None or never_started(resource_type, props):
        return None
    return view(name, urn, props)


# --- Checks: each yields one message per violation -------------------------------------------

Check = Callable[[Workload], Iterable[str]]


def check_read_only(w: Workload) -> Iterator[str]:
    if not w.read_only:
        yield (
            f"{w.where} has a writable root filesystem. Set {w.read_only_field}: true and "
            "give the paths the service writes a tmpfs or volume mount (CIS 5.13)."
        )


def _cap_name(cap: str) -> str:
    return cap.upper().removeprefix("CAP_")


def check_capabilities(w: Workload) -> Iterator[str]:
    if "ALL" not in {_cap_name(c) for c in w.cap_drops}:
        yield (
            f"{w.where} does not drop all capabilities (drops: {list(w.cap_drops)}). "
            f'Set {w.cap_drops_field}: ["ALL"] and add back only what it needs (CIS 5.4).'
        )
    for cap in w.cap_adds:
        if _cap_name(cap) not in ALLOWED_CAPABILITIES:
            allowed = ", ".join(f"{k} ({why})" for k, why in ALLOWED_CAPABILITIES.items())
            yield (
                f"{w.where} adds capability {cap}, which is not on the allow-list. Remove it, "
                f"or add it to ALLOWED_CAPABILITIES in components/hardening.py with the reason "
                f"it is "
                f"needed, in a reviewed change. Allowed: {allowed}."
            )


def _is_root(user: str) -> bool:
    uid = user.split(":", 1)[0].strip()
    return uid in ("", "0", "root")


def check_non_root(w: Workload) -> Iterator[str]:
    if _is_root(w.user):
        yield (
            f"{w.where} runs as root (user {w.user!r}). Set user to the image's unprivileged "
            "uid:gid, e.g. '10001:10001' for the app, '999:999' for postgres and redis (CIS 4.1)."
        )


def _no_new_privileges(opts: Iterable[str]) -> bool:
    return any(o.replace("=", ":") in ("no-new-privileges", "no-new-privileges:true") for o in opts)


def check_no_new_privileges(w: Workload, daemon_no_new_privileges: bool) -> Iterator[str]:
    if w.security_opts is None:  # a Swarm service: only the daemon-wide setting can do it
        if not daemon_no_new_privileges:
            yield (
                f"{w.where} cannot set no-new-privileges: Swarm services have no per-service "
                'switch. Set "no-new-privileges": true in /etc/docker/daemon.json on every '
                f"node, then state it in the policy config ({DAEMON_NNP_KEY}: true, see "
                "policy/config.json) (CIS 5.26)."
            )
    elif not _no_new_privileges(w.security_opts):
        yield (
            f"{w.where} lacks no-new-privileges (securityOpts: {list(w.security_opts)}). "
            'Add "no-new-privileges:true" to securityOpts (CIS 5.26).'
        )


def check_health_check(w: Workload) -> Iterator[str]:
    tests = [t.upper() for t in w.health_tests]
    if not w.one_shot and (not tests or tests[0] == "NONE"):
        yield (
            f"{w.where} has no health check. Set healthcheck.tests (e.g. "
            '["CMD", "pg_isready", ...]) so the engine and dependants can tell when it is '
            "ready (CIS 4.6, 5.27)."
        )


def check_limits(w: Workload) -> Iterator[str]:
    if w.memory <= 0:
        yield f"{w.where} has no memory limit. Set {w.memory_field} (CIS 5.11)."
    if not w.cpu_limited:
        yield f"{w.where} has no CPU limit. Set {w.cpu_field} (CIS 5.12)."


def check_not_privileged(w: Workload) -> Iterator[str]:
    if w.privileged:
        yield (
            f"{w.where} is privileged. Remove privileged: true; add the single capability it "
            "needs instead (CIS 5.5)."
        )


def check_host_namespaces(w: Workload) -> Iterator[str]:
    for ns in w.host_namespaces:
        yield (
            f"{w.where} shares the host's {ns} namespace. Remove the host mode and attach it "
            "to the stack's own networks (CIS 5.10, 5.16, 5.17, 5.31)."
        )


def check_docker_socket(w: Workload) -> Iterator[str]:
    for path in w.host_paths:
        if path.rstrip("/") in DOCKER_SOCKET_PATHS or path.endswith("/docker.sock"):
            yield (
                f"{w.where} mounts the Docker socket (host path {path}), which is root on the "
                "host. Remove the mount (CIS 5.32)."
            )


def _secret_env_messages(where: str, names: Iterable[str]) -> Iterator[str]:
    for name in names:
        if is_secret_env_name(name):
            yield (
                f"{where} sets {name} in its environment, which `docker inspect` shows. Give "
                f"it as a file and set {name}_FILE to its path instead (ServiceSpec.secret_env)."
            )


def check_no_secret_env(w: Workload) -> Iterator[str]:
    yield from _secret_env_messages(w.where, w.env_names)


def check_published_ports(w: Workload) -> Iterator[str]:
    if w.publish_all_ports:
        yield f"{w.where} sets publishAllPorts. Publish only the ports it must serve (CIS 5.9)."
    if w.role == "nginx":
        return
    for port in w.ports:
        if not port.loopback_only:
            yield (
                f"{w.where} publishes {port} beyond loopback; only the nginx container "
                f"({ROLE_LABEL}=nginx) may. Reach it through nginx, or bind it to 127.0.0.1 "
                "for local development (CIS 5.9)."
            )


def check_port_addresses(w: Workload) -> Iterator[str]:
    for port in w.ports:
        if port.all_interfaces:
            yield (
                f"{w.where} publishes {port} on every host interface. Bind it to an explicit "
                "host address (ports[].ip), the public one for nginx (CIS 5.14)."
            )


def split_image_ref(ref: str) -> tuple[str, str, str]:
    """`(repository, tag, digest)` of `[registry[:port]/]path[:tag][@digest]`; parts may be ''."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest


def _registry_host(repository: str) -> str:
    """The registry host of a repository, '' for Docker Hub short names (`postgres`, `org/x`)."""
    first, sep, _ = repository.partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else ""


def check_production_image(w: Workload) -> Iterator[str]:
    if w.stack not in PRODUCTION_STACKS or w.image.startswith("sha256:"):
        return
    repository, tag, digest = split_image_ref(w.image)
    if not digest and tag in ("", "latest"):
        yield (
            f"{w.where} runs {w.image!r}, a moving tag. Use a versioned tag, or pin the image "
            "by digest (name@sha256:...)."
        )
    if not digest and _registry_host(repository):
        yield (
            f"{w.where} runs {w.image!r} from registry {_registry_host(repository)} by tag. "
            "Deploy pushed images by digest (repository@sha256:...): a tag can be moved, a "
            "digest cannot."
        )


def check_production_image_tags(
    resource_type: str, urn: str, props: Mapping[str, Any]
) -> Iterator[str]:
    """A prod image build must be tagged with a version, never `latest` (or untagged)."""
    if resource_type != IMAGE or stack_of(urn) not in PRODUCTION_STACKS:
        return
    tags = [str(t) for t in _seq(props.get("tags"))]
    if not tags:
        yield f"image build {urn} has no tags. Tag it with the release version and commit SHA."
    for tag in tags:
        if split_image_ref(tag)[1] in ("", "latest"):
            yield (
                f"image build {urn} is tagged {tag!r}. Production images carry the release "
                "version (and commit SHA) as tags, never 'latest'."
            )


# --- Stack checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StackResource:
    """A resource as a stack check sees it (pulumi-policy's PolicyResource or a test record)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    # URNs of the resources each property's value came from (pulumi-policy's
    # property_dependencies): a network attached by id is known by the Network it came from.
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# Where a workload's network attachments come from, by resource type.
NETWORK_PROPERTIES = {CONTAINER: "networksAdvanced", SERVICE: "taskSpec"}


def _attached_networks(r: StackResource, networks: Mapping[str, StackResource]) -> tuple[str, ...]:
    """The names of the stack's networks a workload is attached to: each attachment by name, or
    (by id) the Network it depends on through its networks property."""
    w = workload(r.type, r.name, r.urn, r.props)
    if w is None:
        return ()
    by_name = {str(n.props.get("name")) for n in networks.values()}
    sources = [
        networks[u] for u in r.dependencies.get(NETWORK_PROPERTIES[r.type], ()) if u in networks
    ]
    names = [net for net in w.networks if net in by_name]
    unresolved = [net for net in w.networks if net not in by_name]
    if unresolved and sources:
        names += [str(n.props.get("name")) for n in sources]
        unresolved = []
    return tuple(dict.fromkeys(names + unresolved))


def _network_messages(
    w: Workload, attached: Sequence[str], internal: Mapping[str, bool]
) -> Iterator[str]:
    if not attached:
        yield (
            f"{w.where} is on the engine's default network. Attach it only to the stack's "
            "internal network (a docker.Network with internal: true) (CIS 5.30)."
        )
    for net in attached:
        if net not in internal:
            yield (
                f"{w.where} is attached to {net!r}, which is not a Network of this stack, so "
                "it cannot be shown to be internal. Attach it only to the stack's internal "
                "network, referenced by name."
            )
        elif not internal[net]:
            yield (
                f"{w.where} is attached to network {net!r}, which is not internal. Attach it "
                "only to networks created with internal: true, so it has no route outside "
                "the stack."
            )


def check_internal_networks(resources: Sequence[StackResource]) -> Iterator[tuple[str, str]]:
    """(urn, message) for each Postgres/Redis attachment to a network that is not internal."""
    networks = {r.urn: r for r in resources if r.type == NETWORK}
    internal = {
        str(n.props.get("name")): n.props.get("internal") is True for n in networks.values()
    }
    for r in resources:
        w = workload(r.type, r.name, r.urn, r.props)
        if w is not None and w.role in INTERNAL_ONLY_ROLES:
            for message in _network_messages(w, _attached_networks(r, networks), internal):
                yield r.urn, message


# --- pulumi-policy wrappers -------------------------------------------------------------------

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


def _workload_of(args: ResourceValidationArgs) -> Workload | None:
    return workload(args.resource_type, args.name, args.urn, args.props)


def _workload_policy(
    name: str, description: str, check: Check, level: EnforcementLevel = MANDATORY
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        w = _workload_of(args)
        for message in check(w) if w else ():
            report(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level
    )


def _validate_no_new_privileges(args: ResourceValidationArgs, report: ReportViolation) -> None:
    w = _workload_of(args)
    daemon_nnp = args.get_config().get(DAEMON_NNP_KEY) is True
    for message in check_no_new_privileges(w, daemon_nnp) if w else ():
        report(message, None)


def _validate_production_images(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for message in check_production_image_tags(args.resource_type, args.urn, args.props):
        report(message, None)
    w = _workload_of(args)
    for message in check_production_image(w) if w else ():
        report(message, None)


def _validate_internal_networks(args: StackValidationArgs, report: ReportViolation) -> None:
    resources = [
        StackResource(
            r.resource_type,
            r.name,
            r.urn,
            r.props,
            {k: tuple(d.urn for d in v) for k, v in (r.property_dependencies or {}).items()},
        )
        for r in args.resources
    ]
    for urn, message in check_internal_networks(resources):
        report(message, urn)


POLICIES = [
    _workload_policy(
        "read-only-root",
        "Containers and services run with a read-only root filesystem.",
        check_read_only,
    ),
    _workload_policy(
        "drop-all-capabilities",
        "Containers drop ALL capabilities; any added back is on the reviewed allow-list.",
        check_capabilities,
    ),
    _workload_policy("non-root-user", "Containers run as a non-root user.", check_non_root),
    ResourceValidationPolicy(
        name="no-new-privileges",
        description=(
            "Containers set no-new-privileges; Swarm services rely on the daemon-wide setting, "
            "which the policy config must state."
        ),
        validate=_validate_no_new_privileges,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema(
            properties={
                DAEMON_NNP_KEY: {
                    "type": "boolean",
                    "default": False,
                    "description": (
                        'Every Docker engine / Swarm node sets "no-new-privileges": true in '
                        "/etc/docker/daemon.json."
                    ),
                }
            }
        ),
    ),
    _workload_policy(
        "health-check", "Long-running containers define a health check.", check_health_check
    ),
    _workload_policy("resource-limits", "Containers have memory and CPU limits.", check_limits),
    _workload_policy("not-privileged", "No privileged containers.", check_not_privileged),
    _workload_policy(
        "no-host-namespaces", "No host network, pid, ipc or user namespace.", check_host_namespaces
    ),
    _workload_policy(
        "no-docker-socket", "The Docker socket is never mounted.", check_docker_socket
    ),
    _workload_policy(
        "no-secret-values-in-env",
        "No container, service or one-shot step gets a secret as an environment value "
        "(docker inspect shows it); secrets are files named by NAME_FILE.",
        check_no_secret_env,
    ),
    _workload_policy(
        "only-nginx-publishes",
        "Only the nginx container publishes ports beyond loopback.",
        check_published_ports,
    ),
    _workload_policy(
        "ports-bound-to-address",
        "Published ports bind an explicit host address rather than every interface.",
        check_port_addresses,
        ADVISORY,  # CIS 5.14 asks for it "where possible"; the host's address is an operator choice
    ),
    ResourceValidationPolicy(
        name="production-images-immutable",
        description=(
            "Production images are versioned, never 'latest', and pushed images run by digest."
        ),
        validate=_validate_production_images,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="datastores-on-internal-networks",
        description="Postgres and Redis are attached only to internal networks.",
        validate=_validate_internal_networks,
        enforcement_level=MANDATORY,
    ),
]
