#!/usr/bin/env python3
"""TLS handshake benchmark (prints figures; not a test): what it costs nginx to load its
certificate and key at every full handshake (config acme: a variable in ssl_certificate,
components/nginx/acme.conf.tmpl) rather than once at start (certificate files).

One container of the nginx image (hardened: read-only root, no capability, uid 101) with two
HTTPS servers that differ only in how ssl_certificate names the same files: through a
variable (loaded per handshake) and literally (loaded once). Both have the TLS settings of
components/nginx/default.conf.tmpl (its ssl_ lines) and an ECDSA P-256 key with a certificate
and its intermediate, as an ACME CA issues them, except the session cache, off: wrk resumes
sessions, and a resumed handshake loads nothing (what returning browsers mostly do), so only
with it off is every handshake a full one. `wrk -H 'Connection: close'` (a new TCP connection
and handshake per request) runs against each in turn, --rounds times, on /nginx-health
(nginx's own answer: no app in the way); the container's CPU time per request
comes from its cgroup counters (Docker stats) around each run. wrk reaches the container at
its address on Docker's default bridge: no published port, so no docker-proxy in the way.
Besides, what the per-handshake work itself takes, without the noise of a busy machine: the
same files loaded LOADS times by OpenSSL through Python's ssl (read, parse, match the key).

    .venv/bin/python scripts/bench_tls.py [--seconds 10] [--connections 8] [--rounds 3]
        [--image djangostack-testbed/nginx:latest]
"""

from __future__ import annotations

import argparse
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_site import wrk  # noqa: E402

from components.nginx import TEMPLATES  # noqa: E402

TLS_DIR = "/srv/tls"
# The TLS settings of the product's HTTPS server (certificate lines aside).
SETTINGS = re.compile(r"^\s*(ssl_(?!certificate)\w+ .*;)$", re.M)
VARIANTS = {"per handshake (acme)": "$tls_dir", "once at start (files)": TLS_DIR}
READY_SECONDS = 30
LOADS = 2000


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def pair(directory: Path) -> None:
    """tls.key and tls.crt (the leaf, then an intermediate) in `directory`, readable by 101."""
    ca, leaf = directory / "ca", directory / "leaf"
    p256 = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *p256, "-days", "1", "-subj", "/CN=bench intermediate",
            "-keyout", f"{ca}.key", "-out", f"{ca}.crt")  # fmt: skip
    openssl("req", "-new", *p256, "-subj", "/CN=bench.example",
            "-keyout", str(directory / "tls.key"), "-out", f"{leaf}.csr")  # fmt: skip
    openssl("x509", "-req", "-in", f"{leaf}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "1", "-out", f"{leaf}.crt")  # fmt: skip
    # The key as the ACME process writes it (docker/acme/djangostack-acme).
    openssl("ec", "-in", str(directory / "tls.key"), "-out", str(directory / "tls.key"))
    (directory / "tls.crt").write_text(
        Path(f"{leaf}.crt").read_text() + Path(f"{ca}.crt").read_text()
    )
    for file in directory.iterdir():
        file.chmod(0o644)


def config() -> str:
    template = (TEMPLATES / "default.conf.tmpl").read_text()
    settings = "\n    ".join(
        "ssl_session_cache off;" if line.startswith("ssl_session_cache ") else line
        for line in SETTINGS.findall(template)
    )
    servers = "".join(
        f"""
server {{
    listen {8443 + index} ssl;
    ssl_certificate     {where}/tls.crt;
    ssl_certificate_key {where}/tls.key;
    {settings}
    location = /nginx-health {{ access_log off; return 200 "ok\\n"; }}
}}
"""
        for index, where in enumerate(VARIANTS.values())
    )
    return f"map $ssl_server_name $tls_dir {{ default {TLS_DIR}; }}\n{servers}"


def load_microseconds(directory: Path) -> float:
    """Mean time to load the key and the certificate chain into an OpenSSL context."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    began = time.perf_counter()
    for _ in range(LOADS):
        context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return (time.perf_counter() - began) / LOADS * 1e6


def cpu_ns(container: docker.models.containers.Container) -> int:
    return container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant")
    parser.add_argument("--image", default="djangostack-testbed/nginx:latest")
    args = parser.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "tls").mkdir()
        (work / "conf").mkdir()
        pair(work / "tls")
        loading = load_microseconds(work / "tls")
        (work / "conf" / "default.conf").write_text(config())
        for directory in (work, work / "tls", work / "conf"):
            directory.chmod(0o755)
        container = client.containers.run(
            args.image,
            name=f"bench-tls-{uuid.uuid4().hex[:6]}",
            detach=True,
            user="101:101",
            read_only=True,
            tmpfs={"/tmp": ""},  # noqa: S108 - inside the container
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            volumes={
                str(work / "conf"): {"bind": "/etc/nginx/conf.d", "mode": "ro"},
                str(work / "tls"): {"bind": TLS_DIR, "mode": "ro"},
            },
        )
        try:
            container.reload()
            address = container.attrs["NetworkSettings"]["IPAddress"]
            urls = {
                name: f"https://{address}:{8443 + index}/nginx-health"
                for index, name in enumerate(VARIANTS)
            }
            deadline = time.monotonic() + READY_SECONDS
            while True:
                try:
                    if all(requests.get(u, verify=False, timeout=2).ok for u in urls.values()):  # noqa: S501
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(container.logs().decode()[-2000:])
                time.sleep(0.5)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    before = cpu_ns(container)
                    figures = wrk(url, args.seconds, args.connections, ("Connection: close",))
                    used = cpu_ns(container) - before
                    figures["cpu_us"] = used / 1000 / (figures["rps"] * args.seconds)
                    runs[name].append(figures)
        finally:
            container.remove(force=True)
    print(
        f"nginx {args.image}, wrk -c{args.connections} -d{args.seconds}s -H 'Connection: close' "
        f"(a full TLS handshake per request: no session cache), {args.rounds} rounds, medians:"
    )
    medians = {}
    for name, figures in runs.items():
        medians[name] = {k: statistics.median(f[k] for f in figures) for k in figures[0]}
        m = medians[name]
        print(
            f"  certificate loaded {name:<22} {m['rps']:8.1f} handshakes/s  "
            f"p50 {m['p50']:.2f} ms  p99 {m['p99']:.2f} ms  "
            f"nginx CPU {m['cpu_us']:.0f} us/handshake  errors {m['errors']:.0f}"
        )
    acme, files = (medians[name] for name in VARIANTS)
    print(
        f"  per-handshake loading: {acme['cpu_us'] - files['cpu_us']:+.0f} us of nginx CPU per "
        f"handshake, {100 * (acme['rps'] / files['rps'] - 1):+.1f}% handshakes/s; loading the "
        f"pair alone (OpenSSL via Python's ssl, {LOADS} times): {loading:.0f} us"
    )


if __name__ == "__main__":
    main()
