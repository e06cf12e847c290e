"""A local network of Parties for integration tests: keys, config files, gateways, desks.

CICA lives on vhost party-a, SCO-RATS on party-b and the third party UNOCT on party-c, as in
deploy/local; each test gets fresh keys, fresh archives and purged queues. The gateways connect
over TLS with the local set-up's client certificates (deploy/local/services.sh); the desks, which
are not the gateway, stay on plain loopback.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from gateway import topology
from gateway.config import GatewayConfig, load_config
from gateway.core.keys import generate_key_pair
from gateway.service import Gateway
from gateway.workers.ports import Decisions
from tests.support.broker import Collector

# GW_TEST_VHOST_PREFIX lets several test runs share one broker without touching each other's
# queues (tests/support/vhosts.py creates the prefixed copies of the local vhosts).
PREFIX = os.environ.get("GW_TEST_VHOST_PREFIX", "")
PARTIES = {
    "CICA": (PREFIX + "party-a", "cica", "case-desk"),
    "SCO-RATS": (PREFIX + "party-b", "sco-rats", "analysis-desk"),
    "UNOCT": (PREFIX + "party-c", "unoct", "unoct-desk"),
}
PARTNERS = {"CICA": "SCO-RATS", "SCO-RATS": "CICA", "UNOCT": "CICA"}
HOST = "127.0.0.1:5672"
TLS_HOST = "127.0.0.1:5671"
TLS_DIR = Path(os.environ.get("GW_LOCAL_TLS_DIR", "/var/lib/gateway-local-tls"))


def tls_lines(section: str, user: str, directory: Path = TLS_DIR) -> list[str]:
    """A ``[section.tls]`` table: the local CA pinned, ``user``'s client certificate."""
    return [
        f"[{section}.tls]",
        f'ca = "{directory / "ca.pem"}"',
        f'cert = "{directory / (user + ".pem")}"',
        f'key = "{directory / (user + ".key")}"',
    ]


def without_tls(path: Path, section: str, user: str) -> None:
    """Remove the first ``[section.tls]`` table for ``user`` from the config at ``path``."""
    table = "\n".join(tls_lines(section, user)) + "\n"
    path.write_text(path.read_text().replace(table, "", 1))


def key_id(party: str) -> str:
    return f"{party}-test-1"


def make_keys(directory: Path, now: datetime | None = None) -> None:
    start = (now or datetime.now(UTC)) - timedelta(days=1)
    for party in PARTIES:
        generate_key_pair(party, directory, key_id=key_id(party), valid_from=start)


def config_text(
    party: str,
    keys: Path,
    archive_url: str,
    *,
    signing_key: Path | None = None,
    extra_public_keys: Mapping[str, Sequence[Path]] | None = None,
    roster_admins: Sequence[str] | None = None,
    review: Mapping[str, str] | None = None,
    **limits: Any,
) -> str:
    """One Party's config; ``signing_key`` replaces the default key, ``extra_public_keys``
    pins more public keys of a counterparty (rotation, expired keys) beside its default one.
    ``roster_admins`` defaults to the Party's desk; ``review`` sets a counterparty's review mode
    (a third party's is ``on_match`` unless given, as in deploy/local)."""
    vhost, slug, desk = PARTIES[party]
    signing_key = signing_key or keys / (key_id(party) + ".key")
    extra = extra_public_keys or {}
    admins = [desk] if roster_admins is None else list(roster_admins)
    lines = [
        f'party = "{party}"',
        f"roster_admins = {json.dumps(admins)}",
        "[broker]",
        f'url = "amqps://{slug}-gateway:{slug}-gateway@{TLS_HOST}/{vhost}"',
        "prefetch = 512",
        "batch_size = 128",
        "batch_linger_ms = 3",
        "heartbeat_s = 5",
        *tls_lines("broker", f"{slug}-gateway"),
        "[http]",
        "port = 0",
        "[archive]",
        f'url = "{archive_url}"',
        "[keys]",
        f'signing_key = "{signing_key}"',
    ]
    if limits:
        lines.append("[limits]")
        lines += [f"{name} = {value}" for name, value in limits.items()]
    for other, (other_vhost, _, _) in PARTIES.items():
        if other == party:
            continue
        role = "partner" if PARTNERS[party] == other else "third-party"
        default_review = "on_match" if role == "third-party" else "off"
        public_keys = [keys / (key_id(other) + ".pub.json"), *extra.get(other, ())]
        lines += [
            "[[counterparties]]",
            f'id = "{other}"',
            f'role = "{role}"',
            f'url = "amqps://{slug}-peer:{slug}-peer@{TLS_HOST}/{other_vhost}"',
            f"public_keys = {json.dumps([str(p) for p in public_keys])}",
            f'review = "{(review or {}).get(other, default_review)}"',
            *tls_lines("counterparties", f"{slug}-peer"),
        ]
    return "\n".join(lines) + "\n"


def write_config(
    directory: Path,
    party: str,
    keys: Path,
    archive_url: str | None = None,
    *,
    signing_key: Path | None = None,
    extra_public_keys: Mapping[str, Sequence[Path]] | None = None,
    roster_admins: Sequence[str] | None = None,
    review: Mapping[str, str] | None = None,
    **limits: Any,
) -> Path:
    _, slug, _ = PARTIES[party]
    url = archive_url or f"sqlite:///{directory / (slug + '.db')}"
    path = directory / f"{slug}.toml"
    text = config_text(
        party,
        keys,
        url,
        signing_key=signing_key,
        extra_public_keys=extra_public_keys,
        roster_admins=roster_admins,
        review=review,
        **limits,
    )
    path.write_text(text)
    return path


@dataclass
class Desk:
    """A back-office system: publishes submissions as its own broker user."""

    party: str
    connection: AbstractConnection | None = None
    channel: AbstractChannel | None = None
    user: str = field(init=False)

    def __post_init__(self) -> None:
        self.user = PARTIES[self.party][2]

    async def open(self) -> None:
        vhost = PARTIES[self.party][0]
        url = f"amqp://{self.user}:{self.user}@{HOST}/{vhost}"
        self.connection = await aio_pika.connect(url)
        self.channel = await self.connection.channel(publisher_confirms=True)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def publish_raw(
        self,
        body: bytes,
        *,
        message_id: str | None = None,
        content_type: str | None = "application/json",
        routing_key: str = "information.share",
        user_id: str | None = "",
        headers: dict[str, Any] | None = None,
    ) -> None:
        assert self.channel is not None
        exchange = await self.channel.get_exchange(topology.SUBMIT, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                content_type=content_type,
                user_id=self.user if user_id == "" else user_id,
                headers=headers,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )

    async def submit(self, submission: dict[str, Any], message_id: str | None = None) -> str:
        message_id = message_id or uuid.uuid4().hex
        await self.publish_raw(
            json.dumps(submission).encode(),
            message_id=message_id,
            routing_key=submission.get("type", "unknown"),
        )
        return message_id


def assignment(officer: str, authorization: str = "MS-CONSENT-2017-09") -> dict[str, Any]:
    return {
        "action": "assign",
        "officer": {
            "id": officer,
            "name": f"Officer {officer}",
            "role": "liaison officer",
            "contact": f"{officer}@example.org",
        },
        "valid_from": "2020-01-01",
        "valid_to": None,
        "authorization": {"reference": authorization},
    }


def submission(
    type_: str,
    recipient: str,
    body: dict[str, Any],
    *,
    officer: str | None = None,
    derived_from: list[str] | None = None,
    correlation_id: str | None = None,
    pre_approved: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "type": type_,
        "recipient": recipient,
        "officer": officer,
        "correlation_id": correlation_id,
        "in_reply_to": None,
        "derived_from": derived_from or [],
        "handling": {"onward": "consent-required", "pre_approved": pre_approved or []},
        "body": body,
    }


def share(recipient: str, text: str, *, officer: str = "lo-0001", **kwargs: Any) -> dict[str, Any]:
    body = {
        "subject": {"en": "Exchange of information"},
        "text": {"en": text},
        "topics": ["counter-terrorism"],
        "attachments": kwargs.pop("attachments", []),
    }
    return submission("information.share", recipient, body, officer=officer, **kwargs)


async def through_sentinel(desk: Desk, recipient: str, inbox: Collector) -> str:
    """Submit one more share and wait for it on ``inbox`` (the path the earlier ones took).

    Once it has arrived, anything the earlier submissions were going to put there (a late
    duplicate, say) has had its turn: negative checks on ``inbox`` go after this.
    """
    sentinel = await desk.submit(share(recipient, "The sentinel, submitted last."))
    await inbox.wait_for(
        lambda m: json.loads(m.body)["originator"]["submission_id"] == sentinel,
        what="the sentinel share",
    )
    return sentinel


@dataclass
class RunningParty:
    party: str
    config_path: Path
    gateway: Gateway | None = None
    decisions: Decisions | None = None  # other decision functions, for fault tests

    @property
    def config(self) -> GatewayConfig:
        return load_config(self.config_path)

    async def start(self) -> Gateway:
        self.gateway = Gateway(self.config, self.decisions)
        await self.gateway.start()
        return self.gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None
