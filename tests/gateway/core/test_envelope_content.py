"""The walk over an envelope's body finds what the recursive generator it replaced found."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.envelope_content import _strings, content_of


def reference(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """The walk as it was: a generator per node."""
    if isinstance(node, Mapping):
        if isinstance(node.get("sha256"), str):
            yield path, node
            return
        for key, value in node.items():
            yield from reference(value, f"{path}.{key}")
    elif isinstance(node, list):
        for n, item in enumerate(node):
            yield from reference(item, f"{path}[{n}]")
    elif isinstance(node, str) and node.strip():
        yield path, node


# JSON values, with blank strings, attachment-like objects (a string sha256 or another one)
# and the keys the walk looks at.
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
keys = st.sampled_from(["sha256", "name", "content", "en", "fr", " "]) | st.text(max_size=4)
bodies = st.recursive(
    scalars | st.sampled_from(["", " ", "\t\n"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@given(bodies)
@settings(max_examples=400, deadline=None)
def test_the_walk_finds_every_leaf_in_the_same_order_with_the_same_path(body: Any) -> None:
    found: list[tuple[str, Any]] = []
    _strings(body, "body", found)
    assert found == list(reference(body, "body"))


def test_texts_attachments_and_identifiers_are_named_by_their_paths() -> None:
    envelope = {
        "originator": {"submission_id": "m-1", "officer": " "},
        "correlation_id": "case-7",
        "body": {
            "subject": {"en": "Routes", "fr": ""},
            "topics": ["travel", " "],
            "attachments": [{"name": "a.txt", "sha256": "AB" * 32}],
        },
    }
    content = content_of(envelope, identifiers=True)
    assert content.texts == (
        ("body.subject.en", "Routes"),
        ("body.topics[0]", "travel"),
        ("body.attachments[0].name", "a.txt"),
        ("originator.submission_id", "m-1"),
        ("correlation_id", "case-7"),
    )
    assert content.sha256 == ("ab" * 32,)
    assert content.refusal is None
