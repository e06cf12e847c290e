from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from gateway.cli import keys as keys_cli
from gateway.cli import main
from gateway.core.keys import load_public_key, load_signing_key


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    keys_cli.register(commands)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _private_material(path: Path) -> str:
    secret: str = json.loads(path.read_text())["private_key"]
    return secret


def test_generate_prints_paths_and_key_id_never_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    assert _run(["keys", "generate", "--party", "CICA", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    [private_path] = out.glob("*.key")
    [public_path] = out.glob("*.pub.json")
    key_id = private_path.name.removesuffix(".key")
    assert key_id.startswith("CICA-")
    assert key_id.endswith("-1")
    assert key_id in printed.out
    assert str(private_path) in printed.out
    assert str(public_path) in printed.out
    assert _private_material(private_path) not in printed.out + printed.err
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600


def test_generate_through_the_gateway_entry_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["keys", "generate", "--party", "SCO-RATS", "--out", str(tmp_path)]
    argv += ["--key-id", "RATS-A", "--valid-days", "7", "--valid-from", "2027-01-01T00:00:00Z"]
    assert main(argv) == 0
    assert "RATS-A" in capsys.readouterr().out
    key = load_signing_key(tmp_path / "RATS-A.key")
    assert key.party == "SCO-RATS"
    assert key.valid_from.isoformat() == "2027-01-01T00:00:00+00:00"
    assert (key.valid_to - key.valid_from).days == 7


def test_generate_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["keys", "generate", "--party", "CICA", "--out", str(tmp_path), "--key-id", "K"]
    assert _run(argv) == 0
    before = (tmp_path / "K.key").read_text()
    assert _run(argv) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "K.key").read_text() == before


@pytest.mark.parametrize(
    "extra",
    [
        ["--party", "cica"],
        ["--party", "CICA", "--key-id", "../K"],
        ["--party", "CICA", "--valid-days", "0"],
    ],
)
def test_generate_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert _run(["keys", "generate", "--out", str(tmp_path), *extra]) == 2
    assert "gateway keys generate:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_bad_valid_from_is_an_argparse_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        _run(["keys", "generate", "--party", "CICA", "--out", str(tmp_path), "--valid-from", "x"])
    assert caught.value.code == 2


@pytest.mark.parametrize("which", [".key", ".pub.json"])
def test_show_prints_the_published_form_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    _run(["keys", "generate", "--party", "CICA", "--out", str(tmp_path), "--key-id", "K"])
    capsys.readouterr()
    assert _run(["keys", "show", str(tmp_path / f"K{which}")]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == json.loads((tmp_path / "K.pub.json").read_text())
    assert "private_key" not in printed
    assert _private_material(tmp_path / "K.key") not in printed
    assert load_public_key(tmp_path / "K.pub.json").key_id == "K"


def test_show_as_a_table_and_as_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(["keys", "generate", "--party", "CICA", "--out", str(tmp_path), "--key-id", "K"])
    capsys.readouterr()
    public = json.loads((tmp_path / "K.pub.json").read_text())
    assert _run(["keys", "show", str(tmp_path / "K.key"), "--format", "jsonl"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == public
    assert _run(["keys", "show", str(tmp_path / "K.key"), "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["field", "value"]
    assert {line.split()[0] for line in table[1:]} == set(public)
    assert "key_id" in public
    assert ["key_id", "K"] in [line.split() for line in table[1:]]


def test_show_refuses_a_key_readable_by_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(["keys", "generate", "--party", "CICA", "--out", str(tmp_path), "--key-id", "K"])
    (tmp_path / "K.key").chmod(0o644)
    capsys.readouterr()
    assert _run(["keys", "show", str(tmp_path / "K.key")]) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert f"chmod 600 {tmp_path / 'K.key'}" in printed.err


def test_show_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["keys", "show", str(tmp_path / "nope.pub.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_keys_needs_an_action() -> None:
    with pytest.raises(SystemExit) as caught:
        _run(["keys"])
    assert caught.value.code == 2
