"""``gateway submit``'s TLS options: the pinned CA and the system's client certificate and key,
as the gateway's own ``tls`` table has them, made into a context by ``gateway.tls``.

Each problem is one line naming the fix: TLS options with a plain URL, an ``amqps://`` URL
without them, a file that is not there, a key others may read.
"""

from __future__ import annotations

import argparse
import os
import ssl
from pathlib import Path
from typing import Final

# (option name, what the file holds); each option's default comes from $GATEWAY_SUBMIT_TLS_<NAME>.
FILES: Final = (
    ("ca", "the CA certificate the broker's certificate must chain to (pinned)"),
    ("cert", "this system's client certificate, PEM (common name = its broker user)"),
    ("key", "its private key, PEM, mode 0600"),
)
VARIABLE: Final = "GATEWAY_SUBMIT_TLS_{}"
HOW_TO_GET: Final = "the broker's CA issues them, e.g. gateway certs local --out DIR --user USER"


class TlsUsageError(ValueError):
    """One line for stderr: what is wrong with the TLS options and how to fix it."""


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    for name, what in FILES:
        variable = VARIABLE.format(name.upper())
        default = os.environ.get(variable)
        parser.add_argument(
            f"--tls-{name}",
            type=Path,
            default=Path(default) if default else None,
            metavar="FILE",
            help=f"{what}; for an amqps:// URL (default: ${variable})",
        )
    parser.add_argument(
        "--tls-key-password-file",
        type=Path,
        metavar="FILE",
        help="a file holding the passphrase of an encrypted key",
    )


def tls_context(url: str, args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context for ``url``: None for plain ``amqp://``; TlsUsageError when the options do
    not fit the URL or the files cannot be used."""
    paths = {name: getattr(args, f"tls_{name}") for name, _ in FILES}
    if not url.lower().startswith("amqps://"):
        if any(paths.values()):
            raise TlsUsageError(
                "the --tls-* options need an amqps:// URL (the broker's TLS listener, "
                "e.g. amqps://USER:PASSWORD@HOST:5671/VHOST)"
            )
        return None
    missing = [
        f"--tls-{name} (${VARIABLE.format(name.upper())})"
        for name, path in paths.items()
        if path is None
    ]
    if missing:
        raise TlsUsageError(
            f"an amqps:// URL needs {', '.join(missing)}: the pinned CA and this system's "
            f"client certificate and key; {HOW_TO_GET}"
        )
    absent = [f"--tls-{name} {path}" for name, path in paths.items() if not path.is_file()]
    if absent:
        raise TlsUsageError(f"no such file: {', '.join(absent)}; {HOW_TO_GET}")
    return _context(paths, args.tls_key_password_file)


def _context(paths: dict[str, Path], password_file: Path | None) -> ssl.SSLContext:
    from pydantic import SecretStr

    from gateway.config import ConfigError, TlsConfig
    from gateway.tls import client_context

    try:
        password = password_file.read_text().strip() if password_file else None
    except OSError as exc:
        raise TlsUsageError(f"--tls-key-password-file {password_file}: {exc.strerror}") from None
    tls = TlsConfig(
        ca=paths["ca"],
        cert=paths["cert"],
        key=paths["key"],
        key_password=SecretStr(password) if password is not None else None,
    )
    try:
        return client_context(tls, "--tls")
    except ConfigError as exc:
        raise TlsUsageError(str(exc)) from None
