"""The AsyncAPI 3.0.0 document of wire contract v1: every exchange and queue of a Party's
broker, the messages on each, and what the gateway does with them.

The document describes the gateway as the application; a back-office system performs the
mirror operations (it publishes to gw.submit and consumes from queues it binds to gw.deliver
and gw.status). Payloads refer to the generated JSON Schemas in ``schemas/``.
"""

from __future__ import annotations

from typing import Any, Final

from contracts import amqp
from contracts.asyncapi_channels import (
    BINDING_VERSION,
    channels,
    submission_message_id,
    submittable_specs,
)
from contracts.json_schemas import ENVELOPE_FILE, FRAME_FILE, STATUS_FILE, submission_file
from contracts.reasons import REASON_CODES

ASYNCAPI_VERSION: Final = "3.0.0"
CONTRACT_VERSION: Final = "1.0.0"
SCHEMA_FORMAT: Final = "application/schema+json;version=draft-2020-12"

_SUBMISSION_PROPERTIES: Final = {
    "message_id": "Required. Unique per submission; the idempotency key: a redelivered or "
    "re-published message with the same message_id produces one envelope only. "
    "Status events carry it as submission_id.",
    "content_type": f"Required: {amqp.CONTENT_TYPE}.",
    "user_id": "Required: the broker user the system connects as (RabbitMQ checks it); "
    "it identifies the system and becomes originator.system.",
    "delivery_mode": "2 (persistent) recommended; publish with confirms.",
}

_REASON_HEADERS: Final = {
    "type": "object",
    "required": [amqp.REASON_HEADER],
    "properties": {
        amqp.REASON_HEADER: {
            "type": "string",
            "description": "Stable machine-readable reason code, family.detail (contracts/"
            "README.md section 9). New codes may be added within contract v1.",
            "enum": sorted(REASON_CODES),
        },
        amqp.DETAIL_HEADER: {
            "type": "string",
            "maxLength": 1000,
            "description": "Human explanation naming the field, rule or provider.",
        },
    },
    "additionalProperties": True,
    "description": "Other x-gw-* headers may be present for operators; ignore unknown ones.",
}
_DELIVERY_HEADERS: Final = {
    "type": "object",
    "required": [amqp.PROVIDER_HEADER, amqp.TYPE_HEADER],
    "properties": {
        amqp.PROVIDER_HEADER: {"type": "string", "description": "The originating Party."},
        amqp.TYPE_HEADER: {"type": "string", "description": "The message type."},
    },
}


def _payload(schema_file: str) -> dict[str, Any]:
    return {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": f"schemas/{schema_file}"}}


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for spec in submittable_specs():
        messages[submission_message_id(spec)] = {
            "name": submission_message_id(spec),
            "title": f"{spec.type} v{spec.version} submission",
            "summary": (spec.body.__doc__ or spec.type).strip(),
            "contentType": amqp.CONTENT_TYPE,
            "payload": _payload(submission_file(spec)),
            "x-amqp-properties": _SUBMISSION_PROPERTIES,
        }
    messages["envelope.v1"] = {
        "name": "envelope.v1",
        "title": "Envelope",
        "summary": "A signed message from the peer Party, accepted by this gateway.",
        "description": "Signed with Ed25519 over the RFC 8785 canonical JSON of the envelope "
        "without its `signature` member. The AMQP message_id is the envelope id.",
        "contentType": amqp.CONTENT_TYPE,
        "headers": _DELIVERY_HEADERS,
        "payload": _payload(ENVELOPE_FILE),
    }
    messages["frame.v1"] = {
        "name": "frame.v1",
        "title": "Frame",
        "summary": "One or more signed envelopes in one AMQP message, each verified on its own.",
        "contentType": amqp.FRAME_CONTENT_TYPE,
        "payload": _payload(FRAME_FILE),
    }
    messages["status.v1"] = {
        "name": "status.v1",
        "title": "Status event",
        "summary": "A step in a message's life: sent, delivered, rejected, blocked, ...",
        "description": "The AMQP correlation_id is the submission_id, when there is one.",
        "contentType": amqp.CONTENT_TYPE,
        "payload": _payload(STATUS_FILE),
    }
    messages["rejected"] = {
        "name": "rejected",
        "title": "Rejected message",
        "summary": "A message the gateway refused: invalid, unverifiable or undeliverable.",
        "description": "The body is the submission or frame exactly as it arrived, with its "
        "message_id and content_type; an envelope refused out of an accepted frame is kept "
        "alone, as compact JSON, with its id as message_id. The headers say why.",
        "headers": _REASON_HEADERS,
        "payload": {"description": "The refused message."},
    }
    messages["quarantined"] = {
        "name": "quarantined",
        "title": "Quarantined message",
        "summary": "A submission the third-party rule stopped: no live consent of a provider.",
        "description": "The body is the submission exactly as it arrived, with its "
        "message_id; the headers name the rule and the providers whose consent is missing.",
        "headers": _REASON_HEADERS,
        "payload": {"description": "The stopped submission."},
    }
    return messages


def _operation(
    action: str, channel: str, messages: list[str], summary: str, **amqp_binding: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{mid}"} for mid in messages],
    }
    if amqp_binding:
        operation["bindings"] = {"amqp": {**amqp_binding, "bindingVersion": BINDING_VERSION}}
    return operation


def _operations() -> dict[str, Any]:
    submissions = [submission_message_id(spec) for spec in submittable_specs()]
    return {
        "receiveSubmission": _operation(
            "receive",
            "submitQueue",
            submissions,
            "Validate, stamp, sign, archive and forward a submission; acknowledged only once "
            "its outcome is durable.",
            ack=True,
        ),
        "forwardToPeer": _operation(
            "send",
            "inboundExchange",
            ["frame.v1"],
            "Publish frames of signed envelopes to the peer's gw.inbound.{party} (this "
            "Party's own id), with confirms.",
            deliveryMode=2,
        ),
        "receiveFromPeer": _operation(
            "receive",
            "inboundQueue",
            ["frame.v1"],
            "Verify, de-duplicate, archive and deliver each envelope; answer with a receipt.",
            ack=True,
        ),
        "deliver": _operation(
            "send",
            "deliverExchange",
            ["envelope.v1"],
            "Deliver an accepted envelope.",
            deliveryMode=2,
        ),
        "publishStatus": _operation(
            "send", "statusExchange", ["status.v1"], "Publish a status event.", deliveryMode=2
        ),
        "reject": _operation(
            "send",
            "rejectedExchange",
            ["rejected"],
            "Set a refused message aside.",
            deliveryMode=2,
        ),
        "quarantine": _operation(
            "send",
            "quarantineExchange",
            ["quarantined"],
            "Set aside a message the third-party rule stopped.",
            deliveryMode=2,
        ),
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI document as plain data."""
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Liaison gateway wire contract",
            "version": CONTRACT_VERSION,
            "description": "Exchanges and queues on each Party's own broker, and the messages "
            "on them. Every name is part of the contract and changes only with a new contract "
            "version. This document describes the gateway; a back-office system publishes "
            "submissions to gw.submit and consumes from its own queues bound to gw.deliver "
            "and gw.status. A system's broker user <user> may declare (configure, read, "
            "write) only queues named bo.<user>.* (or server-named amq.gen-* ones), write only "
            "gw.submit, and bind only to its own statuses and entitled deliveries. See "
            "contracts/README.md.",
        },
        "defaultContentType": amqp.CONTENT_TYPE,
        "servers": {
            "party-broker": {
                "host": "{host}",
                "pathname": "/{vhost}",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "A Party's own RabbitMQ broker; the peer gateway reaches its "
                "gw.inbound.{party} exchange with a write-only user.",
                "variables": {
                    "host": {"default": "127.0.0.1:5672"},
                    "vhost": {"default": "party-a", "examples": ["party-a", "party-b"]},
                },
            }
        },
        "channels": channels(),
        "operations": _operations(),
        "components": {"messages": _messages()},
    }
