"""contracts/examples: every document behaves as named, for the models and for JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

import contracts
from contracts import (
    ERROR_CODES,
    JSON_SCHEMA_BLIND_CODES,
    ContractError,
    message_types,
    parse_submission,
)

PACKAGE = Path(contracts.__file__).parent
EXAMPLES = PACKAGE / "examples"
SCHEMAS = PACKAGE / "schemas"
# Codes no whole submission document in a file can show: the bytes are not a JSON object,
# or the document is over the size limit, or the code belongs to frames.
CODES_WITHOUT_EXAMPLES = {
    "schema.invalid_json",
    "schema.not_an_object",
    "frame.invalid",
}

VALID = sorted(EXAMPLES.glob("*/valid/*.json"))
INVALID = sorted(EXAMPLES.glob("*/invalid/*.json"))


def _id(path: Path) -> str:
    return f"{path.parts[-3]}/{path.parts[-2]}/{path.stem}"


def expected_code(path: Path) -> str:
    return path.stem.split("__", 1)[0]


@cache
def validator(message_type: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{message_type}.v1.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


def test_examples_cover_every_type() -> None:
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == set(message_types())
    for message_type in message_types():
        assert list((EXAMPLES / message_type / "valid").glob("*.json")), message_type
        assert len(list((EXAMPLES / message_type / "invalid").glob("*.json"))) >= 4, message_type


def test_examples_are_named_for_known_codes_and_cover_them() -> None:
    named = {expected_code(path) for path in INVALID}
    assert all("__" in path.stem for path in INVALID)
    assert named <= ERROR_CODES
    assert named == ERROR_CODES - CODES_WITHOUT_EXAMPLES


def test_blind_codes_are_listed_in_the_readme() -> None:
    readme = (PACKAGE / "README.md").read_text("utf-8")
    for code in JSON_SCHEMA_BLIND_CODES:
        assert f"`{code}`" in readme


@pytest.mark.parametrize("path", VALID, ids=_id)
def test_valid_example_parses_and_matches_its_schema(path: Path) -> None:
    submission = parse_submission(path.read_bytes())
    assert submission.type == path.parts[-3]
    document = json.loads(path.read_bytes())
    assert submission.body == document["body"]
    errors = [error.message for error in validator(submission.type).iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("path", INVALID, ids=_id)
def test_invalid_example_is_refused_with_its_code(path: Path) -> None:
    with pytest.raises(ContractError) as caught:
        parse_submission(path.read_bytes())
    assert caught.value.code == expected_code(path)
    assert caught.value.message


@pytest.mark.parametrize("path", INVALID, ids=_id)
def test_json_schema_agrees_on_invalid_example(path: Path) -> None:
    document = json.loads(path.read_bytes())
    accepted = validator(path.parts[-3]).is_valid(document)
    assert accepted == (expected_code(path) in JSON_SCHEMA_BLIND_CODES)
