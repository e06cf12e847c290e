"""`gateway run` and `provision` stop with one line naming the problem and the fix, and an
exit status systemd will not restart on for a configuration or credential error (issue 14)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.parties import PARTIES, TLS_HOST, make_keys, write_config
from tests.support.services import RABBITMQ, require

pytestmark = pytest.mark.broker

ROOT = Path(__file__).parents[2]
GOOD_URL = f"amqps://cica-gateway:cica-gateway@{TLS_HOST}/{PARTIES['CICA'][0]}"
UNIT = ROOT / "deploy" / "systemd" / "liaison-gateway@.service"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    require(RABBITMQ, "RabbitMQ")
    keys = tmp_path / "keys"
    make_keys(keys)
    return write_config(tmp_path, "CICA", keys)


def _gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        (GOOD_URL.replace(":cica-gateway@", ":wrong@"), 3, "refused the login"),
        (GOOD_URL.replace(TLS_HOST, "127.0.0.1:1"), 4, "cannot reach broker 127.0.0.1:1"),
        (GOOD_URL.replace(PARTIES["CICA"][0], PARTIES["UNOCT"][0]), 3, "access to vhost"),
    ],
)
@pytest.mark.parametrize("command", ["run", "provision"])
def test_a_broker_problem_is_one_line_with_a_documented_status(
    config: Path, command: str, url: str, status: int, says: str
) -> None:
    done = _gateway(command, "--config", str(config), env={"GATEWAY_BROKER__URL": url})
    assert done.returncode == status
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"gateway {command}: ")
    assert says in last
    assert "Traceback" not in done.stderr
    assert "wrong@" not in done.stderr


def test_a_bad_key_file_is_a_configuration_error(config: Path, tmp_path: Path) -> None:
    key = next((tmp_path / "keys").glob("CICA-*.key"))
    key.chmod(0o644)
    done = _gateway("run", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        f"chmod 600 {key} (keys.signing_key in the config)"
    )
    assert "Traceback" not in done.stderr


def test_systemd_does_not_restart_on_configuration_or_credential_errors() -> None:
    unit = UNIT.read_text()
    [line] = re.findall(r"^RestartPreventExitStatus=(.*)$", unit, re.MULTILINE)
    assert set(line.split()) == {"2", "3"}
    assert "Restart=on-failure" in unit
