"""RFC 8785 canonical JSON, fast where that is provably the same bytes.

The ``rfc8785`` package is the reference, written in pure Python; it cost ~14 % of a gateway's
CPU (every envelope is canonicalised to be signed, verified and digested). orjson with sorted
keys writes the same bytes for the documents the envelopes are made of: objects with ASCII
keys (sorting ASCII by UTF-8 bytes is sorting by UTF-16 code units), strings (both escape only
``"``, ``\\`` and the C0 controls, with the same short forms and lowercase ``\\u00xx``, and write
every other code point as UTF-8; orjson refuses lone surrogates, as the reference does), integers
within +-(2**53 - 1), booleans and null. Anything else (floats, whose shortest form is where the
two differ, non-ASCII keys, other types, numbers out of range) goes to the reference, so errors
and edge cases are the reference's. A property test holds the two byte-equal on every document
the fast path accepts.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

# The reference's bounds: integers a double represents exactly.
_INT_MAX = 2**53 - 1
_INT_MIN = -(2**53) + 1


def dumps(document: Any) -> bytes:
    """The RFC 8785 canonical JSON of ``document``; raises like ``rfc8785.dumps``."""
    if fast_path_accepts(document):
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            # Lone surrogates or nesting deeper than orjson allows: the reference decides.
            pass
    return rfc8785.dumps(document)


def fast_path_accepts(value: Any) -> bool:
    """True when ``value`` holds only the types and values on which orjson equals RFC 8785."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if kind is dict:
        return all(
            type(key) is str and key.isascii() and fast_path_accepts(item)
            for key, item in value.items()
        )
    if kind is list or kind is tuple:
        return all(fast_path_accepts(item) for item in value)
    return False
