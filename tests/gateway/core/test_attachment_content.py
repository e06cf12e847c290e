"""Looking inside attachments: archives, compression, base64, text, and the unpacking limits."""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
import zipfile

import pytest

from gateway.core import attachment_content
from gateway.core.attachment_content import Unpacked, UnpackRefused, as_text, decode_base64, unpack
from gateway.core.envelope_content import content_of

TEXT = "Courier routes observed this spring across the border regions, with safe houses."


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tarred(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpacked(data: bytes) -> Unpacked:
    found = Unpacked()
    unpack("a", data, found)
    return found


def test_plain_text_is_text_and_binary_is_a_file() -> None:
    assert unpacked(TEXT.encode()).texts == [("a", TEXT)]
    binary = os.urandom(100) + b"\x00"
    assert unpacked(binary).files == [("a", binary)]
    assert as_text("текст".encode("utf-16")) == "текст"


@pytest.mark.parametrize(
    ("wrap", "path"),
    [
        (lambda d: gzip.compress(d), "a/gunzip"),
        (lambda d: zipped({"note.txt": d}), "a/note.txt"),
        (lambda d: tarred({"dir/note.txt": d}), "a/dir/note.txt"),
        (lambda d: base64.encodebytes(d), "a/base64"),
        (lambda d: gzip.compress(zipped({"inner.txt": base64.b64encode(d)})), None),
    ],
)
def test_wrapped_text_is_found(wrap: object, path: str | None) -> None:
    assert callable(wrap)
    found = unpacked(wrap(TEXT.encode()))
    assert TEXT in [text for _, text in found.texts]
    if path is not None:
        assert (path, TEXT) in found.texts


def test_zip_bomb_is_refused_with_a_reason() -> None:
    bomb = zipped({"zeros.txt": b"0" * (8 * 1024 * 1024)})
    with pytest.raises(UnpackRefused, match="over 100x"):
        unpacked(bomb)


def test_gzip_bomb_is_refused() -> None:
    with pytest.raises(UnpackRefused, match="over 100x"):
        unpacked(gzip.compress(b"\x00" * (4 * 1024 * 1024)))


def test_total_budget_and_depth_are_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachment_content, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(UnpackRefused, match="more than 1000 bytes"):
        unpacked(zipped({f"{n}.bin": os.urandom(400) for n in range(3)}))
    nested = TEXT.encode()
    for _ in range(attachment_content.MAX_DEPTH + 1):
        nested = zipped({"x.zip": nested})
    monkeypatch.setattr(attachment_content, "MAX_TOTAL_BYTES", 10**6)
    with pytest.raises(UnpackRefused, match="nested more than"):
        unpacked(nested)


def test_a_damaged_archive_is_compared_as_bytes() -> None:
    damaged = b"\x1f\x8b" + os.urandom(200)
    assert unpacked(damaged).files == [("a", damaged)]


def test_short_or_non_base64_strings_are_not_decoded() -> None:
    assert decode_base64("aGVsbG8=") is None
    assert decode_base64("not base64 at all, just a sentence of words!") is None
    assert decode_base64(base64.b64encode(TEXT.encode()).decode()) == TEXT.encode()


def test_content_of_an_envelope_names_every_string_and_attachment() -> None:
    data = gzip.compress(TEXT.encode())
    envelope = {
        "originator": {"party": "SCO-RATS", "submission_id": "msg 1", "officer": "lo-b"},
        "correlation_id": "case-7",
        "in_reply_to": None,
        "body": {
            "topics": ["first topic", "second topic"],
            "venue": {"en": "Room", "ru": "Зал"},
            "hidden": base64.b64encode(TEXT.encode()).decode(),
            "attachments": [
                {
                    "name": "a.gz",
                    "sha256": "AB" * 32,
                    "content": base64.b64encode(data).decode(),
                }
            ],
        },
    }
    content = content_of(envelope, identifiers=True)
    paths = dict(content.texts)
    assert paths["body.topics[1]"] == "second topic"
    assert paths["body.venue.ru"] == "Зал"
    assert paths["body.hidden/base64"] == TEXT
    assert paths["body.attachments[0].name"] == "a.gz"
    assert paths["body.attachments[0].content/gunzip"] == TEXT
    assert paths["originator.submission_id"] == "msg 1"
    assert paths["correlation_id"] == "case-7"
    assert content.sha256 == ("ab" * 32,)
    assert content.refusal is None
    assert "originator.submission_id" not in dict(content_of(envelope, identifiers=False).texts)


def test_content_of_an_envelope_with_a_bomb_carries_the_refusal() -> None:
    bomb = zipped({"zeros.txt": b"0" * (8 * 1024 * 1024)})
    attachment = {"name": "z.zip", "sha256": "cd" * 32, "content": base64.b64encode(bomb).decode()}
    content = content_of({"body": {"attachments": [attachment]}}, identifiers=False)
    assert content.refusal is not None
    assert "zeros.txt" in content.refusal
