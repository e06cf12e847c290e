from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.archive.chain import (
    GENESIS,
    HASH_MISMATCH,
    PREV_HASH_MISMATCH,
    SEQ_GAP,
    canonical_json,
    record_hash,
    verify_chain,
)
from gateway.archive.records import Entry, Record, entry_values

from .helpers import T0, plain_entry


def chain_of(
    entries: Sequence[Entry], start_seq: int = 0, start_hash: str = GENESIS
) -> list[Record]:
    records: list[Record] = []
    prev = start_hash
    for offset, entry in enumerate(entries, start=1):
        seq = start_seq + offset
        at = T0 + timedelta(seconds=seq)
        digest = record_hash(prev, seq, at, entry)
        records.append(Record.chained(entry, seq=seq, recorded_at=at, prev_hash=prev, hash=digest))
        prev = digest
    return records


def rechained(records: Sequence[Record]) -> list[Record]:
    """What an intruder rewriting the whole chain would produce: consistent, new hashes."""
    return chain_of(records)


json_values = st.recursive(
    st.none() | st.text() | st.integers(-(2**53) + 1, 2**53 - 1),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)


@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), json_values))
def test_canonical_json_is_rfc8785(document: dict[str, object]) -> None:
    assert canonical_json(document) == rfc8785.dumps(document)


@given(st.text(), st.binary(max_size=32))
def test_canonical_json_of_entries_is_rfc8785(text: str, payload: bytes) -> None:
    entry = plain_entry(1, detail=text, payload=payload, headers=((text, "\x00\u2028"),))
    document = entry_values(entry)
    assert canonical_json(document) == rfc8785.dumps(document)


def test_hash_covers_every_field_and_position() -> None:
    entry = plain_entry(1, derived_from=("a",), attachment_sha256=("b",), headers=(("h", "v"),))
    base = record_hash(GENESIS, 1, T0, entry)
    assert base == record_hash(GENESIS, 1, T0, entry)
    assert record_hash("1" * 64, 1, T0, entry) != base
    assert record_hash(GENESIS, 2, T0, entry) != base
    assert record_hash(GENESIS, 1, T0 + timedelta(microseconds=1), entry) != base
    changed = {
        "kind": "decision",
        "outcome": "blocked",
        "occurred_at": T0 + timedelta(microseconds=1),
        "payload": b"other",
        "message_id": "x",
        "system": "x",
        "envelope_id": "x",
        "type": "x",
        "provider": "x",
        "recipient": "x",
        "correlation_id": "x",
        "reason": "x",
        "detail": "x",
        "signature": "x",
        "dedup_key": "x",
        "refers_to": 7,
        "derived_from": ("z",),
        "attachment_sha256": ("z",),
        "headers": (("h", "w"),),
    }
    assert set(changed) == {f.name for f in dataclasses.fields(Entry)}
    for name, value in changed.items():
        assert record_hash(GENESIS, 1, T0, dataclasses.replace(entry, **{name: value})) != base, (
            name
        )


def test_intact_chain_verifies() -> None:
    records = chain_of([plain_entry(n) for n in range(5)])
    report = verify_chain(records)
    assert report.ok
    assert report.count == 5
    assert (report.head_seq, report.head_hash) == (5, records[-1].hash)
    assert verify_chain([]).ok
    assert verify_chain([]).head_hash == GENESIS


def test_edited_record_is_named() -> None:
    records = chain_of([plain_entry(n) for n in range(5)])
    records[2] = dataclasses.replace(records[2], payload=b'{"n": 99}')
    report = verify_chain(records)
    assert (report.broken_seq, report.count) == (3, 2)
    assert report.reason is not None
    assert report.reason.startswith(HASH_MISMATCH)


def test_deleted_record_is_a_seq_gap() -> None:
    records = chain_of([plain_entry(n) for n in range(5)])
    del records[2]
    report = verify_chain(records)
    assert report.broken_seq == 4
    assert report.reason is not None
    assert report.reason.startswith(SEQ_GAP)


def test_deleted_and_renumbered_record_breaks_the_link() -> None:
    records = chain_of([plain_entry(n) for n in range(5)])
    renumbered = records[:2] + [dataclasses.replace(r, seq=r.seq - 1) for r in records[3:]]
    report = verify_chain(renumbered)
    assert report.broken_seq == 3
    assert report.reason is not None
    assert report.reason.startswith(PREV_HASH_MISMATCH)


def test_reordered_pair_breaks_the_link() -> None:
    records = chain_of([plain_entry(n) for n in range(5)])
    third, fourth = records[2], records[3]
    swapped = [
        *records[:2],
        dataclasses.replace(fourth, seq=3),
        dataclasses.replace(third, seq=4),
        records[4],
    ]
    report = verify_chain(swapped)
    assert report.broken_seq == 3
    assert report.reason is not None
    assert report.reason.startswith(PREV_HASH_MISMATCH)


def test_inserted_record_breaks_the_next_link() -> None:
    records = chain_of([plain_entry(n) for n in range(5)])
    # A forged record that fits perfectly after record 2, then the rest renumbered.
    forged_entry = plain_entry(100, payload=b"forged")
    at = records[1].recorded_at
    forged = Record.chained(
        forged_entry,
        seq=3,
        recorded_at=at,
        prev_hash=records[1].hash,
        hash=record_hash(records[1].hash, 3, at, forged_entry),
    )
    shifted = [dataclasses.replace(r, seq=r.seq + 1) for r in records[2:]]
    report = verify_chain([*records[:2], forged, *shifted])
    assert report.broken_seq == 4
    assert report.reason is not None
    assert report.reason.startswith(PREV_HASH_MISMATCH)


def test_rewritten_chain_is_consistent_but_has_a_new_head() -> None:
    """What a chain alone cannot show: a full rewrite. The head hash, kept elsewhere, does."""
    records = chain_of([plain_entry(n) for n in range(3)])
    forged = rechained([records[0], dataclasses.replace(records[1], payload=b"x"), records[2]])
    assert verify_chain(forged).ok
    assert verify_chain(forged).head_hash != verify_chain(records).head_hash


def test_a_range_verifies_from_its_link() -> None:
    records = chain_of([plain_entry(n) for n in range(6)])
    middle = records[3:]
    assert not verify_chain(middle).ok
    report = verify_chain(middle, start_seq=3, start_hash=records[2].hash)
    assert report.ok
    assert report.count == 3
    assert not verify_chain(middle, start_seq=3, start_hash=records[1].hash).ok


@settings(max_examples=60)
@given(
    n=st.integers(2, 8),
    data=st.data(),
)
def test_any_single_field_edit_is_caught_at_its_record(n: int, data: st.DataObject) -> None:
    records = chain_of([plain_entry(i) for i in range(n)])
    index = data.draw(st.integers(0, n - 1))
    name = data.draw(st.sampled_from(["payload", "outcome", "kind", "reason", "recorded_at"]))
    victim = records[index]
    value: object = {
        "payload": victim.payload + b" ",
        "outcome": "released",
        "kind": "replay",
        "reason": "consent.missing",
        "recorded_at": victim.recorded_at + timedelta(microseconds=1),
    }[name]
    records[index] = dataclasses.replace(victim, **{name: value})
    assert verify_chain(records).broken_seq == victim.seq


@pytest.mark.parametrize("bad_start", ["1" * 64, GENESIS])
def test_first_record_must_link_to_the_start(bad_start: str) -> None:
    records = chain_of([plain_entry(1)], start_seq=10, start_hash="a" * 64)
    assert not verify_chain(records, start_seq=10, start_hash=bad_start).ok
