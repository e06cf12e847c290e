"""The console's operator accounts: names, roles and argon2 password hashes in one 0600 file.

Roles: ``viewer`` sees everything and changes nothing; ``operator`` releases, discards and
replays; ``consent-officer`` grants, denies and revokes consent. An account may hold several.
An account may name the liaison officer id its consent decisions are signed for.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["viewer", "operator", "consent-officer"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
MIN_PASSWORD_LENGTH: Final = 12

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH: Final = _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Operator:
    name: str
    roles: frozenset[Role]
    officer: str | None
    password_hash: str

    def may(self, role: Role) -> bool:
        return role in self.roles


class OperatorAccounts:
    """The accounts file; every change rewrites it atomically with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Operator]:
        if not self.path.is_file():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return {
            name: Operator(
                name=name,
                roles=frozenset(r for r in entry["roles"] if r in ROLES),
                officer=entry.get("officer"),
                password_hash=entry["password_hash"],
            )
            for name, entry in data.get("operators", {}).items()
        }

    def _save(self, operators: dict[str, Operator]) -> None:
        data = {
            "operators": {
                op.name: {
                    "roles": sorted(op.roles),
                    "officer": op.officer,
                    "password_hash": op.password_hash,
                }
                for op in operators.values()
            }
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".operators-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(self, name: str, password: str, roles: set[Role], officer: str | None) -> Operator:
        """Create or replace the account ``name``."""
        if not name or not name.isprintable() or len(name) > 64:
            raise AccountError("an operator name is 1 to 64 printable characters")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
        if not roles:
            raise AccountError(f"give at least one role of {', '.join(ROLES)}")
        operators = self.load()
        operator = Operator(name, frozenset(roles), officer, _hasher.hash(password))
        operators[name] = operator
        self._save(operators)
        return operator

    def remove(self, name: str) -> bool:
        operators = self.load()
        if operators.pop(name, None) is None:
            return False
        self._save(operators)
        return True

    def authenticate(self, name: str, password: str) -> Operator | None:
        operator = self.load().get(name)
        try:
            _hasher.verify(operator.password_hash if operator else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return operator
