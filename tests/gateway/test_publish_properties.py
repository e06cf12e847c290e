"""What the transaction publishes straight on the aiormq channel is what aio-pika would send."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from gateway import eventloop
from gateway.amqp import to_message, to_properties
from gateway.core import publications
from gateway.core.publications import Outgoing

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "item",
    [
        publications.status(
            "sent", system="case-desk", at=AT, submission_id="s-1", envelope_id="e-1", type="t"
        ),
        publications.delivery(b"{}", envelope_id="e-2", provider="CICA", type="information.share"),
        Outgoing(
            exchange="gw.status",
            routing_key="k",
            body=b"x",
            message_id="m" * 300,  # longer than a short string: dropped, not a failed commit
            correlation_id="c-1",
            timestamp=AT,
        ),
    ],
)
def test_the_properties_are_those_of_the_aio_pika_message(item: Outgoing) -> None:
    expected = to_message(item).properties
    properties = to_properties(item)
    assert properties.timestamp is not None
    if item.timestamp is None:
        # Both stamp the current time; only that may differ.
        expected.timestamp = properties.timestamp
    assert properties.marshal() == expected.marshal()  # the same bytes on the wire
    assert properties.delivery_mode == 2


def test_commands_run_on_uvloop_when_it_is_installed() -> None:
    if (
        os.environ.get("CI", "").lower() != "true"
    ):  # CI installs the speed extra: uvloop must be there
        pytest.importorskip("uvloop")

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(loop_module()).startswith("uvloop")
