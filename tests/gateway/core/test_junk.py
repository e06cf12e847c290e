"""What is kept of a refused frame."""

from __future__ import annotations

import base64
import hashlib
import json

from gateway.core.junk import EXCERPT_BYTES, KEPT_WHOLE_BYTES, SUMMARY_CONTENT_TYPE, evidence


def test_a_small_frame_is_kept_whole_with_its_hash() -> None:
    body = b"x" * KEPT_WHOLE_BYTES
    kept = evidence(body, "application/json")
    assert (kept.payload, kept.content_type) == (body, "application/json")
    assert kept.headers == {
        "x-gw-frame-sha256": hashlib.sha256(body).hexdigest(),
        "x-gw-frame-bytes": str(KEPT_WHOLE_BYTES),
    }


def test_a_large_frame_is_kept_as_hash_length_and_bounded_excerpt() -> None:
    body = bytes(range(256)) * 40_000  # 10 MB
    kept = evidence(body, None)
    summary = json.loads(kept.payload)
    assert kept.content_type == SUMMARY_CONTENT_TYPE
    assert (
        summary["sha256"] == hashlib.sha256(body).hexdigest() == kept.headers["x-gw-frame-sha256"]
    )
    assert summary["bytes"] == len(body)
    assert base64.b64decode(summary["excerpt_base64"]) == body[:EXCERPT_BYTES]
    assert len(kept.payload) < 2 * EXCERPT_BYTES
