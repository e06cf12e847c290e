"""A hostile peer costs the gateway a bounded amount of work (issue 11).

CICA's write-only peer user floods SCO-RATS's inbound queue with frames of empty envelopes, the
way the issue's hostile peer did, then sends one genuine envelope. Each flood frame must leave
one rejection record (with its hash, never the whole payload) and one copy in gw.rejected; the
genuine envelope must be delivered within a few seconds; the gateway's memory must stay bounded
and its broker connection must never be lost (heartbeat 5 s in the tests' configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway import junk, topology
from gateway.service import Gateway
from gateway.signing import sign_envelope
from tests.integration.conftest import Network
from tests.integration.test_trust import (
    accreditation,
    envelope,
    peer,
    records,
    running,
    signing_key,
)
from tests.support.broker import Vhost
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker

DELIVERY_DEADLINE_S = 8.0


def empty_envelopes(count: int) -> bytes:
    """A frame of ``count`` empty envelopes: three bytes each, no signature needed to send."""
    return b'{"frame":1,"envelopes":[' + b"{}," * (count - 1) + b"{}]}"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@dataclass
class RssPeak:
    baseline: int
    peak: int = 0

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)


@contextlib.asynccontextmanager
async def rss_watch() -> AsyncIterator[RssPeak]:
    """The highest resident size of this process (gateway and test) while the block runs."""
    watch = RssPeak(baseline=rss_bytes())

    async def sample() -> None:
        while True:
            watch.peak = max(watch.peak, rss_bytes())
            await asyncio.sleep(0.02)

    task = asyncio.ensure_future(sample())
    try:
        yield watch
    finally:
        task.cancel()
        watch.peak = max(watch.peak, rss_bytes())


def reconnects(gateway: Gateway, broker: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "gateway_broker_reconnects_total", {"broker": broker}
    )
    assert value is not None
    return value


async def flood_then_genuine(
    network: Network, vhosts: dict[str, Vhost], frame: bytes, memory_bound: int
) -> None:
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.#")
    await network.start("SCO-RATS")
    gateway = running(network, "SCO-RATS")
    cica = signing_key(network.keys, "CICA")
    genuine = sign_envelope(envelope(), cica)
    digest = hashlib.sha256(frame).hexdigest()
    async with rss_watch() as memory, peer("cica-peer", "SCO-RATS") as send:
        await send(sign_envelope(accreditation("lo-0001"), cica))
        await send(raw=frame)
        sent_at = time.monotonic()
        await send(genuine)
        await wait_until(
            lambda: any(m.message_id == genuine["id"] for m in inbox.messages),
            timeout=DELIVERY_DEADLINE_S,
            message="the genuine envelope delivered after the flood",
        )
        delivered_after = time.monotonic() - sent_at
        await wait_until(lambda: len(rejected.messages) >= 1, message="the flood's rejection")

    assert delivered_after < DELIVERY_DEADLINE_S
    [copy] = rejected.messages
    assert (copy.headers or {})[topology.REASON_HEADER] == "schema.too_large"
    assert (copy.headers or {})[junk.SHA256_HEADER] == digest
    assert len(copy.body) < 2 * junk.EXCERPT_BYTES
    [record] = await records(gateway, "frame")
    assert (record.reason, len(record.payload)) == ("schema.too_large", len(copy.body))
    assert len(await records(gateway, "envelope.in")) == 2  # accreditation, genuine: once each
    assert await records(gateway, "envelope.in", envelope_id=genuine["id"], outcome="delivered")
    assert reconnects(gateway, "local") == 0
    assert await vhosts["SCO-RATS"].depth(topology.inbound_from("CICA")) == 0
    assert memory.growth < memory_bound, f"grew by {memory.growth / 1e6:.0f} MB"


@pytest.mark.parametrize(
    ("envelopes", "memory_bound"),
    [(20_000, 40_000_000), (150_000, 40_000_000), (400_000, 60_000_000)],
    ids=["60KB", "450KB", "1.2MB"],
)
async def test_a_flood_frame_is_one_rejection_and_delays_no_genuine_envelope(
    network: Network, vhosts: dict[str, Vhost], envelopes: int, memory_bound: int
) -> None:
    await flood_then_genuine(network, vhosts, empty_envelopes(envelopes), memory_bound)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("frame_bytes", "memory_bound"),
    [(8 * 1024 * 1024, 80_000_000), (60_000_000, 350_000_000)],
    ids=["8MiB", "60MB-oversize"],
)
async def test_a_huge_frame_is_one_rejection_and_delays_no_genuine_envelope(
    network: Network, vhosts: dict[str, Vhost], frame_bytes: int, memory_bound: int
) -> None:
    await flood_then_genuine(network, vhosts, empty_envelopes(frame_bytes // 3), memory_bound)


def rate_limited(gateway: Gateway, counterparty: str) -> bool:
    value = gateway.metrics.registry.get_sample_value(
        "gateway_inbound_rate_limited", {"counterparty": counterparty}
    )
    return value == 1


async def test_a_flooding_counterparty_is_rate_limited_and_does_not_starve_another(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    """UNOCT sends 5,000 unsigned envelopes at once; its limit is 600 a second. CICA's
    genuine envelope, sent after the flood, is delivered while UNOCT's frames still wait."""
    flood_frames, per_frame, rate = 5, 1000, 600
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    inbox = await vhosts["SCO-RATS"].bind_collector(topology.DELIVER, "CICA.#")
    await network.start("SCO-RATS", inbound_envelopes_per_s=rate, inbound_burst=rate)
    gateway = running(network, "SCO-RATS")
    cica = signing_key(network.keys, "CICA")
    genuine = sign_envelope(envelope(), cica)
    junk = [envelope(party="UNOCT") for _ in range(per_frame)]
    limited_seen: list[bool] = []
    async with peer("unoct-peer", "SCO-RATS") as unoct, peer("cica-peer", "SCO-RATS") as partner:
        await partner(sign_envelope(accreditation("lo-0001"), cica))
        started = time.monotonic()
        for _ in range(flood_frames):
            await unoct(*junk)
        await partner(genuine)

        def delivered() -> bool:
            limited_seen.append(rate_limited(gateway, "UNOCT"))
            return any(m.message_id == genuine["id"] for m in inbox.messages)

        await wait_until(delivered, timeout=DELIVERY_DEADLINE_S, message="CICA's envelope")
        rejected_before = len(rejected.messages)

        def flood_refused() -> bool:
            limited_seen.append(rate_limited(gateway, "UNOCT"))
            return len(rejected.messages) == flood_frames * per_frame

        await wait_until(flood_refused, timeout=60, message="every flood envelope refused")
        flood_s = time.monotonic() - started

    assert rejected_before < flood_frames * per_frame / 2, "CICA waited for most of the flood"
    assert True in limited_seen
    # The burst, then the rest at the limit: a frame of overdraft at most.
    assert flood_s >= (flood_frames * per_frame - rate - per_frame) / rate
    assert {m.headers[topology.REASON_HEADER] for m in rejected.messages if m.headers} == {
        "signature.missing"
    }
    assert reconnects(gateway, "local") == 0
    await wait_until(lambda: not rate_limited(gateway, "UNOCT"), message="limit lifted")
