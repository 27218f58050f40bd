"""Automatic HTTPS through the engine (config acme, docs/operations.md "Automatic HTTPS"): a
prod stack gets its certificate from a real ACME server over HTTP-01 and renews it under
continuous HTTPS load without a failed request; a CA that refuses connections leaves the last
certificate served and says why.

The CA is Debian's pebble, with pebble-challtestsrv as its DNS (every name resolves to the
host's address on the test bed's veth), in a network namespace of its own
(scripts/acme-testbed.sh): it validates HTTP-01 on the stack's published HTTP port, from
outside, like a public CA. It issues certificates valid VALIDITY_SECONDS (its
certificateValidityPeriod), so the ACME process renews every 2/3 of that: the very rule (a
third of the validity left) that renews a 90-day certificate 30 days before it expires, with
nothing in the program changed for the test.

One stack for the module; tests in file order (the CA is made unreachable, then the stack is
deployed again unchanged and destroyed). Figures are printed, not asserted.
"""

from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from cryptography import x509

from components import acme
from tests.docker.stack_config import free_port
from tests.support.checks import (
    assert_destroy_keeps_data_then_removes_all,
    assert_second_up_changes_nothing,
    wait_for,
)
from tests.support.engine import ROOT
from tests.support.prodstack import ProdStack, prod_stack

TESTBED = ROOT / "scripts" / "acme-testbed.sh"
VALIDITY_SECONDS = 180
DOMAIN = "shop.acme.test"  # challtestsrv answers every name with the host's address
NAMES = ["www.shop.acme.test"]
EMAIL = "ops@shop.acme.test"
# Bounds of the waits (none is asserted as a duration): a renewal is due 120 s after an
# issuance, the process unhealthy from 150 s (after three failed checks 10 s apart).
ISSUE_TIMEOUT_SECONDS = 240
RENEWAL_TIMEOUT_SECONDS = 2 * VALIDITY_SECONDS
LOAD_WORKERS = 3
INSTALLED = re.compile(r"installed serial (\S+) .* in (\d+) s;")
KEPT = re.compile(r"nginx keeps serving serial (\S+) ")


@dataclass(frozen=True)
class AcmeServer:
    http_port: int
    directory: str
    roots_url: str
    ca_bundle: str  # what signed pebble's own HTTPS certificate
    host_ip: str  # where the stack publishes nginx, and what every name resolves to

    def refuse(self, on: bool) -> None:
        subprocess.run(["bash", str(TESTBED), "refuse", "on" if on else "off"], check=True)


@dataclass(frozen=True)
class Served:
    """The certificate nginx serves for DOMAIN, read without verifying it."""

    serial: str
    issuer: str
    names: frozenset[str]
    not_after: datetime.datetime

    def __str__(self) -> str:
        return f"serial {self.serial} issuer '{self.issuer}' until {self.not_after:%H:%M:%S}"


@pytest.fixture(scope="module")
def testbed() -> Iterator[AcmeServer]:
    http_port = free_port()
    try:
        subprocess.run(
            ["bash", str(TESTBED), "up", str(http_port), str(VALIDITY_SECONDS)], check=True
        )
        lines = subprocess.run(
            ["bash", str(TESTBED), "env"], check=True, capture_output=True, text=True
        ).stdout
        env = dict(line.split("=", 1) for line in lines.split())
        yield AcmeServer(
            http_port,
            env["ACME_TESTBED_DIRECTORY"],
            env["ACME_TESTBED_ROOTS"],
            env["ACME_TESTBED_CA_BUNDLE"],
            env["ACME_TESTBED_HOST_IP"],
        )
    finally:
        subprocess.run(["bash", str(TESTBED), "down"], check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, testbed: AcmeServer) -> Iterator[ProdStack]:
    overrides = {
        "acme": True,
        "acmeEmail": EMAIL,
        "acmeDirectory": testbed.directory,
        "acmeCaBundleFile": testbed.ca_bundle,
        "acmeNames": NAMES,
        "domain": DOMAIN,
        "publicBindAddress": testbed.host_ip,
        "httpPort": testbed.http_port,
        "tlsCertFile": None,
        "tlsKeyFile": None,
    }
    began = time.monotonic()
    with prod_stack(tmp_path_factory.mktemp("acme"), "acme", overrides=overrides) as deployed:
        _report(f"deploy (acme on) took {time.monotonic() - began:.1f} s")
        # The clients trust pebble's root: it signs every certificate it issues.
        root = requests.get(testbed.roots_url, verify=testbed.ca_bundle, timeout=10)
        root.raise_for_status()
        deployed.ca_file.write_text(root.text)
        yield deployed


def _report(line: str) -> None:
    print(f"\n[acme] {line}", flush=True)


def served(stack: ProdStack) -> Served:
    address = (stack.config["publicBindAddress"], stack.config["httpsPort"])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the temporary certificate too
    with (
        socket.create_connection(address, timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=DOMAIN) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return Served(
        format(cert.serial_number, "X"),
        cert.issuer.rfc4514_string(),
        frozenset(names.get_values_for_type(x509.DNSName)),
        cert.not_valid_after_utc,
    )


def verified_issuer(stack: ProdStack) -> str:
    """The issuer of the certificate nginx serves, once its chain has verified against
    pebble's root for DOMAIN (the handshake fails otherwise)."""
    address = (stack.config["publicBindAddress"], stack.config["httpsPort"])
    context = ssl.create_default_context(cafile=str(stack.ca_file))
    with (
        socket.create_connection(address, timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=DOMAIN) as tls,
    ):
        issuer = dict(item for rdn in tls.getpeercert()["issuer"] for item in rdn)
    return issuer["commonName"]


def acme_logs(stack: ProdStack, since: float | None = None) -> str:
    """The ACME process's log (since `since`, a time.time())."""
    return stack.container("acme").logs(**({"since": since} if since else {})).decode()


def health(stack: ProdStack) -> str:
    container = stack.container("acme")
    container.reload()
    return container.attrs["State"]["Health"]["Status"]


def issued_by_the_ca(stack: ProdStack) -> Served | None:
    current = served(stack)
    return current if "djangostack temporary" not in current.issuer else None


def test_the_first_deploy_serves_a_ca_certificate_that_verifies(stack: ProdStack) -> None:
    """The site starts with the temporary certificate, and the CA's replaces it without a
    deploy: its chain verifies against pebble's root, for every name."""
    began = time.monotonic()
    certificate = wait_for(
        "a CA certificate", lambda: issued_by_the_ca(stack), ISSUE_TIMEOUT_SECONDS
    )
    waited = time.monotonic() - began
    assert certificate.names == {DOMAIN, *NAMES}
    issuer = verified_issuer(stack)
    assert stack.get("/version/").status_code == 200  # verified against pebble's root
    logs = acme_logs(stack)
    assert "serving a temporary self-signed certificate until the CA issues one" in logs
    installed = INSTALLED.findall(logs)
    assert int(certificate.serial, 16) in {int(serial, 16) for serial, _ in installed}
    started, requested, done = (
        _logged_at(logs, line)
        for line in ("made the key", "requesting a certificate", "installed serial")
    )
    _report(
        f"first certificate: {certificate}; installed {done - started:.0f} s after the ACME "
        f"process started ({requested - started:.0f} s waiting for nginx to serve the "
        f"challenges, {installed[0][1]} s in lego: account, order, HTTP-01, certificate); "
        f"the deploy had returned {waited:.1f} s before it was seen served; chain verified "
        f"against pebble's root: leaf issued by {issuer}"
    )


def _logged_at(logs: str, text: str) -> float:
    """When the ACME process first logged a line containing `text` (its own UTC stamp)."""
    line = next(line for line in logs.splitlines() if text in line)
    stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%SZ")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


def test_port_80_answers_challenges_and_redirects_everything_else(stack: ProdStack) -> None:
    base = f"http://{stack.config['publicBindAddress']}:{stack.config['httpPort']}"
    headers = {"Host": DOMAIN}
    missing = requests.get(
        f"{base}/.well-known/acme-challenge/no-such-token",
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )
    assert missing.status_code == 404  # served from the webroot, never redirected
    page = requests.get(f"{base}/version/", headers=headers, allow_redirects=False, timeout=10)
    assert page.status_code == 301
    assert page.headers["Location"] == f"https://{DOMAIN}:{stack.config['httpsPort']}/version/"


def test_the_key_and_certificate_stay_out_of_the_state_and_every_configuration(
    stack: ProdStack,
) -> None:
    """Only the protected tls volume holds them: not the Pulumi state, not a container's
    configuration (env, command, labels), not an output."""
    pem = re.compile(r"-----BEGIN (?:EC )?PRIVATE KEY-----|-----BEGIN CERTIFICATE-----")
    for role in ("acme", "nginx"):
        config = json.dumps(stack.container(role).attrs["Config"])
        assert not pem.search(config), role
    state = json.dumps(stack.stack.export_stack().deployment)
    assert "PRIVATE KEY" not in state
    assert "tlsCertificate" not in stack.outputs
    resources = stack.stack.export_stack().deployment["resources"]
    volumes = {
        r["outputs"]["name"]: r.get("protect", False)
        for r in resources
        if r["type"] == "docker:index/volume:Volume"
    }
    assert volumes[f"{stack.name}-tls"] and volumes[f"{stack.name}-acme"]
    key = stack.container("acme").exec_run(["stat", "-c", "%u:%g %a", f"{acme.TLS_DIR}/tls.key"])
    assert key.output.decode().strip() == "101:101 600"  # the process's and nginx's user


def test_a_renewal_under_load_changes_the_certificate_without_a_failed_request(
    stack: ProdStack,
) -> None:
    """The served certificate changes (serial) while clients keep connecting, each request a
    full TLS handshake: none fails, and nginx is the same container throughout."""
    before = wait_for("a CA certificate", lambda: issued_by_the_ca(stack), ISSUE_TIMEOUT_SECONDS)
    nginx_id = stack.container("nginx").id
    since = time.time()
    load = stack.load(LOAD_WORKERS, RENEWAL_TIMEOUT_SECONDS + 60, new_connections=True)
    kept_alive = stack.load(1, RENEWAL_TIMEOUT_SECONDS + 60)
    began = time.monotonic()
    after = wait_for(
        "a renewed certificate",
        lambda: (current := served(stack)).serial != before.serial and current,
        RENEWAL_TIMEOUT_SECONDS,
        every=0.5,
    )
    switched = time.monotonic() - began
    time.sleep(5)  # requests on the new certificate
    result, kept = load.stop(), kept_alive.stop()
    assert result.failures == [] and kept.failures == [], (result.failures[:5], kept.failures[:5])
    assert result.requests > 0 and kept.requests > 0
    assert stack.container("nginx").id == nginx_id  # no replacement, no restart
    assert after.names == before.names and verified_issuer(stack)
    (serial, took), *_ = INSTALLED.findall(acme_logs(stack, since))
    assert int(serial, 16) == int(after.serial, 16)
    _report(f"before renewal: {before}")
    _report(
        f"after renewal:  {after} (renewal took {took} s; served {switched:.1f} s into the load)"
    )
    _report(f"during renewal, new connection per request: {result.summary()}")
    _report(f"during renewal, kept-alive connection: {kept.summary()}")


def test_an_unreachable_ca_keeps_the_certificate_served_and_says_why(
    stack: ProdStack, testbed: AcmeServer
) -> None:
    """Connections to the CA refused: the renewal fails, the log says why, nginx keeps the
    certificate; the process turns unhealthy only in the last sixth of its validity. Once
    the CA answers again, the next attempt renews it and the process is healthy again."""
    current = wait_for("a CA certificate", lambda: issued_by_the_ca(stack), ISSUE_TIMEOUT_SECONDS)
    wait_for("a healthy ACME process", lambda: health(stack) == "healthy", VALIDITY_SECONDS)
    since = time.time()
    testbed.refuse(True)
    try:
        began = time.monotonic()
        kept = wait_for(
            "a failed renewal in the log",
            lambda: KEPT.findall(acme_logs(stack, since)),
            RENEWAL_TIMEOUT_SECONDS,
        )
        failed_after = time.monotonic() - began
        # Why, in lego's words, and which certificate stays.
        assert "connection refused" in acme_logs(stack, since)
        assert {int(serial, 16) for serial in kept} == {int(current.serial, 16)}
        assert served(stack).serial == current.serial
        assert health(stack) == "healthy"  # a third of the validity is still left
        wait_for(
            "an unhealthy ACME process", lambda: health(stack) == "unhealthy", VALIDITY_SECONDS
        )
        unhealthy_after = time.monotonic() - began
        left = (current.not_after - datetime.datetime.now(datetime.UTC)).total_seconds()
        assert served(stack).serial == current.serial
        attempts = len(KEPT.findall(acme_logs(stack, since)))
    finally:
        testbed.refuse(False)
    back = time.monotonic()
    renewed = wait_for(
        "a renewal once the CA answers",
        lambda: (now := served(stack)).serial != current.serial and now,
        RENEWAL_TIMEOUT_SECONDS,
    )
    renewed_after = time.monotonic() - back
    wait_for("a healthy ACME process", lambda: health(stack) == "healthy", VALIDITY_SECONDS)
    _report(
        f"CA refusing: first failed attempt logged {failed_after:.1f} s after, {attempts} "
        f"attempts; unhealthy {unhealthy_after:.1f} s after ({left:.0f} s of validity left); "
        f"the certificate served throughout: {current}"
    )
    _report(f"CA back: {renewed} served {renewed_after:.1f} s later; healthy again")


def test_the_acme_process_is_hardened_and_alone_on_the_edge(stack: ProdStack) -> None:
    host = stack.container("acme").attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert not host["PortBindings"] and stack.container("acme").attrs["Config"]["User"] == acme.USER
    networks = set(stack.container("acme").attrs["NetworkSettings"]["Networks"])
    assert networks == {f"{stack.name}-edge"}


def test_a_second_up_changes_nothing(stack: ProdStack) -> None:
    """The ACME image, process and volumes read back as the program wrote them."""
    assert_second_up_changes_nothing(stack, stack.client)


def test_destroy_keeps_the_key_and_account_volumes_then_removes_all(stack: ProdStack) -> None:
    assert_destroy_keeps_data_then_removes_all(stack)
