"""With console.tls_cert set, the HTTP port speaks HTTPS and the session cookie is Secure."""

from __future__ import annotations

import ipaddress
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.archive import open_archive
from gateway.config import ConsoleConfig, load_config
from gateway.console.app import console_for, https_context, setup_console
from gateway.desk.accounts import OperatorAccounts
from gateway.desk.operations import Desk
from gateway.metrics import GatewayMetrics
from gateway.web import HttpServer
from tests.support.parties import write_config


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "console.crt", directory / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


PASSWORD = "a long password!"


async def _ready() -> dict[str, bool]:
    return {}


async def test_the_console_is_served_over_https_with_a_secure_cookie(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = load_config(write_config(tmp_path, "CICA", tmp_path / "keys"))
    assert https_context(ConsoleConfig()) is None
    context = https_context(config.console.model_copy(update={"tls_cert": cert, "tls_key": key}))
    OperatorAccounts(config.console.operators_file).add(
        "vera", "a long password!", {"viewer"}, None
    )
    store = open_archive(config.archive.url)
    await store.open()

    def extend(app: web.Application) -> None:
        setup_console(app, console_for(Desk(config, store)), https=True)

    metrics = GatewayMetrics("CICA", counterparties=[], message_types=[])
    server = HttpServer("127.0.0.1", 0, metrics, _ready, extend=extend, ssl_context=context)
    await server.start()
    trust = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{server.port}"
    try:
        # unsafe: the jar keeps cookies of an IP address (the console is on 127.0.0.1).
        jar = aiohttp.CookieJar(unsafe=True)
        connector = aiohttp.TCPConnector(ssl=trust)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as session:
            async with session.get(f"{base}/login") as page:
                assert page.status == 200
                match = re.search(r'name="csrf" value="([^"]+)"', await page.text())
                assert match is not None
            form = {"csrf": match.group(1), "name": "vera", "password": PASSWORD}
            async with session.post(f"{base}/login", data=form, allow_redirects=False) as login:
                assert login.status == 303
                cookie = login.cookies["gw_console"]
                assert cookie["secure"]
                assert cookie["httponly"]
            async with session.get(f"{base}/") as overview:
                assert overview.status == 200
    finally:
        await server.stop()
        await store.close()
