"""Nothing dropped silently (issue 11): a copy that a full gw.rejected refuses holds its batch.

The test caps SCO-RATS's gw.rejected at two messages with a policy (overflow reject-publish, as
the queue is declared) and sends three junk frames: two copies fit, the third is refused. The
batch must wait, unacknowledged, with the refusal counted, until the queue is drained; then the
third copy arrives, nothing is archived twice, and the frames behind it go through.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator

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


def sample(gateway: Gateway, name: str, labels: dict[str, str] | None = None) -> float:
    value = gateway.metrics.registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


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
