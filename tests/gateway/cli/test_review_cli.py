"""``gateway review list|show`` on an SQLite archive, and the command's usage errors.

Release and refusal need a running gateway; tests/integration/test_review.py runs them.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.archive import Entry, open_archive
from gateway.cli import main
from gateway.core.review import HELD_RESEMBLANCE, Resemblance, ReviewNeed, held_headers
from tests.gateway.core.test_review import PROVIDED, WEAK
from tests.support.parties import make_keys, share, write_config

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def config(tmp_path: Path) -> Path:
    """SCO-RATS's config, its archive holding CICA's envelope and a submission held for it."""
    make_keys(tmp_path)
    path = write_config(tmp_path, "SCO-RATS", tmp_path)
    provided = {
        "id": "env-cica-1",
        "originator": {"party": "CICA"},
        "body": {"text": {"en": PROVIDED}},
    }
    need = ReviewNeed(HELD_RESEMBLANCE, (Resemblance("env-cica-1", "CICA", 0.33),), "resembles")
    store = open_archive(f"sqlite:///{tmp_path / 'sco-rats.db'}")
    await store.open()
    try:
        await store.append(
            [
                Entry(
                    "envelope.in",
                    "delivered",
                    AT,
                    json.dumps(provided).encode(),
                    envelope_id="env-cica-1",
                ),
                Entry(
                    "submission",
                    "held",
                    AT,
                    json.dumps(share("UNOCT", WEAK, officer="lo-b")).encode(),
                    message_id="m-held",
                    system="analysis-desk",
                    type="information.share",
                    recipient="UNOCT",
                    reason=HELD_RESEMBLANCE,
                    detail="resembles",
                    headers=held_headers(need, "lo-b"),
                ),
            ]
        )
    finally:
        await store.close()
    return path


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_list_and_show(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("review", "list", "--config", str(config), "--format", "json") == 0
    [item] = json.loads(capsys.readouterr().out)
    assert (item["seq"], item["message_id"], item["officer"]) == (2, "m-held", "lo-b")
    assert item["resembles"] == [{"envelope_id": "env-cica-1", "provider": "CICA", "score": 0.33}]

    assert await run("review", "list", "--config", str(config)) == 0
    table = capsys.readouterr().out
    assert "CICA:env-cica-1" in table
    assert "(1 held)" in table

    assert await run("review", "show", "m-held", "--config", str(config)) == 0
    shown = capsys.readouterr().out
    assert "resembles envelope env-cica-1 of CICA, score 0.33" in shown
    assert PROVIDED in shown
    assert WEAK in shown
    assert await run("review", "show", "2", "--config", str(config), "--format", "json") == 0
    view = json.loads(capsys.readouterr().out)
    assert view["resembled"][0]["envelope"]["body"]["text"]["en"] == PROVIDED
    assert view["settled"] is False


async def test_exit_codes(config: Path, tmp_path: Path) -> None:
    assert await run("review", "show", "m-none", "--config", str(config)) == 1
    assert await run("review", "release", "1", "--config", str(config), "--officer", "lo-2") == 1
    assert await run("review", "list", "--config", str(tmp_path / "missing.toml")) == 2
    with pytest.raises(SystemExit) as usage:
        main(["review", "refuse", "2", "--config", str(config), "--officer", "lo-2"])
    assert usage.value.code == 2  # --reason is required
