"""Fast bulk inserts of record rows: executemany on SQLite, COPY on PostgreSQL.

Rows are plain tuples in table column order, built once by the writer. Going
below SQLAlchemy's parameter processing here is what keeps recording a small
part of a run's time (see bench/bench_store.py). Events, the most numerous
rows, go to SQLite many rows per statement: a run's events then cost about
60 % of what one statement per event does.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from sqlalchemy.engine import Connection

__all__ = ["insert_rows", "insert_events"]

_EVENT_FIELDS = ("t", "scope", "kind", "cause", "value")
# 100 rows of 5 parameters: within the 999 parameters of the oldest SQLite builds
_EVENTS_PER_STATEMENT = 100


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> None:
    """Append `rows` to `table` inside the connection's current transaction."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        _copy(conn, f"COPY {table} ({names}) FROM STDIN", rows)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def _copy(conn: Connection, statement: str, rows: Sequence[tuple[object, ...]]) -> None:
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def insert_events(conn: Connection, run_id: int, events: Sequence[tuple[object, ...]]) -> None:
    """Append a run's events (``EventRow`` tuples: t, scope, kind, cause, value).

    On SQLite the events go in as they are, a hundred to a statement, the run
    id written into it: no per-row conversion, and SQLite itself stores a NaN
    value as NULL. PostgreSQL would keep NaN, so there each row is built with
    NULL. Every event must be a 5-tuple (`RunWriter` checks): rows are
    flattened into one statement's parameters.
    """
    if not events:
        return
    if conn.dialect.name == "postgresql":
        rows = [
            (run_id, t, scope, kind, cause, None if value != value else value)  # NaN -> NULL
            for t, scope, kind, cause, value in events
        ]
        insert_rows(conn, "events", ("run_id", *_EVENT_FIELDS), rows)
        return
    insert = f"INSERT INTO events (run_id, {', '.join(_EVENT_FIELDS)}) VALUES "
    row = f"({int(run_id)}, ?, ?, ?, ?, ?)"
    size = _EVENTS_PER_STATEMENT
    whole = len(events) - len(events) % size
    cursor = conn.connection.cursor()
    try:
        if whole:
            flat = [tuple(chain.from_iterable(events[i : i + size])) for i in range(0, whole, size)]
            cursor.executemany(insert + ", ".join([row] * size), flat)
        if whole < len(events):
            rest = events[whole:]
            cursor.execute(insert + ", ".join([row] * len(rest)), tuple(chain.from_iterable(rest)))
    finally:
        cursor.close()
