"""``--format table|json|jsonl`` for every listing and show verb: one way to print rows.

``table`` is for a person; ``json`` is one JSON document (an array for a listing, an object for
a single item); ``jsonl`` is one JSON object per line, for ``jq`` and ``grep``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TextIO

Format = Literal["table", "json", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("table", "json", "jsonl")


def add_format_argument(parser: argparse.ArgumentParser, default: Format = "table") -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=default,
        help="table for people, json (one document) or jsonl (one object per line); "
        "default: %(default)s",
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    """Aligned columns under a header line; a missing or None value is an empty cell."""
    cells = [list(columns), *([_cell(row.get(c)) for c in columns] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip(), file=out)


def print_item(item: Mapping[str, Any], fmt: Format, out: TextIO) -> None:
    """A single item in ``fmt``: ``name  value`` lines for a table."""
    if fmt == "json":
        print(json.dumps(item, ensure_ascii=False, indent=2), file=out)
    elif fmt == "jsonl":
        print(json.dumps(item, ensure_ascii=False), file=out)
    else:
        print_table([{"field": k, "value": v} for k, v in item.items()], ("field", "value"), out)


def print_rows(
    rows: Sequence[Mapping[str, Any]], fmt: Format, columns: Sequence[str], out: TextIO
) -> None:
    """A listing in ``fmt``; ``columns`` are the table's (JSON keeps every key)."""
    if fmt == "json":
        print(json.dumps(list(rows), ensure_ascii=False, indent=2), file=out)
    elif fmt == "jsonl":
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), file=out)
    else:
        print_table(rows, columns, out)
