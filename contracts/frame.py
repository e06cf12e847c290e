"""Frames: several envelopes in one AMQP message on the Party-to-Party hop.

A frame is ``{"frame": 1, "envelopes": [<envelope>, ...]}``. It only batches transport: each
envelope keeps its own signature and is verified, accepted or refused on its own, so
``parse_frame`` checks the frame and hands back the envelope objects untouched.

A frame comes from a peer that may be hostile, so ``parse_frame`` can hold it to limits on the
number of envelopes and the size of each while it reads the array: an oversize frame is refused
as a whole after at most one envelope past the limit is decoded, never expanded in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from contracts.errors import FRAME_INVALID, INVALID_JSON, TOO_LARGE, ContractError, make_error
from contracts.parsing import decode_json, no_constants

FRAME_VERSION: Final = 1
MAX_FRAME_ENVELOPES: Final = 1000
"""The most envelopes a sender puts in one frame; a receiver's limit should not be lower."""
_KEYS: Final = frozenset({"frame", "envelopes"})
_DECODER: Final = json.JSONDecoder(parse_constant=no_constants)
_SPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


@dataclass(frozen=True)
class FrameLimits:
    """What a receiver accepts in one frame; anything over is refused as a whole."""

    max_envelopes: int
    max_envelope_bytes: int


def parse_frame(data: bytes, limits: FrameLimits | None = None) -> list[dict[str, Any]]:
    """The raw envelope objects of a frame; ContractError frame.invalid, schema.invalid_json, or
    schema.too_large when the frame breaks ``limits``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise make_error(INVALID_JSON, f"not valid UTF-8 JSON: {exc}") from None
    start = _skip_space(text, 0)
    if not text.startswith("{", start):
        decode_json(data)  # only to tell invalid JSON from a valid non-object
        raise _not_a_frame()
    try:
        fields = _Reader(text, start + 1, limits).members()
    except (ValueError, RecursionError) as exc:
        raise make_error(INVALID_JSON, f"not valid UTF-8 JSON: {exc}") from None
    if fields.keys() != _KEYS:
        raise _not_a_frame()
    version = fields["frame"]
    if type(version) is not int or version != FRAME_VERSION:
        raise make_error(FRAME_INVALID, f"unsupported frame version {version!r}", "frame")
    envelopes: list[Any] = fields["envelopes"]
    if not isinstance(envelopes, list) or not envelopes:
        raise make_error(FRAME_INVALID, "'envelopes' must be a non-empty array", "envelopes")
    for index, envelope in enumerate(envelopes):
        if not isinstance(envelope, dict):
            raise make_error(
                FRAME_INVALID, "every envelope must be an object", f"envelopes.{index}"
            )
    return envelopes


def _not_a_frame() -> ContractError:
    return make_error(FRAME_INVALID, "a frame is an object with exactly 'frame' and 'envelopes'")


class _Reader:
    """Reads the members of the frame object; the envelopes array one element at a time."""

    def __init__(self, text: str, pos: int, limits: FrameLimits | None) -> None:
        self._text = text
        self._pos = pos
        self._limits = limits

    def members(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self._punctuation("}"):
            return self._end(fields)
        while True:
            key = self._value()
            if not isinstance(key, str) or not self._punctuation(":"):
                raise ValueError(f"expected a member name and ':' at {self._pos}")
            fields[key] = self._envelopes() if key == "envelopes" else self._value()
            if self._punctuation("}"):
                return self._end(fields)
            if not self._punctuation(","):
                raise ValueError(f"expected ',' or '}}' at {self._pos}")

    def _end(self, fields: dict[str, Any]) -> dict[str, Any]:
        if _skip_space(self._text, self._pos) != len(self._text):
            raise ValueError(f"extra data at {self._pos}")
        return fields

    def _punctuation(self, char: str) -> bool:
        self._pos = _skip_space(self._text, self._pos)
        if self._text.startswith(char, self._pos):
            self._pos += 1
            return True
        return False

    def _value(self) -> Any:
        self._pos = _skip_space(self._text, self._pos)
        value, self._pos = _DECODER.raw_decode(self._text, self._pos)
        return value

    def _envelopes(self) -> Any:
        if not self._punctuation("["):
            return self._value()
        items: list[Any] = []
        if self._punctuation("]"):
            return items
        while True:
            start = _skip_space(self._text, self._pos)
            items.append(self._value())
            self._check(len(items), start)
            if self._punctuation("]"):
                return items
            if not self._punctuation(","):
                raise ValueError(f"expected ',' or ']' at {self._pos}")

    def _check(self, count: int, start: int) -> None:
        if self._limits is None:
            return
        if count > self._limits.max_envelopes:
            raise make_error(
                TOO_LARGE,
                f"frame holds more than {self._limits.max_envelopes} envelopes",
                "envelopes",
            )
        cap = self._limits.max_envelope_bytes
        span = self._pos - start
        # A character is one to four bytes of UTF-8: encode only when the count cannot tell.
        if span > cap or (span * 4 > cap and len(self._text[start : self._pos].encode()) > cap):
            raise make_error(
                TOO_LARGE,
                f"envelope {count - 1} exceeds {cap} bytes",
                f"envelopes.{count - 1}",
            )


def encode_envelope(envelope: Mapping[str, Any]) -> bytes:
    """One envelope as a frame carries it: compact UTF-8 JSON.

    orjson where it can: a sending gateway encoded each envelope twice for its frame (to size
    it, then in it) with the standard library's encoder, ~3 % of its CPU each time. The two
    write the same bytes for what a signed envelope holds (objects, strings, integers within
    RFC 8785's range, booleans, null); a float, which no contract type has, may be spelled
    differently but reads back the same, and NaN or Infinity cannot be signed. What orjson
    refuses (a mapping that is not a dict, integers beyond 64 bits) goes to the standard
    library, as before.
    """
    if type(envelope) is dict:
        try:
            return orjson.dumps(envelope)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(
        dict(envelope), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode()


def frame_of(encoded: Sequence[bytes]) -> bytes:
    """One frame holding envelopes already encoded by ``encode_envelope``."""
    if not encoded:
        raise ValueError("a frame holds at least one envelope")
    return b'{"frame":%d,"envelopes":[%b]}' % (FRAME_VERSION, b",".join(encoded))


def encode_frame(envelopes: Sequence[Mapping[str, Any]]) -> bytes:
    """One frame holding ``envelopes`` (already signed JSON objects), as compact UTF-8 JSON."""
    return frame_of([encode_envelope(envelope) for envelope in envelopes])
