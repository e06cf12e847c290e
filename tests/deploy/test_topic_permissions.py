"""The topic permissions of definitions.json against the keys the gateway and its own tools
use: each system may bind its own statuses and the delivery keys of the demo, never '#'."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from contracts.amqp import deliver_routing_key, status_routing_key
from contracts.registry import submittable_types

DEFINITIONS = Path(__file__).parents[2] / "deploy" / "rabbitmq" / "definitions.json"


def _topic_permissions() -> list[dict[str, str]]:
    permissions: list[dict[str, str]] = json.loads(DEFINITIONS.read_text())["topic_permissions"]
    return permissions


def _read(user: str, exchange: str) -> re.Pattern[str]:
    [permission] = [
        p for p in _topic_permissions() if (p["user"], p["exchange"]) == (user, exchange)
    ]
    # RabbitMQ expands {username} before matching.
    return re.compile(permission["read"].replace("{username}", re.escape(user)))


BACK_OFFICE = sorted({p["user"] for p in _topic_permissions()})


@pytest.mark.parametrize("user", BACK_OFFICE)
def test_a_system_binds_its_own_statuses_only(user: str) -> None:
    status = _read(user, "gw.status")
    assert status.match(f"{user}.#")  # what gateway.submission_client binds
    assert status.match(status_routing_key(user, "rejected", "information.share"))
    for other in [*BACK_OFFICE, "operator", "unknown"]:
        if other != user:
            assert not status.match(f"{other}.#")
    assert not status.match("#")
    assert not status.match("*.rejected.#")


@pytest.mark.parametrize("user", BACK_OFFICE)
def test_a_system_binds_typed_deliveries_but_no_catch_all(user: str) -> None:
    deliver = _read(user, "gw.deliver")
    for message_type in submittable_types():  # the keys gateway.demo binds
        assert deliver.match(deliver_routing_key("*", message_type))
    for catch_all in ("#", "*.#", "#.#", "SCO-RATS.#"):
        assert not deliver.match(catch_all)


def test_every_back_office_user_has_both_topic_permissions() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    desks = {p["user"] for p in definitions["permissions"] if "gw\\.submit" in p["write"]}
    assert desks == set(BACK_OFFICE)
    for user in desks:
        exchanges = {p["exchange"] for p in _topic_permissions() if p["user"] == user}
        assert exchanges == {"gw.status", "gw.deliver"}
