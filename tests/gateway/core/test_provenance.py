"""Provenance: extraction from envelopes, the index, and the derived_from closure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gateway.core.envelope_content import Content
from gateway.core.provenance import (
    UNKNOWN_REFERENCE,
    KnownEnvelope,
    ProvenanceError,
    ProvenanceIndex,
    known_from_envelope,
    providers_of,
)

SHARE_EN = (
    "Our analysts observed a rise in fraudulent charitable collections announced on social "
    "networks after the earthquake, with money moved to accounts abroad."
)
SHARE_RU = (
    "Наши аналитики отметили рост мошеннических благотворительных сборов в социальных сетях "
    "после землетрясения, средства переводились на счета за рубежом."
)
OTHER_EN = (
    "The joint working group held its second meeting on the sidelines of the regional security "
    "forum and agreed to add protection of critical infrastructure to its list."
)
DIGEST = "AB" * 32


def envelope_json(**overrides: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "id": "env-1",
        "type": "information.share",
        "version": 1,
        "originator": {"party": "CICA", "system": "case-desk", "officer": "lo-1"},
        "recipient": "SCO-RATS",
        "created_at": "2026-01-01T00:00:00Z",
        "correlation_id": "thread-1",
        "in_reply_to": None,
        "derived_from": ["env-0"],
        "handling": {"onward": "consent-required", "pre_approved": ["UNOCT"]},
        "body": {
            "subject": {"en": "Charity fraud", "ru": "Мошенничество"},
            "text": {"en": SHARE_EN, "ru": SHARE_RU},
            "reference": "case-17",
            "sections": [{"title": {"en": "Annex", "ru": "Приложение"}, "text": "plain note"}],
            "attachments": [
                {"name": "table.xlsx", "sha256": DIGEST, "size": 10},
                {"name": "no-hash"},
            ],
        },
        "signature": {"alg": "ed25519", "key_id": "CICA-1", "value": "AAAA"},
    }
    envelope.update(overrides)
    return envelope


def known(
    envelope_id: str,
    provider: str = "CICA",
    *,
    derived_from: tuple[str, ...] = (),
    received: bool = True,
    texts: tuple[str, ...] = (),
    attachments: tuple[str, ...] = (),
) -> KnownEnvelope:
    return KnownEnvelope(
        id=envelope_id,
        provider=provider,
        recipient="SCO-RATS" if received else "CICA",
        type="information.share",
        correlation_id=None,
        derived_from=derived_from,
        pre_approved=(),
        attachment_sha256=attachments,
        texts=texts,
        received=received,
    )


def index_of(*envelopes: KnownEnvelope) -> ProvenanceIndex:
    index = ProvenanceIndex()
    for envelope in envelopes:
        index.add(envelope)
    return index


class TestKnownFromEnvelope:
    def test_extracts_every_member(self) -> None:
        result = known_from_envelope(envelope_json(), received=True)
        assert result.content is not None
        assert result.content.sha256 == (DIGEST.lower(),)
        assert replace(result, content=None) == KnownEnvelope(
            id="env-1",
            provider="CICA",
            recipient="SCO-RATS",
            type="information.share",
            correlation_id="thread-1",
            derived_from=("env-0",),
            pre_approved=("UNOCT",),
            attachment_sha256=(DIGEST.lower(),),
            texts=(
                "Charity fraud",
                "Мошенничество",
                SHARE_EN,
                SHARE_RU,
                "case-17",
                "Annex",
                "Приложение",
                "plain note",
                "table.xlsx",
                "no-hash",
            ),
            received=True,
        )

    def test_received_flag_is_kept(self) -> None:
        assert not known_from_envelope(envelope_json(), received=False).received

    def test_every_string_a_recipient_reads_is_content(self) -> None:
        sent = known_from_envelope(envelope_json(), received=False).readable()
        paths = dict(sent.texts)
        assert paths["body.reference"] == "case-17"
        assert paths["body.attachments[0].name"] == "table.xlsx"
        assert paths["body.sections[0].text"] == "plain note"
        # What a back-office system chose is compared only in what this Party sends.
        assert paths["correlation_id"] == "thread-1"
        received = known_from_envelope(envelope_json(), received=True).readable()
        assert "correlation_id" not in dict(received.texts)

    def test_texts_found_at_any_depth_deduplicated_and_blank_dropped(self) -> None:
        body = {
            "agenda": [{"items": [{"en": "Item one", "ru": "Пункт один"}]}],
            "purpose": {"en": "Item one", "ru": "  "},
            "only_en": {"en": "English only"},
        }
        result = known_from_envelope(envelope_json(body=body), received=True)
        assert result.texts == ("Item one", "Пункт один", "English only")

    def test_nested_attachments_lists_are_found(self) -> None:
        body = {"annexes": [{"attachments": [{"sha256": "cd" * 32}]}]}
        assert known_from_envelope(envelope_json(body=body), received=True).attachment_sha256 == (
            "cd" * 32,
        )

    def test_absent_optional_members_are_empty(self) -> None:
        envelope = envelope_json(correlation_id=None, body={})
        del envelope["derived_from"]
        del envelope["handling"]
        result = known_from_envelope(envelope, received=False)
        assert result.correlation_id is None
        assert result.derived_from == ()
        assert result.pre_approved == ()
        assert result.texts == ()
        assert result.attachment_sha256 == ()

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"id": None}, "id"),
            ({"originator": {"system": "x"}}, "originator.party"),
            ({"originator": "CICA"}, "originator.party"),
            ({"recipient": ""}, "recipient"),
            ({"type": 3}, "type"),
            ({"derived_from": "env-0"}, "derived_from"),
            ({"derived_from": [1]}, "derived_from"),
            ({"handling": {"pre_approved": "UNOCT"}}, "pre_approved"),
            ({"handling": ["UNOCT"]}, "handling"),
            ({"correlation_id": 5}, "correlation_id"),
        ],
    )
    def test_malformed_envelopes_are_refused(self, overrides: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            known_from_envelope(envelope_json(**overrides), received=True)


class TestProvenanceIndex:
    def test_add_get_len_contains(self) -> None:
        index = ProvenanceIndex()
        first = known("a")
        assert index.add(first)
        assert index.get("a") is first
        assert index.get("b") is None
        assert "a" in index
        assert "b" not in index
        assert len(index) == 1

    def test_second_add_of_an_id_is_ignored(self) -> None:
        index = ProvenanceIndex()
        first = known("a", texts=(SHARE_EN,))
        assert index.add(first)
        assert not index.add(known("a", provider="UNOCT", texts=(SHARE_EN,)))
        assert index.get("a") is first
        assert len(index) == 1
        found = index.resemblances(Content.of_texts([SHARE_EN]))
        assert [r.matched_envelope_id for r in found] == ["a"]

    def test_only_received_envelopes_are_found_by_attachment_any_case(self) -> None:
        index = index_of(
            known("a", attachments=(DIGEST.lower(),)),
            known("b", "SCO-RATS", attachments=(DIGEST.lower(),), received=False),
            known("c", "UNOCT", attachments=(DIGEST.lower(),)),
        )
        found = index.resemblances(Content.of_texts([], [DIGEST]))
        assert [r.matched_envelope_id for r in found] == ["a", "c"]
        assert index.resemblances(Content.of_texts([], ["ef" * 32])) == []

    def test_only_received_texts_are_found_best_first(self) -> None:
        index = index_of(
            known("exact", texts=(SHARE_EN,)),
            known("edited", "UNOCT", texts=("FYI: " + SHARE_EN.replace("rise", "surge"),)),
            known("mine", "SCO-RATS", texts=(SHARE_EN,), received=False),
            known("other", texts=(OTHER_EN,)),
        )
        found = index.resemblances(Content.of_texts(["Forwarded: " + SHARE_EN]))
        assert [r.matched_envelope_id for r in found] == ["exact", "edited"]
        assert found[0].score == 1.0
        assert found[1].level == "block"

    def test_what_was_sent_to_a_recipient_adds_up(self) -> None:
        half = len(SHARE_EN) * 3 // 5
        index = index_of(
            known("a", texts=(SHARE_EN,)),
            known("mine", "SCO-RATS", texts=(SHARE_EN[:half],), received=False),
        )
        found = index.resemblances(Content.of_texts([SHARE_EN[half:]]), "CICA")
        assert [(r.matched_envelope_id, r.accumulated) for r in found] == [("a", True)]


class TestProvidersOf:
    def test_empty(self) -> None:
        result = providers_of([], ProvenanceIndex())
        assert result.envelopes == ()
        assert result.providers == frozenset()

    def test_transitive_closure_through_own_and_received_envelopes(self) -> None:
        index = index_of(
            known("x", "UNOCT"),
            known("mine", "SCO-RATS", derived_from=("x",), received=False),
            known("w", "CICA", derived_from=("mine",)),
            known("unrelated", "CICA"),
        )
        result = providers_of(["w"], index)
        assert [k.id for k in result.envelopes] == ["w", "mine", "x"]
        assert result.providers == {"CICA", "SCO-RATS", "UNOCT"}
        assert result.ids == {"w", "mine", "x"}

    def test_cycles_and_diamonds_visit_each_envelope_once(self) -> None:
        index = index_of(
            known("a", derived_from=("b", "c")),
            known("b", derived_from=("d",)),
            known("c", "UNOCT", derived_from=("d",)),
            known("d", derived_from=("a",)),
        )
        result = providers_of(["a", "a", "d"], index)
        assert sorted(k.id for k in result.envelopes) == ["a", "b", "c", "d"]
        assert result.providers == {"CICA", "UNOCT"}

    def test_unknown_declared_ids_are_an_error_naming_all_of_them(self) -> None:
        index = index_of(known("a"))
        with pytest.raises(ProvenanceError) as caught:
            providers_of(["a", "ghost-1", "ghost-2", "ghost-1"], index)
        assert caught.value.code == UNKNOWN_REFERENCE
        assert caught.value.references == ("ghost-1", "ghost-2")
        assert "ghost-1" in caught.value.detail
        assert "ghost-2" in caught.value.detail

    def test_unknown_id_behind_an_own_envelope_is_an_error(self) -> None:
        index = index_of(known("mine", "SCO-RATS", derived_from=("lost",), received=False))
        with pytest.raises(ProvenanceError) as caught:
            providers_of(["mine"], index)
        assert caught.value.references == ("lost",)

    def test_unknown_id_behind_a_received_envelope_names_the_peers_archive(self) -> None:
        index = index_of(known("w", "CICA", derived_from=("peer-internal",)))
        result = providers_of(["w"], index)
        assert [k.id for k in result.envelopes] == ["w"]
        assert result.providers == {"CICA"}

    def test_id_known_behind_a_received_envelope_is_followed(self) -> None:
        index = index_of(known("x", "UNOCT"), known("w", "CICA", derived_from=("x", "nope")))
        assert providers_of(["w"], index).providers == {"CICA", "UNOCT"}

    def test_id_unknown_behind_received_but_declared_directly_is_still_an_error(self) -> None:
        index = index_of(known("w", "CICA", derived_from=("peer-internal",)))
        with pytest.raises(ProvenanceError):
            providers_of(["w", "peer-internal"], index)
