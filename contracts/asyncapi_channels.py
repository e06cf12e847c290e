"""The channels of the AsyncAPI document: each exchange and queue of a Party's broker, with
its address, parameters, messages and AMQP bindings."""

from __future__ import annotations

from typing import Any, Final

from contracts import amqp
from contracts.reasons import REASON_CODES
from contracts.registry import GATEWAY_ONLY_TYPES, MessageSpec, all_specs, submittable_types
from contracts.status import STATUSES

BINDING_VERSION: Final = "0.3.0"


def submission_message_id(spec: MessageSpec) -> str:
    return f"submission.{spec.type}.v{spec.version}"


def _exchange_binding(name: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {
                "name": name,
                "type": amqp.EXCHANGE_TYPES[name],
                "durable": True,
                "autoDelete": False,
            },
            "bindingVersion": BINDING_VERSION,
        }
    }


def _queue_binding(name: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "queue",
            "queue": {"name": name, "durable": True, "exclusive": False, "autoDelete": False},
            "bindingVersion": BINDING_VERSION,
        }
    }


def _refs(message_ids: list[str]) -> dict[str, Any]:
    return {mid: {"$ref": f"#/components/messages/{mid}"} for mid in message_ids}


def submittable_specs() -> list[MessageSpec]:
    return [spec for spec in all_specs() if spec.type not in GATEWAY_ONLY_TYPES]


def _type_parameter() -> dict[str, Any]:
    return {
        "description": "The message type (a receipt or a checkpoint is made by the gateway "
        "only, never submitted: submission.reserved_type).",
        "enum": list(submittable_types()),
        "location": "$message.payload#/type",
    }


def _submit_channels() -> dict[str, Any]:
    """Where back-office systems publish submissions."""
    submissions = [submission_message_id(spec) for spec in submittable_specs()]
    return {
        "submitExchange": {
            "address": "{type}",
            "title": f"{amqp.SUBMIT_EXCHANGE} (exchange)",
            "description": "Back-office systems publish submissions here with routing key = "
            "the message type; a key that is not the body's type is refused "
            "(submission.routing_key_mismatch).",
            "parameters": {"type": _type_parameter()},
            "messages": _refs(submissions),
            "bindings": _exchange_binding(amqp.SUBMIT_EXCHANGE),
        },
        "submitQueue": {
            "address": amqp.SUBMIT_QUEUE,
            "title": f"{amqp.SUBMIT_QUEUE} (queue)",
            "description": "Bound to the gw.submit exchange with '#'; the gateway's outbound "
            "worker consumes it.",
            "messages": _refs(submissions),
            "bindings": _queue_binding(amqp.SUBMIT_QUEUE),
        },
    }


def _inbound_channels() -> dict[str, Any]:
    """Where the counterparties' gateways publish frames."""
    return {
        "inboundExchange": {
            "address": None,
            "title": f"{amqp.INBOUND_EXCHANGE} (exchange)",
            "description": "One per counterparty, named after it (e.g. gw.inbound.CICA). Only "
            "that counterparty's gateway publishes here, as a least-privilege user with write "
            "access to this exchange only, so the broker vouches for the sender. Every message "
            "is a frame (a single envelope travels as a frame of one).",
            "messages": _refs(["frame.v1"]),
            "bindings": _exchange_binding(amqp.INBOUND_EXCHANGE),
        },
        "inboundQueue": {
            "address": amqp.INBOUND_QUEUE,
            "title": f"{amqp.INBOUND_QUEUE} (queue)",
            "description": "Bound to the gw.inbound.{party} exchange of the same name; the "
            "gateway's inbound worker takes batches from each counterparty's queue in turn, so "
            "one sender cannot crowd out another.",
            "parameters": {
                "party": {"description": "The sending counterparty's Party id, e.g. CICA."}
            },
            "messages": _refs(["frame.v1"]),
            "bindings": _queue_binding(amqp.INBOUND_QUEUE),
        },
    }


def _outcome_channels() -> dict[str, Any]:
    """Where the gateway delivers envelopes and publishes status events."""
    return {
        "deliverExchange": {
            "address": "{provider}.{type}",
            "title": f"{amqp.DELIVER_EXCHANGE} (exchange)",
            "description": "Accepted envelopes from the peer, for back-office queues that bind "
            "to it (e.g. 'SCO-RATS.information.*'). RabbitMQ topic permissions limit each "
            "system's binding keys to the deliveries it is entitled to; a binding outside them "
            "(e.g. '#') is refused with ACCESS_REFUSED. A delivery no queue is bound for is "
            "kept in gw.rejected.",
            "parameters": {
                "provider": {
                    "description": "The originating Party.",
                    "location": "$message.payload#/originator/party",
                },
                "type": _type_parameter(),
            },
            "messages": _refs(["envelope.v1"]),
            "bindings": _exchange_binding(amqp.DELIVER_EXCHANGE),
        },
        "statusExchange": {
            "address": "{system}.{status}.{type}",
            "title": f"{amqp.STATUS_EXCHANGE} (exchange)",
            "description": "Status events about every message; each submitting system binds "
            "with its own user name as the first word (e.g. 'case-desk.#' or "
            "'case-desk.rejected.information.share') and matches submission_id. Topic "
            "permissions refuse a binding for another system's statuses (ACCESS_REFUSED). The "
            f"type segment is '{amqp.UNKNOWN_TYPE_KEY}' when the message's type could not be "
            "read.",
            "parameters": {
                "system": {
                    "description": "The submitting system (its broker user, the submission's "
                    f"user_id); '{amqp.OPERATOR_SYSTEM}' for answers to operator requests, "
                    f"'{amqp.UNKNOWN_SYSTEM_KEY}' for a submission without user_id.",
                },
                "status": {
                    "description": "The status.",
                    "enum": list(STATUSES),
                    "location": "$message.payload#/status",
                },
                "type": {
                    "description": f"The message type, or '{amqp.UNKNOWN_TYPE_KEY}'.",
                    "location": "$message.payload#/type",
                },
            },
            "messages": _refs(["status.v1"]),
            "bindings": _exchange_binding(amqp.STATUS_EXCHANGE),
        },
    }


def _holding_channels() -> dict[str, Any]:
    """Where the gateway sets aside what it refused or the third-party rule stopped."""
    reason = {
        "description": "The reason code, as in the x-gw-reason header.",
        "enum": sorted(REASON_CODES),
        "location": f"$message.header#/{amqp.REASON_HEADER}",
    }
    return {
        "rejectedExchange": {
            "address": "{reason}",
            "title": f"{amqp.REJECTED_EXCHANGE} (exchange)",
            "description": "The gateway publishes refused messages here, routing key = reason.",
            "parameters": {"reason": reason},
            "messages": _refs(["rejected"]),
            "bindings": _exchange_binding(amqp.REJECTED_EXCHANGE),
        },
        "rejectedQueue": {
            "address": amqp.REJECTED_QUEUE,
            "title": f"{amqp.REJECTED_QUEUE} (queue)",
            "description": "Invalid, unverifiable or undeliverable messages, with the reason; "
            "read by operators and the replay tool.",
            "messages": _refs(["rejected"]),
            "bindings": _queue_binding(amqp.REJECTED_QUEUE),
        },
        "quarantineExchange": {
            "address": "{reason}",
            "title": f"{amqp.QUARANTINE_EXCHANGE} (exchange)",
            "description": "The gateway publishes messages the third-party rule stopped here, "
            "routing key = reason.",
            "parameters": {"reason": reason},
            "messages": _refs(["quarantined"]),
            "bindings": _exchange_binding(amqp.QUARANTINE_EXCHANGE),
        },
        "quarantineQueue": {
            "address": amqp.QUARANTINE_QUEUE,
            "title": f"{amqp.QUARANTINE_QUEUE} (queue)",
            "description": "Messages the third-party rule stopped, with the rule and the "
            "provider; read by operators and the replay tool.",
            "messages": _refs(["quarantined"]),
            "bindings": _queue_binding(amqp.QUARANTINE_QUEUE),
        },
    }


def channels() -> dict[str, Any]:
    """Every channel, keyed by its id in the document."""
    return {
        **_submit_channels(),
        **_inbound_channels(),
        **_outcome_channels(),
        **_holding_channels(),
    }
