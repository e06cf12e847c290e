from __future__ import annotations

import base64
import io
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from gateway.core.keys import (
    KeyFileError,
    Keyring,
    PublicKey,
    SigningKey,
    days_to_expiry,
    format_rfc3339,
    generate_key_pair,
    load_public_key,
    load_signing_key,
    parse_rfc3339,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _write_private(path: Path, doc: Any, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(doc if isinstance(doc, str) else json.dumps(doc))
    os.chmod(path, mode)
    return path


def _secrets_of(key: SigningKey) -> list[str]:
    raw = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return [base64.b64encode(raw).decode(), raw.hex(), repr(raw)]


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    return generate_key_pair("CICA", tmp_path, now=NOW)


def _doc(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


# --- generation ------------------------------------------------------------------------------


def test_generate_writes_private_0600_and_published_form(key_pair: tuple[Path, Path]) -> None:
    private_path, public_path = key_pair
    assert private_path.name == "CICA-2026-1.key"
    assert public_path.name == "CICA-2026-1.pub.json"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    published = _doc(public_path)
    assert set(published) == {"party", "key_id", "alg", "public_key", "valid_from", "valid_to"}
    assert published["party"] == "CICA"
    assert published["key_id"] == "CICA-2026-1"
    assert published["alg"] == "ed25519"
    assert len(base64.b64decode(published["public_key"], validate=True)) == 32
    assert published["valid_from"] == "2026-03-01T12:00:00Z"
    assert published["valid_to"] == "2028-02-29T12:00:00Z"
    private_doc = _doc(private_path)
    assert len(base64.b64decode(private_doc["private_key"], validate=True)) == 32
    assert {k: v for k, v in private_doc.items() if k != "private_key"} == published


def test_generate_leaves_no_temporary_files(tmp_path: Path) -> None:
    generate_key_pair("CICA", tmp_path, now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CICA-2026-1.key", "CICA-2026-1.pub.json"]


def test_private_key_is_created_0600_never_chmodded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode, **kw)

    def no_chmod(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("key files must be created with their mode, not chmodded")

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    generate_key_pair("CICA", tmp_path, now=NOW)
    created = [(p, f, m) for p, f, m in opened if f & os.O_CREAT]
    private = [(f, m) for p, f, m in created if ".CICA-2026-1.key." in p]
    assert private, created
    assert all(m == 0o600 and f & os.O_EXCL for f, m in private)


def test_default_key_id_uses_first_free_number_and_year_of_valid_from(tmp_path: Path) -> None:
    (tmp_path / "CICA-2027-1.key").write_text("x")
    (tmp_path / "CICA-2027-3.pub.json").write_text("x")
    start = datetime(2027, 6, 1, tzinfo=UTC)
    private_path, _ = generate_key_pair("CICA", tmp_path, valid_from=start, now=NOW)
    assert private_path.name == "CICA-2027-2.key"
    private_path, _ = generate_key_pair("CICA", tmp_path, valid_from=start, now=NOW)
    assert private_path.name == "CICA-2027-4.key"


def test_generate_with_explicit_key_id_and_window(tmp_path: Path) -> None:
    start = datetime(2027, 1, 1, 8, 30, 15, 123456, tzinfo=UTC)
    _, public_path = generate_key_pair(
        "SCO-RATS", tmp_path, key_id="rats-next", valid_from=start, valid_days=10
    )
    key = load_public_key(public_path)
    assert key.key_id == "rats-next"
    assert key.party == "SCO-RATS"
    assert key.valid_from == datetime(2027, 1, 1, 8, 30, 15, tzinfo=UTC)
    assert key.valid_to == key.valid_from + timedelta(days=10)


@pytest.mark.parametrize("existing", ["CICA-1.key", "CICA-1.pub.json"])
def test_generate_refuses_to_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("keep me")
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_pair("CICA", tmp_path, key_id="CICA-1", now=NOW)
    assert (tmp_path / existing).read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


def test_generate_lost_race_removes_its_private_half(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def racing_link(src: Any, dst: Any) -> None:
        if str(dst).endswith(".pub.json"):
            Path(dst).write_text("someone else")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_pair("CICA", tmp_path, key_id="CICA-1", now=NOW)
    assert [p.name for p in tmp_path.iterdir()] == ["CICA-1.pub.json"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"party": "cica"}, "not a party id"),
        ({"party": "CICA", "key_id": "../escape"}, "key id"),
        ({"party": "CICA", "key_id": ".hidden"}, "key id"),
        ({"party": "CICA", "valid_days": 0}, "valid_days"),
        ({"party": "CICA", "valid_from": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_generate_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    party = kwargs.pop("party")
    with pytest.raises(ValueError, match=message):
        generate_key_pair(party, tmp_path, now=NOW, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_generate_creates_missing_directory_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "a" / "keys"
    private_path, _ = generate_key_pair("CICA", out, now=NOW)
    assert private_path.parent == out
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_generate_into_a_file_is_a_key_file_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeyFileError, match="cannot create key directory"):
        generate_key_pair("CICA", blocker, now=NOW)


# --- loading ---------------------------------------------------------------------------------


def test_load_round_trip(key_pair: tuple[Path, Path]) -> None:
    private_path, public_path = key_pair
    signing = load_signing_key(private_path)
    public = load_public_key(public_path)
    assert signing.party == public.party == "CICA"
    assert signing.key_id == public.key_id == "CICA-2026-1"
    assert signing.valid_from == public.valid_from == NOW
    assert signing.public() == public
    signature = signing.private_key.sign(b"hello")
    public.key.verify(signature, b"hello")


def test_read_only_key_file_is_accepted(key_pair: tuple[Path, Path]) -> None:
    private_path, _ = key_pair
    private_path.chmod(0o400)
    assert load_signing_key(private_path).key_id == "CICA-2026-1"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620, 0o602, 0o610])
def test_key_file_with_group_or_other_access_is_refused(
    key_pair: tuple[Path, Path], mode: int
) -> None:
    private_path, _ = key_pair
    private_path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_signing_key(private_path)
    message = str(caught.value)
    assert str(private_path) in message
    assert f"chmod 600 {private_path}" in message
    assert "by others" in message
    if mode & 0o044:
        assert "readable by others" in message


def test_missing_signing_key_names_file_and_remedy(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError, match="does not exist") as caught:
        load_signing_key(path)
    assert str(path) in str(caught.value)
    assert "gateway keys generate" in str(caught.value)


def test_directory_as_signing_key_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_signing_key(directory)


def _mutated_private(key_pair: tuple[Path, Path], tmp_path: Path, **changes: Any) -> Path:
    doc = _doc(key_pair[0])
    for name, value in changes.items():
        if value is ...:
            del doc[name]
        else:
            doc[name] = value
    return _write_private(tmp_path / "mutated.key", doc)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"private_key": ...}, "'private_key' is missing"),
        ({"private_key": "!!!"}, "not valid base64"),
        ({"private_key": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"private_key": base64.b64encode(b"\x01" * 32).decode()}, "does not belong"),
        ({"alg": "rsa"}, "alg"),
        ({"party": ...}, "'party'"),
        ({"key_id": "a/b"}, "'key_id'"),
        ({"valid_from": "2026-01-01T00:00:00"}, "'valid_from'"),
        ({"valid_to": 5}, "'valid_to'"),
        ({"valid_to": "2020-01-01T00:00:00Z"}, "valid_to must be after"),
        ({"public_key": ...}, "'public_key' is missing"),
    ],
)
def test_malformed_signing_key_is_refused(
    key_pair: tuple[Path, Path], tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = _mutated_private(key_pair, tmp_path, **changes)
    with pytest.raises(KeyFileError, match=message) as caught:
        load_signing_key(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("content", ["not json", "[1, 2]", "\udcff", ""])
def test_non_json_signing_key_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(KeyFileError, match="not a JSON key file"):
        load_signing_key(path)


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    path = _write_private(tmp_path / "big.key", " " * (70 * 1024))
    with pytest.raises(KeyFileError, match="too large"):
        load_signing_key(path)


def test_malformed_key_errors_never_echo_the_secret(
    key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    secret = base64.b64encode(b"\x07" * 31).decode()
    path = _mutated_private(key_pair, tmp_path, private_key=secret)
    with pytest.raises(KeyFileError) as caught:
        load_signing_key(path)
    assert secret not in str(caught.value)


def test_load_public_key_refuses_a_private_key_file(key_pair: tuple[Path, Path]) -> None:
    with pytest.raises(KeyFileError, match="contains a private key"):
        load_public_key(key_pair[0])


def test_load_public_key_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_public_key(tmp_path / "x.pub.json")
    bad = tmp_path / "bad.pub.json"
    bad.write_text(json.dumps({"party": "CICA", "key_id": "k", "alg": "ed25519"}))
    with pytest.raises(KeyFileError, match="valid_from"):
        load_public_key(bad)


# --- secrecy ---------------------------------------------------------------------------------


def test_signing_key_repr_and_str_show_no_key_material(key_pair: tuple[Path, Path]) -> None:
    signing = load_signing_key(key_pair[0])
    for text in (repr(signing), str(signing), f"{signing}", f"{signing!r}"):
        assert "CICA-2026-1" in text
        assert "private_key" not in text
        for secret in _secrets_of(signing):
            assert secret not in text


@pytest.mark.parametrize(
    "renderer",
    [
        structlog.dev.ConsoleRenderer(colors=False),
        structlog.processors.KeyValueRenderer(),
        structlog.processors.JSONRenderer(),
        structlog.processors.LogfmtRenderer(),
    ],
    ids=["console", "keyvalue", "json", "logfmt"],
)
def test_structlog_renderers_show_no_key_material(
    key_pair: tuple[Path, Path], renderer: Any
) -> None:
    signing = load_signing_key(key_pair[0])
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[structlog.processors.format_exc_info, renderer],
    )
    logger.info("loaded", key=signing, keys=[signing], private=signing.private_key)
    rendered = out.getvalue()
    assert "CICA-2026-1" in rendered
    for secret in _secrets_of(signing):
        assert secret not in rendered


# --- keyring and expiry ----------------------------------------------------------------------


def _public(party: str, key_id: str, start: datetime, days: int = 30) -> PublicKey:
    return PublicKey(
        party,
        key_id,
        start,
        start + timedelta(days=days),
        Ed25519PrivateKey.generate().public_key(),
    )


def test_keyring_get_and_iteration() -> None:
    old = _public("CICA", "CICA-2026-1", NOW)
    new = _public("CICA", "CICA-2026-2", NOW + timedelta(days=20))
    theirs = _public("SCO-RATS", "SCO-RATS-2026-1", NOW)
    ring = Keyring([new, theirs, old, old])
    assert len(ring) == 3
    assert ring.get("CICA-2026-2") is new
    assert ring.get("CICA-2026-9") is None
    assert [k.key_id for k in ring] == ["CICA-2026-1", "CICA-2026-2", "SCO-RATS-2026-1"]


def test_keyring_refuses_two_keys_with_one_id() -> None:
    with pytest.raises(ValueError, match="CICA-2026-1"):
        Keyring([_public("CICA", "CICA-2026-1", NOW), _public("CICA", "CICA-2026-1", NOW)])


def test_keyring_from_files_includes_own_key(tmp_path: Path) -> None:
    ours = generate_key_pair("CICA", tmp_path, now=NOW)
    theirs = generate_key_pair("SCO-RATS", tmp_path, now=NOW)
    ring = Keyring.from_files([ours[1], theirs[1], theirs[1]])
    assert [k.key_id for k in ring] == ["CICA-2026-1", "SCO-RATS-2026-1"]
    assert ring.get("CICA-2026-1") == load_signing_key(ours[0]).public()


def test_keyring_from_files_names_conflicting_files(tmp_path: Path) -> None:
    first = generate_key_pair("CICA", tmp_path / "a", key_id="K", now=NOW)[1]
    second = generate_key_pair("CICA", tmp_path / "b", key_id="K", now=NOW)[1]
    with pytest.raises(KeyFileError) as caught:
        Keyring.from_files([first, second])
    assert str(first) in str(caught.value)
    assert str(second) in str(caught.value)


def test_public_key_is_hashable_and_compares_key_material() -> None:
    a = _public("CICA", "K", NOW)
    b = PublicKey(a.party, a.key_id, a.valid_from, a.valid_to, a.key)
    c = _public("CICA", "K", NOW)
    assert a == b
    assert hash(a) == hash(b)
    assert a != c


def test_validity_window_is_half_open() -> None:
    key = _public("CICA", "K", NOW, days=1)
    assert key.is_valid_at(NOW)
    assert key.is_valid_at(NOW + timedelta(hours=23, minutes=59))
    assert not key.is_valid_at(NOW + timedelta(days=1))
    assert not key.is_valid_at(NOW - timedelta(seconds=1))


def test_days_to_expiry() -> None:
    key = _public("CICA", "K", NOW, days=30)
    assert days_to_expiry(key, NOW) == 30.0
    assert days_to_expiry(key, NOW + timedelta(days=29, hours=12)) == 0.5
    assert days_to_expiry(key, NOW + timedelta(days=31)) == -1.0


# --- timestamps ------------------------------------------------------------------------------


def test_rfc3339_helpers() -> None:
    assert format_rfc3339(NOW) == "2026-03-01T12:00:00Z"
    assert format_rfc3339(NOW.replace(microsecond=5)) == "2026-03-01T12:00:00.000005Z"
    assert parse_rfc3339("2026-03-01T14:00:00+02:00") == NOW
    assert parse_rfc3339("2026-03-01T12:00:00Z").tzinfo is UTC
    with pytest.raises(ValueError, match="offset"):
        parse_rfc3339("2026-03-01T12:00:00")
    with pytest.raises(ValueError, match="range"):
        parse_rfc3339("0001-01-01T00:00:00+01:00")
    with pytest.raises(ValueError, match="naive"):
        format_rfc3339(datetime(2026, 1, 1))
