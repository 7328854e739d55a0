"""How the store commands print values: JSON-ready, CSV cells, table cells, rich tables.

A value from either backend becomes one plain form: NaN, NaT and infinities
are null; timestamps ISO 8601 in UTC (``2026-12-01T14:00:00Z``, with the fraction of a
second when there is one; the store keeps naive UTC; tables show the second), dates and
times ISO 8601 text; an interval an ISO 8601
duration (``P1DT2H``); bytes hex text as PostgreSQL writes it (``\\x00ff``);
a UUID, an address or any other object its text. CSV and JSON are written
row by row, so a result of any size streams through. Text read from a store
reaches a terminal with its control characters escaped
(`cli.terminal.printable`): tables always (never read as rich markup), CSV
when it is written to a terminal (to a file or a pipe it is exact); JSON
escapes them itself.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

from cli.terminal import printable

__all__ = ["plain", "cell", "timestamp", "print_rows", "write_csv", "write_json"]


def plain(value: Any) -> Any:
    """A JSON-ready Python value (None, bool, int, float, str, list or dict)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            return None  # NaN and infinities
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return value
    if isinstance(value, datetime):
        return None if value != value else timestamp(value)  # pandas' NaT is a datetime
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return plain(item())
    return str(value)


def timestamp(value: datetime, *, seconds: bool = False) -> str:
    """ISO 8601 in UTC, with its fraction of a second unless zero or `seconds`; a naive
    time is taken as UTC (the store's convention)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    whole = seconds or not value.microsecond
    return value.isoformat(timespec="seconds" if whole else "microseconds") + "Z"


def _duration(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else ""
    delta = abs(delta)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = ((hours, "H"), (minutes, "M"), (seconds + delta.microseconds / 1e6, "S"))
    clock = "".join(f"{n:g}{unit}" for n, unit in parts if n)
    days = f"{delta.days}D" if delta.days else ""
    return f"{sign}P{days}" + (f"T{clock or '0S'}" if clock or not days else "")


def cell(value: Any) -> str:
    """A value as a table shows it: '-' if missing, numbers to 6 digits, a list of
    words as words, times to the second, control characters escaped."""
    if isinstance(value, datetime) and value == value:  # pandas' NaT differs from itself
        return timestamp(value, seconds=True)
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return printable(" ".join(value)) or "-"
    return printable(str(value) if not isinstance(value, list | dict) else json.dumps(value))


def print_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    numeric: Sequence[bool] | None = None,
) -> None:
    """A rich table of `rows`; `numeric` columns (default: all values numbers) align right."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = [tuple(row) for row in rows]
    if numeric is None:
        numeric = [
            bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(columns))
        ]
    table = Table(title=title, title_justify="left")
    for name, right in zip(columns, numeric, strict=True):
        table.add_column(Text(printable(str(name))), justify="right" if right else "left")
    for row in rows:
        table.add_row(*(Text(cell(v)) for v in row))  # Text: no rich markup in data
    width = None if sys.stdout.isatty() else 200
    Console(width=width).print(table)


def _is_number(value: Any) -> bool:
    number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    return value is None or number


def write_csv(out: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a header and `rows` as CSV (missing values empty), text escaped only on a
    terminal; returns the rows written."""
    shown = printable if out.isatty() else str
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([shown(str(c)) for c in columns])
    count = 0
    for row in rows:
        cells = [plain(value) for value in row]
        writer.writerow(["" if v is None else _csv_text(v, shown) for v in cells])
        count += 1
    return count


def _csv_text(value: Any, shown: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return shown(value)
    return shown(json.dumps(value)) if isinstance(value, list | dict) else value


def write_json(out: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write `rows` as one JSON array of objects, a row at a time; returns the rows written."""
    names = [str(c) for c in columns]
    out.write("[")
    count = 0
    for row in rows:
        record = {name: plain(value) for name, value in zip(names, row, strict=True)}
        out.write((", " if count else "") + json.dumps(record))
        count += 1
    out.write("]\n")
    return count
