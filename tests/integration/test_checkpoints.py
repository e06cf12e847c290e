"""Signed checkpoints between two gateways on the real broker, and an archive that cannot be
shortened or rechained unnoticed (issue 11)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import topology
from gateway.archive import ArchiveStore, Record, SearchFilter, open_archive
from gateway.archive.bundle import export_bundle
from gateway.cli import main
from gateway.core.keys import load_signing_key
from gateway.service import Gateway
from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import assignment, share, submission
from tests.support.tampering import rechain_without, truncate
from tests.support.waiting import wait_until

pytestmark = pytest.mark.broker


def configure(network: Network, party: str, interval_s: float) -> Path:
    path = network.configure(party)
    with path.open("a") as handle:
        handle.write(f"[checkpoints]\ninterval_s = {interval_s}\n")
    return path


async def start(network: Network, party: str) -> Gateway:
    running = await network.parties[party].start()
    assert running is not None
    return running


async def checkpoints_in(store: ArchiveStore, provider: str) -> list[Record]:
    return await store.search(SearchFilter(kinds=["checkpoint.in"], provider=provider))


def acknowledges(record: Record) -> bool:
    """Whether the archived checkpoint echoes one of the recipient's own."""
    return json.loads(record.payload)["body"]["acknowledged"] is not None


async def verify(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["archive", "verify", "--config", str(config), *extra])
    return code, capsys.readouterr().out


async def share_from_sco_rats(network: Network, vhosts: dict[str, Vhost]) -> str:
    """SCO-RATS's information reaches CICA: the evidence an intruder will try to remove."""
    delivered = await vhosts["CICA"].bind_collector(topology.DELIVER, "SCO-RATS.#")
    desk = await network.desk("SCO-RATS")
    await desk.submit(submission("liaison.assignment", "CICA", assignment("lo-b")))
    await desk.submit(share("CICA", "Observed routes.", officer="lo-b"))
    await wait_until(
        lambda: any(m.routing_key == "SCO-RATS.information.share" for m in delivered.messages),
        message="SCO-RATS's share delivered at CICA",
    )
    (envelope,) = [b for b in delivered.bodies() if b["type"] == "information.share"]
    return str(envelope["id"])


async def archived(store: ArchiveStore, provider: str, envelope_id: str) -> Record | None:
    """The checkpoint ``envelope_id`` from ``provider`` as ``store`` archived it, if it has."""
    found = await checkpoints_in(store, provider)
    return next((r for r in found if r.envelope_id == envelope_id), None)


async def arrives(store: ArchiveStore, provider: str, envelope: dict[str, Any]) -> Record:
    async def there() -> bool:
        return await archived(store, provider, envelope["id"]) is not None

    await wait_until(there, message=f"{provider}'s checkpoint archived")
    record = await archived(store, provider, envelope["id"])
    assert record is not None
    return record


async def exchange_checkpoints(cica: Gateway, sco: Gateway) -> None:
    """CICA checkpoints its head to SCO-RATS, which echoes it back in its own checkpoint."""
    (sent,) = await cica.checkpoints.send_now(["SCO-RATS"])
    await arrives(sco.archive, "CICA", sent)
    (echo,) = await sco.checkpoints.send_now(["CICA"])
    assert echo["body"]["acknowledged"] == {
        "seq": sent["body"]["seq"],
        "head_hash": sent["body"]["head_hash"],
    }
    await arrives(cica.archive, "SCO-RATS", echo)


@dataclass
class Exchanged:
    """Both gateways running; SCO-RATS's share at CICA, then checkpoints both ways."""

    config: Path
    cica: Gateway
    sco: Gateway
    received: str
    evidence: Record


async def after_an_exchange(network: Network, vhosts: dict[str, Vhost]) -> Exchanged:
    config = configure(network, "CICA", 0)
    configure(network, "SCO-RATS", 0)
    cica, sco = await start(network, "CICA"), await start(network, "SCO-RATS")
    received = await share_from_sco_rats(network, vhosts)
    await exchange_checkpoints(cica, sco)
    (evidence,) = await cica.archive.history(received)
    return Exchanged(config, cica, sco, received, evidence)


async def tamper(url: str, intrusion: Callable[[ArchiveStore], Awaitable[None]]) -> None:
    """Change the archive at ``url`` behind its gateway's back."""
    store = open_archive(url)
    await store.open()
    try:
        await intrusion(store)
    finally:
        await store.close()


async def test_checkpoints_are_exchanged_at_the_interval_and_archived_by_both(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    configs = {party: configure(network, party, 0.5) for party in ("CICA", "SCO-RATS")}
    delivered = await vhosts["CICA"].bind_collector(topology.DELIVER, "#")
    cica, sco = await start(network, "CICA"), await start(network, "SCO-RATS")
    await share_from_sco_rats(network, vhosts)

    async def echoed_both_ways() -> bool:
        at_cica = await checkpoints_in(cica.archive, "SCO-RATS")
        at_sco = await checkpoints_in(sco.archive, "CICA")
        return any(map(acknowledges, at_cica)) and any(map(acknowledges, at_sco))

    await wait_until(echoed_both_ways, message="each side's checkpoint echoed by the other")
    for gateway, peer in ((cica, "SCO-RATS"), (sco, "CICA")):
        received = await checkpoints_in(gateway.archive, peer)
        assert {r.outcome for r in received} == {"archived"}
        sent = await gateway.archive.search(SearchFilter(kinds=["checkpoint.out"]))
        assert {r.recipient for r in sent} >= {peer}
    # Checkpoints are gateway business: behind a sentinel share, no back-office saw one.
    sentinel = await share_from_sco_rats(network, vhosts)
    await wait_until(lambda: sentinel in delivered.ids(), message="the sentinel share")
    assert {b["type"] for b in delivered.bodies()} == {"liaison.assignment", "information.share"}
    await network.close()
    for config in configs.values():
        code, out = await verify(config, capsys)
        assert code == 0, out
        assert "anchors (checkpoints, bundles) hold" in out
        assert " 0 anchors" not in out


async def test_truncation_is_caught_by_the_next_checkpoint_and_by_the_last_bundle(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pair = await after_an_exchange(network, vhosts)
    bundle = tmp_path / "cica-bundle.jsonl"
    now = datetime.now(UTC)
    key = load_signing_key(pair.cica.config.keys.signing_key)
    hour = timedelta(hours=1)
    await export_bundle(pair.cica.archive, now - hour, now + hour, key, bundle)
    await network.parties["CICA"].stop()

    # The intruder deletes the received envelope and everything after it, head moved back.
    await tamper(pair.cica.config.archive.url, lambda s: truncate(s, pair.evidence.seq - 1))
    code, out = await verify(pair.config, capsys, "--bundle", str(bundle))
    assert code == 1
    assert f"export bundle {bundle.name}" in out
    assert "records were removed from its end" in out

    # Without the bundle, the next checkpoint exchange finds it: SCO-RATS still holds CICA's
    # checkpoint and echoes it; CICA's own next checkpoint went backwards.
    cica = await start(network, "CICA")
    (echo,) = await pair.sco.checkpoints.send_now(["CICA"])
    flagged = await arrives(cica.archive, "SCO-RATS", echo)
    assert (flagged.outcome, flagged.reason) == ("inconsistent", "checkpoint.not_in_archive")
    (regressed,) = await cica.checkpoints.send_now(["SCO-RATS"])
    at_sco = await arrives(pair.sco.archive, "CICA", regressed)
    assert (at_sco.outcome, at_sco.reason) == ("inconsistent", "checkpoint.regressed")
    await network.parties["CICA"].stop()

    # The records appended since cover the seq SCO-RATS holds, with other hashes.
    code, out = await verify(pair.config, capsys)
    assert code == 1, out
    assert "SCO-RATS's checkpoint archived at seq" in out
    assert f"holds seq {echo['body']['acknowledged']['seq']} " in out


async def test_removed_records_and_a_recomputed_chain_are_caught(
    network: Network, vhosts: dict[str, Vhost], capsys: pytest.CaptureFixture[str]
) -> None:
    pair = await after_an_exchange(network, vhosts)
    await network.parties["CICA"].stop()
    code, out = await verify(pair.config, capsys)
    assert code == 0, out

    # The intruder removes the received envelope and recomputes the chain with the project's
    # own hash: every link, hash and signature is right again.
    async def rechain(store: ArchiveStore) -> None:
        await rechain_without(store, {pair.evidence.seq})
        assert await store.history(pair.received) == []

    await tamper(pair.cica.config.archive.url, rechain)
    code, out = await verify(pair.config, capsys)
    assert code == 1, out
    assert "checkpoint archived at seq" in out
    assert "the chain was rewritten" in out


async def test_a_running_gateway_refuses_to_checkpoint_an_archive_shortened_under_it(
    network: Network, vhosts: dict[str, Vhost]
) -> None:
    pair = await after_an_exchange(network, vhosts)
    cica = pair.cica
    await tamper(cica.config.archive.url, lambda s: truncate(s, pair.evidence.seq - 1))

    assert await cica.checkpoints.send_now(["SCO-RATS"]) == []
    labels = {"counterparty": "SCO-RATS", "reason": "checkpoint.not_in_archive"}
    problems = cica.metrics.registry.get_sample_value("gateway_checkpoint_problems_total", labels)
    assert problems == 1
    assert await cica.archive.search(SearchFilter(kinds=["checkpoint.out"])) == []
