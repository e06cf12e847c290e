"""The evasion corpus: composable transforms of provided texts and files, as an insider would use.

A *leak* is what SCO-RATS's insider sends toward UNOCT: one or more messages (:class:`Message`),
each a set of placed texts and attached files. Text transforms change how a paragraph looks;
placements put it (whole or in pieces) into fields the gateway forwards; file transforms change
an attachment's bytes or wrapping. Every function here is deterministic so that a failing
example names exactly what was sent; the ``hypothesis`` strategies at the end compose them.
"""

# Russian prose and look-alike letters are the point of this module.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# Placements: where a text may go in what SCO-RATS sends.
TEXT, SUBJECT, TOPICS, PLACE, PARTICIPANT, ATTACHMENT_NAME, ATTACHMENT_TEXT, MESSAGE_ID = (
    "text",
    "subject",
    "topics",
    "place",
    "participant",
    "attachment_name",
    "attachment_text",
    "message_id",
)
PLACEMENTS = (
    TEXT,
    SUBJECT,
    TOPICS,
    PLACE,
    PARTICIPANT,
    ATTACHMENT_NAME,
    ATTACHMENT_TEXT,
    MESSAGE_ID,
)
LABEL_CHARS = 200
MESSAGE_ID_BYTES = 250

INVISIBLE = ("\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u034f", "\ufe0f")
LOOKALIKES = str.maketrans("aceopxyAEKMHOPCTX", "асеорхуАЕКМНОРСТХ")
FILLERS = ("indeed", "actually", "namely", "likewise", "именно", "также", "вообще")


@dataclass(frozen=True)
class Message:
    """One message: texts by placement (in order) and attached files by name."""

    texts: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Leak:
    """What the insider sends, and the transforms that made it (for failure messages)."""

    messages: tuple[Message, ...]
    how: tuple[str, ...] = field(default=())


# -- text transforms: str -> str --------------------------------------------------------------


def invisible(text: str, which: int = 0) -> str:
    """An invisible character inside every word."""
    mark = INVISIBLE[which % len(INVISIBLE)]
    return re.sub(r"(\w)(\w)", lambda m: m.group(1) + mark + m.group(2), text)


def lookalikes(text: str) -> str:
    """Latin letters replaced by Cyrillic look-alikes (and the reverse is the same)."""
    return text.translate(LOOKALIKES)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def insert_fillers(text: str, every: int = 1, which: int = 0) -> str:
    """A filler word after every ``every`` words."""
    words = text.split(" ")
    filler = FILLERS[which % len(FILLERS)]
    return " ".join(
        f"{word} {filler}" if n % every == every - 1 else word for n, word in enumerate(words)
    )


def drop_words(text: str, every: int = 3) -> str:
    """Every ``every``-th word dropped (``every`` >= 3: at most a third of the words)."""
    return " ".join(word for n, word in enumerate(text.split(" ")) if n % every != every - 1)


def reorder_sentences(text: str) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text)
    return " ".join(sentences[1::2] + sentences[0::2])


def shout(text: str) -> str:
    return re.sub(r"\s+", "\n  ", text.upper())


# -- placements: str -> messages --------------------------------------------------------------


def pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` pieces at word boundaries."""
    words = text.split(" ")
    size = -(-len(words) // count)
    return [" ".join(words[n : n + size]) for n in range(0, len(words), size)]


def _fit(text: str, limit: int) -> list[str]:
    """Pieces of ``text`` each at most ``limit`` characters (a Label, a message id)."""
    count = 1
    while any(len(piece.encode()) > limit for piece in pieces(text, count)):
        count += 1
    return pieces(text, count)


def place(text: str, where: str) -> Message:
    """The whole text in one placement (split into labels where a field is short)."""
    if where == ATTACHMENT_TEXT:
        return Message(files=(("notes.txt", text.encode()),))
    if where in (TOPICS, PLACE, PARTICIPANT, ATTACHMENT_NAME):
        return Message(tuple((where, piece) for piece in _fit(text, LABEL_CHARS)))
    if where == MESSAGE_ID:
        first, *rest = _fit(text, MESSAGE_ID_BYTES)
        return Message(((MESSAGE_ID, first), *((TOPICS, piece) for piece in rest)))
    return Message(((where, text),))


def split_fields(text: str, placements: Sequence[str]) -> Message:
    """The text cut into one piece per placement, each piece in its own field."""
    texts: list[tuple[str, str]] = []
    files: list[tuple[str, bytes]] = []
    for piece, where in zip(pieces(text, len(placements)), placements, strict=False):
        placed = place(piece, where)
        texts.extend(placed.texts)
        files.extend(placed.files)
    return Message(tuple(texts), tuple(files))


def spread(text: str, count: int, where: str = TEXT) -> tuple[Message, ...]:
    """The text cut into ``count`` pieces, one per message."""
    return tuple(place(piece, where) for piece in pieces(text, count))


# -- file transforms: bytes -> bytes or pieces ------------------------------------------------


def change_byte(data: bytes, at: float = 0.5) -> bytes:
    n = int(len(data) * at) % len(data)
    return data[:n] + bytes([data[n] ^ 0x5A]) + data[n + 1 :]


def append_tail(data: bytes) -> bytes:
    return data + b"\n-- forwarded --\n"


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zipped(data: bytes, name: str = "report.bin") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def base64_wrapped(data: bytes) -> bytes:
    return base64.encodebytes(data)


def halves(data: bytes) -> tuple[bytes, bytes]:
    middle = len(data) // 2
    return data[:middle], data[middle:]


TEXT_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "invisible": invisible,
    "lookalikes": lookalikes,
    "fullwidth": fullwidth,
    "fillers": insert_fillers,
    "fillers_every_2": lambda text: insert_fillers(text, 2, 4),
    "drop_every_3": drop_words,
    "drop_every_4": lambda text: drop_words(text, 4),
    "reorder": reorder_sentences,
    "shout": shout,
}
# Edits that remove content, of which at most one applies: two together keep under half a text.
LOSSY = frozenset({"drop_every_3", "drop_every_4"})
FILE_TRANSFORMS: dict[str, Callable[[bytes], bytes]] = {
    "change_byte": change_byte,
    "append_tail": append_tail,
    "gzip": gzipped,
    "zip": zipped,
    "base64": base64_wrapped,
}


def attachment(
    name: str, data: bytes, media_type: str = "application/octet-stream"
) -> dict[str, Any]:
    return {
        "name": name,
        "media_type": media_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content": base64.b64encode(data).decode(),
    }


# -- strategies -------------------------------------------------------------------------------


@st.composite
def text_edits(draw: st.DrawFn, lossy: bool) -> list[str]:
    """A composition of text transforms, at most one of them lossy (none unless ``lossy``)."""
    allowed = sorted(name for name in TEXT_TRANSFORMS if lossy or name not in LOSSY)
    names = draw(st.lists(st.sampled_from(allowed), max_size=4, unique=True))
    dropping = [name for name in names if name in LOSSY]
    return [name for name in names if name not in LOSSY or name == dropping[0]]


@st.composite
def text_leaks(draw: st.DrawFn, provided: Sequence[str], lossy: bool = True) -> Leak:
    """A provided text, transformed, then placed, split across fields or spread. A short text
    (a subject) is only worth stealing whole, so ``lossy`` edits are for paragraphs."""
    text = draw(st.sampled_from(provided))
    edits = draw(text_edits(lossy))
    for name in edits:
        text = TEXT_TRANSFORMS[name](text)
    how = draw(st.sampled_from(["place", "split_fields", "spread"]))
    if how == "place":
        where = draw(st.sampled_from(PLACEMENTS))
        return Leak((place(text, where),), (*edits, f"place:{where}"))
    if how == "split_fields":
        placements = draw(st.lists(st.sampled_from(PLACEMENTS), min_size=2, max_size=4))
        return Leak((split_fields(text, placements),), (*edits, f"split:{'+'.join(placements)}"))
    count = draw(st.integers(min_value=2, max_value=4))
    return Leak(spread(text, count), (*edits, f"spread:{count}"))


@st.composite
def file_leaks(draw: st.DrawFn, provided: Sequence[bytes]) -> Leak:
    """A provided file, edited, attached whole, in two halves or over two messages, each part
    wrapped (compressed, archived, base64)."""
    data = draw(st.sampled_from(provided))
    edits = draw(st.lists(st.sampled_from(["change_byte", "append_tail"]), max_size=2))
    for name in edits:
        data = FILE_TRANSFORMS[name](data)
    how = draw(st.sampled_from(["whole", "halves", "halves_spread"]))
    parts = (data,) if how == "whole" else halves(data)
    wraps = draw(st.lists(st.sampled_from(["gzip", "zip", "base64"]), max_size=2))
    wrapped = []
    for part in parts:
        for name in wraps:
            part = FILE_TRANSFORMS[name](part)
        wrapped.append(part)
    files = tuple((f"part{n}.bin", part) for n, part in enumerate(wrapped))
    if how == "halves_spread":
        messages = tuple(Message(files=(file,)) for file in files)
    else:
        messages = (Message(files=files),)
    return Leak(messages, (*edits, how, *wraps))


# -- submissions: what a back-office system would publish for a message ------------------------

_MEETING = (PLACE, PARTICIPANT)


def _joined(message: Message, *placements: str) -> list[str]:
    return [text for where, text in message.texts if where in placements]


def _meeting_body(message: Message) -> dict[str, Any]:
    places = _joined(message, PLACE)
    names = places[1:] + _joined(message, PARTICIPANT)
    return {
        "title": {"en": "Consultations"},
        "date": "2026-05-12",
        "place": places[0] if places else "Vienna",
        "agenda": {"en": "Exchange of views."},
        "participants": [{"party": "SCO-RATS", "name": name} for name in names],
        "authorization": {"reference": "MS-CONSENT/2026/04", "granted_on": "2026-02-15"},
    }


def _bilingual(parts: list[str]) -> dict[str, str]:
    """The first part in English, any others in the Russian slot."""
    return {"en": parts[0], "ru": " ".join(parts[1:])} if len(parts) > 1 else {"en": parts[0]}


def _share_body(message: Message) -> dict[str, Any]:
    subject = _joined(message, SUBJECT) or ["Exchange of information"]
    text = _joined(message, TEXT) or ["For your information."]
    files = [attachment(name, data, "text/plain") for name, data in message.files]
    files += [
        attachment(name, b"see the text", "text/plain")
        for name in _joined(message, ATTACHMENT_NAME)
    ]
    return {
        "subject": _bilingual(subject),
        "text": _bilingual(text),
        "topics": _joined(message, TOPICS),
        "attachments": files,
    }


def submissions(message: Message) -> list[tuple[str, dict[str, Any], str | None]]:
    """(type, body, AMQP message_id) of the submissions carrying ``message``: an
    information.share, preceded by a meeting.invitation for names and places."""
    message_ids = _joined(message, MESSAGE_ID)
    share_id = message_ids[0] if message_ids else None
    rest = Message(
        tuple((w, t) for w, t in message.texts if w not in (*_MEETING, MESSAGE_ID)), message.files
    )
    found: list[tuple[str, dict[str, Any], str | None]] = []
    if any(where in _MEETING for where, _ in message.texts):
        found.append(("meeting.invitation", _meeting_body(message), None))
        if not rest.texts and not rest.files and share_id is None:
            return found
    found.append(("information.share", _share_body(rest), share_id))
    return found
