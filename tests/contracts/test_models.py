"""Models, parsing entry points, error codes and frames of the contracts package."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS_BYTES,
    MAX_DOCUMENT_BYTES,
    Attachment,
    BilingualText,
    ConsentScope,
    ContractError,
    Envelope,
    FormalText,
    InformationShareV1,
    LiaisonAssignmentV1,
    StatusEvent,
    Submission,
    encode_frame,
    parse_envelope,
    parse_frame,
    parse_status,
    parse_submission,
)
from contracts.errors import describe

ENVELOPE_ID = "01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d1e"
AUTHORIZATION = {"reference": "MS-CONSENT/2026/04"}


def share(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": "information.share",
        "recipient": "SCO-RATS",
        "officer": "lo-0042",
        "body": {"subject": {"en": "Subject"}, "text": {"ru": "Текст"}},
    }
    document.update(changes)
    return document


def envelope(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": ENVELOPE_ID,
        "type": "information.share",
        "version": 1,
        "originator": {
            "party": "CICA",
            "system": "case-desk",
            "officer": "lo-0042",
            "submission_id": "3f1c0d",
        },
        "recipient": "SCO-RATS",
        "created_at": "2026-03-01T09:30:00Z",
        "correlation_id": None,
        "in_reply_to": None,
        "derived_from": [],
        "handling": {"onward": "consent-required", "pre_approved": []},
        "body": {"subject": {"en": "Subject"}, "text": {"en": "Text"}},
        "signature": {"alg": "ed25519", "key_id": "CICA-2026-1", "value": "AAAA"},
    }
    document.update(changes)
    return document


def encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def code_of(data: bytes) -> tuple[str, str | None]:
    with pytest.raises(ContractError) as caught:
        parse_submission(data)
    return caught.value.code, caught.value.field


# -- submissions ---------------------------------------------------------------------------


def test_submission_parses_with_defaults_and_keeps_the_body_exactly() -> None:
    document = share(body={"subject": {"en": "S"}, "text": {"en": "T"}, "topics": ["a"]})
    submission = parse_submission(encode(document))
    assert submission.version == 1
    assert submission.handling.onward == "consent-required"
    assert submission.handling.pre_approved == ()
    assert submission.derived_from == ()
    assert submission.body == document["body"]
    typed = submission.typed_body()
    assert isinstance(typed, InformationShareV1)
    assert typed.topics == ("a",)


def test_submission_is_immutable() -> None:
    submission = parse_submission(encode(share()))
    with pytest.raises(ValidationError):
        submission.recipient = "CICA"  # type: ignore[misc]


def test_submission_built_in_python_validates_its_body() -> None:
    with pytest.raises(ValidationError) as caught:
        Submission(type="information.share", recipient="SCO-RATS", officer="lo-1", body={})
    assert caught.value.errors()[0]["type"] == "schema.missing_field"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xff\xfe{}", "schema.invalid_json"),
        (b"\xef\xbb\xbf{}", "schema.invalid_json"),
        (b'{"a": NaN}', "schema.invalid_json"),
        (b'{"a": Infinity}', "schema.invalid_json"),
        (b'{"type": "information.share"', "schema.invalid_json"),
        (b"[" * 100_000, "schema.invalid_json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "schema.invalid_json"),
        ('{"type": "x"}'.encode("utf-16"), "schema.invalid_json"),
        (b"[]", "schema.not_an_object"),
        (b'"information.share"', "schema.not_an_object"),
        (b"null", "schema.not_an_object"),
        (b" " * (MAX_DOCUMENT_BYTES + 1), "schema.too_large"),
    ],
)
def test_undecodable_documents_have_their_code(data: bytes, code: str) -> None:
    assert code_of(data) == (code, None)


def test_the_first_error_in_field_order_wins() -> None:
    document = share(recipient="lower", officer="bad officer", extra=1)
    assert code_of(encode(document)) == ("schema.invalid_value", "recipient")
    document = share(recipient="SCO-RATS", officer="bad officer", extra=1)
    assert code_of(encode(document)) == ("schema.invalid_value", "officer")


def test_unknown_type_is_reported_before_the_other_fields() -> None:
    document = share(type="information.gossip", recipient=17)
    assert code_of(encode(document)) == ("schema.unknown_type", "type")


def test_unknown_version_names_the_version() -> None:
    code, field = code_of(encode(share(version=7)))
    assert (code, field) == ("schema.unknown_version", "version")


def test_version_must_be_an_integer_not_a_boolean_or_float() -> None:
    assert code_of(encode(share(version=True)))[0] == "schema.wrong_type"
    assert code_of(encode(share(version=1.0)))[0] == "schema.wrong_type"


def test_body_errors_carry_the_dotted_path() -> None:
    document = share(body={"subject": {"en": "S"}, "text": {"en": 5}})
    with pytest.raises(ContractError) as caught:
        parse_submission(encode(document))
    error = caught.value
    assert (error.code, error.field) == ("schema.wrong_type", "body.text.en")
    assert str(error) == error.message
    assert error.message.startswith("body.text.en: ")


def test_officer_is_required_only_for_the_types_that_need_one() -> None:
    assert code_of(encode(share(officer=None))) == ("schema.missing_field", "officer")
    receipt = {
        "type": "receipt",
        "recipient": "SCO-RATS",
        "body": {
            "envelope_id": ENVELOPE_ID,
            "envelope_sha256": "a" * 64,
            "status": "delivered",
            "received_at": "2026-03-01T09:30:00Z",
        },
    }
    assert parse_submission(encode(receipt)).officer is None


def test_contract_error_pickles_with_its_fields() -> None:
    error = ContractError("schema.missing_field", "body.x: required field is missing", "body.x")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.field, copy.message) == (error.code, error.field, error.message)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("missing", "schema.missing_field"),
        ("extra_forbidden", "schema.extra_field"),
        ("string_type", "schema.wrong_type"),
        ("model_type", "schema.wrong_type"),
        ("none_required", "schema.wrong_type"),
        ("string_too_long", "schema.too_large"),
        ("too_long", "schema.too_large"),
        ("literal_error", "schema.invalid_value"),
        ("string_pattern_mismatch", "schema.invalid_value"),
        ("attachment.hash_mismatch", "attachment.hash_mismatch"),
    ],
)
def test_pydantic_error_types_map_to_stable_codes(kind: str, code: str) -> None:
    error: Any = {"type": kind, "loc": ("body", "a", 0), "msg": "m", "input": None}
    assert describe(error)[:2] == (code, "body.a.0")


# -- bilingual text --------------------------------------------------------------------------


@pytest.mark.parametrize("texts", [{"en": "Text"}, {"ru": "Текст"}, {"en": "Text", "ru": "Текст"}])
def test_either_language_or_both_is_enough(texts: dict[str, str]) -> None:
    assert BilingualText.model_validate(texts).model_dump(exclude_none=True) == texts


@pytest.mark.parametrize(
    ("texts", "field"),
    [
        ({}, None),
        ({"en": None, "ru": None}, None),
        ({"en": ""}, "en"),
        ({"ru": " \n\t "}, "ru"),
        ({"en": "Text", "ru": "\u3000"}, "ru"),
    ],
)
def test_empty_text_is_refused(texts: dict[str, Any], field: str | None) -> None:
    document = share(body={"subject": texts, "text": {"en": "T"}})
    assert code_of(encode(document)) == (
        "text.empty",
        f"body.subject.{field}" if field else "body.subject",
    )


def test_neither_language_is_primary() -> None:
    english = BilingualText(en="Text")
    russian = BilingualText(ru="Text")
    assert (english.en, english.ru) == (russian.ru, russian.en)
    assert FormalText(en="a", ru="b").model_dump() == {"en": "a", "ru": "b"}


@pytest.mark.parametrize("texts", [{"en": "Text"}, {"ru": "Текст"}, {"en": None, "ru": "x"}, {}])
def test_formal_text_needs_both_languages(texts: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        FormalText.model_validate(texts)
    assert caught.value.errors()[0]["type"] == "text.bilingual_required"


def test_formal_text_is_a_bilingual_text_and_refuses_blank_originals() -> None:
    assert isinstance(FormalText(en="a", ru="Текст"), BilingualText)
    with pytest.raises(ValidationError) as caught:
        FormalText(en="a", ru=" ")
    assert caught.value.errors()[0]["type"] == "text.empty"


# -- attachments ---------------------------------------------------------------------------


def test_attachment_from_bytes_round_trips_its_data() -> None:
    attachment = Attachment.from_bytes("a.bin", "application/octet-stream", b"\x00\x01payload")
    assert attachment.size == 9
    assert attachment.data() == b"\x00\x01payload"
    assert Attachment.model_validate(attachment.model_dump()) == attachment


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"size": 3}, "attachment.size_mismatch", "size"),
        ({"sha256": "0" * 64}, "attachment.hash_mismatch", "sha256"),
        ({"content": "aGVsbG8"}, "attachment.bad_base64", "content"),
        ({"content": "aGVs\nbG8="}, "attachment.bad_base64", "content"),
        ({"size": MAX_ATTACHMENT_BYTES + 1}, "attachment.too_large", "size"),
        ({"size": -1}, "schema.invalid_value", "size"),
        ({"sha256": "A" * 64}, "schema.invalid_value", "sha256"),
        ({"name": "../etc/passwd"}, "schema.invalid_value", "name"),
        ({"media_type": "pdf"}, "schema.invalid_value", "media_type"),
    ],
)
def test_attachment_checks(changes: dict[str, Any], code: str, field: str) -> None:
    attachment = Attachment.from_bytes("a.txt", "text/plain", b"hello").model_dump()
    attachment.update(changes)
    document = share(
        body={"subject": {"en": "S"}, "text": {"en": "T"}, "attachments": [attachment]}
    )
    assert code_of(encode(document)) == (code, f"body.attachments.0.{field}")


def test_attachment_content_over_the_limit_is_too_large_before_decoding() -> None:
    with pytest.raises(ValidationError) as caught:
        Attachment(name="a", media_type="a/b", size=1, sha256="0" * 64, content="A" * 2_796_208)
    assert caught.value.errors()[0]["type"] == "attachment.too_large"


def test_attachments_of_a_message_have_a_total_limit() -> None:
    part = MAX_ATTACHMENTS_BYTES // 3 + 1
    attachments = [Attachment.from_bytes(f"{i}.bin", "a/b", bytes([i]) * part) for i in range(3)]
    assert part <= MAX_ATTACHMENT_BYTES
    with pytest.raises(ValidationError) as caught:
        InformationShareV1(
            subject=BilingualText(en="s"),
            text=BilingualText(en="t"),
            attachments=tuple(attachments),
        )
    error = caught.value.errors()[0]
    assert error["type"] == "attachment.too_large"
    assert describe(error)[1] == "attachments"
    InformationShareV1(
        subject=BilingualText(en="s"),
        text=BilingualText(en="t"),
        attachments=tuple(attachments[:2]),
    )


# -- authorization, dates, scopes ----------------------------------------------------------


def assignment(**body_changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": "assign",
        "officer": {"id": "lo-1", "name": "N", "role": "R", "contact": "c@example.org"},
        "valid_from": "2026-03-01",
        "authorization": AUTHORIZATION,
    }
    body.update(body_changes)
    return {"type": "liaison.assignment", "recipient": "SCO-RATS", "body": body}


def test_authorization_missing_or_null_has_its_own_code() -> None:
    without = assignment()
    del without["body"]["authorization"]
    assert code_of(encode(without)) == ("authorization.missing", "body.authorization")
    assert code_of(encode(assignment(authorization=None))) == (
        "authorization.missing",
        "body.authorization",
    )
    assert code_of(encode(assignment(authorization={}))) == (
        "schema.missing_field",
        "body.authorization.reference",
    )


def test_authorization_is_checked_before_other_body_fields() -> None:
    document = assignment(authorization=None, action="nope")
    assert code_of(encode(document))[0] == "authorization.missing"


def test_dates_parse_from_rfc3339_strings() -> None:
    typed = parse_submission(encode(assignment(valid_to="2026-12-31"))).typed_body()
    assert isinstance(typed, LiaisonAssignmentV1)
    assert (typed.valid_from, typed.valid_to) == (date(2026, 3, 1), date(2026, 12, 31))


@pytest.mark.parametrize("value", ["2026-3-1", "2026-02-30", "20260301", "2026-03-01T00:00:00Z"])
def test_malformed_dates_are_invalid_values(value: str) -> None:
    assert code_of(encode(assignment(valid_from=value))) == (
        "schema.invalid_value",
        "body.valid_from",
    )


def test_date_range_must_not_run_backwards() -> None:
    document = assignment(valid_from="2026-03-02", valid_to="2026-03-01")
    assert code_of(encode(document)) == ("schema.inconsistent", "body.valid_to")


@pytest.mark.parametrize(
    ("scope", "ok"),
    [
        ({"envelope_ids": [ENVELOPE_ID]}, True),
        ({"correlation_id": "case-1"}, True),
        ({"correlation_id": "case-1", "envelope_ids": None}, True),
        ({}, False),
        ({"envelope_ids": None, "correlation_id": None}, False),
        ({"envelope_ids": [ENVELOPE_ID], "correlation_id": "case-1"}, False),
    ],
)
def test_consent_scope_takes_exactly_one_kind(scope: dict[str, Any], ok: bool) -> None:
    if ok:
        ConsentScope.model_validate(scope)
    else:
        with pytest.raises(ValidationError):
            ConsentScope.model_validate(scope)


# -- envelopes -----------------------------------------------------------------------------


def test_envelope_parses_from_a_decoded_object_and_dumps_created_at_with_z() -> None:
    parsed = parse_envelope(envelope())
    assert parsed.created_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert parsed.created_at.tzinfo is not None
    assert parsed.model_dump(mode="json")["created_at"] == "2026-03-01T09:30:00Z"
    assert parsed.model_dump(mode="json") == envelope()
    assert parse_envelope(MappingProxyType(envelope())) == parsed


def test_envelope_offsets_are_normalised_to_utc() -> None:
    parsed = parse_envelope(envelope(created_at="2026-03-01T12:30:00.250+03:00"))
    assert parsed.model_dump(mode="json")["created_at"] == "2026-03-01T09:30:00.250000Z"


@pytest.mark.parametrize(
    "created_at",
    ["2026-03-01T09:30:00", "2026-03-01 09:30:00Z", "2026-03-01t09:30:00z", "2026-03-01T09:30:60Z"],
)
def test_envelope_created_at_must_be_rfc3339_with_offset(created_at: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_envelope(envelope(created_at=created_at))
    assert (caught.value.code, caught.value.field) == ("schema.invalid_value", "created_at")


def test_envelope_refuses_naive_datetimes_from_python() -> None:
    with pytest.raises(ContractError) as caught:
        parse_envelope(envelope(created_at=datetime(2026, 3, 1)))
    assert caught.value.code == "schema.invalid_value"
    aware = datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=3)))
    assert parse_envelope(envelope(created_at=aware)).created_at == datetime(
        2026, 3, 1, 9, tzinfo=UTC
    )


def test_envelope_errors_are_contract_errors_with_paths() -> None:
    cases = [
        (envelope(type="nope"), "schema.unknown_type", "type"),
        (envelope(version=2), "schema.unknown_version", "version"),
        (
            envelope(signature={"alg": "rsa", "key_id": "k", "value": "AAAA"}),
            "schema.invalid_value",
            "signature.alg",
        ),
        (envelope(body={"subject": {"en": "S"}}), "schema.missing_field", "body.text"),
        (
            envelope(originator={**envelope()["originator"], "officer": None}),
            "schema.missing_field",
            "originator.officer",
        ),
        (envelope(id="not-a-uuid"), "schema.invalid_value", "id"),
    ]
    for document, code, field in cases:
        with pytest.raises(ContractError) as caught:
            parse_envelope(document)
        assert (caught.value.code, caught.value.field) == (code, field)
    missing = envelope()
    del missing["correlation_id"]
    with pytest.raises(ContractError) as caught:
        parse_envelope(missing)
    assert caught.value.code == "schema.missing_field"


def test_envelope_signature_may_be_absent_before_signing() -> None:
    unsigned = envelope()
    del unsigned["signature"]
    parsed = parse_envelope(unsigned)
    assert parsed.signature is None
    assert isinstance(parsed.typed_body(), InformationShareV1)
    assert isinstance(parsed, Envelope)


def test_parse_envelope_refuses_non_objects() -> None:
    with pytest.raises(ContractError) as caught:
        parse_envelope([])  # type: ignore[arg-type]
    assert caught.value.code == "schema.not_an_object"


# -- status events -------------------------------------------------------------------------


def test_status_event_round_trips() -> None:
    event = StatusEvent(
        submission_id="abc",
        envelope_id=None,
        type="information.share",
        status="rejected",
        reason="schema.missing_field",
        detail="body.text: required field is missing",
        at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert parse_status(event.model_dump_json().encode()) == event
    with pytest.raises(ContractError) as caught:
        parse_status(event.model_dump_json().replace("rejected", "lost").encode())
    assert (caught.value.code, caught.value.field) == ("schema.invalid_value", "status")


# -- frames --------------------------------------------------------------------------------


def test_frame_round_trips_raw_envelopes() -> None:
    envelopes = [envelope(), envelope(id="01960f80-1b2c-7d4e-8f6a-0b1c2d3e4f5a")]
    data = encode_frame(envelopes)
    assert json.loads(data) == {"frame": 1, "envelopes": envelopes}
    assert parse_frame(data) == envelopes
    assert parse_frame(encode_frame([MappingProxyType({"x": 1})])) == [{"x": 1}]


@pytest.mark.parametrize(
    "frame",
    [
        [],
        {"envelopes": [{}]},
        {"frame": 1},
        {"frame": 2, "envelopes": [{}]},
        {"frame": True, "envelopes": [{}]},
        {"frame": "1", "envelopes": [{}]},
        {"frame": 1, "envelopes": []},
        {"frame": 1, "envelopes": {}},
        {"frame": 1, "envelopes": [{}, 3]},
        {"frame": 1, "envelopes": [{}], "extra": 1},
    ],
)
def test_malformed_frames_are_frame_invalid(frame: Any) -> None:
    with pytest.raises(ContractError) as caught:
        parse_frame(encode(frame))
    assert caught.value.code == "frame.invalid"


def test_frame_that_is_not_json_is_invalid_json() -> None:
    with pytest.raises(ContractError) as caught:
        parse_frame(b'{"frame": 1,')
    assert caught.value.code == "schema.invalid_json"


def test_an_empty_frame_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="at least one"):
        encode_frame([])
