"""Frames: several envelopes in one AMQP message on the Party-to-Party hop.

A frame is ``{"frame": 1, "envelopes": [<envelope>, ...]}``. It only batches transport: each
envelope keeps its own signature and is verified, accepted or refused on its own, so
``parse_frame`` checks the frame and hands back the envelope objects untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from contracts.errors import FRAME_INVALID, make_error
from contracts.parsing import decode_json

FRAME_VERSION: Final = 1
_KEYS: Final = frozenset({"frame", "envelopes"})


def parse_frame(data: bytes) -> list[dict[str, Any]]:
    """The raw envelope objects of a frame; ContractError frame.invalid/schema.invalid_json."""
    obj = decode_json(data)
    if not isinstance(obj, dict) or obj.keys() != _KEYS:
        raise make_error(FRAME_INVALID, "a frame is an object with exactly 'frame' and 'envelopes'")
    version = obj["frame"]
    if type(version) is not int or version != FRAME_VERSION:
        raise make_error(FRAME_INVALID, f"unsupported frame version {version!r}", "frame")
    envelopes = obj["envelopes"]
    if not isinstance(envelopes, list) or not envelopes:
        raise make_error(FRAME_INVALID, "'envelopes' must be a non-empty array", "envelopes")
    for index, envelope in enumerate(envelopes):
        if not isinstance(envelope, dict):
            raise make_error(
                FRAME_INVALID, "every envelope must be an object", f"envelopes.{index}"
            )
    return envelopes


def encode_frame(envelopes: Sequence[Mapping[str, Any]]) -> bytes:
    """One frame holding ``envelopes`` (already signed JSON objects), as compact UTF-8 JSON."""
    if not envelopes:
        raise ValueError("a frame holds at least one envelope")
    frame = {
        "frame": FRAME_VERSION,
        "envelopes": [e if isinstance(e, dict) else dict(e) for e in envelopes],
    }
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
