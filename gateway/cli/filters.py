"""The record filters shared by ``archive search`` and ``replay``: validated values, so that a
typo is a usage error rather than an empty answer."""

from __future__ import annotations

import argparse

from contracts.registry import message_types
from gateway.archive.records import RECORD_KINDS, RECORD_OUTCOMES
from gateway.cli import instant, one_of

WHEN = "RFC 3339, or 2h / 7d / today / yesterday"


def add_record_filters(parser: argparse.ArgumentParser) -> None:
    """--since, --until, --type, --kind and --outcome."""
    parser.add_argument("--since", type=instant, help=f"recorded at or after ({WHEN})")
    parser.add_argument("--until", type=instant, help=f"recorded before ({WHEN})")
    choices = (
        ("--type", message_types(), "message type", "message type"),
        ("--kind", RECORD_KINDS, "record kind", f"record kind: {', '.join(RECORD_KINDS)}"),
        ("--outcome", RECORD_OUTCOMES, "outcome", f"outcome: {', '.join(RECORD_OUTCOMES)}"),
    )
    for option, allowed, what, help_text in choices:
        parser.add_argument(
            option,
            action="append",
            default=[],
            type=one_of(allowed, what),
            help=f"{help_text} (repeatable)",
        )
