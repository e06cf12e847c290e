"""The secured link on the real RabbitMQ: every gateway connection is TLS with its client
certificate, the broker refuses a missing or foreign certificate, the gateway refuses a broker
its pinned CA did not sign or whose name does not match, and plain AMQP to a counterparty is
refused at start-up. Passwords come from files (Docker secrets, systemd credentials)."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
from pathlib import Path

import aio_pika
import aiormq
import pytest

from gateway.certs import cert_path, ensure_local_pki, key_path
from gateway.cli import EXIT_USAGE, main
from gateway.config import TlsConfig
from gateway.tls import client_context
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import HOST, PARTIES, TLS_DIR, TLS_HOST, without_tls
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

VHOST_B = PARTIES["SCO-RATS"][0]
CONNECTION_FIELDS = ("user", "vhost", "ssl", "peer_cert_subject")
PEER_URL = f"amqps://cica-peer:cica-peer@{TLS_HOST}/{VHOST_B}"


def local_tls(user: str) -> TlsConfig:
    return TlsConfig(
        ca=TLS_DIR / "ca.pem", cert=cert_path(TLS_DIR, user), key=key_path(TLS_DIR, user)
    )


@pytest.fixture
def foreign_pki(tmp_path: Path) -> Path:
    """Another CA with a certificate for the same user name: what an impostor could make."""
    directory = tmp_path / "foreign"
    ensure_local_pki(directory, ["cica-peer"])
    return directory


async def refusal(url: str, context: ssl.SSLContext) -> str:
    """Why the broker or the client ended the handshake. TLS 1.2, because in TLS 1.3 the
    client finishes its side first and may see the broker's alert only as a reset."""
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiormq.exceptions.AMQPConnectionError) as refused:
        await aio_pika.connect(url, ssl_context=context, timeout=15)
    return str(refused.value)


def broker_connections() -> list[dict[str, object]]:
    result = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", *CONNECTION_FIELDS, "--formatter", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return found


async def test_every_connection_of_a_gateway_is_tls_with_its_certificate(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    running = await network.start("CICA")
    gateway = running.gateway
    assert gateway is not None

    async def ready() -> bool:
        return all((await gateway.readiness()).values())

    await wait_until(ready, message="CICA ready on all three brokers")
    expected = {
        ("cica-gateway", PARTIES["CICA"][0]),
        ("cica-peer", PARTIES["SCO-RATS"][0]),
        ("cica-peer", PARTIES["UNOCT"][0]),
    }
    ours = [c for c in broker_connections() if (c["user"], c["vhost"]) in expected]
    assert {(c["user"], c["vhost"]) for c in ours} == expected
    for connection in ours:
        assert connection["ssl"] is True, connection
        assert connection["peer_cert_subject"] == f"CN={connection['user']}", connection


async def test_the_broker_refuses_a_missing_or_foreign_client_certificate(
    vhosts: dict[str, Vhost], foreign_pki: Path
) -> None:
    genuine = client_context(local_tls("cica-peer"), "test")
    connection = await aio_pika.connect(PEER_URL, ssl_context=genuine, timeout=15)
    await connection.close()

    no_certificate = ssl.create_default_context(cafile=str(TLS_DIR / "ca.pem"))
    reason = await refusal(PEER_URL, no_certificate)
    assert "HANDSHAKE_FAILURE" in reason, reason

    foreign = TlsConfig(
        ca=TLS_DIR / "ca.pem",
        cert=cert_path(foreign_pki, "cica-peer"),
        key=key_path(foreign_pki, "cica-peer"),
    )
    reason = await refusal(PEER_URL, client_context(foreign, "test"))
    assert "UNKNOWN_CA" in reason, reason


async def test_the_gateway_refuses_a_broker_its_pinned_ca_did_not_sign(
    vhosts: dict[str, Vhost], foreign_pki: Path
) -> None:
    pinned_elsewhere = local_tls("cica-peer").model_copy(update={"ca": foreign_pki / "ca.pem"})
    reason = await refusal(PEER_URL, client_context(pinned_elsewhere, "test"))
    assert "CERTIFICATE_VERIFY_FAILED" in reason, reason


async def test_the_gateway_refuses_a_broker_certificate_for_another_name(
    vhosts: dict[str, Vhost],
) -> None:
    context = client_context(local_tls("cica-peer"), "test")
    host, port = TLS_HOST.split(":")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await asyncio.open_connection(
            host, int(port), ssl=context, server_hostname="rabbitmq-sco-rats.example.org"
        )


def test_a_plaintext_counterparty_is_refused_at_start_up(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    path = network.configure("CICA")
    without_tls(path, "counterparties", "cica-peer")
    plain = f"amqp://cica-peer:cica-peer@{HOST}/{VHOST_B}"
    path.write_text(path.read_text().replace(PEER_URL, plain, 1))

    assert main(["run", "--config", str(path)]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "counterparties.0" in error
    assert "plain amqp:// is refused" in error
    assert "cica-peer:cica-peer" not in error


async def test_passwords_from_files_open_the_links_and_stay_out_of_the_logs(
    network: Network,
    vhosts: dict[str, Vhost],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = network.configure("CICA")
    path.write_text(re.sub(r"amqps://([a-z-]+):[a-z-]+@", r"amqps://\1@", path.read_text()))
    secrets = tmp_path / "credentials"
    secrets.mkdir()
    for name, user in [("broker", "cica-gateway"), ("peer", "cica-peer")]:
        (secrets / name).write_text(user + "\n")
    monkeypatch.setenv("GATEWAY_BROKER__PASSWORD_FILE", str(secrets / "broker"))
    for index in (0, 1):
        monkeypatch.setenv(f"GATEWAY_COUNTERPARTIES__{index}__PASSWORD_FILE", str(secrets / "peer"))

    running = await network.start("CICA")
    gateway = running.gateway
    assert gateway is not None
    assert "cica-gateway@" in gateway.config.broker.url

    async def ready() -> bool:
        return all((await gateway.readiness()).values())

    await wait_until(ready, message="CICA connected with the passwords from files")
    output = capsys.readouterr()
    assert ":cica-gateway@" not in output.out + output.err
    assert ":cica-peer@" not in output.out + output.err
