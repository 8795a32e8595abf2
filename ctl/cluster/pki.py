"""The cluster's small PKI: one CA, the API server's serving certificate, client certificates.

``centaurusctl init`` calls :func:`ensure_pki` once per data directory. It creates
``pki/ca.crt``/``ca.key`` (a self-signed ECDSA P-256 CA valid for ten years) and
``pki/apiserver.crt``/``apiserver.key`` (a serving certificate for 127.0.0.1, ::1,
localhost, the host name and any extra names), and reuses them on later runs, so
kubeconfigs written earlier keep working. The CA is embedded in every kubeconfig as
``certificate-authority-data``, exactly as k3s and kubeadm do, so kubectl and the
official clients verify the server without further setup.

:func:`issue_client_cert` signs a client certificate whose subject carries the
identity the API server reads (``ctl.apiserver.auth``): CN is the user, and
``O=tenant:NAME`` names the tenant (other O entries are groups).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
CERT_DAYS = 825


@dataclass(frozen=True)
class PKIPaths:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def paths(data_dir: Path) -> PKIPaths:
    d = data_dir / "pki"
    return PKIPaths(d / "ca.crt", d / "ca.key", d / "apiserver.crt", d / "apiserver.key")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_ca(common_name: str = "centaurus-ca") -> tuple[bytes, bytes]:
    """A new self-signed CA: (cert PEM, key PEM)."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _sign(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[bytes, bytes]:
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _key()
    now = _now()
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def server_names(extra: list[str] | None = None) -> list[str]:
    names = ["127.0.0.1", "::1", "localhost", socket.gethostname()]
    for n in extra or []:
        if n and n not in names and n not in ("0.0.0.0", "::"):
            names.append(n)
    return names


def issue_server_cert(ca_cert_pem: bytes, ca_key_pem: bytes, names: list[str]) -> tuple[bytes, bytes]:
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "centaurus-apiserver")])
    return _sign(ca_cert_pem, ca_key_pem, subject, ExtendedKeyUsageOID.SERVER_AUTH, sans)


def issue_client_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    user: str,
    tenant: str | None = None,
    groups: list[str] | None = None,
) -> tuple[bytes, bytes]:
    """A client certificate: CN=user, O=tenant:TENANT, O=group for each group."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    if tenant:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"tenant:{tenant}"))
    for g in groups or []:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g))
    return _sign(ca_cert_pem, ca_key_pem, x509.Name(attrs), ExtendedKeyUsageOID.CLIENT_AUTH)


def ensure_pki(data_dir: Path, extra_names: list[str] | None = None) -> PKIPaths:
    """Create the CA and the serving certificate once; reissue the serving cert if names were added."""
    p = paths(data_dir)
    if not (p.ca_cert.exists() and p.ca_key.exists()):
        c, k = make_ca()
        _write(p.ca_key, k, private=True)
        _write(p.ca_cert, c)
        p.server_cert.unlink(missing_ok=True)
    names = server_names(extra_names)
    if p.server_cert.exists() and p.server_key.exists():
        have = cert_names(p.server_cert.read_bytes())
        if set(names) <= have:
            return p
    c, k = issue_server_cert(p.ca_cert.read_bytes(), p.ca_key.read_bytes(), names)
    _write(p.server_key, k, private=True)
    _write(p.server_cert, c)
    return p


def cert_names(cert_pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    out = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    out |= set(san.get_values_for_type(x509.DNSName))
    return out
