"""Fast bulk inserts of record rows: executemany on SQLite, COPY on PostgreSQL.

Rows are plain tuples in table column order, built once by the writer. Going
below SQLAlchemy's parameter processing here is what keeps recording a small
part of a run's time (see bench/bench_store.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

__all__ = ["insert_rows", "insert_events"]

_EVENT_FIELDS = ("t", "scope", "kind", "cause", "value")


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
    """Append a run's events (``Event`` tuples: t, scope, kind, cause, value).

    On SQLite the events go in as they are, the run id written into the
    statement: no per-row conversion, and SQLite itself stores a NaN value as
    NULL. PostgreSQL would keep NaN, so there each row is built with NULL.
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
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO events (run_id, {', '.join(_EVENT_FIELDS)})"
            f" VALUES ({int(run_id)}, ?, ?, ?, ?, ?)",
            events,
        )
    finally:
        cursor.close()
