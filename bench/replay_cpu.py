"""CPU per record of a replay's per-record work, in process: ``python -m bench.replay_cpu``.

The gateway's pure part of a many-record re-delivery request (``decide_all``: the archived
envelope verified again; ``redelivered_many``: its archive entry, re-delivery and result) and
the Ed25519 verification inside it, over 1,000 signed records; the tool's plan, chunks and
mapping of the answers back, over 100,000 records. ``time.process_time``, best of 3: the
machine is shared, and CPU time is what stays comparable between runs.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from gateway.core import replay_plan
from gateway.core.control_requests import redeliver_request
from gateway.core.replay import Redeliver
from gateway.core.signing import canonical_bytes
from gateway.workers.redeliveries import decide_all, redelivered_many
from tests.gateway.core.test_replay import CICA, NOW, envelope, envelope_record, inbound_context
from tests.support.records import delivered_record

GATEWAY_RECORDS = 1_000
TOOL_RECORDS = 100_000


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The least CPU seconds ``work`` took in ``runs`` runs."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def gateway_part() -> dict[str, float]:
    records = {
        seq: envelope_record(seq, "envelope.in", "delivered", envelope(CICA, "SCO-RATS"))
        for seq in range(1, GATEWAY_RECORDS + 1)
    }
    ctx = inbound_context(NOW)
    request = redeliver_request("r", list(records))
    decided = decide_all(request.seqs, records, lambda _: ctx)
    assert all(isinstance(d.result, Redeliver) for d in decided)
    raw = json.loads(records[1].payload)
    signature = base64.b64decode(raw["signature"]["value"])
    message = canonical_bytes(raw)
    key = ctx.keyring.get(raw["signature"]["key_id"])
    assert key is not None

    def verify() -> None:
        for _ in range(GATEWAY_RECORDS):
            key.key.verify(signature, message)

    seconds = {
        "decide_all": best_of(3, lambda: decide_all(request.seqs, records, lambda _: ctx)),
        "ed25519_verify": best_of(3, verify),
        "redelivered_many": best_of(3, lambda: redelivered_many(request, decided, NOW, "gw")),
    }
    return {name: s / GATEWAY_RECORDS * 1e6 for name, s in seconds.items()}


def _answer(chunk: replay_plan.Chunk) -> dict[str, Any]:
    results = [
        {"seq": p.record.seq, "status": "replayed", "envelope_id": p.record.envelope_id}
        for p in chunk.planned
    ]
    return {"status": "replayed", "reason": None, "results": results}


def tool_part() -> dict[str, float]:
    records = [delivered_record(seq, NOW) for seq in range(1, TOOL_RECORDS + 1)]
    new_id = replay_plan.request_ids(uuid.uuid4().hex)

    def plan() -> list[replay_plan.Chunk]:
        planned = replay_plan.plan_replay(records, "deliver", released={}, new_id=new_id)
        return replay_plan.chunked(planned, replay_plan.request_size(None), new_id)

    chunks = plan()
    answers = [_answer(chunk) for chunk in chunks]

    def mapped() -> None:
        for chunk, answer in zip(chunks, answers, strict=True):
            replay_plan.answers_of(chunk, answer)

    seconds = {"plan_and_chunks": best_of(3, plan), "answers_of": best_of(3, mapped)}
    return {name: s / TOOL_RECORDS * 1e6 for name, s in seconds.items()}


def main() -> None:
    figures = {**gateway_part(), **tool_part()}
    print(json.dumps({f"{name}_us_per_record": round(us, 1) for name, us in figures.items()}))


if __name__ == "__main__":
    main()
