"""Batches taken in turn from one queue per counterparty."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

from aio_pika.abc import AbstractIncomingMessage

from gateway.core.ratelimit import RateLimiter
from gateway.workers.batches import Batcher, RoundRobin


@dataclass(frozen=True)
class Message:
    tag: str
    body: bytes = b"x"


def message(tag: str, size: int = 1) -> AbstractIncomingMessage:
    return cast(AbstractIncomingMessage, Message(tag, b"x" * size))


def tags(batch: tuple[str, list[AbstractIncomingMessage]] | None) -> tuple[str, list[str]] | None:
    if batch is None:
        return None
    return batch[0], [cast(Message, m).tag for m in batch[1]]


def round_robin(*sources: str, size: int = 2) -> RoundRobin:
    return RoundRobin({s: Batcher(size, linger_s=0) for s in sources})


async def fill(rr: RoundRobin, source: str, count: int) -> None:
    for n in range(count):
        await rr.on_message(source)(message(f"{source}{n}"))


async def test_a_flooded_source_gets_one_batch_before_each_other_source() -> None:
    rr = round_robin("A", "B", "C")
    await fill(rr, "A", 10)
    await fill(rr, "B", 1)
    await fill(rr, "C", 3)
    taken = [tags(await rr.next_batch()) for _ in range(5)]
    assert taken == [
        ("A", ["A0", "A1"]),
        ("B", ["B0"]),
        ("C", ["C0", "C1"]),
        ("A", ["A2", "A3"]),
        ("C", ["C2"]),
    ]


async def test_waits_for_the_first_message_of_any_source() -> None:
    rr = round_robin("A", "B")
    waiting = asyncio.ensure_future(rr.next_batch())
    await asyncio.sleep(0)
    assert not waiting.done()
    await fill(rr, "B", 1)
    assert tags(await asyncio.wait_for(waiting, 1)) == ("B", ["B0"])


async def test_stopping_returns_none_and_leaves_messages_buffered() -> None:
    rr = round_robin("A")
    stopping = asyncio.Event()
    stopping.set()
    assert await rr.next_batch_or(stopping) is None
    await fill(rr, "A", 1)
    assert tags(await rr.next_batch_or(asyncio.Event())) == ("A", ["A0"])


async def test_a_source_in_debt_is_passed_over_until_it_has_paid_it_back() -> None:
    events: list[tuple[str, bool]] = []
    limiter = RateLimiter(["A", "B"], rate=1000, burst=1, now=time.monotonic())
    rr = RoundRobin(
        {s: Batcher(2, linger_s=0) for s in ("A", "B")},
        limiter,
        lambda source, limited: events.append((source, limited)),
    )
    await fill(rr, "A", 2)
    await fill(rr, "B", 1)
    rr.charge("A", 100)  # about a tenth of a second in debt
    started = time.monotonic()
    assert tags(await rr.next_batch()) == ("B", ["B0"])
    assert events == [("A", True)]
    assert tags(await rr.next_batch()) == ("A", ["A0", "A1"])
    assert time.monotonic() - started >= 0.09
    assert events == [("A", True), ("A", False)]


async def test_a_batch_stops_growing_at_its_byte_budget_but_holds_at_least_one_message() -> None:
    batcher = Batcher(10, linger_s=0, max_bytes=100)
    for n, size in enumerate([150, 60, 60, 10]):
        await batcher.on_message(message(f"m{n}", size))
    first, second = await batcher.next_batch(), await batcher.next_batch()
    assert [cast(Message, m).tag for m in first] == ["m0"]
    assert [cast(Message, m).tag for m in second] == ["m1", "m2"]


async def test_a_lone_message_does_not_wait_out_the_linger() -> None:
    batcher = Batcher(10, linger_s=60)
    await batcher.on_message(message("alone"))
    # A minute of linger would trip the deadline: the batch must come without it.
    batch = await asyncio.wait_for(batcher.next_batch(), timeout=5)
    assert [cast(Message, m).tag for m in batch] == ["alone"]


async def test_messages_queued_behind_the_first_wait_for_company_up_to_the_linger() -> None:
    batcher = Batcher(3, linger_s=60)
    for tag in ("m0", "m1"):
        await batcher.on_message(message(tag))
    taking = asyncio.ensure_future(batcher.next_batch())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not taking.done()  # two queued, room for three: it lingers for a third
    await batcher.on_message(message("m2"))
    batch = await asyncio.wait_for(taking, timeout=5)
    assert [cast(Message, m).tag for m in batch] == ["m0", "m1", "m2"]
