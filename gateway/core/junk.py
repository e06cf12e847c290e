"""What the gateway keeps of a frame it refuses whole: small ones byte for byte, large ones as
their SHA-256, their length and a bounded excerpt, so a hostile peer's 60 MB frame costs one
short archive record and one short copy in gw.rejected, yet can still be identified."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Final

KEPT_WHOLE_BYTES: Final = 4096
EXCERPT_BYTES: Final = 1024
SUMMARY_CONTENT_TYPE: Final = "application/vnd.liaison.frame-summary+json"
SHA256_HEADER: Final = "x-gw-frame-sha256"
BYTES_HEADER: Final = "x-gw-frame-bytes"


@dataclass(frozen=True)
class Evidence:
    payload: bytes
    content_type: str | None
    headers: dict[str, str]


def evidence(body: bytes, content_type: str | None) -> Evidence:
    """The record of a refused frame: the frame itself if small, else a summary of it."""
    digest = hashlib.sha256(body).hexdigest()
    headers = {SHA256_HEADER: digest, BYTES_HEADER: str(len(body))}
    if len(body) <= KEPT_WHOLE_BYTES:
        return Evidence(body, content_type, headers)
    summary = {
        "sha256": digest,
        "bytes": len(body),
        "content_type": content_type,
        "excerpt_base64": base64.b64encode(body[:EXCERPT_BYTES]).decode(),
    }
    return Evidence(json.dumps(summary).encode(), SUMMARY_CONTENT_TYPE, headers)
