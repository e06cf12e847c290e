"""Frame limits: a frame over them is refused as a whole, before its envelopes are looked at."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from contracts import ContractError, FrameLimits, encode_frame, parse_frame

LIMITS = FrameLimits(max_envelopes=3, max_envelope_bytes=64)


def test_a_frame_within_the_limits_parses_as_without_them() -> None:
    data = b' { "envelopes" : [ {"a": 1} , {"b": [1, 2]} ] , "frame" : 1 } '
    assert parse_frame(data, LIMITS) == parse_frame(data) == [{"a": 1}, {"b": [1, 2]}]


def test_more_envelopes_than_allowed_is_too_large() -> None:
    with pytest.raises(ContractError) as caught:
        parse_frame(encode_frame([{}] * 4), LIMITS)
    assert (caught.value.code, caught.value.field) == ("schema.too_large", "envelopes")
    assert parse_frame(encode_frame([{}] * 3), LIMITS) == [{}] * 3


@pytest.mark.parametrize(("text", "fits"), [("x" * 53, True), ("x" * 54, False), ("é" * 26, True)])
def test_an_envelope_over_the_byte_limit_is_too_large(text: str, fits: bool) -> None:
    data = encode_frame([{"a": 1}, {"text": text}])
    if fits:
        assert parse_frame(data, LIMITS)[1] == {"text": text}
        return
    with pytest.raises(ContractError) as caught:
        parse_frame(data, LIMITS)
    assert (caught.value.code, caught.value.field) == ("schema.too_large", "envelopes.1")


def test_multibyte_characters_count_as_their_utf8_bytes() -> None:
    data = encode_frame([{"text": "é" * 28}])  # 56 bytes of é plus 11 of JSON: 67 > 64
    with pytest.raises(ContractError) as caught:
        parse_frame(data, LIMITS)
    assert caught.value.code == "schema.too_large"


def test_a_huge_frame_is_refused_without_decoding_its_envelopes() -> None:
    data = b'{"frame":1,"envelopes":[' + b",".join([b"{}"] * 2_000_000) + b"]}"
    tracemalloc.start()
    try:
        with pytest.raises(ContractError):
            parse_frame(data, FrameLimits(max_envelopes=1000, max_envelope_bytes=1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The text itself (decoded once) and a thousand small dicts; all two million would be ~200 MB.
    assert peak < 2 * len(data) + 1_000_000


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"frame":1,"envelopes":[{}] "x"}', "schema.invalid_json"),
        (b'{"frame":1,"envelopes":[{} {}]}', "schema.invalid_json"),
        (b'{"frame":1,"envelopes":[{}]} x', "schema.invalid_json"),
        (b'{"frame":1 "envelopes":[{}]}', "schema.invalid_json"),
        (b"{1:2}", "schema.invalid_json"),
        (b'{"frame":1,"envelopes":[{"a":NaN}]}', "schema.invalid_json"),
        (b"\xef\xbb\xbf" + encode_frame([{}]), "schema.invalid_json"),
        (b"\xff", "schema.invalid_json"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "schema.invalid_json"),
        (b"{}", "frame.invalid"),
        (b'{"frame":1,"envelopes":[]}', "frame.invalid"),
        (b'"frame"', "frame.invalid"),
    ],
)
def test_malformed_text_keeps_its_reason(data: bytes, code: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_frame(data, LIMITS)
    assert caught.value.code == code
    with pytest.raises(ContractError) as unlimited:
        parse_frame(data)
    assert unlimited.value.code == code
    if code == "frame.invalid":
        json.loads(data)  # valid JSON, just not a frame
