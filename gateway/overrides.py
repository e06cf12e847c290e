"""The environment's part of a configuration: ``GATEWAY_*`` variables, and ``GATEWAY_*_FILE``
variables naming a file that holds the value (a secret: Docker secrets under /run/secrets,
systemd credentials under $CREDENTIALS_DIRECTORY, a Kubernetes secret volume).

``__`` separates nested keys and a number picks an element of a list, so
``GATEWAY_COUNTERPARTIES__0__PASSWORD_FILE=/run/secrets/peer`` sets the password of the first
``[[counterparties]]`` of the file. Keys are case-insensitive. A value that starts with ``[`` or
``{`` is read as JSON (a list of public key paths, say). Error messages name the variable and the
file, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

PREFIX = "GATEWAY_"
NESTING = "__"
FILE_SUFFIX = "_FILE"
_MAX_SECRET_BYTES = 64 * 1024


class OverrideError(Exception):
    """An environment variable that cannot be applied; names the variable."""


def apply_environment(
    document: dict[str, Any], environ: Mapping[str, str], sections: Collection[str]
) -> dict[str, Any]:
    """``document`` (the parsed file) with every ``GATEWAY_*`` variable whose first key is one
    of ``sections`` applied over it; other ``GATEWAY_*`` variables are not the gateway's."""
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX):
            continue
        key = name[len(PREFIX) :].lower()
        is_file = key.endswith(FILE_SUFFIX.lower())
        if is_file:
            key = key[: -len(FILE_SUFFIX)]
        path = key.split(NESTING)
        if path[0] not in sections:
            continue
        value = _read_secret(name, Path(environ[name])) if is_file else _decode(environ[name])
        _set(document, name, path, value)
    return document


def _decode(text: str) -> Any:
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _read_secret(variable: str, path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise OverrideError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_SECRET_BYTES:
        raise OverrideError(f"{variable}: {path} is too large to hold one value")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OverrideError(f"{variable}: {path} is not UTF-8 text") from None
    # Secret files are usually written with a trailing newline that is not part of the value.
    return text.rstrip("\r\n")


def _set(document: dict[str, Any], variable: str, path: list[str], value: Any) -> None:
    node: Any = document
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if not part:
            raise OverrideError(f"{variable}: empty key between '{NESTING}'")
        if isinstance(node, list):
            node = _element(node, variable, part)
            if last:
                raise OverrideError(f"{variable}: names a whole list element; name one of its keys")
            continue
        if not isinstance(node, dict):
            raise OverrideError(f"{variable}: {'.'.join(path[:depth])} is not a section")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def _element(items: list[Any], variable: str, part: str) -> Any:
    if not part.isdigit():
        raise OverrideError(f"{variable}: '{part}' must be a list index (0, 1, ...)")
    index = int(part)
    if index >= len(items):
        raise OverrideError(
            f"{variable}: the file has {len(items)} element(s) there, so there is no index {index}"
        )
    return items[index]
