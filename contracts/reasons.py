"""Every reason code the gateway can emit, with its meaning: the ``x-gw-reason`` values on
``gw.rejected`` and ``gw.quarantine`` and the ``reason`` of status events.

One registry so that the contract documents (contracts/README.md, asyncapi.yaml) can be checked
against what the gateway really says. The contract codes (``contracts.errors.ERROR_CODES``)
come first; the others are the gateway's own checks around the contract.
"""

from __future__ import annotations

from typing import Final

from contracts.errors import ERROR_CODES

SUBMISSION_REASONS: Final[dict[str, str]] = {
    "submission.missing_message_id": "the AMQP property `message_id` is missing",
    "submission.missing_user_id": "the AMQP property `user_id` is missing",
    "submission.wrong_content_type": "`content_type` is not `application/json`",
    "submission.reserved_type": "a type only the gateway makes (`receipt`, `checkpoint`) was "
    "submitted",
    "submission.routing_key_mismatch": "the routing key on `gw.submit` is not the body's `type`",
    "submission.duplicate": "status only: this `message_id` was already processed; nothing "
    "new was sent",
    "route.unknown_recipient": "`recipient` is not a configured counterparty",
    "roster.officer_not_accredited": "the officer is not on the liaison roster (ours, or the "
    "recipient's copy of it)",
    "roster.not_an_administrator": "a `liaison.assignment` from a system that is not one of "
    "the roster administrators (config `roster_admins`)",
    "processing.failed": "an unexpected error on every attempt (`limits.max_attempts`)",
}

THIRD_PARTY_REASONS: Final[dict[str, str]] = {
    "consent.missing": "quarantined: information of a third Party without its consent",
    "consent.undeclared_derivation": "quarantined: the text matches a third Party's envelope "
    "that `derived_from` does not name",
    "attachment.unpack_refused": "an attachment unpacks past a limit (size, ratio, members, "
    "depth): a zip bomb; the rule cannot say what it would send",
    "review.always": "held: every submission to this counterparty waits for a person's release",
    "review.resemblance": "held: the text resembles a third Party's envelope; a person decides",
    "review.refused": "a held submission that a person refused",
}

INBOUND_REASONS: Final[dict[str, str]] = {
    "signature.missing": "an envelope from the peer has no signature",
    "signature.malformed": "the signature or the members it covers are malformed",
    "signature.unknown_key": "signed with a key that is not pinned for the peer",
    "signature.key_not_valid": "signed with a pinned key outside its validity",
    "signature.bad": "the signature does not verify",
    "signature.party_mismatch": "the key belongs to another Party than `originator.party`",
    "signature.own_key": "an envelope signed with this gateway's own key came back",
    "route.wrong_recipient": "the envelope is addressed to another Party",
    "replay.too_old": "`created_at` is older than the replay window",
    "replay.future": "`created_at` is too far in the future",
    "provenance.unknown_reference": "`derived_from` names an envelope this Party never saw",
    "receipt.unknown_envelope": "a receipt for an envelope that awaits none",
    "receipt.digest_mismatch": "a receipt whose digest is not the sent envelope's",
    "receipt.wrong_sender": "a receipt from another Party than the recipient",
    "receipt.overdue": "status only: no receipt arrived in time",
}

OPERATOR_REASONS: Final[dict[str, str]] = {
    "control.malformed": "an operator request that cannot be read",
    "control.unauthorized": "an operator request from a user other than the gateway's",
    "replay.unknown_record": "no archive record has that sequence number",
    "replay.not_replayable": "the record is not of a kind or outcome that can be replayed",
    "replay.unreadable_record": "the archived payload cannot be read back",
    "replay.already_claimed": "the record was already re-processed",
    "review.not_held": "a review request for a submission that is not held",
    "review.already_decided": "a review request for a submission already released or refused",
    "review.same_officer": "the release needs a second person (four eyes)",
    "review.not_a_reviewer": "the reviewer is not on the liaison roster now",
}

GATEWAY_REASONS: Final[dict[str, str]] = {
    **SUBMISSION_REASONS,
    **THIRD_PARTY_REASONS,
    **INBOUND_REASONS,
    **OPERATOR_REASONS,
}

REASON_CODES: Final[frozenset[str]] = ERROR_CODES | frozenset(GATEWAY_REASONS)
"""Every code the gateway can put in ``x-gw-reason`` or a status event's ``reason``."""
