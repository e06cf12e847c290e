"""One Party's gateway configuration: a TOML file, every key overridable from the environment.

Environment variables use the prefix ``GATEWAY_`` and ``__`` between nested keys, for example
``GATEWAY_BROKER__URL`` or ``GATEWAY_HTTP__PORT``. Relative paths in the file are resolved
against the file's own directory, so a config works from any working directory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.review import DEFAULT_THRESHOLD, ReviewMode

PartyId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]{1,31}$")]

_toml_path: ContextVar[Path | None] = ContextVar("_toml_path", default=None)


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Section):
    url: str = Field(description="AMQP URL of this Party's own broker (its vhost)")
    prefetch: int = Field(default=512, ge=1, le=65535)
    batch_size: int = Field(default=256, ge=1, le=4096)
    batch_linger_ms: float = Field(default=4.0, ge=0, le=1000)
    heartbeat_s: int = Field(default=15, ge=0)


class Counterparty(_Section):
    id: PartyId
    role: Literal["partner", "third-party"]
    url: str = Field(description="AMQP URL on the counterparty's broker, with a write-only user")
    exchange: str = "gw.inbound"
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


class ArchiveConfig(_Section):
    url: str = Field(description="sqlite:///path/to/file.db or postgresql://user@host/db")


class KeysConfig(_Section):
    signing_key: Path = Field(description="this Party's Ed25519 private key file (mode 0600)")


class LimitsConfig(_Section):
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_envelope_age_s: int = Field(default=24 * 3600, ge=1)
    max_clock_skew_s: int = Field(default=120, ge=0)
    receipt_overdue_s: int = Field(default=60, ge=1)
    max_attempts: int = Field(default=5, ge=1, le=100)
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


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    party: PartyId
    broker: BrokerConfig
    counterparties: list[Counterparty]
    http: HttpConfig = HttpConfig()
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _toml_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

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


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    token = _toml_path.set(path)
    try:
        yield
    finally:
        _toml_path.reset(token)


def _resolve_paths(config: GatewayConfig, base: Path) -> GatewayConfig:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    archive_url = config.archive.url
    prefix = "sqlite:///"
    if archive_url.startswith(prefix) and not archive_url.startswith(prefix + "/"):
        archive_url = prefix + str(resolve(Path(archive_url[len(prefix) :])))
    return config.model_copy(
        update={
            "keys": KeysConfig(signing_key=resolve(config.keys.signing_key)),
            "archive": ArchiveConfig(url=archive_url),
            "counterparties": [
                c.model_copy(update={"public_keys": [resolve(k) for k in c.public_keys]})
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
            tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        with _reading(path):
            config = GatewayConfig()
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc
    return _resolve_paths(config, path.parent.resolve())
