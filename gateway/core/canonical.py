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
# Values the fast path takes as they are (exact types: subclasses go to the reference).
_LEAVES = frozenset({str, bool, type(None)})


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
    if kind in _LEAVES:
        return True
    if kind is dict:
        for key in value:
            if type(key) is not str or not key.isascii():
                return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    else:
        return False
    # Loops rather than all() over a generator, and leaves tested without a call: an envelope
    # is mostly strings, and this walk ran on every canonicalisation (three per received one).
    for item in items:
        if type(item) in _LEAVES:
            continue
        if not fast_path_accepts(item):
            return False
    return True
