"""Property tests: every model survives JSON (model -> JSON -> parse -> equal), and the
generated JSON Schemas accept every document the models accept."""

from __future__ import annotations

import base64
import json
import re
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import contracts
from contracts import (
    Attachment,
    Authorization,
    BilingualText,
    ChainPoint,
    CheckpointV1,
    ConsentDecisionV1,
    ConsentRequestV1,
    ConsentRevocationV1,
    ConsentScope,
    Envelope,
    FormalText,
    Handling,
    InformationRequestV1,
    InformationShareV1,
    LiaisonAssignmentV1,
    MeetingInvitationV1,
    MeetingMinutesV1,
    Officer,
    Originator,
    Participant,
    ReceiptV1,
    RecordResult,
    SideEvent,
    Signature,
    StatusEvent,
    Submission,
    WorkingGroupEstablishV1,
    WorkingGroupProposalV1,
    all_specs,
    encode_frame,
    parse_envelope,
    parse_frame,
    parse_status,
    parse_submission,
)
from contracts.export import generate
from contracts.parsing import validate
from contracts.types import ContractModel

PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_NON_SPACE = re.compile(r"\S")


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _tuples(
    strategy: st.SearchStrategy[Any], min_size: int = 0, max_size: int = 3
) -> st.SearchStrategy[Any]:
    return st.lists(strategy, min_size=min_size, max_size=max_size).map(tuple)


parties = st.from_regex(r"\A[A-Z][A-Z0-9-]{1,31}\Z")
envelope_ids = st.uuids().map(str)
officer_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
tokens = st.from_regex(r"\A[!-~]{1,128}\Z")
labels = st.text(max_size=40).filter(lambda s: _NON_SPACE.search(s) is not None)
texts = st.text(min_size=1, max_size=80).filter(lambda s: _NON_SPACE.search(s) is not None)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=3)), timezone(-timedelta(hours=5, minutes=30))]
)
timestamps = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=offsets
)
sha256s = st.binary(min_size=32, max_size=32).map(bytes.hex)
chain_seqs = st.integers(min_value=0, max_value=2**53 - 1)
chain_points = st.builds(ChainPoint, seq=chain_seqs, head_hash=sha256s)

bilingual = st.one_of(
    st.builds(BilingualText, en=texts),
    st.builds(BilingualText, ru=texts),
    st.builds(BilingualText, en=texts, ru=texts),
)
formal = st.builds(FormalText, en=texts, ru=texts)
file_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=30,
)
attachments = st.builds(
    Attachment.from_bytes,
    name=file_names,
    media_type=st.sampled_from(["text/plain", "application/pdf", "image/png"]),
    data=st.binary(max_size=96),
)
authorizations = st.builds(Authorization, reference=labels, granted_on=_maybe(dates))
participants = st.builds(Participant, party=parties, name=labels, role=_maybe(labels))
side_events = st.builds(SideEvent, name=labels, organiser=labels)
officers = st.builds(Officer, id=officer_ids, name=labels, role=labels, contact=labels)
scopes = st.one_of(
    st.builds(ConsentScope, envelope_ids=_tuples(envelope_ids, min_size=1, max_size=4)),
    st.builds(ConsentScope, correlation_id=tokens),
)
handlings = st.builds(Handling, pre_approved=_tuples(parties, max_size=3))
signatures = st.builds(
    Signature,
    alg=st.just("ed25519"),
    key_id=tokens,
    value=st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode()),
)


@st.composite
def _assignments(draw: st.DrawFn) -> LiaisonAssignmentV1:
    valid_from = draw(dates)
    valid_to = draw(_maybe(st.dates(min_value=valid_from, max_value=date(2200, 12, 31))))
    return LiaisonAssignmentV1(
        action=draw(st.sampled_from(["assign", "withdraw"])),
        officer=draw(officers),
        valid_from=valid_from,
        valid_to=valid_to,
        authorization=draw(authorizations),
    )


def _information(model: type[InformationShareV1 | InformationRequestV1]) -> Any:
    return st.builds(
        model,
        subject=bilingual,
        text=bilingual,
        topics=_tuples(labels, max_size=4),
        attachments=_tuples(attachments, max_size=2),
    )


BODIES: dict[type[BaseModel], st.SearchStrategy[Any]] = {
    LiaisonAssignmentV1: _assignments(),
    InformationShareV1: _information(InformationShareV1),
    InformationRequestV1: _information(InformationRequestV1),
    WorkingGroupEstablishV1: st.builds(
        WorkingGroupEstablishV1,
        reference=tokens,
        name=formal,
        mandate=formal,
        members=_tuples(participants, min_size=1, max_size=3),
        authorization=authorizations,
    ),
    WorkingGroupProposalV1: st.builds(
        WorkingGroupProposalV1,
        working_group=tokens,
        title=formal,
        text=formal,
        attachments=_tuples(attachments, max_size=2),
        authorization=authorizations,
    ),
    MeetingInvitationV1: st.builds(
        MeetingInvitationV1,
        title=bilingual,
        date=dates,
        place=labels,
        side_event=_maybe(side_events),
        agenda=bilingual,
        participants=_tuples(participants, max_size=3),
        authorization=authorizations,
    ),
    MeetingMinutesV1: st.builds(
        MeetingMinutesV1,
        title=formal,
        date=dates,
        place=labels,
        side_event=_maybe(side_events),
        text=formal,
        participants=_tuples(participants, max_size=3),
        authorization=authorizations,
    ),
    ConsentRequestV1: st.builds(
        ConsentRequestV1,
        provider=parties,
        scope=scopes,
        recipients=_tuples(parties, min_size=1, max_size=3),
        purpose=bilingual,
    ),
    ConsentDecisionV1: st.builds(
        ConsentDecisionV1,
        request_id=_maybe(envelope_ids),
        decision=st.sampled_from(["granted", "denied"]),
        scope=scopes,
        recipients=_tuples(parties, min_size=1, max_size=3),
        expires_at=_maybe(timestamps),
        conditions=_maybe(bilingual),
    ),
    ConsentRevocationV1: st.builds(
        ConsentRevocationV1, decision_id=envelope_ids, reason=_maybe(bilingual)
    ),
    ReceiptV1: st.builds(
        ReceiptV1,
        envelope_id=envelope_ids,
        envelope_sha256=sha256s,
        status=st.sampled_from(["delivered", "duplicate"]),
        received_at=timestamps,
    ),
    CheckpointV1: st.builds(
        CheckpointV1,
        seq=chain_seqs,
        head_hash=sha256s,
        previous=_maybe(chain_points),
        acknowledged=_maybe(chain_points),
    ),
}


@st.composite
def submissions(draw: st.DrawFn) -> Submission:
    spec = draw(st.sampled_from(all_specs()))
    body = draw(BODIES[spec.body])
    return Submission(
        type=spec.type,
        version=spec.version,
        recipient=draw(parties),
        officer=draw(officer_ids if spec.needs_officer else _maybe(officer_ids)),
        correlation_id=draw(_maybe(tokens)),
        in_reply_to=draw(_maybe(envelope_ids)),
        derived_from=draw(_tuples(envelope_ids, max_size=3)),
        handling=draw(handlings),
        body=body.model_dump(mode="json"),
    )


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    submission = draw(submissions())
    return Envelope(
        id=draw(envelope_ids),
        type=submission.type,
        version=submission.version,
        originator=draw(
            st.builds(
                Originator,
                party=parties,
                system=labels,
                officer=st.just(submission.officer),
                submission_id=st.uuids().map(lambda u: u.hex),
            )
        ),
        recipient=submission.recipient,
        created_at=draw(timestamps),
        correlation_id=submission.correlation_id,
        in_reply_to=submission.in_reply_to,
        derived_from=submission.derived_from,
        handling=submission.handling,
        body=submission.body,
        signature=draw(_maybe(signatures)),
    )


record_results = st.builds(
    RecordResult,
    seq=st.integers(min_value=1, max_value=2**40),
    status=st.sampled_from(contracts.STATUSES),
    submission_id=_maybe(st.uuids().map(lambda u: u.hex)),
    envelope_id=_maybe(envelope_ids),
    type=_maybe(st.sampled_from([spec.type for spec in all_specs()])),
    reason=_maybe(st.sampled_from(sorted(contracts.ERROR_CODES))),
    detail=_maybe(st.text(max_size=80)),
)

status_events = st.builds(
    StatusEvent,
    submission_id=_maybe(st.uuids().map(lambda u: u.hex)),
    envelope_id=_maybe(envelope_ids),
    type=_maybe(st.sampled_from([spec.type for spec in all_specs()])),
    status=st.sampled_from(contracts.STATUSES),
    reason=_maybe(st.sampled_from(sorted(contracts.ERROR_CODES))),
    detail=_maybe(st.text(max_size=80)),
    at=timestamps,
    results=_maybe(st.lists(record_results, max_size=4).map(tuple)),
)

MODELS: dict[type[BaseModel], st.SearchStrategy[Any]] = {
    **BODIES,
    BilingualText: bilingual,
    FormalText: formal,
    Attachment: attachments,
    Authorization: authorizations,
    Participant: participants,
    SideEvent: side_events,
    Officer: officers,
    ConsentScope: scopes,
    ChainPoint: chain_points,
    Handling: handlings,
    Signature: signatures,
    Originator: st.builds(
        Originator, party=parties, system=labels, officer=_maybe(officer_ids), submission_id=tokens
    ),
    Submission: submissions(),
    Envelope: envelopes(),
    StatusEvent: status_events,
    RecordResult: record_results,
}


def _concrete_models(base: type[BaseModel]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    for sub in base.__subclasses__():
        found |= _concrete_models(sub)
        declared = getattr(sys.modules[sub.__module__], sub.__qualname__, None) is sub
        if declared and not sub.__name__.startswith("_"):
            found.add(sub)
    return found


@cache
def _submission_validator(message_type: str) -> jsonschema.Draft202012Validator:
    text = generate()[f"contracts/schemas/{message_type}.v1.json"]
    return jsonschema.Draft202012Validator(json.loads(text))


def test_every_contract_model_has_a_strategy() -> None:
    abstract = {contracts.bodies.AuthorizedBody, contracts.submission.SubmissionFields}
    assert _concrete_models(ContractModel) - abstract == set(MODELS)


@pytest.mark.parametrize("model_class", list(MODELS), ids=lambda m: m.__name__)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_model_round_trips_through_json(
    model_class: type[BaseModel], data: st.DataObject
) -> None:
    model = data.draw(MODELS[model_class])
    assert type(model) is model_class
    json_text = model.model_dump_json()
    assert validate(model_class, json.loads(json_text)) == model
    assert model_class.model_validate_json(json_text) == model
    assert validate(model_class, json.loads(json_text)).model_dump_json() == json_text


@PROPERTY_SETTINGS
@given(submissions())
def test_submissions_round_trip_and_match_their_schema(submission: Submission) -> None:
    data = submission.model_dump_json().encode()
    parsed = parse_submission(data)
    assert parsed == submission
    assert parsed.typed_body() == submission.typed_body()
    validator = _submission_validator(submission.type)
    assert [e.message for e in validator.iter_errors(json.loads(data))] == []


@PROPERTY_SETTINGS
@given(st.lists(envelopes(), min_size=1, max_size=3))
def test_envelopes_round_trip_alone_and_in_frames(items: list[Envelope]) -> None:
    raw = [item.model_dump(mode="json") for item in items]
    for item, obj in zip(items, raw, strict=True):
        assert parse_envelope(obj) == item
        assert obj["created_at"].endswith("Z")
    assert [parse_envelope(obj) for obj in parse_frame(encode_frame(raw))] == items


@PROPERTY_SETTINGS
@given(status_events)
def test_status_events_round_trip(event: StatusEvent) -> None:
    assert parse_status(event.model_dump_json().encode()) == event
