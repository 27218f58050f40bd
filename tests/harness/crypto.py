"""pulumi-random and pulumi-tls resources: real random values, keys and certificates.

They exist only in state (nothing to delete) and are replaced when their inputs change.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import string
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.runtime.rpc import wrap_rpc_secret

from .kinds import Context, Kind
from .spec import Spec, UnsupportedInput

_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"  # the provider's default special characters


class RandomString(Kind):
    secret_result = False

    def prepare(self, spec: Spec) -> dict[str, Any]:
        spec.get("keepers")  # only forces a new value when it changes (part of the inputs)
        numeric = spec.get("numeric", spec.get("number", True))
        classes = [
            (spec.get("lower", True), string.ascii_lowercase, spec.int("minLower", 0)),
            (spec.get("upper", True), string.ascii_uppercase, spec.int("minUpper", 0)),
            (numeric, string.digits, spec.int("minNumeric", 0)),
            (
                spec.get("special", True),
                spec.get("overrideSpecial", _SPECIAL),
                spec.int("minSpecial", 0),
            ),
        ]
        return {"length": spec.int("length"), "classes": [c for c in classes if c[0]]}

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        chars = [
            secrets.choice(pool) for _, pool, minimum in plan["classes"] for _ in range(minimum)
        ]
        alphabet = "".join(pool for _, pool, _ in plan["classes"])
        chars += [secrets.choice(alphabet) for _ in range(plan["length"] - len(chars))]
        secrets.SystemRandom().shuffle(chars)
        result = "".join(chars)
        return "none", {"result": wrap_rpc_secret(result) if self.secret_result else result}


class RandomPassword(RandomString):
    secret_result = True


class PrivateKey(Kind):
    def prepare(self, spec: Spec) -> dict[str, Any]:
        algorithm = spec.require("algorithm")
        if algorithm == "RSA":
            bits = spec.int("rsaBits", 2048)
            return {"algorithm": algorithm, "make": lambda: rsa.generate_private_key(65537, bits)}
        if algorithm == "ECDSA":
            curve = {
                "P224": ec.SECP224R1,
                "P256": ec.SECP256R1,
                "P384": ec.SECP384R1,
                "P521": ec.SECP521R1,
            }
            chosen = curve[spec.get("ecdsaCurve", "P224")]
            return {"algorithm": algorithm, "make": lambda: ec.generate_private_key(chosen())}
        if algorithm == "ED25519":
            return {"algorithm": algorithm, "make": ed25519.Ed25519PrivateKey.generate}
        raise UnsupportedInput(f"tls PrivateKey algorithm {algorithm!r}")

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        key = plan["make"]()
        traditional = serialization.PrivateFormat.TraditionalOpenSSL
        if plan["algorithm"] == "ED25519":  # no traditional PEM form exists for it
            traditional = serialization.PrivateFormat.PKCS8
        pem = key.private_bytes(
            serialization.Encoding.PEM, traditional, serialization.NoEncryption()
        )
        pkcs8 = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key()
        return "none", {
            "privateKeyPem": wrap_rpc_secret(pem.decode()),
            "privateKeyPemPkcs8": wrap_rpc_secret(pkcs8.decode()),
            "publicKeyPem": public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "publicKeyOpenssh": public.public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            ).decode()
            + "\n",
        }


_SUBJECT = {
    "commonName": NameOID.COMMON_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "province": NameOID.STATE_OR_PROVINCE_NAME,
    "country": NameOID.COUNTRY_NAME,
    "postalCode": NameOID.POSTAL_CODE,
    "serialNumber": NameOID.SERIAL_NUMBER,
}
_KEY_USAGE = {  # provider name -> cryptography's KeyUsage argument
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}
_EXTENDED = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}


class SelfSignedCert(Kind):
    def prepare(self, spec: Spec) -> dict[str, Any]:
        subject = spec.obj("subject")
        names = []
        for key, oid in _SUBJECT.items():
            if subject and subject.get(key):
                names.append(x509.NameAttribute(oid, subject.get(key)))
        uses = spec.get("allowedUses", [])
        unknown = set(uses) - set(_KEY_USAGE) - set(_EXTENDED)
        if unknown:
            raise UnsupportedInput(f"tls SelfSignedCert allowedUses {sorted(unknown)}")
        spec.get("earlyRenewalHours")  # decides renewal on later runs; certificates here are fresh
        spec.expect("setAuthorityKeyId", False)
        spec.expect("maxPathLength", 0)
        spec.expect("uris")
        return {
            "key": spec.require("privateKeyPem"),
            "subject": x509.Name(names),
            "dns": spec.get("dnsNames", []),
            "ips": spec.get("ipAddresses", []),
            "hours": spec.int("validityPeriodHours"),
            "uses": uses,
            "ca": spec.get("isCaCertificate", False),
            "ski": spec.get("setSubjectKeyId", False),
        }

    def create(self, plan: dict[str, Any], ctx: Context) -> tuple[str, dict]:
        key = serialization.load_pem_private_key(plan["key"].encode(), password=None)
        start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        end = start + datetime.timedelta(hours=plan["hours"])
        builder = (
            x509.CertificateBuilder()
            .subject_name(plan["subject"])
            .issuer_name(plan["subject"])
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=plan["ca"], path_length=None), critical=True)
        )
        alt = [x509.DNSName(n) for n in plan["dns"]]
        alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in plan["ips"]]
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        usage = {arg: use in plan["uses"] for use, arg in _KEY_USAGE.items()}
        if any(usage.values()):
            builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
        extended = [_EXTENDED[u] for u in plan["uses"] if u in _EXTENDED]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        if plan["ski"]:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(key, digest)
        return str(cert.serial_number), {
            "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "validityStartTime": start.isoformat().replace("+00:00", "Z"),
            "validityEndTime": end.isoformat().replace("+00:00", "Z"),
        }
