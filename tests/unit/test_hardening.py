"""The shared hardening rules reject unsafe specs, whichever renderer would get them, and the
nginx configuration carries the TLS, proxy and header rules."""

from __future__ import annotations

import dataclasses

import pytest

from components import hardening
from components.config import StackConfig
from components.nginx import render_conf
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


def nginx_conf(https_port: int = 443) -> str:
    fields = {f.name: None for f in dataclasses.fields(StackConfig)}
    cfg = StackConfig(**{**fields, "domain": "shop.example.com", "https_port": https_port})
    return render_conf(cfg)


def test_nginx_config_redirects_proxies_and_denies_metrics():
    conf = nginx_conf()
    assert "listen 8080" in conf and "listen 8443 ssl http2" in conf
    assert "return 301 https://$host$request_uri;" in conf
    assert "resolver 127.0.0.11 valid=5s" in conf
    assert "set $web_upstream http://web:8000;" in conf and "proxy_pass $web_upstream;" in conf
    for header in (
        "X-Forwarded-Proto $scheme",
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "Host $host",
    ):
        assert f"proxy_set_header {header};" in conf
    metrics = conf.split("location = /metrics {", 1)[1].split("}", 1)[0]
    assert "return 404" in metrics
    static = conf.split("location /static/ {", 1)[1].split("}", 1)[0]
    assert "immutable" in static and "security-headers.inc" in static
    assert "@@" not in conf


def test_nginx_redirect_keeps_a_non_default_https_port():
    assert "return 301 https://$host:8443$request_uri;" in nginx_conf(8443)
