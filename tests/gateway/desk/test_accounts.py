"""Operator accounts: argon2 hashes in a 0600 file, roles, refusals."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.desk.accounts import AccountError, OperatorAccounts, Role

PASSWORD = "correct horse battery"


def test_an_account_is_stored_hashed_in_a_private_file(tmp_path: Path) -> None:
    accounts = OperatorAccounts(tmp_path / "operators.json")
    accounts.add("olga", PASSWORD, {"consent-officer", "operator"}, "lo-a")
    assert stat.S_IMODE(accounts.path.stat().st_mode) == 0o600
    text = accounts.path.read_text()
    assert PASSWORD not in text
    assert "$argon2id$" in text
    operator = accounts.authenticate("olga", PASSWORD)
    assert operator is not None
    assert operator.may("operator")
    assert not operator.may("viewer")
    assert operator.officer == "lo-a"


def test_a_wrong_password_or_name_or_a_removed_account_does_not_authenticate(
    tmp_path: Path,
) -> None:
    accounts = OperatorAccounts(tmp_path / "operators.json")
    accounts.add("vera", PASSWORD, {"viewer"}, None)
    assert accounts.authenticate("vera", PASSWORD + "!") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    assert accounts.remove("vera")
    assert not accounts.remove("vera")
    assert accounts.authenticate("vera", PASSWORD) is None


@pytest.mark.parametrize(
    ("name", "password", "roles"),
    [("olga", "short", {"viewer"}), ("", PASSWORD, {"viewer"}), ("olga", PASSWORD, set())],
)
def test_bad_accounts_are_refused(
    tmp_path: Path, name: str, password: str, roles: set[Role]
) -> None:
    with pytest.raises(AccountError):
        OperatorAccounts(tmp_path / "operators.json").add(name, password, roles, None)
