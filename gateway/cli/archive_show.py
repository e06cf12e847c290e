"""What ``gateway archive show`` and ``search`` print: records in full or as table rows, as
JSON for tools, and the records that prove what became of one (its receipt, its envelope)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from gateway.archive.records import Record, record_to_json
from gateway.archive.store import ArchiveStore, SearchFilter
from gateway.cli import EXIT_FAILED, EXIT_OK
from gateway.cli.output import Format, print_rows, print_table
from gateway.core.stamping import rfc3339

# How many receipts after an envelope `show` reads to find the one for it: receipts come back
# within seconds, so among the first few thousand from that Party.
RECEIPT_SCAN = 5000


def _payload_text(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False, sort_keys=False)
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes of binary; use 'search --format jsonl' for base64>"


def _print_record(record: Record, out: TextIO) -> None:
    print(f"record {record.seq}: {record.kind} {record.outcome}", file=out)
    fields: list[tuple[str, object]] = [
        ("recorded_at", rfc3339(record.recorded_at)),
        ("occurred_at", rfc3339(record.occurred_at)),
        ("message_id", record.message_id),
        ("system", record.system),
        ("envelope_id", record.envelope_id),
        ("type", record.type),
        ("provider", record.provider),
        ("recipient", record.recipient),
        ("correlation_id", record.correlation_id),
        ("reason", record.reason),
        ("detail", record.detail),
        ("dedup_key", record.dedup_key),
        ("refers_to", record.refers_to),
        ("derived_from", ", ".join(record.derived_from)),
        ("attachments", ", ".join(record.attachment_sha256)),
        ("headers", ", ".join(f"{k}={v}" for k, v in record.headers)),
        ("signature", record.signature),
        ("prev_hash", record.prev_hash),
        ("hash", record.hash),
    ]
    for name, value in fields:
        if value not in (None, ""):
            print(f"  {name + ':':<16}{value}", file=out)
    print(f"  payload ({len(record.payload)} bytes):", file=out)
    for line in _payload_text(record.payload).splitlines():
        print(f"    {line}", file=out)


_TABLE_COLUMNS = ("seq", "recorded_at", "kind", "outcome", "type", "route", "id", "reason")


def _summary(record: Record) -> dict[str, str]:
    route = f"{record.provider or ''}->{record.recipient or ''}"
    return {
        "seq": str(record.seq),
        "recorded_at": rfc3339(record.recorded_at),
        "kind": record.kind,
        "outcome": record.outcome,
        "type": record.type or "",
        "route": route if route != "->" else "",
        "id": record.envelope_id or record.message_id or "",
        "reason": record.reason or "",
    }


def record_view(record: Record, role: str | None = None) -> dict[str, Any]:
    """A record as JSON for people's tools: the payload embedded as JSON when it is JSON
    (``payload_encoding`` says which), else in base64 as in bundles."""
    view = record_to_json(record)
    try:
        view["payload"] = json.loads(record.payload)
        view["payload_encoding"] = "json"
    except (UnicodeDecodeError, json.JSONDecodeError):
        view["payload_encoding"] = "base64"
    return view if role is None else {"role": role, **view}


def print_records(found: Sequence[Record], out: TextIO) -> None:
    print_table([_summary(r) for r in found], _TABLE_COLUMNS, out)


def _receipted_id(record: Record) -> str | None:
    """The envelope a receipt record is about (its body's envelope_id)."""
    try:
        body = json.loads(record.payload).get("body", {})
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    envelope_id = body.get("envelope_id") if isinstance(body, dict) else None
    return envelope_id if isinstance(envelope_id, str) else None


async def _linked(store: ArchiveStore, record: Record) -> list[Record]:
    """The records that prove what became of ``record``: the receipt of an envelope, the
    envelope of a receipt."""
    from gateway.workers.inbound import receipt_key

    if record.kind in ("receipt.in", "receipt.out"):
        receipted = _receipted_id(record)
        if receipted is None:
            return []
        return [r for r in await store.history(receipted) if r.kind.startswith("envelope.")]
    if record.kind == "envelope.in" and record.provider and record.envelope_id:
        key = receipt_key(record.provider, record.envelope_id)
        return list((await store.claimed_many([key])).values())
    if record.kind == "envelope.out" and record.outcome == "sent" and record.recipient:
        receipts = SearchFilter(
            since=record.recorded_at, kinds=["receipt.in"], provider=record.recipient
        )
        found = await store.search(receipts, limit=RECEIPT_SCAN)
        return [r for r in found if _receipted_id(r) == record.envelope_id]
    return []


async def _records_for(store: ArchiveStore, key: str) -> tuple[list[Record], list[Record]]:
    """The records ``key`` names and their history."""
    found = await store.get(int(key)) if key.isdigit() else None
    if found is None:
        history = await store.history(key)
        return [r for r in history if key in (r.message_id, r.envelope_id)], history
    related: dict[int, Record] = {found.seq: found}
    for ident in {found.message_id, found.envelope_id} - {None}:
        related.update((r.seq, r) for r in await store.history(str(ident)))
    return [found], [related[seq] for seq in sorted(related)]


async def show_records(store: ArchiveStore, key: str, fmt: Format) -> int:
    primary, history = await _records_for(store, key)
    if not primary:
        print(f"nothing in the archive for {key!r}", file=sys.stderr)
        return EXIT_FAILED
    shown = {r.seq for r in primary}
    linked = {r.seq: r for p in primary for r in await _linked(store, p) if r.seq not in shown}
    if fmt != "table":
        views = [
            *(record_view(r, "record") for r in primary),
            *(record_view(r, "linked") for r in linked.values()),
            *(record_view(r, "history") for r in history if r.seq not in shown),
        ]
        print_rows(views, fmt, (), sys.stdout)
        return EXIT_OK
    for record in primary:
        _print_record(record, sys.stdout)
        print()
    if linked:
        print("linked (the receipt that proves delivery, or the envelope it acknowledges):")
        print_records(list(linked.values()), sys.stdout)
        print()
    print(f"history ({len(history)} records):")
    print_records(history, sys.stdout)
    return EXIT_OK
