"""The CA bundle reaches the build as BuildKit secrets: docker-build hands each secret to
`docker buildx` in an environment variable, which Linux caps at 128 KiB, so a host's bundle
(about 215 KB) goes in up to four parts, split between certificates, that the Dockerfile joins."""

from __future__ import annotations

import pytest

from components.image import CA_BUNDLE_IDS, PEM_END, SECRET_PART_CHARS, ca_bundle_secrets
from tests.program import ROOT


def certificate(n: int, lines: int = 20) -> str:
    body = "\n".join(f"{n:04d}" + "QUJDREVG" * 7 for _ in range(lines))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n{PEM_END}\n"


def bundle(count: int, lines: int = 20) -> str:
    return "".join(certificate(n, lines) for n in range(count))


def test_a_small_bundle_is_one_secret():
    text = bundle(3)
    assert ca_bundle_secrets(text) == {"ca_bundle": text}


def test_a_large_bundle_is_split_between_certificates():
    text = bundle(150)  # about 180 KB
    parts = ca_bundle_secrets(text)
    assert list(parts) == list(CA_BUNDLE_IDS[: len(parts)]) and len(parts) == 2
    assert "".join(parts.values()) == text
    for part in parts.values():
        assert len(part) <= SECRET_PART_CHARS
        assert part.startswith("-----BEGIN CERTIFICATE-----\n") and part.endswith(PEM_END + "\n")
        assert part.count("BEGIN CERTIFICATE") == part.count(PEM_END)


def test_at_most_four_parts_and_a_bigger_bundle_is_refused():
    per_certificate = len(certificate(0))
    fits = bundle(4 * (SECRET_PART_CHARS // per_certificate))
    assert len(ca_bundle_secrets(fits)) == 4
    too_big = bundle(4 * (SECRET_PART_CHARS // per_certificate) + 1)
    with pytest.raises(ValueError, match=r"the CA bundle is too large for the build"):
        ca_bundle_secrets(too_big)


def test_text_around_the_certificates_is_kept_with_them():
    # Some distributions' bundles carry a comment before each certificate.
    text = "# Issuer: A\n" + certificate(1) + "\n# Issuer: B\n" + certificate(2)
    (part,) = ca_bundle_secrets(text).values()
    assert part.count("BEGIN CERTIFICATE") == 2 and "# Issuer: B" in part


def test_the_dockerfile_joins_every_part():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for secret_id in CA_BUNDLE_IDS:
        assert f"id={secret_id}" in dockerfile, secret_id
