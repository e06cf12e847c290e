"""The release review (pure): who is held, who may release, and what the archive keeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gateway.core.control_requests import (
    MALFORMED,
    RequestError,
    parse_control_request,
    review_refuse_request,
    review_release_request,
)
from gateway.core.envelope_content import Content
from gateway.core.outbound_decision import (
    Accepted,
    Blocked,
    Held,
    OutboundContext,
    decide_submission,
)
from gateway.core.replay import check_replayable
from gateway.core.resemblance import THRESHOLDS
from gateway.core.review import (
    DEFAULT_THRESHOLD,
    HELD_ALWAYS,
    HELD_RESEMBLANCE,
    NOT_A_REVIEWER,
    SAME_OFFICER,
    check_reviewer,
    held_headers,
    officer_of,
    resembles_of,
)
from gateway.core.similarity import ResemblanceIndex
from gateway.core.state import PartyState
from gateway.review_ops import pending
from gateway.workers.submissions import resend_of
from tests.gateway.core.test_outbound_decision import (
    CICA_KEY,
    RATS_KEY,
    accredited_state,
    context,
    decide,
    delivery,
)
from tests.gateway.core.test_replay import envelope_record, record
from tests.gateway.fresh_text import CORPUS
from tests.gateway.trust_helpers import NOW, assignment_envelope, signed
from tests.support.parties import share

PROVIDED = (
    "Two couriers travel every second week from the northern border crossing to the river "
    "port, carrying cash in fuel canisters and meeting a contact in the market hall before "
    "the evening ferry leaves."
)
# Part of PROVIDED in a new frame: a weak resemblance, below the blocking threshold.
WEAK = (
    "Our desk hears that two couriers travel every second week from the northern border "
    "crossing, and we would like to discuss with your analysts how trade routes changed."
)
BLOCKING = THRESHOLDS["text"][0]
FRESH = (
    "Our analysts finished the yearly overview of training courses for border guards and "
    "will present the schedule of workshops at the next plenary meeting in the spring."
)


def rats_shared(state: PartyState, **handling: Any) -> dict[str, Any]:
    """SCO-RATS's envelope carrying PROVIDED, received by CICA."""
    received = signed(
        RATS_KEY,
        recipient="CICA",
        officer="lo-0117",
        body=share("CICA", PROVIDED)["body"],
        **handling,
    )
    state.received(received, NOW - timedelta(minutes=1))
    return received


def reviewing(state: PartyState, mode: str = "on_match") -> OutboundContext:
    return replace(context(state), review={"UNOCT": mode})  # type: ignore[dict-item]


def test_the_weak_copy_lies_between_the_review_and_the_blocking_thresholds() -> None:
    index = ResemblanceIndex()
    index.add_provided("provided", Content.of_texts([PROVIDED]))
    [found] = index.resemblances(Content.of_texts([WEAK]))
    assert found.level == "review"
    assert DEFAULT_THRESHOLD <= found.score < BLOCKING


def test_on_match_holds_a_weak_resemblance_no_consent_covers() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    received = rats_shared(state)
    decision = decide(share("UNOCT", WEAK), reviewing(state))
    assert isinstance(decision, Held)
    assert decision.need.reason == HELD_RESEMBLANCE
    [resemblance] = decision.need.resembles
    assert (resemblance.envelope_id, resemblance.provider) == (received["id"], "SCO-RATS")
    assert DEFAULT_THRESHOLD <= resemblance.score < BLOCKING
    assert received["id"] in decision.need.detail


def test_a_clear_copy_is_still_quarantined_not_held() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    rats_shared(state)
    assert isinstance(decide(share("UNOCT", PROVIDED), reviewing(state)), Blocked)


@pytest.mark.parametrize("mode", ["off", "on_match"])
def test_fresh_information_and_review_off_are_never_held(mode: str) -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    rats_shared(state)
    assert isinstance(decide(share("UNOCT", FRESH), reviewing(state, mode)), Accepted)
    if mode == "off":
        assert isinstance(decide(share("UNOCT", WEAK), reviewing(state, mode)), Accepted)


def test_content_pre_approved_for_the_recipient_is_not_held() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    cleared = signed(
        RATS_KEY, recipient="CICA", officer="lo-0117", body=share("CICA", PROVIDED)["body"]
    )
    cleared["handling"]["pre_approved"] = ["UNOCT"]  # the signature is not checked here
    state.received(cleared, NOW - timedelta(minutes=1))
    assert isinstance(decide(share("UNOCT", WEAK), reviewing(state)), Accepted)


def test_content_under_a_live_grant_is_not_held() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    received = rats_shared(state)
    state.consent.apply_decision(
        "d-1",
        "SCO-RATS",
        {
            "decision": "granted",
            "scope": {"envelope_ids": [received["id"]]},
            "recipients": ["UNOCT"],
        },
        NOW - timedelta(seconds=30),
    )
    assert isinstance(decide(share("UNOCT", WEAK), reviewing(state)), Accepted)


def test_always_holds_everything_to_that_counterparty_only() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    decision = decide(share("UNOCT", FRESH), reviewing(state, "always"))
    assert isinstance(decision, Held)
    assert decision.need.reason == HELD_ALWAYS
    assert decision.need.resembles == ()
    assert isinstance(decide(share("SCO-RATS", FRESH), reviewing(state, "always")), Accepted)


def test_a_reviewed_submission_is_not_held_again() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    ctx = reviewing(state, "always")
    assert isinstance(
        decide_submission(delivery(share("UNOCT", FRESH)), ctx, reviewed=True), Accepted
    )


def test_the_archived_hold_keeps_the_officer_and_the_resemblances() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    rats_shared(state)
    decision = decide(share("UNOCT", WEAK), reviewing(state))
    assert isinstance(decision, Held)
    headers = held_headers(decision.need, "lo-0001")
    assert officer_of(headers) == "lo-0001"
    assert resembles_of(headers) == decision.need.resembles
    assert resembles_of((("x-gw-resembles", "not json"),)) == ()


def roster_with(*officers: tuple[str, str]) -> PartyState:
    state = PartyState("CICA")
    for officer, role in officers:
        envelope = assignment_envelope(CICA_KEY, officer)
        envelope["body"]["officer"]["role"] = role
        state.sent(envelope, "a-" + officer, NOW - timedelta(minutes=5))
    return state


def test_four_eyes_and_reviewer_roles() -> None:
    state = roster_with(
        ("lo-0001", "liaison officer"), ("lo-0002", "liaison officer"), ("lo-0003", "driver")
    )
    roles = {"liaison officer"}

    def check(person: str) -> str | None:
        problem = check_reviewer(
            person,
            submission_officer="lo-0001",
            roster=state.roster,
            party="CICA",
            roles=roles,
            at=NOW,
        )
        return None if problem is None else problem[0]

    assert check("lo-0001") == SAME_OFFICER
    assert check("lo-0002") is None
    assert check("lo-0003") == NOT_A_REVIEWER
    assert check("lo-9999") == NOT_A_REVIEWER


def test_review_requests_round_trip_and_need_their_members() -> None:
    for request in (
        review_release_request("r-1", 5, "lo-0002"),
        review_refuse_request("r-2", 5, "lo-0002", "Not ours to share."),
    ):
        assert parse_control_request(request.to_json()) == request
        assert request.record_kind == "review"
    without_reason = review_refuse_request("r-3", 5, "lo-0002", " ")
    with pytest.raises(RequestError) as refused:
        parse_control_request(without_reason.to_json())
    assert refused.value.code == MALFORMED
    assert "note" in refused.value.detail


def _half_copy(corpus: list[str], i: int, share_of_words: float) -> str:
    """The first part of paragraph ``i`` followed by the rest of an unrelated one."""
    own, other = corpus[i].split(), corpus[(i + 7) % len(corpus)].split()
    kept = int(len(own) * share_of_words)
    return " ".join(own[:kept] + other[: len(other) - kept])


def test_review_threshold_measured_on_the_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    """Unrelated paragraphs (both languages) are held under 1 %; partial copies are caught."""
    index = ResemblanceIndex()
    for i, text in enumerate(CORPUS):
        index.add_provided(str(i), Content.of_texts([text]))

    def scores(text: str) -> dict[str, float]:
        found = index.resemblances(Content.of_texts([text]))
        return {r.matched_envelope_id: r.score for r in found if r.score >= DEFAULT_THRESHOLD}

    unrelated = held_unrelated = 0
    for i, text in enumerate(CORPUS):
        unrelated += len(CORPUS) - 1
        held_unrelated += len(set(scores(text)) - {str(i)})
    caught: dict[float, tuple[int, int]] = {}
    for share_of_words in (0.4, 0.5, 0.6):
        blocked = held_copies = 0
        for i in range(len(CORPUS)):
            found = scores(_half_copy(CORPUS, i, share_of_words)).get(str(i), 0.0)
            blocked += found >= BLOCKING
            held_copies += DEFAULT_THRESHOLD <= found < BLOCKING
        caught[share_of_words] = (blocked, held_copies)
    with capsys.disabled():
        print(
            f"\nreview threshold {DEFAULT_THRESHOLD}: unrelated held {held_unrelated}/{unrelated}"
            + "".join(
                f"; {int(s * 100)} % copied: blocked {b}, held {h} of {len(CORPUS)}"
                for s, (b, h) in caught.items()
            )
        )
    assert held_unrelated / unrelated < 0.01
    assert sum(caught[0.5]) >= 0.7 * len(CORPUS)
    assert sum(caught[0.6]) >= 0.85 * len(CORPUS)


def test_a_duplicate_is_resent_only_while_the_rule_allows_it() -> None:
    state = accredited_state("SCO-RATS", "UNOCT")
    received = rats_shared(state)
    grant = {
        "decision": "granted",
        "scope": {"envelope_ids": [received["id"]]},
        "recipients": ["UNOCT"],
    }
    state.consent.apply_decision("d-1", "SCO-RATS", grant, NOW - timedelta(minutes=1))
    ctx = context(state)
    sent = decide(share("UNOCT", "Passing it on.", derived_from=[received["id"]]), ctx)
    assert isinstance(sent, Accepted)
    original = envelope_record(7, "envelope.out", "sent", sent.envelope)
    assert resend_of(original, ctx) == (sent.envelope, None)

    state.consent.apply_revocation("SCO-RATS", {"decision_id": "d-1"}, NOW - timedelta(seconds=1))
    resend, blocked = resend_of(original, ctx)
    assert resend is None
    assert blocked is not None
    assert blocked.reason == "consent.missing"


def test_pending_leaves_out_what_a_release_or_refusal_settled() -> None:
    held = [record(seq, "submission", "held", message_id=f"m-{seq}") for seq in (3, 4, 5)]
    reviews = [
        record(6, "review", "rejected", refers_to=3, reason=SAME_OFFICER),
        record(7, "review", "released", refers_to=4),
        record(8, "review", "refused", refers_to=5),
    ]
    assert [h.record.seq for h in pending(held, reviews)] == [3]


def test_replay_and_quarantine_release_cannot_bypass_the_review() -> None:
    held = record(3, "submission", "held", message_id="m-3")
    refusal = check_replayable(held, "reprocess")
    assert refusal is not None
    assert "held" in refusal.detail
