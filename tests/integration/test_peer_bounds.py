"""A hostile peer costs the gateway a bounded amount of work, and nothing it causes is dropped
silently (issue 11).

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
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts import encode_frame
from gateway import topology
from gateway.core import junk
from gateway.core.signing import sign_envelope
from gateway.service import INBOUND_BATCH_BYTES, Gateway
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
from tests.support.parties import assignment, share, submission
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


def sample(gateway: Gateway, name: str, labels: dict[str, str] | None = None) -> float:
    value = gateway.metrics.registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


def reconnects(gateway: Gateway, broker: str) -> float:
    return sample(gateway, "gateway_broker_reconnects_total", {"broker": broker})


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
    return sample(gateway, "gateway_inbound_rate_limited", {"counterparty": counterparty}) == 1


@pytest.mark.slow
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
    # The burst, then the rest at the limit, less one batch of overdraft at most.
    batch = (INBOUND_BATCH_BYTES // len(encode_frame(junk)) + 1) * per_frame
    assert flood_s >= (flood_frames * per_frame - rate - batch) / rate
    assert {m.headers[topology.REASON_HEADER] for m in rejected.messages if m.headers} == {
        "signature.missing"
    }
    assert reconnects(gateway, "local") == 0
    await wait_until(lambda: not rate_limited(gateway, "UNOCT"), message="limit lifted")


@pytest.mark.slow
async def test_a_flood_at_the_inbound_side_does_not_stall_the_outbound_side(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    """10,000 junk envelopes from UNOCT (within its burst, so no rate limit helps) keep SCO-RATS's
    inbound worker busy; a submission of SCO-RATS's own still reaches CICA within seconds."""
    flood_frames, per_frame = 10, 1000
    at_cica = await vhosts["CICA"].bind_collector(topology.DELIVER, "SCO-RATS.#")
    rejected = await vhosts["SCO-RATS"].collect(topology.REJECTED)
    await network.start("CICA")
    await network.start("SCO-RATS")
    desk = await network.desk("SCO-RATS")
    await desk.submit(submission("liaison.assignment", "CICA", assignment("lo-b")))
    await wait_until(lambda: len(at_cica.messages) == 1, message="the accreditation at CICA")
    junk_frame = [envelope(party="UNOCT") for _ in range(per_frame)]
    async with peer("unoct-peer", "SCO-RATS") as unoct:
        for _ in range(flood_frames):
            await unoct(*junk_frame)
    await wait_until(lambda: len(rejected.messages) > 0, message="the flood under way")
    sent_at = time.monotonic()
    await desk.submit(share("CICA", "Sent while the inbound side is flooded.", officer="lo-b"))
    await wait_until(
        lambda: len(at_cica.messages) == 2,
        timeout=DELIVERY_DEADLINE_S,
        message="SCO-RATS's submission at CICA",
    )
    assert time.monotonic() - sent_at < DELIVERY_DEADLINE_S
    await wait_until(
        lambda: len(rejected.messages) == flood_frames * per_frame,
        timeout=120,
        message="every flood envelope refused",
    )
    assert reconnects(running(network, "SCO-RATS"), "local") == 0


# -- nothing dropped silently: a copy that a full gw.rejected refuses holds its batch ----------
# The test caps SCO-RATS's gw.rejected with a policy (overflow reject-publish, as the queue is
# declared) and sends junk frames one at a time until a copy is refused. The batch must wait,
# unacknowledged, with the refusal counted, until the queue is drained; then the copy arrives,
# nothing is archived twice, and the frames behind it go through.

CAP = 2
POLICY = "test-tiny-rejected"


@pytest.fixture
def tiny_rejected(vhosts: dict[str, Vhost]) -> Iterator[str]:
    vhost = vhosts["SCO-RATS"].name
    definition = json.dumps({"max-length": CAP, "overflow": "reject-publish"})
    subprocess.run(
        ["rabbitmqctl", "set_policy", "-p", vhost, "--apply-to", "queues", POLICY,
         r"^gw\.rejected$", definition],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield vhost
    finally:
        subprocess.run(
            ["rabbitmqctl", "clear_policy", "-p", vhost, POLICY], check=True, capture_output=True
        )


async def test_a_copy_refused_by_a_full_gw_rejected_holds_the_batch_until_there_is_room(
    network: Network, vhosts: dict[str, Vhost], tiny_rejected: str
) -> None:
    sco_rats = vhosts["SCO-RATS"]
    inbox = await sco_rats.bind_collector(topology.DELIVER, "CICA.#")
    await network.start("SCO-RATS")
    gateway = running(network, "SCO-RATS")
    frames: list[bytes] = []

    def refused() -> float:
        return sample(gateway, "gateway_copies_refused_total", {"queue": "gw.rejected"})

    async with peer("cica-peer", "SCO-RATS") as send:
        # One at a time, each copy in before the next frame: a quorum queue lets a message in
        # while it is not over its limit (so one past it), and refuses the next.
        while not refused():
            assert len(frames) <= CAP + 1, "gw.rejected went past its limit without refusing"
            frames.append(b"not a frame %d" % len(frames))
            await send(raw=frames[-1])

            async def copied_or_refused() -> bool:
                return bool(refused()) or await sco_rats.depth(topology.REJECTED) == len(frames)

            await wait_until(copied_or_refused, message="the copy in, or refused")

        assert sample(gateway, "gateway_copies_held") == 1
        assert await sco_rats.depth(topology.REJECTED) == len(frames) - 1 == CAP + 1
        # Archived before the copies: the evidence is there even while the batch waits.
        assert len(await records(gateway, "frame")) == len(frames)

        rejected = await sco_rats.collect(topology.REJECTED)  # operators drain the queue
        await wait_until(lambda: len(rejected.messages) == len(frames), message="every copy")
        cica = signing_key(network.keys, "CICA")
        genuine = sign_envelope(envelope(), cica)
        await send(sign_envelope(accreditation("lo-0001"), cica), genuine)
        await wait_until(
            lambda: genuine["id"] in inbox.ids(), message="the envelope behind the held batch"
        )

    hashes = {(m.headers or {}).get(junk.SHA256_HEADER) for m in rejected.messages}
    assert hashes == {hashlib.sha256(frame).hexdigest() for frame in frames}
    assert len(rejected.messages) == len(frames)
    assert len(await records(gateway, "frame")) == len(frames)
    assert sample(gateway, "gateway_copies_held") == 0
