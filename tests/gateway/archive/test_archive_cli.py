"""``gateway archive ...`` through ``gateway.cli.main``, on both backends.

The CLI owns its event loop (asyncio.run), so it runs in a worker thread here while the test's
own loop holds the fixture store.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.archive import ArchiveStore, Entry
from gateway.cli import main
from gateway.core.keys import generate_key_pair, load_signing_key

from .helpers import T0, ManualClock, Party, envelope, envelope_entry, plain_entry, sql


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def key_files(tmp_path: Path) -> dict[str, Path]:
    """Key files for CICA (us) and SCO-RATS (the partner), valid around T0."""
    keys = tmp_path / "keys"
    start = T0 - timedelta(days=30)
    paths: dict[str, Path] = {}
    for party in ("CICA", "SCO-RATS"):
        private, public = generate_key_pair(
            party, keys, key_id=f"{party}-1", valid_from=start, valid_days=365 * 50
        )
        paths[party] = private
        paths[party + ".pub"] = public
    return paths


@pytest.fixture
def parties(key_files: dict[str, Path]) -> dict[str, Party]:
    return {p: Party(p, load_signing_key(key_files[p])) for p in ("CICA", "SCO-RATS")}


@pytest.fixture
def config_file(tmp_path: Path, archive_url: str, key_files: dict[str, Path]) -> Path:
    path = tmp_path / "cica.toml"
    path.write_text(
        "\n".join(
            [
                'party = "CICA"',
                "[broker]",
                'url = "amqp://cica:cica@127.0.0.1:5672/party-a"',
                "allow_plaintext = true",
                "[archive]",
                f'url = "{archive_url}"',
                "[keys]",
                f'signing_key = "{key_files["CICA"]}"',
                "[[counterparties]]",
                'id = "SCO-RATS"',
                'role = "partner"',
                'url = "amqp://x:x@127.0.0.1:5672/party-b"',
                "allow_plaintext = true",
                f'public_keys = ["{key_files["SCO-RATS.pub"]}"]',
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture
async def filled(
    store: ArchiveStore, clock: ManualClock, parties: dict[str, Party]
) -> ArchiveStore:
    cica, sco = parties["CICA"], parties["SCO-RATS"]
    await store.append(
        [
            envelope_entry(cica, 1, correlation_id="thread-1"),
            envelope_entry(sco, 2, kind="envelope.in", outcome="delivered"),
        ]
    )
    clock.advance(3600)
    await store.append(
        [
            envelope_entry(
                cica, 3, outcome="quarantined", reason="consent.missing", recipient="UNOCT"
            ),
            plain_entry(4, kind="replay", outcome="replayed", refers_to=1),
            envelope_entry(cica, 1, message_id="msg-00001"),  # a redelivery: duplicate of 1
        ]
    )
    return store


async def test_verify_ok(
    filled: ArchiveStore, archive_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("archive", "verify", "--archive", archive_url) == 0
    _, head_hash = await filled.head()
    out = capsys.readouterr().out
    assert out.startswith(f"ok: 5 records, head {head_hash}")
    assert "signatures not checked" in out


async def test_verify_with_config_checks_signatures(
    filled: ArchiveStore, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("archive", "verify", "--config", str(config_file)) == 0
    assert "4 envelope signatures" in capsys.readouterr().out


async def test_verify_reports_the_first_broken_record(
    filled: ArchiveStore, archive_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await sql(filled, "UPDATE archive_records SET payload = :p WHERE seq = 3", p=b"{}")
    await sql(filled, "DELETE FROM archive_records WHERE seq = 5")
    assert await cli("archive", "verify", "--archive", archive_url) == 1
    out = capsys.readouterr().out
    assert out.startswith("BROKEN at seq 3 (envelope.out): hash mismatch")
    assert "2 records verified before it" in out


async def test_show_by_seq_and_ids(
    filled: ArchiveStore, archive_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("archive", "show", "--archive", archive_url, "1") == 0
    out = capsys.readouterr().out
    assert out.startswith("record 1: envelope.out sent\n")
    assert "  envelope_id:    env-CICA-00001" in out
    assert '      "type": "information.share",' in out  # pretty-printed payload
    assert "history (3 records):" in out
    history = out.split("history (3 records):")[1]
    assert [line.split()[0] for line in history.strip().splitlines()[1:]] == ["1", "4", "5"]

    assert await cli("archive", "show", "--archive", archive_url, "env-SCO-RATS-00002") == 0
    assert "record 2: envelope.in delivered" in capsys.readouterr().out

    assert await cli("archive", "show", "--archive", archive_url, "msg-00001") == 0
    out = capsys.readouterr().out
    assert "record 1: envelope.out sent" in out
    assert "record 5: envelope.out duplicate" in out
    assert "refers_to:      1" in out


async def test_show_unknown_id(
    filled: ArchiveStore, archive_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("archive", "show", "--archive", archive_url, "no-such-id") == 1
    assert "nothing in the archive for 'no-such-id'" in capsys.readouterr().err
    assert await cli("archive", "show", "--archive", archive_url, "999") == 1


async def test_search_table_and_jsonl(
    filled: ArchiveStore, archive_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("archive", "search", "--archive", archive_url, "--outcome", "quarantined") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == [
        "seq",
        "recorded_at",
        "kind",
        "outcome",
        "type",
        "route",
        "id",
        "reason",
    ]
    assert lines[1].split() == [
        "3",
        "2026-03-01T13:00:00.000000Z",
        "envelope.out",
        "quarantined",
        "information.share",
        "CICA->UNOCT",
        "env-CICA-00003",
        "consent.missing",
    ]
    assert lines[-1] == "(1 records)"

    since = "2026-03-01T12:30:00Z"
    argv = ["archive", "search", "--archive", archive_url, "--since", since, "--format", "jsonl"]
    assert await cli(*argv, "--provider", "CICA", "--kind", "envelope.out") == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["seq"] for d in docs] == [3, 5]
    assert docs[1]["outcome"] == "duplicate"
    assert docs[0]["payload"]  # base64, lossless

    until = ["--until", "2026-03-01T12:30:00+00:00"]
    base = ["archive", "search", "--archive", archive_url, "--format", "jsonl"]
    assert await cli(*base, *until, "--correlation-id", "thread-1") == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [1]
    assert await cli(*base, "--recipient", "CICA", "--type", "information.share") == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [2]
    assert await cli(*base, "--limit", "2") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


async def export_march(config_file: Path, bundle: Path) -> int:
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z"]
    return await cli(
        "archive", "export", "--config", str(config_file), *window, "--out", str(bundle)
    )


async def test_export_and_verify_bundle(
    filled: ArchiveStore,
    config_file: Path,
    key_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "march.jsonl"
    assert await export_march(config_file, bundle) == 0
    _, head_hash = await filled.head()
    assert f"exported 5 records (seq 1..5) to {bundle}, head {head_hash}" in capsys.readouterr().out

    keys = [str(key_files["CICA.pub"]), str(key_files["SCO-RATS.pub"])]
    assert await cli("archive", "verify-bundle", str(bundle), "--keys", *keys) == 0
    assert capsys.readouterr().out.startswith(
        "ok: 5 records (seq 1..5) exported by CICA, key CICA-1"
    )

    lines = bundle.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"SCO-RATS", b"SCO-RATZ")
    bundle.write_bytes(b"".join(lines))
    assert await cli("archive", "verify-bundle", str(bundle), "--keys", *keys) == 1
    assert capsys.readouterr().out.startswith("BROKEN (line 7): manifest sha256")


async def test_export_needs_a_signing_key(
    filled: ArchiveStore, archive_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["archive", "export", "--archive", archive_url, "--out", str(tmp_path / "b.jsonl")]
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z"]
    assert await cli(*argv, *window) == 2
    assert "--signing-key" in capsys.readouterr().err


def test_missing_sqlite_archive_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'nope.db'}"
    assert main(["archive", "verify", "--archive", url]) == 2
    assert "no archive file" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()


def test_bad_time_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["archive", "search", "--archive", "sqlite:////x.db", "--since", "last tuesday"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'last tuesday' is not a time" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value", "hint"),
    [
        ("--outcome", "rejectd", "did you mean rejected?"),
        ("--kind", "envelope_out", "did you mean envelope.out?"),
        ("--type", "information.shar", "did you mean information.share?"),
    ],
)
def test_a_filter_value_that_matches_nothing_ever_is_a_usage_error(
    option: str, value: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["archive", "search", "--archive", "sqlite:////x.db", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{value!r} is not a known" in err
    assert hint in err
    assert err.count("\n") == 1


async def test_search_json_embeds_json_payloads_and_limits_by_default(
    filled: ArchiveStore, archive_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["archive", "search", "--archive", archive_url]
    assert await cli(*base, "--format", "jsonl", "--kind", "envelope.in") == 0
    [doc] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert doc["payload_encoding"] == "json"
    assert doc["payload"]["id"] == doc["envelope_id"]

    assert await cli(*base, "--format", "json", "--limit", "2") == 0
    captured = capsys.readouterr()
    assert [d["seq"] for d in json.loads(captured.out)] == [1, 2]
    assert "showing the first 2; more may match (--limit N)" in captured.err

    assert await cli(*base, "--since", "yesterday", "--format", "jsonl") == 0
    assert capsys.readouterr().out == ""  # T0 is long before yesterday


async def test_show_links_the_receipt_that_proves_delivery_and_back(
    store: ArchiveStore,
    archive_url: str,
    parties: dict[str, Party],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cica, sco = parties["CICA"], parties["SCO-RATS"]
    sent = envelope_entry(cica, 1)
    receipt = envelope(
        sco,
        9,
        type="receipt",
        body={"envelope_id": sent.envelope_id, "status": "delivered"},
    )
    await store.append(
        [
            sent,
            plain_entry(2),  # something unrelated in between
            Entry(
                kind="receipt.in",
                outcome="delivered",
                occurred_at=T0,
                payload=json.dumps(receipt).encode(),
                envelope_id=receipt["id"],
                type="receipt",
                provider="SCO-RATS",
                recipient="CICA",
            ),
        ]
    )
    assert sent.envelope_id is not None
    show = ["archive", "show", "--archive", archive_url, "--format", "json"]
    assert await cli(*show, sent.envelope_id) == 0
    views = json.loads(capsys.readouterr().out)
    assert [(v["role"], v["seq"]) for v in views] == [("record", 1), ("linked", 3)]

    assert await cli(*show, receipt["id"]) == 0
    views = json.loads(capsys.readouterr().out)
    assert [(v["role"], v["seq"]) for v in views] == [("record", 3), ("linked", 1)]

    assert await cli("archive", "show", "--archive", archive_url, sent.envelope_id) == 0
    assert "linked (the receipt that proves delivery" in capsys.readouterr().out


async def test_export_refuses_to_overwrite_and_writes_0600(
    filled: ArchiveStore, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "out.jsonl"
    bundle.write_text("an earlier export\n")
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z"]
    argv = ["archive", "export", "--config", str(config_file), *window, "--out", str(bundle)]
    assert await cli(*argv) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert bundle.read_text() == "an earlier export\n"
    assert await cli(*argv, "--force") == 0
    assert bundle.stat().st_mode & 0o777 == 0o600
    assert bundle.read_text() != "an earlier export\n"


async def test_verify_against_a_bundle_of_this_archive(
    filled: ArchiveStore,
    config_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "march.jsonl"
    assert await export_march(config_file, bundle) == 0
    verify = ["archive", "verify", "--config", str(config_file), "--bundle", str(bundle)]
    capsys.readouterr()
    assert await cli(*verify) == 0
    assert "1 anchors (checkpoints, bundles) hold" in capsys.readouterr().out

    # A bundle that does not verify is no evidence, and says so.
    lines = bundle.read_bytes().splitlines(keepends=True)
    bundle.write_bytes(b"".join([*lines[:2], *lines[3:]]))
    assert await cli(*verify) == 1
    assert capsys.readouterr().out.startswith(f"BROKEN: bundle {bundle} does not verify")
