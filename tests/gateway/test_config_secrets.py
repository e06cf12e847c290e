"""Secrets and overrides from the environment, and the TLS rules of a configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from tests.support.parties import make_keys, without_tls, write_config

SECRET = "s3cr3t/with@odd:chars"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    make_keys(keys)
    return write_config(tmp_path, "CICA", keys)


def test_a_counterparty_key_is_overridden_by_list_index(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_COUNTERPARTIES__1__URL", "amqps://other@broker-c:5671/party-c")
    monkeypatch.setenv("GATEWAY_COUNTERPARTIES__0__REVIEW", "always")
    config = load_config(config_path)
    assert config.counterparties[1].url == "amqps://other@broker-c:5671/party-c"
    assert config.counterparties[0].review == "always"
    # Everything else of the file is kept.
    assert config.counterparties[0].url.startswith("amqps://cica-peer:")
    assert config.counterparties[1].tls is not None


def test_passwords_come_from_files(
    config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker_secret, peer_secret = tmp_path / "broker-password", tmp_path / "peer-password"
    broker_secret.write_text(SECRET + "\n")
    peer_secret.write_text("peer-secret")
    monkeypatch.setenv("GATEWAY_BROKER__URL", "amqps://cica-gateway@127.0.0.1:5671/party-a")
    monkeypatch.setenv("GATEWAY_BROKER__PASSWORD_FILE", str(broker_secret))
    monkeypatch.setenv("GATEWAY_COUNTERPARTIES__0__PASSWORD_FILE", str(peer_secret))
    config = load_config(config_path)
    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == SECRET
    assert config.broker.connection_url() == (
        "amqps://cica-gateway:s3cr3t%2Fwith%40odd%3Achars@127.0.0.1:5671/party-a"
    )
    assert ":peer-secret@" in config.counterparties[0].connection_url()
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("GATEWAY_BROKER__PASSWORD_FILE", "/nonexistent/nowhere", r"cannot read .*nowhere"),
        ("GATEWAY_COUNTERPARTIES__7__URL", "amqps://x@y/z", r"no index 7"),
        ("GATEWAY_COUNTERPARTIES__FIRST__URL", "amqps://x@y/z", r"must be a list index"),
    ],
)
def test_a_variable_that_cannot_apply_is_named_without_its_value(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=rf"environment variable {variable}: .*{problem}") as err:
        load_config(config_path)
    assert "amqps://x@y/z" not in str(err.value)


def test_variables_for_other_tools_are_ignored(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_SOMETHING_ELSE", "x")
    assert load_config(config_path).party == "CICA"


def test_a_plaintext_counterparty_is_refused_without_the_development_flag(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_tls(config_path, "counterparties", "cica-peer")
    monkeypatch.setenv("GATEWAY_COUNTERPARTIES__0__URL", "amqp://cica-peer@127.0.0.1:5672/b")
    with pytest.raises(ConfigError, match=r"'counterparties\.0'.*plain amqp:// is refused") as err:
        load_config(config_path)
    assert "\n" not in str(err.value)
    monkeypatch.setenv("GATEWAY_COUNTERPARTIES__0__ALLOW_PLAINTEXT", "true")
    assert load_config(config_path).counterparties[0].allow_plaintext


def test_amqps_without_certificates_is_refused(config_path: Path) -> None:
    without_tls(config_path, "broker", "cica-gateway")
    with pytest.raises(ConfigError, match=r"'broker'.*amqps:// needs a tls section"):
        load_config(config_path)
