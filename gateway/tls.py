"""The TLS side of a broker link: an SSL context that trusts only the pinned CA, checks the
broker's host name and presents this gateway's client certificate."""

from __future__ import annotations

import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig, Link, TlsConfig
from gateway.files import UnsafeFileError, require_not_writable_by_others


@dataclass(frozen=True)
class Endpoint:
    """What a connection to one broker needs: the URL (with its password: never log it) and,
    over TLS, the context."""

    url: str
    ssl_context: ssl.SSLContext | None

    @classmethod
    def of(cls, link: Link, key: str) -> Endpoint:
        """``key`` names the link's configuration section in error messages."""
        context = None if link.tls is None else client_context(link.tls, f"{key}.tls")
        return cls(link.connection_url(), context)


def local_endpoint(config: GatewayConfig) -> Endpoint:
    """This Party's own broker, as the gateway's user."""
    return Endpoint.of(config.broker, "broker")


def client_context(tls: TlsConfig, key: str) -> ssl.SSLContext:
    """Refuse (ConfigError, one line) pinned files others may rewrite and a private key others
    may read; then the context. With a CA file given, the system's CAs are not loaded."""
    _check(key, tls)
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
        password = None if tls.key_password is None else tls.key_password.get_secret_value()
        context.load_cert_chain(str(tls.cert), str(tls.key), password=password)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"config key '{key}': cannot load the CA, certificate or key: {_reason(exc)}"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already asks for both; set here so that no later edit loses them.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _check(key: str, tls: TlsConfig) -> None:
    try:
        require_not_writable_by_others(tls.ca, f"{key}.ca")
        require_not_writable_by_others(tls.cert, f"{key}.cert")
        _require_owner_only(tls.key, f"{key}.key")
    except UnsafeFileError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"config key '{key}': {exc.filename}: {exc.strerror}") from None


def _require_owner_only(path: Path, what: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UnsafeFileError(
            f"{what} {path} is accessible by group or others (mode {mode:04o}); "
            f"a private key must be its owner's only: chmod 600 {path}"
        )


def _reason(exc: ssl.SSLError | OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return f"{exc.filename or ''} {exc.strerror or exc}".strip()
