"""The detector: thresholds, fields, memory and files, and its false-positive rate on fresh text."""

# Russian prose is part of the corpus, so Cyrillic letters are not confusables here.
# ruff: noqa: RUF001

from __future__ import annotations

import itertools
import os
import random
import re
import time
from collections.abc import Callable

import pytest

from gateway.core.envelope_content import Content
from gateway.core.normalise import fold, tokens
from gateway.core.resemblance import THRESHOLDS, Resemblance, level_of
from gateway.core.sent_memory import MEMORY_MESSAGES
from gateway.core.similarity import ResemblanceIndex
from tests.gateway.fresh_text import CORPUS, ENGLISH, OWN_EARLIER, SUBJECT_OF, SUBJECTS

_REPLACEMENTS = ["urgently", "additional", "regional", "срочно", "дополнительно", "региональный"]


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text)


def reorder(text: str) -> str:
    parts = _sentences(text)
    return " ".join([parts[-1], *parts[:-1]])


def change_words(text: str, count: int) -> str:
    words = text.split(" ")
    for n in range(1, count + 1):
        position = n * len(words) // (count + 1)
        words[position] = _REPLACEMENTS[n % len(_REPLACEMENTS)]
    return " ".join(words)


def prefix(text: str) -> str:
    label = "К сведению:" if re.search("[а-яА-Я]", text) else "FYI:"
    return f"{label} {text}"


EDITS: dict[str, Callable[[str], str]] = {
    "reordered": reorder,
    "three_words": lambda text: change_words(text, 3),
    "whitespace_case": lambda text: "\n".join(_sentences(text.upper())).replace(" ", "  "),
    "prefix": prefix,
    "combined": lambda text: prefix(reorder(change_words(text, 1))),
    "padded": lambda text: f"{OWN_EARLIER[0]} {text} {OWN_EARLIER[6]}",
}


def texts(*values: str) -> Content:
    return Content(tuple((f"body.f{n}", value) for n, value in enumerate(values)))


def corpus_index() -> ResemblanceIndex:
    index = ResemblanceIndex()
    for n, text in enumerate(CORPUS):
        index.add_provided(f"e{n}", texts(text))
    return index


def blocking(found: list[Resemblance]) -> set[str]:
    return {r.matched_envelope_id for r in found if r.level == "block"}


def test_false_positive_rate_on_fresh_text(capsys: pytest.CaptureFixture[str]) -> None:
    """Fresh text is each paragraph against every other, SCO-RATS's own earlier messages against
    every paragraph, messages of several paragraphs, and all of it again after SCO-RATS's
    earlier messages to the same recipient (the memory). Provided subject lines on the same
    topics are in the index too."""
    index = corpus_index()
    for n, subject in enumerate(SUBJECTS):
        index.add_provided(f"s{n}", texts(subject))
    provided = len(CORPUS) + len(SUBJECTS)
    for text in OWN_EARLIER:
        index.remember_sent("UNOCT", texts(text))
    rnd = random.Random(16)
    queries: list[tuple[Content, set[str], str | None]] = []
    related = {n: {f"e{n}"} for n in range(len(CORPUS))}
    for s, n in enumerate(SUBJECT_OF):
        related[n].add(f"s{s}")
    for n, text in enumerate(CORPUS):
        queries.append((texts(text), related[n], None))
        queries.append((texts(text), related[n], "UNOCT"))
    queries.extend((texts(text), set(), recipient) for text in OWN_EARLIER for recipient in [None])
    for _ in range(20):
        chosen = rnd.sample(range(len(CORPUS)), 5)
        joined = texts(*(CORPUS[n] for n in chosen), rnd.choice(OWN_EARLIER))
        queries.append((joined, set().union(*(related[n] for n in chosen)), "UNOCT"))
    trials = blocked = reviewed = 0
    worst = 0.0
    short_blocked: list[Resemblance] = []
    started = time.perf_counter()
    for content, own, recipient in queries:
        found = [
            r for r in index.resemblances(content, recipient) if r.matched_envelope_id not in own
        ]
        trials += provided - len(own)
        blocked += len(blocking(found))
        reviewed += len({r.matched_envelope_id for r in found if r.level == "review"})
        worst = max([worst, *(r.score for r in found if r.kind == "text")])
        short_blocked.extend(r for r in found if r.kind == "short_text" and r.level == "block")
    per_query_ms = (time.perf_counter() - started) / len(queries) * 1000
    rate = blocked / trials
    with capsys.disabled():
        print(
            f"\nfresh text: trials={trials} blocked={blocked} ({rate:.2%}) "
            f"review={reviewed} ({reviewed / trials:.2%}) worst_text_score={worst:.2f} "
            f"block={THRESHOLDS['text'][0]} review={THRESHOLDS['text'][1]} "
            f"ms/message={per_query_ms:.2f}"
        )
    assert rate < 0.01
    assert worst < THRESHOLDS["text"][0]
    assert short_blocked == []


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_of_every_paragraph_blocks(name: str) -> None:
    index = corpus_index()
    for n, text in enumerate(CORPUS):
        found = index.resemblances(texts(EDITS[name](text)))
        assert found[0].matched_envelope_id == f"e{n}", (name, n)
        assert found[0].level == "block", (name, n, found[0])
        assert blocking(found) == {f"e{n}"}, (name, n)


def test_normalisation_undoes_disguises() -> None:
    plain = tokens("Courier routes observed")
    assert plain == ["courier", "routes", "observed"]
    disguised = [
        "Cou\u00adrier rou\u200bte\u2060s obs\ufeffer\u034fved",  # invisible characters
        "Соurіеr rоutеs оbsеrvеd",  # Cyrillic look-alikes
        "ＣＯＵＲＩＥＲ ＲＯＵＴＥＳ ＯＢＳＥＲＶＥＤ",  # full-width
        "Cóúríér rôûtés òbsèrvéd",  # accents on every letter
        "c.o.u.r.i.e.r r-o-u-t-e-s  o b s e r v e d",  # letters pulled apart
    ]
    for text in disguised:
        assert [fold(word) for word in tokens(text)] == [fold(word) for word in plain], text


def test_russian_yo_case_and_punctuation_fold_together() -> None:
    assert tokens("Ёлка,  ЕЛКА!\n«ёлка» — и") == tokens("елка елка елка")


def test_short_provided_text_blocks_only_when_reproduced_whole() -> None:
    index = ResemblanceIndex()
    index.add_provided("subject", texts("Courier routes observed this spring"))
    index.add_provided("title", texts("Terms of reference"))
    exact = index.resemblances(texts("FYI: courier routes observed this spring."))
    assert [(r.matched_envelope_id, r.kind, r.level) for r in exact] == [
        ("subject", "short_text", "block")
    ]
    assert index.resemblances(texts("Terms of reference")) == []
    partial = index.resemblances(texts("Courier routes observed by our own staff"))
    assert blocking(partial) == set()


def test_a_text_split_across_fields_adds_up_and_names_the_fields() -> None:
    index = ResemblanceIndex()
    index.add_provided("e1", texts(ENGLISH[2]))
    half = len(ENGLISH[2]) // 2
    found = index.resemblances(texts(ENGLISH[2][:half], "unrelated", ENGLISH[2][half:]))
    assert found[0].level == "block"
    assert found[0].field == "body.f0 + body.f2" or found[0].field == "body.f2 + body.f0"
    whole = index.resemblances(texts("Agenda", ENGLISH[2]))
    assert whole[0].field == "body.f1"
    assert whole[0].provided_field == "body.f0"


def test_text_spread_over_messages_to_one_recipient_adds_up() -> None:
    index = ResemblanceIndex()
    index.add_provided("e1", texts(ENGLISH[4]))
    thirds = _sentences(ENGLISH[4])
    index.remember_sent("UNOCT", texts(thirds[0]))
    index.remember_sent("UNOCT", texts(thirds[1]))
    alone = index.resemblances(texts(thirds[2]), "CICA")
    assert blocking(alone) == set()
    spread = index.resemblances(texts(thirds[2]), "UNOCT")
    assert spread[0].accumulated
    assert spread[0].level == "block"
    assert "earlier messages" in spread[0].describe()


def test_memory_is_bounded_per_recipient() -> None:
    index = ResemblanceIndex()
    index.add_provided("e1", texts(ENGLISH[4]))
    first, *rest = _sentences(ENGLISH[4])
    index.remember_sent("UNOCT", texts(first))
    for text in OWN_EARLIER * 3:
        index.remember_sent("UNOCT", texts(text))
    assert len(OWN_EARLIER) * 3 > MEMORY_MESSAGES
    found = index.resemblances(texts(*rest), "UNOCT")
    assert not any(r.accumulated for r in found)


def test_files_match_by_content_despite_edits_and_splits() -> None:
    data = os.urandom(6000)
    index = ResemblanceIndex()
    index.add_provided("e1", Content(files=(("body.attachments[0].content", data),)))
    variants = {
        "byte_changed": data[:3000] + bytes([data[3000] ^ 1]) + data[3001:],
        "appended": data + b"tail",
        "prepended": b"head" + data,
    }
    for name, variant in variants.items():
        found = index.resemblances(Content(files=(("f", variant),)))
        assert blocking(found) == {"e1"}, name
    halves = Content(files=(("a", data[:2500]), ("b", data[2500:])))
    assert blocking(index.resemblances(halves)) == {"e1"}
    assert index.resemblances(Content(files=(("f", os.urandom(6000)),))) == []


def test_a_small_binary_file_matches_by_fuzzy_hash() -> None:
    rnd = random.Random(3)
    data = bytes(rnd.randrange(256) for _ in range(200))
    index = ResemblanceIndex()
    index.add_provided("e1", Content(files=(("f", data),)))
    edited = data[:100] + b"\x00" + data[101:]
    found = index.resemblances(Content(files=(("g", edited),)))
    assert "e1" in blocking(found)


def test_same_hash_blocks() -> None:
    index = ResemblanceIndex()
    index.add_provided("e1", Content(sha256=("ab" * 32,)))
    found = index.resemblances(Content(sha256=("ab" * 32,)))
    assert [(r.kind, r.level, r.score) for r in found] == [("sha256", "block", 1.0)]


def test_levels_follow_the_thresholds() -> None:
    for kind, (block, review) in THRESHOLDS.items():
        assert level_of(kind, block) == "block"
        if review < block:
            assert level_of(kind, review) == "review"
            assert level_of(kind, review - 0.01) is None


def test_results_are_deterministic_and_best_first() -> None:
    first = corpus_index().resemblances(texts(ENGLISH[3], ENGLISH[5]))
    assert first == corpus_index().resemblances(texts(ENGLISH[3], ENGLISH[5]))
    assert [r.level for r in first] == sorted(r.level for r in first)
    assert {r.matched_envelope_id for r in first[:2]} == {"e3", "e5"}
    assert all(a.score >= b.score for a, b in itertools.pairwise(first) if a.level == b.level)
