"""The local PKI and the client side of TLS: pinned CA, host names checked, unsafe files refused."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.certs import cert_path, ensure_local_pki, key_path
from gateway.config import ConfigError, TlsConfig
from gateway.core.keys import KeyFileError, generate_key_pair, load_public_key
from gateway.tls import client_context

USERS = ["cica-gateway", "cica-peer"]


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    ensure_local_pki(directory, USERS)
    return directory


def tls_for(pki: Path, user: str) -> TlsConfig:
    return TlsConfig(ca=pki / "ca.pem", cert=cert_path(pki, user), key=key_path(pki, user))


def test_the_local_pki_has_owner_only_keys_and_is_made_once(pki: Path) -> None:
    names = {p.name for p in pki.iterdir()}
    assert names == {f"{n}.{ext}" for n in ["ca", "server", *USERS] for ext in ("pem", "key")}
    for key in pki.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    before = cert_path(pki, "cica-peer").read_bytes()
    assert ensure_local_pki(pki, [*USERS, "sco-rats-peer"]) == [cert_path(pki, "sco-rats-peer")]
    assert cert_path(pki, "cica-peer").read_bytes() == before


def test_client_certificates_name_the_broker_user_and_chain_to_the_ca(pki: Path) -> None:
    certificate = x509.load_pem_x509_certificate(cert_path(pki, "cica-peer").read_bytes())
    ca = x509.load_pem_x509_certificate(cert_path(pki, "ca").read_bytes())
    [common_name] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value == "cica-peer"
    certificate.verify_directly_issued_by(ca)
    server = x509.load_pem_x509_certificate(cert_path(pki, "server").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_the_context_pins_the_ca_and_checks_host_names(pki: Path) -> None:
    context = client_context(tls_for(pki, "cica-peer"), "counterparties.0.tls")
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # Only the pinned CA: none of the system's.
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "liaison gateway local CA"),),)
    ]


@pytest.mark.parametrize("pinned", ["ca", "cert"])
def test_a_pinned_file_others_can_write_is_refused(pki: Path, pinned: str) -> None:
    tls = tls_for(pki, "cica-peer")
    path: Path = getattr(tls, pinned)
    path.chmod(0o666)
    with pytest.raises(
        ConfigError, match=rf"counterparties\.0\.tls\.{pinned} .* writable by group"
    ):
        client_context(tls, "counterparties.0.tls")


def test_a_client_key_others_can_read_is_refused(pki: Path) -> None:
    tls = tls_for(pki, "cica-peer")
    tls.key.chmod(0o640)
    with pytest.raises(ConfigError, match=r"broker\.tls\.key .* accessible by group or others"):
        client_context(tls, "broker.tls")


def test_a_missing_certificate_is_named(pki: Path) -> None:
    tls = tls_for(pki, "nobody")
    with pytest.raises(ConfigError, match=r"'broker\.tls': .*nobody\.pem: No such file"):
        client_context(tls, "broker.tls")


def test_a_pinned_public_key_others_can_write_is_refused(tmp_path: Path) -> None:
    _, public = generate_key_pair("SCO-RATS", tmp_path, key_id="SCO-RATS-1")
    assert load_public_key(public).key_id == "SCO-RATS-1"
    public.chmod(0o664)
    with pytest.raises(KeyFileError, match=r"public key file .* writable by group or others"):
        load_public_key(public)


def test_certificates_stay_readable_under_a_strict_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        ensure_local_pki(tmp_path / "pki", ["cica-peer"])
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "pki" / "server.pem").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "pki" / "server.key").stat().st_mode) == 0o600
