"""One Party's gateway configuration: a TOML file, every key overridable from the environment.

Environment variables use the prefix ``GATEWAY_`` and ``__`` between nested keys, for example
``GATEWAY_BROKER__URL``, ``GATEWAY_HTTP__PORT`` or ``GATEWAY_COUNTERPARTIES__0__URL``; with the
suffix ``_FILE`` they name a file holding the value, which is how secrets come in (see
``gateway.overrides``). Relative paths in the file are resolved against the file's own
directory, so a config works from any working directory.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts import MAX_FRAME_ENVELOPES
from gateway.core.review import DEFAULT_THRESHOLD, ReviewMode
from gateway.overrides import OverrideError, apply_environment

PartyId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]{1,31}$")]


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    ca: Path = Field(
        description="the CA certificate (or the broker's own certificate) the broker's "
        "certificate must chain to: pinned, the system's CAs are not consulted"
    )
    cert: Path = Field(description="this gateway's client certificate (PEM)")
    key: Path = Field(description="its private key (PEM, mode 0600)")
    key_password: SecretStr | None = Field(
        default=None, description="passphrase of an encrypted key; better from *_FILE"
    )


class Link(_Section):
    """How to reach one broker: over TLS with a client certificate, unless plain AMQP is
    explicitly allowed (development only)."""

    url: str = Field(description="amqps://user@host:5671/vhost (a password here is allowed)")
    password: SecretStr | None = Field(
        default=None, description="the broker user's password, when not in the URL"
    )
    tls: TlsConfig | None = None
    allow_plaintext: bool = Field(
        default=False, description="accept amqp:// without TLS: for development only"
    )

    @model_validator(mode="after")
    def _secured(self) -> Self:
        scheme = urlsplit(self.url).scheme
        if scheme == "amqps":
            if self.tls is None:
                raise ValueError(
                    "amqps:// needs a tls section with ca (the pinned CA), cert and key"
                )
        elif scheme == "amqp":
            if not self.allow_plaintext:
                raise ValueError(
                    "plain amqp:// is refused: use amqps:// with a tls section, or set "
                    "allow_plaintext = true (development only)"
                )
            if self.tls is not None:
                raise ValueError("a tls section needs an amqps:// URL")
        else:
            raise ValueError(f"url must be amqps:// (or amqp://), not {scheme or 'no scheme'}")
        return self

    def connection_url(self) -> str:
        """The URL with the password spliced in (never log it)."""
        if self.password is None:
            return self.url
        parts = urlsplit(self.url)
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        secret = quote(self.password.get_secret_value(), safe="")
        return urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}"))


class BrokerConfig(Link):
    url: str = Field(description="AMQP URL of this Party's own broker (its vhost)")
    prefetch: int = Field(default=512, ge=1, le=65535)
    batch_size: int = Field(default=256, ge=1, le=4096)
    batch_linger_ms: float = Field(default=4.0, ge=0, le=1000)
    heartbeat_s: int = Field(default=15, ge=0)
    inbound_prefetch: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="frames in hand per counterparty queue: bounds memory to this many frames",
    )


class Counterparty(Link):
    id: PartyId
    role: Literal["partner", "third-party"]
    url: str = Field(description="AMQP URL on the counterparty's broker, with a write-only user")
    public_keys: list[Path] = Field(default_factory=list)
    review: ReviewMode = Field(
        default="off",
        description="hold submissions to this counterparty for a person's release: 'on_match' "
        "those resembling another Party's information no consent covers, 'always' every one",
    )


class ReviewConfig(_Section):
    threshold: float = Field(
        default=DEFAULT_THRESHOLD,
        gt=0,
        le=1,
        description="resemblance score from which a submission is held under review 'on_match'",
    )
    roles: list[str] = Field(
        default_factory=lambda: ["liaison officer"],
        min_length=1,
        description="roster roles of this Party's officers who may release or refuse",
    )


class HttpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=9100, ge=0, le=65535)


class ConsoleConfig(_Section):
    """The operator console on the HTTP port (``/``); relative paths are to the config file."""

    enabled: bool = True
    operators_file: Path = Field(
        default=Path("operators.json"), description="operator accounts (mode 0600)"
    )
    session_key_file: Path = Field(
        default=Path("console-session.key"),
        description="Fernet key of the session cookies; made (mode 0600) if missing",
    )
    tls_cert: Path | None = Field(default=None, description="serve HTTPS with this certificate")
    tls_key: Path | None = None
    max_failed_logins: int = Field(default=5, ge=1)
    lockout_s: int = Field(default=300, ge=1)


class ArchiveConfig(_Section):
    url: str = Field(description="sqlite:///path/to/file.db or postgresql://user@host/db")


class KeysConfig(_Section):
    signing_key: Path = Field(description="this Party's Ed25519 private key file (mode 0600)")


class LimitsConfig(_Section):
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_frame_envelopes: int = Field(
        default=MAX_FRAME_ENVELOPES,
        ge=1,
        description="a frame from a counterparty with more envelopes is refused whole",
    )
    max_envelope_age_s: int = Field(default=24 * 3600, ge=1)
    max_clock_skew_s: int = Field(default=120, ge=0)
    receipt_overdue_s: int = Field(default=60, ge=1)
    max_attempts: int = Field(default=5, ge=1, le=100)
    inbound_envelopes_per_s: float = Field(
        default=2000,
        gt=0,
        description="per counterparty: envelopes (and refused frames) handled per second; "
        "over it, its frames wait in its queue",
    )
    inbound_burst: int = Field(
        default=20_000, ge=1, description="per counterparty: envelopes handled at once after idling"
    )
    submit_queue_max_length: int = Field(default=2_000_000, ge=1)

    @property
    def max_envelope_age(self) -> timedelta:
        return timedelta(seconds=self.max_envelope_age_s)

    @property
    def max_clock_skew(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_s)


class CheckpointsConfig(_Section):
    interval_s: float = Field(
        default=300.0,
        ge=0,
        description="seconds between signed checkpoints of the archive head; 0 sends none",
    )
    # A checkpoint tells its receiver how many records the archive holds, traffic with the
    # other Parties included: a third party gets them only when named here.
    to: list[PartyId] | None = Field(
        default=None, description="counterparties sent checkpoints; default: the partner only"
    )


class GatewayConfig(_Section):
    party: PartyId
    broker: BrokerConfig
    counterparties: list[Counterparty]
    http: HttpConfig = HttpConfig()
    console: ConsoleConfig = ConsoleConfig()
    archive: ArchiveConfig
    keys: KeysConfig
    limits: LimitsConfig = LimitsConfig()
    checkpoints: CheckpointsConfig = CheckpointsConfig()
    review: ReviewConfig = ReviewConfig()
    # Back-office systems (AMQP user_id) allowed to submit liaison.assignment: a system that
    # could would accredit an officer of its choosing.
    roster_admins: list[str] = Field(default_factory=list)
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("counterparties")
    @classmethod
    def _one_partner(cls, value: list[Counterparty]) -> list[Counterparty]:
        partners = [c for c in value if c.role == "partner"]
        if len(partners) != 1:
            raise ValueError("exactly one counterparty must have role 'partner'")
        ids = [c.id for c in value]
        if len(set(ids)) != len(ids):
            raise ValueError("counterparty ids must be unique")
        return value

    @model_validator(mode="after")
    def _checkpoints_to_counterparties(self) -> GatewayConfig:
        unknown = set(self.checkpoints.to or ()) - {c.id for c in self.counterparties}
        if unknown:
            raise ValueError(f"checkpoints.to names no counterparty: {', '.join(sorted(unknown))}")
        return self

    @property
    def checkpoint_recipients(self) -> list[str]:
        to = self.checkpoints.to
        return [self.partner.id] if to is None else list(to)

    @property
    def partner(self) -> Counterparty:
        return next(c for c in self.counterparties if c.role == "partner")

    def counterparty(self, party: str) -> Counterparty | None:
        return next((c for c in self.counterparties if c.id == party), None)


def _resolve_paths(config: GatewayConfig, base: Path) -> GatewayConfig:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    archive_url = config.archive.url
    prefix = "sqlite:///"
    if archive_url.startswith(prefix) and not archive_url.startswith(prefix + "/"):
        archive_url = prefix + str(resolve(Path(archive_url[len(prefix) :])))

    def resolve_tls(tls: TlsConfig | None) -> TlsConfig | None:
        if tls is None:
            return None
        return tls.model_copy(
            update={"ca": resolve(tls.ca), "cert": resolve(tls.cert), "key": resolve(tls.key)}
        )

    console = config.console
    return config.model_copy(
        update={
            "broker": config.broker.model_copy(update={"tls": resolve_tls(config.broker.tls)}),
            "console": console.model_copy(
                update={
                    "operators_file": resolve(console.operators_file),
                    "session_key_file": resolve(console.session_key_file),
                    "tls_cert": resolve(console.tls_cert) if console.tls_cert else None,
                    "tls_key": resolve(console.tls_key) if console.tls_key else None,
                }
            ),
            "keys": KeysConfig(signing_key=resolve(config.keys.signing_key)),
            "archive": ArchiveConfig(url=archive_url),
            "counterparties": [
                c.model_copy(
                    update={
                        "public_keys": [resolve(k) for k in c.public_keys],
                        "tls": resolve_tls(c.tls),
                    }
                )
                for c in config.counterparties
            ],
        }
    )


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"config key '{key}': {first['msg']}{suffix}"


def load_config(path: Path) -> GatewayConfig:
    """Read and validate one Party's configuration; raise ConfigError naming the bad key."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        apply_environment(document, os.environ, GatewayConfig.model_fields)
    except OverrideError as exc:
        raise ConfigError(f"{path}: environment variable {exc}") from None
    try:
        config = GatewayConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc
    return _resolve_paths(config, path.parent.resolve())
