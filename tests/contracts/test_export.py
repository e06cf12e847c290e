"""Generated files: checked in and current, valid JSON Schema and AsyncAPI 3.0.0, and usable."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

import contracts
from contracts import all_specs, amqp, parse_envelope
from contracts.export import DEFAULT_ROOT, generate, stale, write
from contracts.registry import GATEWAY_ONLY_TYPES
from gateway import topology
from gateway.cli import main

SHARED_SCHEMAS = Path(__file__).parents[2] / ".." / "shared" / "schemas"
PACKAGE = Path(contracts.__file__).parent
EXAMPLES = PACKAGE / "examples"


def _schemas() -> dict[str, dict[str, Any]]:
    return {
        Path(relative).name: json.loads(text)
        for relative, text in generate().items()
        if relative.endswith(".json")
    }


def _asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(generate()["contracts/asyncapi.yaml"])
    return document


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schemas = _schemas()
    registry: Registry[Any] = Registry().with_resources(
        (file, Resource.from_contents(schema)) for file, schema in schemas.items()
    )
    return jsonschema.Draft202012Validator(schemas[name], registry=registry)


def _envelope_for(example: Path) -> dict[str, Any]:
    submission = json.loads(example.read_bytes())
    return {
        "id": "01960f7e-8a5c-7b3e-9c1d-2f4a6b8c0d1e",
        "type": submission["type"],
        "version": submission.get("version", 1),
        "originator": {
            "party": "CICA",
            "system": "case-desk",
            "officer": submission.get("officer"),
            "submission_id": "5b1f0c9e2d",
        },
        "recipient": submission["recipient"],
        "created_at": "2026-03-01T09:30:00Z",
        "correlation_id": submission.get("correlation_id"),
        "in_reply_to": submission.get("in_reply_to"),
        "derived_from": submission.get("derived_from", []),
        "handling": submission.get("handling", {"onward": "consent-required", "pre_approved": []}),
        "body": submission["body"],
        "signature": {"alg": "ed25519", "key_id": "CICA-2026-1", "value": "A" * 86 + "=="},
    }


def test_checked_in_files_are_current() -> None:
    assert stale(DEFAULT_ROOT) == []


def test_generate_is_deterministic_and_sorted() -> None:
    files = generate()
    assert files == generate()
    assert list(files) == sorted(files)
    assert all(text.endswith("\n") for text in files.values())
    expected = {f"contracts/schemas/{s.type}.v{s.version}.json" for s in all_specs()} | {
        "contracts/schemas/envelope.v1.json",
        "contracts/schemas/frame.v1.json",
        "contracts/schemas/status.v1.json",
        "contracts/asyncapi.yaml",
    }
    assert set(files) == expected


def test_write_reports_changes_and_stale_sees_edits(tmp_path: Path) -> None:
    assert len(stale(tmp_path)) == len(generate())
    assert len(write(tmp_path)) == len(generate())
    assert write(tmp_path) == []
    assert stale(tmp_path) == []
    edited = tmp_path / "contracts" / "schemas" / "receipt.v1.json"
    edited.write_text("{}\n", encoding="utf-8")
    assert stale(tmp_path) == ["contracts/schemas/receipt.v1.json"]
    assert write(tmp_path) == [edited]


def test_cli_export_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "export", "--check", "--root", str(tmp_path)]) == 1
    assert "stale: contracts/asyncapi.yaml" in capsys.readouterr().err
    assert main(["contracts", "export", "--root", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["contracts", "export", "--check", "--root", str(tmp_path)]) == 0
    assert stale(tmp_path) == []


def test_schemas_are_valid_draft_2020_12() -> None:
    for name, schema in _schemas().items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        jsonschema.Draft202012Validator.check_schema(schema)


def test_asyncapi_is_valid_against_the_official_schema() -> None:
    official = json.loads((SHARED_SCHEMAS / "asyncapi-3.0.0.json").read_text("utf-8"))
    validator = jsonschema.Draft7Validator(official)
    document = _asyncapi()
    assert [error.message for error in validator.iter_errors(document)] == []
    broken = copy.deepcopy(document)
    broken["channels"]["submitQueue"]["bindings"]["amqp"]["queue"]["name"] = 7
    assert not validator.is_valid(broken)


def _bindings() -> list[dict[str, Any]]:
    return [channel["bindings"]["amqp"] for channel in _asyncapi()["channels"].values()]


def test_asyncapi_describes_every_exchange_queue_and_header() -> None:
    bindings = _bindings()
    exchanges = {
        b["exchange"]["name"]: b["exchange"]["type"] for b in bindings if b["is"] == "routingKey"
    }
    queues = {b["queue"]["name"] for b in bindings if b["is"] == "queue"}
    assert exchanges == amqp.EXCHANGE_TYPES
    assert queues == set(amqp.QUEUES)
    messages = _asyncapi()["components"]["messages"]
    for name in ("rejected", "quarantined"):
        headers = messages[name]["headers"]["properties"]
        assert set(headers) == {amqp.REASON_HEADER, amqp.DETAIL_HEADER}
    assert set(messages["envelope.v1"]["headers"]["properties"]) == {
        amqp.PROVIDER_HEADER,
        amqp.TYPE_HEADER,
    }
    assert messages["frame.v1"]["contentType"] == amqp.FRAME_CONTENT_TYPE
    submissions = _asyncapi()["channels"]["submitExchange"]["messages"]
    assert len(submissions) == len(all_specs()) - len(GATEWAY_ONLY_TYPES)
    assert not [name for name in submissions if ".receipt." in name]


@dataclass
class _RecordingQueue:
    name: str
    bound_to: list[tuple[str, str]] = field(default_factory=list)

    async def bind(self, exchange: Any, routing_key: str = "") -> None:
        self.bound_to.append((getattr(exchange, "name", exchange), routing_key))


@dataclass
class _RecordingChannel:
    exchanges: dict[str, str] = field(default_factory=dict)
    queues: dict[str, _RecordingQueue] = field(default_factory=dict)

    async def declare_exchange(self, name: str, kind: Any, **options: Any) -> Any:
        assert options.get("durable") is True, name
        self.exchanges[name] = getattr(kind, "value", kind)
        return SimpleNamespace(name=name)

    async def declare_queue(self, name: str, **options: Any) -> _RecordingQueue:
        assert options.get("durable") is True, name
        self.queues[name] = _RecordingQueue(name)
        return self.queues[name]


async def test_the_gateway_declares_the_topology_the_contract_describes() -> None:
    channel = _RecordingChannel()
    senders = ["SCO-RATS", "UNOCT"]
    await topology.declare(channel, 1000, senders)  # type: ignore[arg-type]

    def per_sender(name: str) -> list[str]:
        return [amqp.inbound_name(s) for s in senders] if name == amqp.INBOUND_QUEUE else [name]

    assert channel.exchanges == {
        each: kind for name, kind in amqp.EXCHANGE_TYPES.items() for each in per_sender(name)
    }
    assert set(channel.queues) == {each for name in amqp.QUEUES for each in per_sender(name)}
    assert topology.inbound_from("UNOCT") == amqp.inbound_name("UNOCT") == "gw.inbound.UNOCT"
    for queue in channel.queues.values():
        assert queue.bound_to == [(queue.name, "#")]
    assert (topology.REASON_HEADER, topology.DETAIL_HEADER) == (
        amqp.REASON_HEADER,
        amqp.DETAIL_HEADER,
    )
    assert topology.FRAME_CONTENT_TYPE == amqp.FRAME_CONTENT_TYPE
    assert topology.JSON_CONTENT_TYPE == amqp.CONTENT_TYPE


def test_asyncapi_references_resolve() -> None:
    document = _asyncapi()
    files = set(generate())

    def resolve(pointer: str) -> Any:
        node: Any = document
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part]
        return node

    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            message = resolve(ref["$ref"])
            payload = message["payload"]
            if "schema" in payload:
                assert f"contracts/{payload['schema']['$ref']}" in files
    for operation in document["operations"].values():
        channel = resolve(operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            assert resolve(ref["$ref"]) in channel["messages"].values()


def test_envelope_schema_follows_the_type_of_each_envelope() -> None:
    validator = _validator("envelope.v1.json")
    for example in sorted(EXAMPLES.glob("*/valid/*.json")):
        envelope = _envelope_for(example)
        parse_envelope(envelope)
        assert [e.message for e in validator.iter_errors(envelope)] == [], example
    share = _envelope_for(next(EXAMPLES.glob("information.share/valid/*.json")))
    receipt = _envelope_for(next(EXAMPLES.glob("receipt/valid/*.json")))
    assert not validator.is_valid({**share, "body": receipt["body"]})
    assert not validator.is_valid({**share, "originator": {**share["originator"], "officer": None}})
    assert not validator.is_valid({**share, "version": 2})
    assert not validator.is_valid({**share, "type": "information.gossip"})
    assert not validator.is_valid({k: v for k, v in share.items() if k != "signature"})
    assert validator.is_valid({**receipt, "originator": {**receipt["originator"], "officer": None}})


def test_frame_schema_refers_to_the_envelope_schema() -> None:
    validator = _validator("frame.v1.json")
    envelope = _envelope_for(next(EXAMPLES.glob("information.share/valid/*.json")))
    assert validator.is_valid({"frame": 1, "envelopes": [envelope, envelope]})
    assert not validator.is_valid({"frame": 1, "envelopes": []})
    assert not validator.is_valid({"frame": 1, "envelopes": [{**envelope, "body": {}}]})


def test_status_schema_accepts_status_events() -> None:
    validator = _validator("status.v1.json")
    event = contracts.StatusEvent(
        submission_id="5b1f",
        envelope_id=None,
        type=None,
        status="rejected",
        reason="schema.invalid_json",
        detail="not valid UTF-8 JSON",
        at="2026-03-01T09:30:00Z",  # type: ignore[arg-type]
    )
    assert validator.is_valid(event.model_dump(mode="json"))
    assert not validator.is_valid({**event.model_dump(mode="json"), "status": "lost"})
