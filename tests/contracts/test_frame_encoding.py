"""A frame's bytes are what the standard library's encoder wrote before orjson took over."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts import encode_frame, parse_frame
from contracts.frame import encode_envelope

# What a signed envelope can hold: RFC 8785 refuses floats beyond doubles, NaN, Infinity and
# integers beyond 2**53, and no contract type has a float.
_values = st.recursive(
    st.none() | st.booleans() | st.text() | st.integers(-(2**53) + 1, 2**53 - 1),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_envelopes = st.dictionaries(st.text(), _values, max_size=6)


def _reference(envelopes: list[dict[str, Any]]) -> bytes:
    frame = {"frame": 1, "envelopes": envelopes}
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@given(st.lists(_envelopes, min_size=1, max_size=4))
def test_a_frame_is_byte_equal_to_the_standard_encoder(envelopes: list[dict[str, Any]]) -> None:
    assert encode_frame(envelopes) == _reference(envelopes)
    assert parse_frame(encode_frame(envelopes)) == envelopes


def test_what_orjson_refuses_goes_to_the_standard_encoder() -> None:
    big = {"n": 2**70}
    assert encode_envelope(big) == b'{"n":1180591620717411303424}'
    ordered = OrderedDict(b=1, a="\u00e9\u2028")
    assert (
        encode_envelope(ordered)
        == json.dumps(ordered, ensure_ascii=False, separators=(",", ":")).encode()
    )
