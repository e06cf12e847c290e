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
    parser.add_argument(
        "--type",
        action="append",
        default=[],
        type=one_of(message_types(), "message type"),
        help="message type (repeatable)",
    )
    parser.add_argument(
        "--kind",
        action="append",
        default=[],
        type=one_of(RECORD_KINDS, "record kind"),
        help=f"record kind (repeatable): {', '.join(RECORD_KINDS)}",
    )
    parser.add_argument(
        "--outcome",
        action="append",
        default=[],
        type=one_of(RECORD_OUTCOMES, "outcome"),
        help=f"outcome (repeatable): {', '.join(RECORD_OUTCOMES)}",
    )
