"""What operators see of running gateways: health, readiness, metrics and logs (issue 7)."""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest

from contracts.frame import encode_frame
from gateway import topology
from gateway.core.stamping import new_envelope_id
from gateway.logs import configure_logging
from gateway.service import Gateway
from tests.deploy.test_dashboard import (
    PROMETHEUS_SYNTHETIC,
    dashboard_queries,
    metric_names,
    recorded_names,
    rule_queries,
)
from tests.integration.conftest import Network
from tests.support.broker import Collector, Vhost, body_has
from tests.support.operations import cut_off, get, readyz, restore, scrape
from tests.support.parties import HOST, PARTIES, PREFIX, assignment, share, submission
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

# Text that only ever appears in message bodies: it must never reach a log line.
BODY_MARKER = "Body-text-4f2a9c"
CICA_PEER = "cica-peer"
ID_LIKE = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-")


async def start(network: Network, party: str, **limits: Any) -> Gateway:
    running = await network.start(party, **limits)
    assert running.gateway is not None
    return running.gateway


def of(collector: Collector, status: str, submission_id: str) -> bool:
    return any(
        s["status"] == status and s["submission_id"] == submission_id for s in collector.bodies()
    )


@dataclass
class Traffic:
    good: list[str]
    rejected: list[str]
    quarantined: str


async def push_traffic(network: Network, vhosts: dict[str, Vhost]) -> Traffic:
    """CICA -> SCO-RATS: good, rejected and quarantined submissions; a forged frame at SCO-RATS.

    Returns once every outcome is final: receipts back, rejections and the quarantine reported.
    """
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    at_cica = await vhosts["CICA"].bind_collector(topology.DELIVER, "SCO-RATS.#")
    at_sco_rats = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.#")
    desk_a, desk_b = await network.desk("CICA"), await network.desk("SCO-RATS")
    await desk_a.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-a")))
    await desk_b.submit(submission("liaison.assignment", "CICA", assignment("lo-b")))
    good = [
        await desk_a.submit(share("SCO-RATS", f"{BODY_MARKER} report {i}.", officer="lo-a"))
        for i in range(3)
    ]
    await desk_b.submit(share("CICA", f"{BODY_MARKER} from SCO-RATS.", officer="lo-b"))
    await desk_a.publish_raw(f"{BODY_MARKER} not json".encode(), message_id="garbage")
    wrong_type = json.dumps(share("SCO-RATS", f"{BODY_MARKER} as text.", officer="lo-a"))
    await desk_a.publish_raw(
        wrong_type.encode(), message_id="wrong-type", content_type="text/plain"
    )

    await wait_until(
        lambda: any(m.routing_key == "SCO-RATS.information.share" for m in at_cica.messages),
        message="SCO-RATS's share at CICA",
    )
    (received,) = [b for b in at_cica.bodies() if b["type"] == "information.share"]
    await wait_until(lambda: of(statuses, "sent", good[0]), message="CICA's own envelope sent")
    (own,) = [
        s["envelope_id"]
        for s in statuses.bodies()
        if (s["submission_id"], s["status"]) == (good[0], "sent")
    ]
    # Passing SCO-RATS's information on to UNOCT needs SCO-RATS's consent (CICA's own does
    # not): quarantined, and the block is SCO-RATS's alone.
    onward = share(
        "UNOCT", f"{BODY_MARKER} onward.", officer="lo-a", derived_from=[received["id"], own]
    )
    quarantined = await desk_a.submit(onward)

    await wait_until(lambda: len(at_sco_rats.messages) == 4, message="CICA's four at SCO-RATS")
    forged = {**at_sco_rats.bodies()[-1], "id": new_envelope_id()}
    await publish_as_cica_peer(encode_frame([forged]), "forged-frame")
    await publish_as_cica_peer(b"{not a frame", "garbage-frame")

    await wait_until(
        lambda: (
            all(of(statuses, "delivered", s) for s in good)
            and of(statuses, "blocked", quarantined)
            and of(statuses, "rejected", "garbage")
            and of(statuses, "rejected", "wrong-type")
        ),
        message="every outcome at CICA",
    )

    async def refused_at_sco_rats() -> bool:
        return await vhosts["SCO-RATS"].depth(topology.REJECTED) == 2

    await wait_until(refused_at_sco_rats, message="both forged frames refused at SCO-RATS")
    return Traffic(good, ["garbage", "wrong-type"], quarantined)


async def publish_as_cica_peer(body: bytes, message_id: str) -> None:
    """What only CICA's gateway may write: a frame on SCO-RATS's gw.inbound.CICA."""
    vhost = PARTIES["SCO-RATS"][0]
    connection = await aio_pika.connect(f"amqp://{CICA_PEER}:{CICA_PEER}@{HOST}/{vhost}")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        inbound = await channel.get_exchange(topology.inbound_from("CICA"), ensure=False)
        await inbound.publish(
            aio_pika.Message(body, message_id=message_id, content_type=topology.FRAME_CONTENT_TYPE),
            routing_key="",
        )


async def test_metrics_healthz_and_readyz_when_everything_is_up(network: Network) -> None:
    cica = await start(network, "CICA")

    async def scraped_healthy() -> bool:
        m = await scrape(cica)
        return (
            m.value("gateway_up") == 1
            and m.value("gateway_archive_up") == 1
            and m.value("gateway_signing_key_expiry_timestamp_seconds", key_id="CICA-test-1")
            > time.time()
        )

    # Before anyone probes /readyz: Prometheus only ever scrapes /metrics.
    await wait_until(scraped_healthy, timeout=3, message="archive and key gauges")

    status, body = await readyz(cica)
    assert status == 200, body
    assert body["ready"] is True
    assert body["checks"] == {
        "broker.local": True,
        "broker.SCO-RATS": True,
        "broker.UNOCT": True,
        "archive": True,
        "signing_key": True,
    }
    status, text = await get(cica, "/healthz")
    assert (status, json.loads(text)) == (200, {"status": "alive"})


async def test_readiness_follows_the_partner_broker(network: Network) -> None:
    cica = await start(network, "CICA")
    sco_rats_vhost = PARTIES["SCO-RATS"][0]
    await wait_until(lambda: _ready(cica), message="CICA ready")

    try:
        assert await cut_off(CICA_PEER, sco_rats_vhost) >= 1
        lost_at = time.monotonic()
        await wait_until(lambda: _not_ready(cica, "broker.SCO-RATS"), timeout=10, message="503")
        assert time.monotonic() - lost_at < 3
        status, body = await readyz(cica)
        assert status == 503
        assert body["ready"] is False
        assert body["not_ready"] == ["broker.SCO-RATS"]
        assert body["checks"]["broker.UNOCT"] is True
        down = await scrape(cica)
        assert down.value("gateway_broker_connected", broker="SCO-RATS") == 0
        assert down.value("gateway_broker_connected", broker="local") == 1
    finally:
        await restore(CICA_PEER, sco_rats_vhost, PREFIX)

    await wait_until(lambda: _ready(cica), timeout=15, message="200 again")
    up = await scrape(cica)
    assert up.value("gateway_broker_connected", broker="SCO-RATS") == 1
    assert up.value("gateway_broker_reconnects_total", broker="SCO-RATS") >= 1
    assert up.value("gateway_broker_reconnects_total", broker="local") == 0


async def test_in_flight_shows_a_held_batch_and_clears_when_it_is_given_back(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    cica = await start(network, "CICA")
    sco_rats_vhost = PARTIES["SCO-RATS"][0]
    await wait_until(lambda: _ready(cica), message="CICA ready")
    try:
        await cut_off(CICA_PEER, sco_rats_vhost)
        await wait_until(lambda: _not_ready(cica, "broker.SCO-RATS"), message="link down")
        desk = await network.desk("CICA")
        await desk.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-a")))

        async def held() -> bool:
            m = await scrape(cica)
            return m.value("gateway_in_flight_messages", direction="outbound") == 1

        # Archived, but SCO-RATS's broker cannot confirm it: the worker holds the batch.
        await wait_until(held, message="one submission in flight")
        await network.parties["CICA"].stop()
    finally:
        await restore(CICA_PEER, sco_rats_vhost, PREFIX)

    assert (
        cica.metrics.registry.get_sample_value(
            "gateway_in_flight_messages", {"direction": "outbound"}
        )
        == 0
    )
    assert await vhosts["CICA"].depth(topology.SUBMIT) == 1


async def _ready(gateway: Gateway) -> bool:
    status, _ = await readyz(gateway)
    return status == 200


async def _not_ready(gateway: Gateway, check: str) -> bool:
    status, body = await readyz(gateway)
    return status == 503 and check in body["not_ready"]


async def test_metrics_count_every_outcome_with_bounded_labels(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    cica, sco_rats = await start(network, "CICA"), await start(network, "SCO-RATS")
    await push_traffic(network, vhosts)

    async def settled() -> bool:
        m = await scrape(cica)
        return (
            m.value("gateway_receipts_pending", counterparty="SCO-RATS") == 0
            and m.value("gateway_backlog_messages", queue="gw.rejected") == 2
            and m.value("gateway_backlog_messages", queue="gw.quarantine") == 1
        )

    # The backlog is read from the broker every few seconds.
    await wait_until(settled, timeout=15, message="receipts settled and backlog observed")
    m = await scrape(cica)

    out = {"direction": "outbound", "counterparty": "SCO-RATS"}
    assert (
        m.value("gateway_messages_total", **out, type="information.share", outcome="forwarded") == 3
    )
    assert (
        m.value("gateway_messages_total", **out, type="liaison.assignment", outcome="forwarded")
        == 1
    )
    assert m.value("gateway_messages_total", direction="outbound", outcome="rejected") == 2
    assert m.matching("gateway_rejections_total", direction="outbound") == {
        frozenset({("direction", "outbound"), ("reason", "schema.invalid_json")}): 1,
        frozenset({("direction", "outbound"), ("reason", "submission.wrong_content_type")}): 1,
    }
    assert (
        m.value(
            "gateway_messages_total",
            direction="outbound",
            type="information.share",
            counterparty="UNOCT",
            outcome="quarantined",
        )
        == 1
    )
    assert m.value("gateway_quarantined_total", direction="outbound", reason="consent.missing") == 1
    blocks = {s: v for s, v in m.matching("gateway_consent_blocks_total").items() if v}
    assert blocks == {frozenset({("provider", "SCO-RATS"), ("recipient", "UNOCT")}): 1}
    inbound = {"direction": "inbound", "counterparty": "SCO-RATS", "outcome": "delivered"}
    assert m.value("gateway_messages_total", **inbound, type="information.share") == 1
    assert m.value("gateway_messages_total", **inbound, type="liaison.assignment") == 1
    # Every forwarded envelope's receipt came back: round trips observed, none pending.
    assert m.value("gateway_end_to_end_latency_seconds_count", **out) == 4
    assert m.value("gateway_receipts_pending_overdue", counterparty="SCO-RATS") == 0
    assert m.value("gateway_in_flight_messages") == 0

    for broker in ("local", "SCO-RATS", "UNOCT"):
        assert m.value("gateway_broker_connected", broker=broker) == 1, broker
    assert m.value("gateway_archive_batch_size_count") >= 1
    # Records: 2 assignments, 3 shares out, 1 in, 2 rejections, 1 quarantine, 4 receipts in,
    # 1 receipt out; batches may hold several.
    assert m.value("gateway_archive_batch_size_sum") >= 14
    assert m.value("gateway_archive_write_seconds_count") == m.value(
        "gateway_archive_batch_size_count"
    )
    assert m.value("gateway_stage_seconds_count", stage="publish") >= 1
    (build,) = m.matching("gateway_build_info")
    assert dict(build)["party"] == "CICA"
    assert dict(build)["version"]
    expiry = m.value("gateway_signing_key_expiry_timestamp_seconds", key_id="CICA-test-1")
    assert 0 < expiry - time.time() < 3 * 366 * 86400

    s = await scrape(sco_rats)
    from_cica = {"direction": "inbound", "counterparty": "CICA", "outcome": "delivered"}
    assert s.value("gateway_messages_total", **from_cica, type="information.share") == 3
    assert s.value("gateway_messages_total", **from_cica, type="liaison.assignment") == 1
    assert s.matching("gateway_rejections_total", direction="inbound") == {
        frozenset({("direction", "inbound"), ("reason", "signature.bad")}): 1,
        frozenset({("direction", "inbound"), ("reason", "schema.invalid_json")}): 1,
    }
    assert s.value("gateway_end_to_end_latency_seconds_count", direction="inbound") == 4

    # Bounded label values: no message id (hex) or envelope id (uuid) in any label set.
    for scrape_ in (m, s):
        for _, labels in scrape_.samples:
            assert not any(ID_LIKE.search(value) for _, value in labels), labels


async def test_receipts_overdue_then_settled(network: Network, vhosts: dict[str, Vhost]) -> None:
    statuses = await vhosts["CICA"].bind_collector(topology.STATUS)
    cica = await start(network, "CICA", receipt_overdue_s=1)
    desk = await network.desk("CICA")
    await desk.submit(submission("liaison.assignment", "SCO-RATS", assignment("lo-a")))
    sent = await desk.submit(share("SCO-RATS", "Waiting for a receipt.", officer="lo-a"))

    async def overdue(count: int) -> bool:
        m = await scrape(cica)
        return (
            m.value("gateway_receipts_pending_overdue", counterparty="SCO-RATS") == count
            and m.value("gateway_receipts_pending", counterparty="SCO-RATS") == count
        )

    # SCO-RATS's gateway is not running: the envelopes wait in its gw.inbound, unreceipted.
    await wait_until(lambda: overdue(2), timeout=10, message="two receipts overdue")
    # The gauges are set before the overdue status is published: the status needs its own wait.
    await statuses.wait_for(body_has(status="overdue", submission_id=sent), what="overdue status")
    assert (await scrape(cica)).value(
        "gateway_receipts_overdue_total", counterparty="SCO-RATS"
    ) == 2

    await start(network, "SCO-RATS")
    await wait_until(lambda: overdue(0), timeout=10, message="receipts settled")
    m = await scrape(cica)
    assert m.value("gateway_receipts_overdue_total", counterparty="SCO-RATS") == 2
    round_trip = {"direction": "outbound", "counterparty": "SCO-RATS"}
    assert m.value("gateway_end_to_end_latency_seconds_count", **round_trip) == 2
    # From CICA's decision to SCO-RATS's receipt: at least the overdue time.
    assert m.value("gateway_end_to_end_latency_seconds_sum", **round_trip) >= 2 * 1.0


async def test_every_metric_the_dashboard_and_rules_query_is_exported(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    cica = await start(network, "CICA")
    await start(network, "SCO-RATS")
    await push_traffic(network, vhosts)

    exported = (await scrape(cica)).names()

    queried = {
        (where, name)
        for where, expr in dashboard_queries() + rule_queries()
        for name in metric_names(expr)
    }
    missing = {
        (where, name)
        for where, name in queried
        if name not in exported | PROMETHEUS_SYNTHETIC | recorded_names()
    }
    assert not missing
    assert len({name for _, name in queried} & exported) >= 15


async def test_logs_are_json_lines_with_context_and_no_bodies_or_secrets(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    stream = io.StringIO()
    configure_logging(format="json", stream=stream)
    cica = await start(network, "CICA")
    await start(network, "SCO-RATS")
    traffic = await push_traffic(network, vhosts)
    # A lost link logs one line per reconnect attempt, with the delay before the next.
    sco_rats_vhost = PARTIES["SCO-RATS"][0]
    try:
        await cut_off(CICA_PEER, sco_rats_vhost)
        await wait_until(
            lambda: '"broker.reconnecting"' in stream.getvalue(), message="a reconnect attempt"
        )
    finally:
        await restore(CICA_PEER, sco_rats_vhost, PREFIX)
    await wait_until(lambda: _ready(cica), timeout=15, message="CICA ready again")

    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) > 20
    assert all({"event", "level", "timestamp"} <= line.keys() for line in lines)

    def events(name: str, **fields: object) -> list[dict[str, Any]]:
        return [
            line
            for line in lines
            if line["event"] == name and all(line.get(k) == v for k, v in fields.items())
        ]

    (sent,) = events("outbound.decided", message_id=traffic.good[0])
    assert sent["decision"] == "accepted"
    assert sent["type"] == "information.share"
    assert sent["recipient"] == "SCO-RATS"
    assert sent["envelope_id"]
    (rejected,) = events("outbound.decided", message_id=traffic.rejected[0])
    assert (rejected["decision"], rejected["reason"]) == ("rejected", "schema.invalid_json")
    (blocked,) = events("outbound.decided", message_id=traffic.quarantined)
    assert (blocked["decision"], blocked["reason"]) == ("blocked", "consent.missing")
    assert blocked["recipient"] == "UNOCT"
    (delivered,) = events("inbound.delivered", envelope_id=sent["envelope_id"])
    assert (delivered["provider"], delivered["type"]) == ("CICA", "information.share")
    assert delivered["decision"] == "delivered"
    (forged,) = events("inbound.refused", message_id="forged-frame")
    assert (forged["reason"], forged["provider"]) == ("signature.bad", "CICA")
    assert events("inbound.frame_refused", message_id="garbage-frame", reason="schema.invalid_json")

    assert BODY_MARKER not in text
    attempts = events("broker.reconnecting", connection="gateway CICA to SCO-RATS")
    assert attempts[0]["retry_in_s"] == 1.0
    # The libraries' own per-attempt lines (with the URL) are replaced by the gateway's.
    assert not [line for line in lines if line["event"].startswith("Connection attempt to")]
    for running in network.parties.values():
        config = running.config
        for url in [config.broker.url, *(c.url for c in config.counterparties)]:
            password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
            assert f":{password}@" not in text
