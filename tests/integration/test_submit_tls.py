"""``gateway submit`` over the broker's TLS listener (127.0.0.1:5671): the pinned CA and the
desk's client certificate from the local CA, as the gateways connect; one line naming the fix
when the options do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.certs import cert_path, ensure_local_pki, issue, key_path, load_issuer, write_leaf
from tests.integration.conftest import Network
from tests.integration.test_readme_integrations import run
from tests.support.broker import Vhost
from tests.support.parties import PARTIES, TLS_DIR, TLS_HOST, share

pytestmark = pytest.mark.broker

DESK = "case-desk"
TLS_URL = f"amqps://{DESK}:{DESK}@{TLS_HOST}/{PARTIES['CICA'][0]}"
# Valid by the contract, so it is published, but no configured counterparty: a quick final status.
DOCUMENT = json.dumps(share("INTERPOL", "For nobody here.")).encode()


@pytest.fixture
def desk_pki(tmp_path: Path) -> Path:
    """The desk's client certificate, issued by the broker's local CA."""
    directory = tmp_path / "desk-tls"
    directory.mkdir()
    write_leaf(directory, DESK, issue(load_issuer(TLS_DIR), DESK))
    return directory


def tls_options(directory: Path, ca: Path = TLS_DIR / "ca.pem") -> list[str]:
    return [
        "--tls-ca",
        str(ca),
        "--tls-cert",
        str(cert_path(directory, DESK)),
        "--tls-key",
        str(key_path(directory, DESK)),
    ]


async def submit(tmp_path: Path, *options: str) -> tuple[int, str, str]:
    return await run("gateway", "submit", "-", *options, cwd=tmp_path, stdin=DOCUMENT)


async def test_a_submission_over_tls_gets_its_final_status(
    network: Network, vhosts: dict[str, Vhost], tmp_path: Path, desk_pki: Path
) -> None:
    await network.start("CICA")

    code, out, err = await submit(
        tmp_path, "--url", TLS_URL, *tls_options(desk_pki), "--wait", "20"
    )

    assert (code, err) == (1, "")
    event = json.loads(out)
    assert (event["status"], event["reason"]) == ("rejected", "route.unknown_recipient")


async def test_a_broker_the_pinned_ca_did_not_sign_is_refused_in_one_line(
    vhosts: dict[str, Vhost], tmp_path: Path, desk_pki: Path
) -> None:
    foreign = tmp_path / "foreign"
    ensure_local_pki(foreign, [])
    options = tls_options(desk_pki, ca=cert_path(foreign, "ca"))

    code, out, err = await submit(tmp_path, "--url", TLS_URL, *options)

    assert (code, out) == (5, "")
    assert err.count("\n") == 1
    assert f"{DESK}:{DESK}@" not in err


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no key", "an amqps:// URL needs --tls-key ($GATEWAY_SUBMIT_TLS_KEY)"),
        ("missing files", "no such file: --tls-cert {missing}/case-desk.pem, --tls-key"),
        ("key readable by others", "a private key must be its owner's only: chmod 600"),
        ("plain URL", "the --tls-* options need an amqps:// URL"),
    ],
)
async def test_options_that_do_not_fit_stop_before_connecting_with_the_fix(
    tmp_path: Path, desk_pki: Path, case: str, expected: str
) -> None:
    missing = tmp_path / "nowhere"
    url, options = TLS_URL, tls_options(desk_pki)
    if case == "no key":
        options = options[:4]
    elif case == "missing files":
        options = tls_options(missing)
    elif case == "key readable by others":
        key_path(desk_pki, DESK).chmod(0o644)
    else:
        url = url.replace("amqps://", "amqp://").replace(TLS_HOST, "127.0.0.1:5672")

    code, out, err = await submit(tmp_path, "--url", url, *options)

    assert (code, out) == (2, "")
    assert err.startswith("gateway submit: ")
    assert expected.format(missing=missing) in err
    assert err.count("\n") == 1
