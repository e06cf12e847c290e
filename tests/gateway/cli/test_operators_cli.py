"""``gateway operators add|remove|list`` on a config's console.operators_file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.desk.accounts import OperatorAccounts
from tests.support.parties import write_config


def test_operators_are_added_listed_and_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "CICA", tmp_path / "keys")
    password = tmp_path / "password"
    password.write_text("a long enough password\n")
    add = ["operators", "add", "olga", "--role", "consent-officer", "--role", "operator"]
    add += ["--officer", "lo-a", "--password-file", str(password), "--config", str(config)]
    assert main(add) == 0
    accounts_file = load_config(config).console.operators_file
    assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
    assert OperatorAccounts(accounts_file).authenticate("olga", "a long enough password")

    capsys.readouterr()
    assert main(["operators", "list", "--config", str(config), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"name": "olga", "roles": ["consent-officer", "operator"], "officer": "lo-a"}]

    assert main(["operators", "remove", "olga", "--config", str(config)]) == 0
    assert main(["operators", "remove", "olga", "--config", str(config)]) == 1


def test_a_short_password_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, "CICA", tmp_path / "keys")
    password = tmp_path / "password"
    password.write_text("short\n")
    add = ["operators", "add", "vera", "--role", "viewer", "--password-file", str(password)]
    assert main([*add, "--config", str(config)]) == 2
    assert OperatorAccounts(load_config(config).console.operators_file).load() == {}
