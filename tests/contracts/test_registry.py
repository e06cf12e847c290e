"""The registry of (type, version) -> body model, and the rules its flags stand for."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

import contracts
from contracts import LATEST_VERSION, ContractError, all_specs, latest_version, spec_for
from contracts.bodies import AuthorizedBody
from contracts.registry import message_types, versions_of
from contracts.text import BilingualText, FormalText
from contracts.types import ContractModel

README = Path(contracts.__file__).parent / "README.md"

EXPECTED_TYPES = {
    "liaison.assignment",
    "information.share",
    "information.request",
    "working_group.establish",
    "working_group.proposal",
    "meeting.invitation",
    "meeting.minutes",
    "consent.request",
    "consent.decision",
    "consent.revocation",
    "receipt",
    "checkpoint",
}
NEEDS_OFFICER = {
    "information.share",
    "information.request",
    "working_group.establish",
    "working_group.proposal",
    "meeting.invitation",
    "meeting.minutes",
    "consent.request",
}
NEEDS_AUTHORIZATION = {
    "liaison.assignment",
    "working_group.establish",
    "working_group.proposal",
    "meeting.invitation",
    "meeting.minutes",
}
FORMAL = {"working_group.establish", "working_group.proposal", "meeting.minutes"}


def _text_fields(model: type[BaseModel]) -> dict[str, set[type]]:
    found: dict[str, set[type]] = {}
    for name, field in model.model_fields.items():
        kinds = {
            arg
            for arg in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(arg, type) and issubclass(arg, BilingualText)
        }
        if kinds:
            found[name] = kinds
    return found


def test_every_type_of_the_protocol_is_registered() -> None:
    assert set(message_types()) == EXPECTED_TYPES
    keys = [(spec.type, spec.version) for spec in all_specs()]
    assert len(keys) == len(set(keys))


def test_flags_match_the_design() -> None:
    specs = all_specs()
    assert {s.type for s in specs if s.needs_officer} == NEEDS_OFFICER
    assert {s.type for s in specs if s.needs_authorization} == NEEDS_AUTHORIZATION
    assert {s.type for s in specs if s.formal} == FORMAL


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: f"{s.type}.v{s.version}")
def test_body_model_agrees_with_the_flags(spec: contracts.MessageSpec) -> None:
    body = spec.body
    assert issubclass(body, ContractModel)
    assert body.model_config.get("strict") is True
    assert body.model_config.get("extra") == "forbid"
    assert body.model_config.get("frozen") is True
    has_authorization = "authorization" in body.model_fields
    assert has_authorization == spec.needs_authorization
    assert issubclass(body, AuthorizedBody) == spec.needs_authorization
    if has_authorization:
        assert body.model_fields["authorization"].is_required()
    texts = _text_fields(body)
    if spec.formal:
        assert texts
        assert all(kinds == {FormalText} for kinds in texts.values())
    else:
        assert FormalText not in set().union(*texts.values())


def test_spec_for_finds_each_spec() -> None:
    for spec in all_specs():
        assert spec_for(spec.type, spec.version) is spec


def test_unknown_type_and_version_are_coded() -> None:
    with pytest.raises(ContractError) as caught:
        spec_for("information.gossip", 1)
    assert (caught.value.code, caught.value.field) == ("schema.unknown_type", "type")
    with pytest.raises(ContractError) as caught:
        spec_for("information.share", 99)
    assert (caught.value.code, caught.value.field) == ("schema.unknown_version", "version")
    assert "99" in caught.value.message


def test_versions() -> None:
    assert max(spec.version for spec in all_specs()) == LATEST_VERSION
    for message_type in message_types():
        assert latest_version(message_type) == max(versions_of(message_type))
    assert versions_of("nope") == ()
    with pytest.raises(ContractError) as caught:
        latest_version("nope")
    assert caught.value.code == "schema.unknown_type"


def test_readme_documents_every_type_and_field() -> None:
    text = README.read_text("utf-8")
    for spec in all_specs():
        assert f"`{spec.type}`" in text
        for name in spec.body.model_fields:
            assert f"`{name}`" in text, (spec.type, name)
    for model in (
        contracts.Submission,
        contracts.Envelope,
        contracts.StatusEvent,
        contracts.Attachment,
        contracts.Originator,
        contracts.Signature,
        contracts.Handling,
        contracts.Officer,
        contracts.Participant,
        contracts.SideEvent,
        contracts.Authorization,
        contracts.ConsentScope,
        contracts.ChainPoint,
    ):
        for name in model.model_fields:
            assert f"`{name}`" in text, (model.__name__, name)
