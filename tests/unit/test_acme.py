"""Automatic HTTPS (config acme, docs/operations.md "Automatic HTTPS"): validated at preview
like every key; nginx answers the CA's HTTP-01 challenges on port 80 from the webroot volume
and serves the certificate and key of the protected tls volume, loaded at every handshake;
neither ever reaches the program, the state or a container's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    ACME,
    ACME_FULL,
    CONTAINER,
    IMAGE,
    PROD_TLS,
    VOLUME,
    by_role,
    env_of,
    failure,
    holder_files,
    holder_of,
    network_names,
    problem_line,
    run,
)
from test_hardening import block

from components import acme
from tests.program import ROOT, ProgramResult, Registration


@pytest.mark.parametrize(
    ("stack", "settings", "key", "fix"),
    [
        ("dev", ACME, "acme", "dev runs no nginx"),
        ("prod", {**ACME, **PROD_TLS}, "acme", "pulumi config rm tlsCertFile"),
        ("prod", {**ACME, "tlsSelfSigned": True}, "acme", "pulumi config rm tlsSelfSigned"),
        ("prod", {**ACME, "acmeEmail": ""}, "acmeEmail", "is required with acme"),
        ("prod", {**ACME, "acmeEmail": "ops at shop"}, "acmeEmail", "ops@example.com"),
        (
            "prod",
            {**ACME, "acmeDirectory": "http://ca.example.com/dir"},
            "acmeDirectory",
            "must be the https:// URL",
        ),
        ("prod", {**ACME, "domain": "localhost"}, "domain", "fully qualified host name"),
        ("prod", {**ACME, "domain": "10.0.0.1"}, "domain", "fully qualified host name"),
        (
            "prod",
            {**ACME, "acmeNames": ["www.shop.example.com", "*.shop.example.com"]},
            "acmeNames",
            "pulumi config set --path 'acmeNames[1]' www.shop.example.com",
        ),
        ("prod", {**ACME, "acmeNames": ["SHOP.example.com"]}, "acmeNames", "listed twice"),
        ("prod", {**ACME, "acmeCaBundleFile": "no-such.pem"}, "acmeCaBundleFile", "not exist"),
        ("prod", {**ACME, "acme": "yes"}, "acme", "must be true or false"),
    ],
)
def test_bad_acme_config_fails_before_any_resource(stack, settings, key, fix):
    assert fix in problem_line(failure(stack, settings).message, key)


def test_prod_without_a_certificate_names_acme_too():
    assert "pulumi config set acme true" in problem_line(failure("prod", {}).message, "tlsCertFile")


def test_a_ca_bundle_must_hold_a_certificate(tmp_path: Path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    message = failure("prod", {**ACME, "acmeCaBundleFile": str(bundle)}).message
    assert "holds no PEM certificate" in problem_line(message, "acmeCaBundleFile")


def nginx_files(result: ProgramResult) -> dict[str, str]:
    (nginx,) = by_role(result, "nginx")
    return holder_files(holder_of(result, nginx))


def test_nginx_answers_challenges_on_port_80_before_the_redirect(prod_acme):
    conf = nginx_files(prod_acme)["default.conf"]
    http = conf.split("listen 8080", 1)[1].split("listen 8443", 1)[0]
    challenge = block(http, "location ^~ /.well-known/acme-challenge/ {")
    assert f"root {acme.WEBROOT_DIR};" in challenge
    assert http.index("acme-challenge") < http.index("return 301")
    assert "server_name shop.example.com www.shop.example.com;" in conf


def test_nginx_loads_the_acme_pair_from_the_volume_at_every_handshake(prod_acme):
    """A variable in the paths (acme.conf's map): nginx reads them per handshake, so a renewed
    certificate is served without a reload; no certificate or key among nginx's files."""
    files = nginx_files(prod_acme)
    assert set(files) == {"default.conf", "security-headers.inc", "acme.conf"}
    conf = files["default.conf"]
    assert "ssl_certificate     $acme_tls_dir/tls.crt;" in conf
    assert "ssl_certificate_key $acme_tls_dir/tls.key;" in conf
    mapped = block(files["acme.conf"], "map $ssl_server_name $acme_tls_dir {")
    assert mapped.strip() == f"default {acme.TLS_DIR};"


def test_without_acme_nginx_serves_the_configured_pair(prod):
    files = nginx_files(prod)
    assert "acme.conf" not in files and {"tls.crt", "tls.key"} <= set(files)
    conf = files["default.conf"]
    assert "ssl_certificate     /etc/nginx/conf.d/tls.crt;" in conf
    assert "acme-challenge" not in conf


def test_the_certificate_lives_on_protected_volumes_nginx_reads_only(prod_acme):
    volumes = {v.plain_inputs["name"]: v for v in prod_acme.of_type(VOLUME)}
    assert volumes["djangostack-prod-tls"].protect and volumes["djangostack-prod-acme"].protect
    assert not volumes["djangostack-prod-acme-webroot"].protect
    (nginx,) = by_role(prod_acme, "nginx")
    mounts = {m["target"]: m for m in nginx.plain_inputs["mounts"]}
    for target, volume in ((acme.TLS_DIR, "-tls"), (acme.WEBROOT_DIR, "-acme-webroot")):
        assert mounts[target]["readOnly"] is True, target
        assert mounts[target]["source"] == f"djangostack-prod{volume}", target
    # The account's volume is the ACME process's alone.
    assert acme.STATE_DIR not in mounts
    assert prod_acme.outputs["tlsVolume"] == "djangostack-prod-tls"
    assert "tlsCertificate" not in prod_acme.outputs


def test_every_name_of_the_certificate_is_an_allowed_host(prod_acme):
    (web,) = by_role(prod_acme, "web")
    assert env_of(web)["ALLOWED_HOSTS"] == "shop.example.com,www.shop.example.com"


def acme_process(result: ProgramResult) -> Registration:
    (process,) = by_role(result, "acme")
    return process


def test_the_acme_process_is_one_container_beside_nginx(prod_acme):
    """A plain container on nginx's engine (its volumes are local to it), on the edge network
    only (a route out to the CA, and nginx's HTTP server), publishing nothing; nginx starts
    once it is healthy (a certificate is in place)."""
    process = acme_process(prod_acme)
    assert process.type == CONTAINER and not process.plain_inputs.get("ports")
    assert network_names(prod_acme, process) == {"djangostack-prod-edge"}
    mounts = {m["target"]: m for m in process.plain_inputs["mounts"]}
    for target, volume in (
        (acme.TLS_DIR, "djangostack-prod-tls"),
        (acme.STATE_DIR, "djangostack-prod-acme"),
        (acme.WEBROOT_DIR, "djangostack-prod-acme-webroot"),
    ):
        assert mounts[target]["source"] == volume and not mounts[target].get("readOnly")
    (nginx,) = by_role(prod_acme, "nginx")
    assert prod_acme.depends_on(nginx, process)
    assert process.plain_inputs["command"] == ["djangostack-acme", "run"]
    assert process.plain_inputs["user"] == acme.USER


def test_the_acme_process_asks_the_configured_ca_for_every_name(prod_acme):
    env = env_of(acme_process(prod_acme))
    assert env == {
        "ACME_DIRECTORY": "https://acme-v02.api.letsencrypt.org/directory",  # the default
        "ACME_EMAIL": "ops@shop.example.com",
        "ACME_NAMES": "shop.example.com www.shop.example.com",
        "ACME_NGINX": "djangostack-prod-nginx:8080",
        "LEGO_CA_CERTIFICATES": f"{acme.CONFIG_DIR}/ca.pem",
    }
    # The CA bundle is a file of its files volume, as it is on disk.
    files = holder_files(holder_of(prod_acme, acme_process(prod_acme)))
    assert files == {"ca.pem": Path(ACME_FULL["acmeCaBundleFile"]).read_text()}


def test_the_acme_image_is_built_from_the_stacks_nginx_image(prod_acme):
    (build,) = [i for i in prod_acme.of_type(IMAGE) if i.name.endswith("-acme-image")]
    inputs = build.plain_inputs
    assert inputs["context"]["location"] == str(ROOT / "docker" / "acme")
    assert inputs["buildArgs"] == {"BASE_IMAGE": "nginxinc/nginx-unprivileged:1.27-bookworm"}
    assert inputs["exec"] is True and inputs["builder"] == {"name": "default"}
    (tag,) = inputs["tags"]
    assert tag.startswith("djangostack/web-acme:")
    assert acme_process(prod_acme).plain_inputs["image"] == tag


def test_with_a_registry_the_acme_image_is_pushed_and_run_by_digest():
    result = run("prod", {**ACME, "registry": "registry.example.com:5000"})
    (build,) = [i for i in result.of_type(IMAGE) if i.name.endswith("-acme-image")]
    assert build.plain_inputs["push"] is True
    image = acme_process(result).plain_inputs["image"]
    assert image.startswith("registry.example.com:5000/djangostack/web-acme@sha256:")
