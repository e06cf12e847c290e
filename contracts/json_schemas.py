"""JSON Schemas (draft 2020-12) of the wire documents, generated from the models.

One schema per (type, version) for submissions, with the typed body and the type's own
rules (officer required or not); one envelope schema whose body is chosen by (type, version);
the frame; the status event.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import models_json_schema

from contracts.envelope import Envelope, Signature
from contracts.frame import FRAME_VERSION
from contracts.registry import MessageSpec, all_specs, message_types, versions_of
from contracts.status import StatusEvent
from contracts.submission import SubmissionFields
from contracts.types import OfficerId

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_FILE: Final = "envelope.v1.json"
FRAME_FILE: Final = "frame.v1.json"
STATUS_FILE: Final = "status.v1.json"

_OFFICER_REQUIRED: Final = (
    OfficerId,
    Field(description="The liaison officer responsible, on the roster; required for this type."),
)


def submission_file(spec: MessageSpec) -> str:
    """File name of a submission schema, e.g. ``information.share.v1.json``."""
    return f"{spec.type}.v{spec.version}.json"


def _model_name(spec: MessageSpec, suffix: str) -> str:
    words = spec.type.replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words) + f"V{spec.version}{suffix}"


def _document(schema: dict[str, Any], title: str) -> dict[str, Any]:
    return {"$schema": DIALECT, **schema, "title": title}


def submission_schema(spec: MessageSpec) -> dict[str, Any]:
    """Schema of a submission of ``spec``'s type and version, with its typed body."""
    fields: dict[str, Any] = {"body": (spec.body, ...)}
    if spec.needs_officer:
        fields["officer"] = _OFFICER_REQUIRED
    model: type[BaseModel] = create_model(
        _model_name(spec, "Submission"),
        __base__=SubmissionFields,
        __doc__=f"A `{spec.type}` version {spec.version} submission, published to gw.submit "
        f"with routing key `{spec.type}`. {spec.body.__doc__ or ''}".strip(),
        **fields,
    )
    schema = model.model_json_schema()
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": spec.type}
    properties["version"] = {**properties["version"], "const": spec.version}
    if spec.version != SubmissionFields.model_fields["version"].default:
        properties["version"].pop("default", None)
        schema["required"].append("version")
    return _document(schema, f"{spec.type} v{spec.version} submission")


def envelope_schema() -> dict[str, Any]:
    """Schema of a signed envelope of any registered type; the body follows (type, version)."""
    wire_envelope: type[BaseModel] = create_model(
        "Envelope", __base__=Envelope, __doc__=Envelope.__doc__, signature=(Signature, ...)
    )
    schema = wire_envelope.model_json_schema()
    specs = all_specs()
    refs, bodies = models_json_schema(
        [(spec.body, "validation") for spec in specs], ref_template="#/$defs/{model}"
    )
    for name, definition in bodies["$defs"].items():
        if schema["$defs"].setdefault(name, definition) != definition:
            raise RuntimeError(f"two different models are both named {name}")
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "enum": list(message_types())}
    properties["version"] = {**properties["version"], "minimum": 1}
    rules: list[dict[str, Any]] = []
    for message_type in message_types():
        rules.append(
            {
                "if": {"properties": {"type": {"const": message_type}}},
                "then": {"properties": {"version": {"enum": list(versions_of(message_type))}}},
            }
        )
    for spec in specs:
        then: dict[str, Any] = {"properties": {"body": refs[(spec.body, "validation")]}}
        if spec.needs_officer:
            then["properties"]["originator"] = {
                "properties": {"officer": {"type": "string"}},
            }
        rules.append(
            {
                "if": {
                    "properties": {
                        "type": {"const": spec.type},
                        "version": {"const": spec.version},
                    }
                },
                "then": then,
            }
        )
    schema["allOf"] = rules
    return _document(schema, "envelope v1")


def frame_schema() -> dict[str, Any]:
    """Schema of a frame: several envelopes in one message on the Party-to-Party hop."""
    return _document(
        {
            "description": "Several envelopes in one AMQP message on the Party-to-Party hop. "
            "Each envelope keeps its own signature and is accepted or refused on its own.",
            "type": "object",
            "additionalProperties": False,
            "required": ["frame", "envelopes"],
            "properties": {
                "frame": {"const": FRAME_VERSION, "description": "Frame format version."},
                "envelopes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": ENVELOPE_FILE},
                },
            },
        },
        f"frame v{FRAME_VERSION}",
    )


def status_schema() -> dict[str, Any]:
    """Schema of a status event on gw.status."""
    return _document(StatusEvent.model_json_schema(), "status event v1")


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every schema by file name."""
    schemas = {submission_file(spec): submission_schema(spec) for spec in all_specs()}
    schemas[ENVELOPE_FILE] = envelope_schema()
    schemas[FRAME_FILE] = frame_schema()
    schemas[STATUS_FILE] = status_schema()
    return schemas
