"""X.509 certificates for the TLS links: a certificate authority, a broker's server certificate
and one client certificate per broker user (common name = the user name).

This is what the local set-up and the tests use; between real organisations each Party's CA
issues its own certificates and the other Party pins that CA. Private keys are written mode
0600 from birth and never overwritten, so rerunning the set-up keeps what it issued.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.files import create_private, create_public

SERVER = "server"
LOCAL_HOSTS = ("localhost", "127.0.0.1")
VALID_DAYS = 825


@dataclass(frozen=True)
class Issuer:
    """A CA that signs leaf certificates."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def cert_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.pem"


def key_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.key"


def new_ca(common_name: str, now: datetime | None = None) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = _validity(x509.CertificateBuilder(), now).subject_name(subject).issuer_name(subject)
    certificate = (
        builder.public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(key, certificate)


def issue(
    issuer: Issuer,
    common_name: str,
    *,
    server_names: Sequence[str] = (),
    now: datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf certificate: a server's when ``server_names`` is given (DNS names or IP
    addresses for the SAN), otherwise a client's whose common name is the broker user."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _validity(x509.CertificateBuilder(), now)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    return key, builder.sign(issuer.key, hashes.SHA256())


def write_issuer(directory: Path, issuer: Issuer) -> None:
    _write_pair(directory, "ca", issuer.key, issuer.certificate)


def write_leaf(
    directory: Path, name: str, pair: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
) -> None:
    _write_pair(directory, name, *pair)


def load_issuer(directory: Path) -> Issuer:
    key = serialization.load_pem_private_key(key_path(directory, "ca").read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path(directory, 'ca')} is not an EC private key")
    certificate = x509.load_pem_x509_certificate(cert_path(directory, "ca").read_bytes())
    return Issuer(key, certificate)


def ensure_local_pki(
    directory: Path, users: Sequence[str], hosts: Sequence[str] = LOCAL_HOSTS
) -> list[Path]:
    """Create what is missing of: a CA, the broker's server certificate for ``hosts`` and a
    client certificate per user. Existing files are kept. Returns the files written."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    written: list[Path] = []
    if not cert_path(directory, "ca").exists():
        write_issuer(directory, new_ca("liaison gateway local CA"))
        written.append(cert_path(directory, "ca"))
    issuer = load_issuer(directory)
    wanted = [(SERVER, list(hosts)), *((user, []) for user in users)]
    for name, server_names in wanted:
        if cert_path(directory, name).exists():
            continue
        common_name = server_names[0] if server_names else name
        write_leaf(directory, name, issue(issuer, common_name, server_names=server_names))
        written.append(cert_path(directory, name))
    return written


def _write_pair(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    create_private(key_path(directory, name), pem)
    create_public(cert_path(directory, name), certificate.public_bytes(serialization.Encoding.PEM))


def _validity(builder: x509.CertificateBuilder, now: datetime | None) -> x509.CertificateBuilder:
    start = (now or datetime.now(UTC)) - timedelta(hours=1)
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=VALID_DAYS))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
