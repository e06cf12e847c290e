"""The README's two back-office integrations, Python and shell-only, run as written against the
real broker and gateways; `gateway submit`'s exit codes (issue 14)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Network
from tests.support.broker import Vhost
from tests.support.parties import PARTIES, PREFIX, assignment, share, submission

pytestmark = pytest.mark.broker

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
OFFICER = "lo-0042"  # the officer of the README's examples
DESK_URL = f"amqp://case-desk:case-desk@127.0.0.1:5672/{PARTIES['CICA'][0]}"
RUN_TIMEOUT_S = 60


def example(section: str, language: str) -> str:
    """The first ``language`` code block of the README section titled ``section``, pointed at
    this test run's vhosts."""
    text = README[README.index(f"## {section}\n") :]
    code = re.search(rf"```{language}\n(.*?)```", text, re.DOTALL)
    assert code is not None, f"no {language} block under {section!r}"
    return code.group(1).replace("/party-a", f"/{PREFIX}party-a")


async def run(*command: str, cwd: Path, stdin: bytes = b"") -> tuple[int, str, str]:
    """Run a program beside the gateways of this event loop, with this checkout importable
    and a `gateway` command on PATH."""
    shim = cwd / "bin" / "gateway"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gateway "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("GATEWAY_SUBMIT_URL", None)
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), RUN_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def start_with_accredited_officer(network: Network) -> None:
    await network.start("CICA")
    await network.start("SCO-RATS")
    desk = await network.desk("CICA")
    await desk.submit(submission("liaison.assignment", "SCO-RATS", assignment(OFFICER)))


@pytest.mark.parametrize(
    ("section", "language", "interpreter", "printed"),
    [
        ("A back-office system in ten lines", "python", sys.executable, "delivered None\n"),
        ("A back-office system in a shell script", "sh", "bash", "delivered\n"),
    ],
)
async def test_the_readme_examples_run_as_written(
    network: Network,
    vhosts: dict[str, Vhost],
    tmp_path: Path,
    section: str,
    language: str,
    interpreter: str,
    printed: str,
) -> None:
    """Nothing else on stdout or stderr: the client library logs nothing by default."""
    await start_with_accredited_officer(network)
    script = tmp_path / f"example.{language}"
    script.write_text(example(section, language))
    assert await run(interpreter, str(script), cwd=tmp_path) == (0, printed, "")
    if language == "sh":
        event = json.loads((tmp_path / "status.json").read_text())
        assert (event["status"], event["type"]) == ("delivered", "information.share")


async def test_submit_exit_codes_and_one_line_errors(
    network: Network, vhosts: dict[str, Vhost], tmp_path: Path
) -> None:
    await network.start("CICA")
    # Valid by the contract, so it is published, but no configured counterparty.
    document = json.dumps(share("INTERPOL", "For nobody here.")).encode()
    submit = ("gateway", "submit", "-", "--url", DESK_URL)

    code, out, err = await run(*submit, "--wait", "20", cwd=tmp_path, stdin=document)
    event = json.loads(out)
    assert code == 1
    assert (event["status"], event["reason"], event["type"]) == (
        "rejected",
        "route.unknown_recipient",
        "information.share",
    )

    code, out, err = await run(*submit, cwd=tmp_path, stdin=b'{"type": "information.share"}')
    assert (code, out) == (3, "")
    assert err.startswith("gateway submit: schema.missing_field")
    assert err.count("\n") == 1

    wrong_password = DESK_URL.replace("case-desk:case-desk@", "case-desk:wrong@")
    code, out, err = await run(
        "gateway", "submit", "-", "--url", wrong_password, cwd=tmp_path, stdin=document
    )
    assert (code, out) == (5, "")
    assert "refused the login of user 'case-desk'" in err
    assert err.count("\n") == 1
    assert "wrong@" not in err

    code, out, err = await run("gateway", "submit", "-", cwd=tmp_path, stdin=document)
    assert (code, out) == (2, "")
    assert "GATEWAY_SUBMIT_URL" in err
