"""The copies a refused submission leaves in gw.quarantine and gw.rejected, built in one place
for the outbound and the control worker (pure: plain data, published by the caller)."""

from __future__ import annotations

import json

from contracts.amqp import QUARANTINE_EXCHANGE, REJECTED_EXCHANGE
from gateway.core import publications
from gateway.core.consent import RouteDecision
from gateway.core.publications import Outgoing


def quarantine_copy(
    body: bytes,
    route: RouteDecision,
    *,
    message_id: str | None,
    content_type: str | None,
    system: str | None = None,
) -> Outgoing:
    """A submission the third-party rule stopped, with the consents it lacks, for the desk."""
    extra = {} if system is None else {"x-gw-system": system}
    extra |= {
        "x-gw-providers": ",".join(sorted(route.providers)),
        "x-gw-missing": json.dumps([list(m) for m in route.missing]),
        "x-gw-matched": ",".join(route.matched),
    }
    return publications.held_copy(
        QUARANTINE_EXCHANGE,
        body,
        reason=route.reason or "consent.missing",
        detail=route.detail,
        message_id=message_id,
        content_type=content_type,
        extra=extra,
    )


def rejected_copy(
    body: bytes,
    *,
    reason: str,
    detail: str,
    message_id: str | None,
    content_type: str | None,
    system: str | None,
) -> Outgoing:
    """A submission refused for good, with the system that submitted it."""
    return publications.held_copy(
        REJECTED_EXCHANGE,
        body,
        reason=reason,
        detail=detail,
        message_id=message_id,
        content_type=content_type,
        extra={"x-gw-system": system or "", "x-gw-stage": "submission"},
    )
