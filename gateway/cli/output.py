"""``--format table|json|jsonl`` for every listing and show verb: one way to print rows.

``table`` is for a person; ``json`` is one JSON document (an array for a listing, an object for
a single item); ``jsonl`` is one JSON object per line, for ``jq`` and ``grep``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TextIO

from gateway.core.archive_views import table

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


def _cell(value: Any, blank: str) -> str:
    if value is None:
        return blank
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value).replace("\n", " / ")


def print_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO, *, blank: str = ""
) -> None:
    """Aligned columns under a header line; a missing or None value is ``blank``."""
    cells = [[_cell(row.get(c), blank) for c in columns] for row in rows]
    for line in table([list(columns), *cells]):
        print(line, file=out)


def print_item(
    item: Mapping[str, Any], fmt: Format, out: TextIO, lines: Sequence[str] | None = None
) -> None:
    """A single item in ``fmt``; for a table ``lines`` if given, else ``name  value`` lines."""
    if fmt == "json":
        print(json.dumps(item, ensure_ascii=False, indent=2, default=str), file=out)
    elif fmt == "jsonl":
        print(json.dumps(item, ensure_ascii=False, default=str), file=out)
    elif lines is not None:
        for line in lines:
            print(line, file=out)
    else:
        print_table([{"field": k, "value": v} for k, v in item.items()], ("field", "value"), out)


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: Format,
    columns: Sequence[str],
    out: TextIO,
    *,
    noun: str | None = None,
    blank: str = "",
) -> None:
    """A listing in ``fmt``; ``columns`` are the table's (JSON keeps every key). With ``noun`` a
    table ends with the count, e.g. ``(2 pending)``, and an empty one shows the count alone."""
    if fmt == "json":
        print(json.dumps(list(rows), ensure_ascii=False, indent=2, default=str), file=out)
    elif fmt == "jsonl":
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str), file=out)
    else:
        if rows or noun is None:
            print_table(rows, columns, out, blank=blank)
        if noun is not None:
            print(f"({len(rows)} {noun})", file=out)
