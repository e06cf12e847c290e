"""The fast paths of the text normalisation give exactly the step-by-step reference's tokens.

``reference_fold`` and ``reference_tokens`` are the implementation before the fast paths (every
step on the whole text, ignorables removed by a regular expression, each mark tested by a
generator, every word filtered by length); the
detector's features, scores and decisions depend only on the tokens, so equal tokens mean equal
results.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import normalise
from tests.evasion import transforms as tf
from tests.gateway.fresh_text import CORPUS, OWN_EARLIER, SUBJECTS

_WORD = re.compile(r"[^\W_]+")
_INNER_PUNCTUATION = re.compile(r"(?<=[^\W_])[^\w\s]+(?=[^\W_])")
_SPACED_LETTERS = re.compile(r"\b(?:[^\W\d_]\s+){2,}[^\W\d_]\b")


def _ignorable() -> re.Pattern[str]:
    ranges = list(normalise._IGNORABLE_RANGES)
    ranges += [
        (code, code) for code in range(0x80, 0x110000) if unicodedata.category(chr(code)) == "Cf"
    ]
    return re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in sorted(ranges)) + "]")


_IGNORABLE = _ignorable()


def reference_fold(text: str) -> str:
    plain = _IGNORABLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    skeleton = normalise._spoof_checker().getSkeleton(0, plain).translate(normalise._small_forms())
    decomposed = unicodedata.normalize("NFD", skeleton)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").casefold()


def reference_tokens(text: str) -> list[str]:
    folded = _INNER_PUNCTUATION.sub("", reference_fold(text))
    folded = _SPACED_LETTERS.sub(lambda match: re.sub(r"\s+", "", match.group()), folded)
    return [word for word in _WORD.findall(folded) if len(word) >= normalise.MIN_TOKEN_CHARS]


def assert_same(text: str) -> None:
    assert normalise.fold(text) == reference_fold(text), repr(text)
    assert normalise.tokens(text) == reference_tokens(text), repr(text)


# What disguises are made of: letters, digits, spaces, inner punctuation, combining marks,
# ignorables and format characters, look-alikes, compatibility forms, case pairs.
PIECES = [
    *"aAbcdeImMnrl01% \t\n.,-_'\"|`",
    "c o u r i e r",
    "c.o.u.r.i.e.r",
    "co-operation",
    *"\u0301\u0308\u0327\u034f\u00ad\u200b\u200d\u2060\ufeff\ufe0f\U000e0041",
    *"асеорхуАЕКМНОРСТХЁёΑΟοі",
    *"ﬁ①ＡＢｃ²ſßİǅ℃Ω",
    "маршрут",
]
disguised = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=200)


@settings(max_examples=1500)
@given(st.text(max_size=200))
def test_any_text_folds_and_tokenises_as_the_reference(text: str) -> None:
    assert_same(text)


@settings(max_examples=1500)
@given(disguised)
def test_disguised_text_folds_and_tokenises_as_the_reference(text: str) -> None:
    assert_same(text)


@settings(max_examples=1500)
@given(ascii_text)
def test_ascii_text_folds_and_tokenises_as_the_reference(text: str) -> None:
    assert_same(text)


def test_every_pair_of_ascii_characters_folds_as_the_reference() -> None:
    """ASCII text folds character by character: each pair of neighbours does."""
    for pair in itertools.product(map(chr, range(0x80)), repeat=2):
        text = "".join(pair)
        assert normalise.fold(text) == reference_fold(text), repr(text)


def test_no_ascii_character_folds_to_a_combining_mark() -> None:
    """Marks would reorder with a neighbour's under NFD: then no per-character fold."""
    for code in range(0x80):
        assert all(unicodedata.combining(c) == 0 for c in normalise.fold(chr(code)))


def test_the_longer_ascii_folds_do_not_interact() -> None:
    """They are replaced one after another: no image may hold a character replaced later."""
    _, longer = normalise._ascii_folds()
    replaced = {char for char, _ in longer}
    assert longer
    assert all(not replaced & set(image) for _, image in longer)


def test_the_corpora_and_their_disguises_tokenise_as_the_reference() -> None:
    disguises = [
        lambda text: text,
        tf.invisible,
        tf.lookalikes,
        tf.fullwidth,
        tf.shout,
        tf.insert_fillers,
        lambda text: " ".join(text),
        lambda text: ".".join(text),
    ]
    for text, disguise in itertools.product([*CORPUS, *OWN_EARLIER, *SUBJECTS], disguises):
        assert_same(disguise(text))
