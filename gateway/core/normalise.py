"""Text normalisation for the third-party rule: what survives of a text once disguises are gone.

An insider who wants provided text to slip past the comparison can change how it *looks*
without changing what it *says*: compatibility forms (full-width letters, ligatures), invisible
characters inside words (soft hyphen, zero-width space, word joiner, variation selectors), look-
alike letters from another script (Cyrillic U+0430 for Latin "a"), combining accents, case,
punctuation between letters ("c.o.u.r.i.e.r") or spaces between letters ("c o u r i e r").
:func:`fold` undoes all of them, in this order:

1. Unicode NFKC (compatibility forms to their plain letters);
2. removal of every default-ignorable code point and every format (Cf) character;
3. ``casefold()``;
4. the UTS #39 confusable *skeleton*, from ICU's ``SpoofChecker`` (a maintained implementation
   of the Unicode confusables data), so that look-alike letters of any script become one letter
   (and the small forms of look-alike capitals their Latin letter, see :func:`_small_forms`);
5. canonical decomposition and removal of nonspacing marks (accents added to every letter), then
   ``casefold()`` again since skeletons may use capitals.

:func:`tokens` then splits the folded text into *content tokens*: words of at least
``MIN_TOKEN_CHARS`` letters or digits (the skeleton folds digits and letters alike). Shorter
words ("of", "the", "on") carry little of what a paragraph says and most of what unrelated
paragraphs share, so leaving them out keeps fresh text from resembling provided text. Letters
separated by punctuation are joined, and a run of three or more single letters is one word.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import icu

MIN_TOKEN_CHARS = 4
# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) outside category Cf, which
# is removed by category: combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
# Mongolian free variation selectors, variation selectors and the tag/reserved plane.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0x1BCA0, 0x1BCA3),
    (0xE0000, 0xE0FFF),
)
# A run of letters and digits is a content token when it is that long: the run's first
# position is tried before any inside it, so a run shorter than that never matches.
_CONTENT_TOKEN = re.compile(rf"[^\W_]{{{MIN_TOKEN_CHARS},}}")
# Punctuation with a word character on both sides joins them: "c.o.u.r.i.e.r", "co-operation".
_INNER_PUNCTUATION = re.compile(r"(?<=[^\W_])[^\w\s]+(?=[^\W_])")
# Every match of _INNER_PUNCTUATION ends in this pair; most texts hold none (a ". " is no pair).
_PUNCTUATION_BEFORE_WORD = re.compile(r"[^\w\s][^\W_]")
_SPACED_LETTERS = re.compile(r"\b(?:[^\W\d_]\s+){2,}[^\W\d_]\b")


@cache
def _spoof_checker() -> icu.SpoofChecker:
    return icu.SpoofChecker()


@cache
def _small_forms() -> dict[int, str]:
    """Skeletons of lower-case look-alikes that are not the Latin letter of their capital.

    Case folding comes first (skeletons are case-sensitive: "I" becomes "l"), but the lower
    case of a look-alike capital does not always look like the Latin small letter: Cyrillic
    capital EN (U+041D) folds to U+043D, whose skeleton is the small capital U+029C, not "h". Map
    such small forms to the Latin letter of their capital's skeleton.
    """
    checker = _spoof_checker()
    table: dict[int, str] = {}
    for code in range(0x80, 0x30000):
        capital = chr(code)
        if unicodedata.category(capital) != "Lu":
            continue
        latin = checker.getSkeleton(0, capital).casefold()
        small = checker.getSkeleton(0, capital.casefold())
        if len(latin) == len(small) == 1 and latin.isascii() and not small.isascii():
            table[ord(small)] = latin
    return table


@cache
def _ignorable() -> dict[int, None]:
    """Every format (Cf) character and every other default-ignorable code point, as a
    ``str.translate`` table that removes them."""
    codes = [code for low, high in _IGNORABLE_RANGES for code in range(low, high + 1)]
    codes += [code for code in range(0x80, 0x110000) if unicodedata.category(chr(code)) == "Cf"]
    return dict.fromkeys(codes)


def _strip_ignorable(text: str) -> str:
    return text if text.isascii() else text.translate(_ignorable())


@cache
def _marks() -> dict[int, None]:
    """Every nonspacing mark (Mn), as a ``str.translate`` table that removes them."""
    return dict.fromkeys(
        code for code in range(0x80, 0x110000) if unicodedata.category(chr(code)) == "Mn"
    )


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return decomposed if decomposed.isascii() else decomposed.translate(_marks())


@cache
def _ascii_folds() -> tuple[dict[int, str], tuple[tuple[str, str], ...]]:
    """What :func:`_fold_each` makes of each ASCII character: a ``str.translate`` table of the
    characters that fold to one ASCII character (each other one maps to itself), and those
    others with their folds, to replace afterwards ("m" becomes "rn"). No such fold holds one of
    those others, so the replacements do not interact.

    An ASCII text folds character by character: it is its own NFKC and NFD and holds no
    ignorable character, ``casefold()`` and the skeleton map each code point on its own (UTS #39
    defines the skeleton so), and no character's image holds a combining mark that could reorder
    with a neighbour's. ``tests/gateway/core/test_normalise.py`` holds the two equal.
    """
    table: dict[int, str] = {}
    longer: list[tuple[str, str]] = []
    for code in range(0x80):
        folded = _fold_each(chr(code))
        if len(folded) == 1 and folded.isascii():
            table[code] = folded
        else:
            table[code] = chr(code)
            longer.append((chr(code), folded))
    return table, tuple(longer)


def fold(text: str) -> str:
    """``text`` with every disguise listed in the module docstring undone."""
    if not text.isascii():
        return _fold_each(text)
    # One-to-one ASCII tables take str.translate's fast path; the few longer folds would not.
    table, longer = _ascii_folds()
    folded = text.translate(table)
    for char, image in longer:
        if char in folded:
            folded = folded.replace(char, image)
    return folded


def _fold_each(text: str) -> str:
    """:func:`fold` step by step, for any text."""
    plain = _strip_ignorable(unicodedata.normalize("NFKC", text)).casefold()
    skeleton = _spoof_checker().getSkeleton(0, plain).translate(_small_forms())
    return _strip_marks(skeleton).casefold()


def tokens(text: str) -> list[str]:
    """The content tokens of ``text``, in order (see the module docstring)."""
    folded = fold(text)
    if _PUNCTUATION_BEFORE_WORD.search(folded):
        folded = _INNER_PUNCTUATION.sub("", folded)
    folded = _SPACED_LETTERS.sub(lambda match: re.sub(r"\s+", "", match.group()), folded)
    return _CONTENT_TOKEN.findall(folded)
