"""The fast canonical-JSON path gives the reference's bytes, or leaves the document to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import canonical

EXAMPLES = Path(__file__).resolve().parents[3] / "contracts" / "examples"

# Every kind of value JSON can carry and some it cannot: floats, integers beyond 2**53, keys
# outside ASCII (whose UTF-16 order the fast path does not trust), lone surrogates, tuples.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"))
)
keys = st.text(alphabet=st.characters(max_codepoint=127)) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=5)
    ),
    max_leaves=12,
)


class Tag(str):
    pass


class Count(int):
    pass


class Mapping(dict[str, Any]):
    pass


# Subclasses of the accepted types, and other types, all of which go to the reference.
exotic = st.sampled_from([Tag("x"), Count(1), Mapping(), Mapping(x=1), b"x", {1}, 1j, frozenset()])
mixed_documents = st.recursive(
    scalars | exotic,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys | exotic.filter(lambda v: v.__hash__ is not None), inner, max_size=5)
    ),
    max_leaves=12,
)


def reference_accepts(value: Any) -> bool:
    """The fast path's check before it was one loop per container (the reference for it)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-(2**53) + 1 <= value <= 2**53 - 1)
    if kind is dict:
        return all(
            type(key) is str and key.isascii() and reference_accepts(item)
            for key, item in value.items()
        )
    if kind is list or kind is tuple:
        return all(reference_accepts(item) for item in value)
    return False


def reference(document: Any) -> bytes | type[BaseException]:
    try:
        return rfc8785.dumps(document)
    except Exception as exc:
        return type(exc)


def fast(document: Any) -> bytes | type[BaseException]:
    try:
        return canonical.dumps(document)
    except Exception as exc:
        return type(exc)


@settings(max_examples=2000)
@given(documents)
def test_accepted_documents_are_byte_equal_to_rfc8785(document: Any) -> None:
    if canonical.fast_path_accepts(document):
        assert fast(document) == reference(document)


@settings(max_examples=500)
@given(documents)
def test_every_document_gets_the_reference_result(document: Any) -> None:
    assert fast(document) == reference(document)


@settings(max_examples=2000)
@given(mixed_documents)
def test_the_fast_path_accepts_what_its_reference_check_accepts(document: Any) -> None:
    assert canonical.fast_path_accepts(document) == reference_accepts(document)


def test_every_code_point_is_written_as_the_reference_writes_it() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    document = {"text": text, "list": [text[:4096]]}
    assert canonical.fast_path_accepts(document)
    assert canonical.dumps(document) == rfc8785.dumps(document)


@pytest.mark.parametrize(
    "document",
    [
        {"x": 1.0},
        {"x": 2**53},
        {"x": -(2**53)},
        {"\u00e9": 1},
        {1: "non-string key"},
        {"x": {1, 2}},
        {"x": b"bytes"},
    ],
)
def test_the_fast_path_declines_what_it_cannot_prove(document: Any) -> None:
    assert not canonical.fast_path_accepts(document)
    assert fast(document) == reference(document)


def test_a_lone_surrogate_is_refused_like_the_reference() -> None:
    document = {"x": "\ud800"}
    assert canonical.fast_path_accepts(document)
    assert fast(document) is rfc8785.CanonicalizationError


def test_the_contract_examples_take_the_fast_path() -> None:
    examples = sorted(EXAMPLES.glob("*/valid/*.json"))
    assert examples
    for path in examples:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert canonical.fast_path_accepts(document), path
        assert canonical.dumps(document) == rfc8785.dumps(document), path
