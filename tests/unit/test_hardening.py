"""The shared hardening rules reject unsafe specs, whichever renderer would get them, and the
nginx configuration carries the TLS, proxy and header rules."""

from __future__ import annotations

import dataclasses
import re

import pytest

from components import hardening
from components.config import StackConfig
from components.nginx import RETRY_AFTER_SECONDS, SECURITY_HEADERS, TEMPLATES, render_conf
from components.spec import Capability, HealthCheck, Limits, Mount, ServiceSpec

GOOD = ServiceSpec(
    name="x-web",
    role="web",
    image="web:1",
    user="10001:10001",
    limits=Limits(memory_mb=256),
    health=HealthCheck(test=("CMD", "true")),
)


def test_a_good_spec_passes():
    assert hardening.check(GOOD) == []


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"user": "root"}, "is root"),
        ({"user": "0:0"}, "is root"),
        ({"user": ""}, "is root"),
        ({"health": None}, "health check"),
        ({"limits": Limits(memory_mb=0)}, "limits"),
        ({"role": "db"}, "role"),
        ({"capabilities": (Capability("SYS_ADMIN", "because"),)}, "allow-list"),
        ({"capabilities": (Capability("CHOWN", " "),)}, "no reason"),
        (
            {"mounts": (Mount("/data", "/var/run/docker.sock", type="bind", read_only=True),)},
            "sensitive",
        ),
        ({"mounts": (Mount("/src", "/home/me/src", type="bind"),)}, "read-only"),
        ({"tmpfs": ("tmp",)}, "absolute"),
    ],
)
def test_unsafe_specs_are_rejected(change, rule):
    spec = dataclasses.replace(GOOD, **change)
    with pytest.raises(hardening.HardeningError, match=rule):
        hardening.harden(spec)


def test_one_shot_jobs_need_no_health_check():
    assert hardening.check(dataclasses.replace(GOOD, health=None), long_running=False) == []


def nginx_conf(
    https_port: int = 443, media_url: str = "", maintenance_allow: tuple[str, ...] = ()
) -> str:
    fields = {f.name: None for f in dataclasses.fields(StackConfig)}
    cfg = StackConfig(
        **{
            **fields,
            "domain": "shop.example.com",
            "https_port": https_port,
            "static_url": "/static/",
            "media_url": media_url,
            "maintenance_allow": maintenance_allow,
        }
    )
    return render_conf(cfg)


def test_nginx_config_redirects_proxies_and_denies_metrics():
    conf = nginx_conf()
    assert "listen 8080" in conf and "listen 8443 ssl http2" in conf
    assert "return 301 https://$host$request_uri;" in conf
    assert "resolver 127.0.0.11 valid=1s" in conf  # below releaseDelay
    assert "set $web_upstream http://web:8000;" in conf and "proxy_pass $web_upstream;" in conf
    for header in (
        "X-Forwarded-Proto $scheme",
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "Host $http_host",  # with its port: CSRF origin checks
    ):
        assert f"proxy_set_header {header};" in conf
    metrics = conf.split("location = /metrics {", 1)[1].split("}", 1)[0]
    assert "return 404" in metrics
    static = block(conf, "location /static/ {")
    assert "immutable" in static and "security-headers.inc" in static
    assert "expires" not in static  # it would send a second Cache-Control header
    assert "@@" not in conf


def test_nginx_redirect_keeps_a_non_default_https_port():
    assert "return 301 https://$host:8443$request_uri;" in nginx_conf(8443)


def block(conf: str, opening: str) -> str:
    """The body of the (innermost) block that starts with `opening`."""
    return conf.split(opening, 1)[1].split("}", 1)[0]


def test_nginx_sends_each_security_header_only_when_the_app_did_not():
    conf = nginx_conf()
    headers = (TEMPLATES / "security-headers.inc").read_text()
    added = re.findall(r"^add_header (\S+) (\S+) always;$", headers, re.M)
    assert sorted(name for name, _ in added) == sorted(SECURITY_HEADERS)
    for name, value in added:
        # The value is a variable mapped from the app's own header of that name: nginx's
        # default when the app sent none, empty (so not sent at all) when it did.
        upstream = "$upstream_http_" + name.lower().replace("-", "_")
        body = block(conf, f"map {upstream} {value} {{")
        entries = [line.strip() for line in body.strip().splitlines()]
        assert len(entries) == 2 and re.fullmatch(r'"" "[^"]+";', entries[0]), name
        assert entries[1] == 'default "";', name
        # ... and nothing else in the configuration adds it.
        assert not re.search(rf"add_header {name}\b", conf, re.I)


def test_every_nginx_block_with_its_own_headers_includes_the_security_headers():
    # add_header is not inherited by a block that has its own: such a block must include them.
    conf = nginx_conf()
    bodies = [block(conf, opening) for opening in re.findall(r"location [^{]+\{", conf)]
    with_headers = [body for body in bodies if "add_header" in body]
    assert len(with_headers) == 3  # static files, the 503 page and the maintenance page
    for body in with_headers:
        assert "include /etc/nginx/conf.d/security-headers.inc;" in body


def test_nginx_offers_only_the_mozilla_intermediate_tls_profile():
    conf = nginx_conf()
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    (ciphers,) = re.findall(r"^\s*ssl_ciphers (\S+);$", conf, re.M)
    aead = re.compile(r"ECDHE-(ECDSA|RSA)-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)")
    suites = ciphers.split(":")
    assert len(suites) == 6 and all(aead.fullmatch(suite) for suite in suites), suites


def test_nginx_answers_503_with_retry_after_only_when_web_is_unreachable():
    conf = nginx_conf()
    proxy = block(conf, "set $web_upstream")
    assert "error_page 502 504 = @web_unavailable;" in proxy
    # The app's own error answers (a 500, a 503 with its Retry-After) pass untouched.
    assert not re.search(r"^\s*proxy_intercept_errors on", conf, re.M)
    unavailable = block(conf, "location @web_unavailable {")
    assert "return 503 " in unavailable
    assert f"add_header Retry-After {RETRY_AFTER_SECONDS} always;" in unavailable
