"""Gateway construction: the keys it is given must belong to the Parties they are given for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load_config
from gateway.service import Gateway
from tests.support.parties import make_keys, write_config


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    make_keys(directory)
    return directory


def gateway_for(tmp_path: Path, keys: Path, **options: Any) -> Gateway:
    path = write_config(tmp_path, "CICA", keys, **options)
    return Gateway(load_config(path))


def test_the_keys_of_a_consistent_config_are_loaded(tmp_path: Path, keys: Path) -> None:
    gateway = gateway_for(tmp_path, keys)
    assert gateway.signing_key.key_id == "CICA-test-1"
    assert [k.key_id for k in gateway.keyring] == ["SCO-RATS-test-1", "UNOCT-test-1"]


def test_a_signing_key_of_another_party_is_refused(tmp_path: Path, keys: Path) -> None:
    with pytest.raises(ConfigError, match=r"SCO-RATS's key SCO-RATS-test-1.*this gateway is CICA"):
        gateway_for(tmp_path, keys, signing_key=keys / "SCO-RATS-test-1.key")


def test_a_public_key_listed_under_another_counterparty_is_refused(
    tmp_path: Path, keys: Path
) -> None:
    misplaced = {"SCO-RATS": [keys / "UNOCT-test-1.pub.json"]}
    with pytest.raises(ConfigError, match=r"belongs to UNOCT.*under counterparty SCO-RATS"):
        gateway_for(tmp_path, keys, extra_public_keys=misplaced)


def test_our_own_public_key_cannot_be_pinned_for_a_counterparty(tmp_path: Path, keys: Path) -> None:
    own = {"SCO-RATS": [keys / "CICA-test-1.pub.json"]}
    with pytest.raises(ConfigError, match="belongs to CICA"):
        gateway_for(tmp_path, keys, extra_public_keys=own)


def with_checkpoints(tmp_path: Path, keys: Path, section: str) -> Path:
    path = write_config(tmp_path, "CICA", keys)
    with path.open("a") as handle:
        handle.write(f"[checkpoints]\n{section}\n")
    return path


def test_checkpoints_go_to_the_partner_only_unless_named(tmp_path: Path, keys: Path) -> None:
    assert load_config(with_checkpoints(tmp_path, keys, "")).checkpoint_recipients == ["SCO-RATS"]
    named = with_checkpoints(tmp_path, keys, 'to = ["SCO-RATS", "UNOCT"]')
    assert load_config(named).checkpoint_recipients == ["SCO-RATS", "UNOCT"]


def test_checkpoints_to_an_unknown_party_are_refused(tmp_path: Path, keys: Path) -> None:
    with pytest.raises(ConfigError, match=r"checkpoints\.to names no counterparty: NOPE"):
        load_config(with_checkpoints(tmp_path, keys, 'to = ["NOPE"]'))
