"""The container and service files: compose schema, and that they agree with each other."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
SYSTEMD_UNIT = DEPLOY / "systemd" / "liaison-gateway@.service"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
# compose service -> (Party, host port of its HTTP side: what deploy/prometheus scrapes)
GATEWAYS = {"gateway-cica": ("CICA", 9101), "gateway-sco-rats": ("SCO-RATS", 9102)}
BROKERS = {"CICA": "rabbitmq-cica", "SCO-RATS": "rabbitmq-sco-rats"}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _dockerfile_env() -> dict[str, str]:
    return dict(re.findall(r"\b(GATEWAY_[A-Z_]+)=(\S+)", DOCKERFILE.read_text(encoding="utf-8")))


def _mounted_config(service: str) -> Path:
    for volume in _compose()["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        if target == "/etc/gateway/gateway.toml":
            return DEPLOY / str(source)
    raise AssertionError(f"{service} mounts no /etc/gateway/gateway.toml")


def test_compose_file_matches_the_compose_spec() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_two_party_stack() -> None:
    services = _compose()["services"]
    assert {*GATEWAYS, *BROKERS.values(), "prometheus", "grafana"} <= set(services)
    for broker in BROKERS.values():
        assert services[broker]["image"].endswith("-management")
        assert (
            "./rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro"
            in (services[broker]["volumes"])
        )
    for gateway in GATEWAYS:
        assert services[gateway]["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (DEPLOY / services[gateway]["build"]["context"]).resolve() == ROOT


def test_every_bind_mount_exists() -> None:
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


@pytest.mark.parametrize("service", sorted(GATEWAYS))
def test_gateway_config_loads_as_the_image_runs_it(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    party, host_port = GATEWAYS[service]
    for key, value in _dockerfile_env().items():
        monkeypatch.setenv(key, value)

    config = load_config(_mounted_config(service))

    assert config.party == party
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9100)
    assert urlsplit(config.broker.url).hostname == BROKERS[party]
    assert urlsplit(config.partner.url).hostname == BROKERS[config.partner.id]
    assert f"127.0.0.1:{host_port}:9100" in _compose()["services"][service]["ports"]


@pytest.mark.parametrize("service", sorted(GATEWAYS))
def test_gateway_broker_users_exist_with_rights_on_their_vhost(service: str) -> None:
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    grants = {(p["user"], p["vhost"]) for p in definitions["permissions"]}
    config = load_config(_mounted_config(service))
    for url in [config.broker.url, *(c.url for c in config.counterparties)]:
        parts = urlsplit(url)
        vhost = parts.path.lstrip("/")
        assert (parts.username, vhost) in grants, f"{parts.username}@{parts.hostname}/{vhost}"


def test_dockerfile_runs_the_gateway_unprivileged_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    port = _dockerfile_env()["GATEWAY_HTTP__PORT"]
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert not users[-1].startswith(("root", "0"))
    # Readiness (brokers, archive, signing key), not mere liveness: an unhealthy container is
    # one that cannot do its work. urlopen fails on the 503 that /readyz answers then.
    assert f"http://127.0.0.1:{port}/readyz" in text.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["gateway"]' in text
    assert 'CMD ["run", "--config", "/etc/gateway/gateway.toml"]' in text
    assert f"gateway-cica:{port}" in (DEPLOY / "docker" / "prometheus.yml").read_text()


def test_systemd_unit_is_one_hardened_instance_per_party() -> None:
    directives: dict[str, list[str]] = {}
    for line in SYSTEMD_UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            directives.setdefault(key, []).append(value)
    assert "--config /etc/liaison-gateway/%i.toml" in directives["ExecStart"][0]
    assert directives["NoNewPrivileges"] == ["yes"]
    assert directives["ProtectSystem"] == ["strict"]
    assert directives["ReadWritePaths"] == ["/var/lib/liaison-gateway/%i"]
    assert directives["Restart"] == ["on-failure"]
    assert directives.get("DynamicUser") == ["yes"] or directives.get("User", ["root"]) != ["root"]


@pytest.mark.parametrize("service", sorted(GATEWAYS))
def test_gateway_passwords_are_docker_secrets_and_links_are_tls(service: str) -> None:
    compose = _compose()
    spec = compose["services"][service]
    config = load_config(_mounted_config(service))
    links = {"BROKER": config.broker} | {
        f"COUNTERPARTIES__{i}": c for i, c in enumerate(config.counterparties)
    }
    for key, link in links.items():
        assert link.tls is not None, key
        assert urlsplit(link.url).scheme == "amqps", key
        assert urlsplit(link.url).password is None, f"{key} has its password in the file"
        secret_path = spec["environment"][f"GATEWAY_{key}__PASSWORD_FILE"]
        secret = secret_path.removeprefix("/run/secrets/")
        assert secret in spec["secrets"], key
        user = urlsplit(link.url).username
        assert (DEPLOY / compose["secrets"][secret]["file"]).read_text().strip() == user
        for path in (link.tls.ca, link.tls.cert, link.tls.key):
            assert path.parent == Path("/etc/gateway/tls")
    assert "tls:/etc/gateway/tls:ro" in spec["volumes"]


def test_systemd_unit_takes_passwords_from_credentials() -> None:
    lines = SYSTEMD_UNIT.read_text(encoding="utf-8").splitlines()
    loaded = {
        line.split("=", 1)[1].split(":", 1)[0]
        for line in lines
        if line.startswith("LoadCredential=")
    }
    pointed = {
        line.split("=", 2)[1]: line.split("=", 2)[2]
        for line in lines
        if line.startswith("Environment=GATEWAY_")
    }
    assert pointed == {
        "GATEWAY_BROKER__PASSWORD_FILE": "%d/broker-password",
        "GATEWAY_COUNTERPARTIES__0__PASSWORD_FILE": "%d/partner-password",
    }
    assert {value.removeprefix("%d/") for value in pointed.values()} == loaded
