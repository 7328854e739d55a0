"""Ad-hoc SQL on the store: one statement, as a session that can only read, bounded, streamed.

What keeps a query from changing anything is the database, never the text
of the SQL (`storage.readonly` only words the refusal of an obvious write):

- SQLite: the connection is opened read-only (``mode=ro``), with
  ``query_only``, no ``ATTACH`` and an authorizer that denies all but reading
  (`storage.engines`); a progress handler stops it at its time limit.
- PostgreSQL: the statement runs in a READ ONLY transaction with
  ``statement_timeout`` and ``lock_timeout`` set, through the extended
  protocol (one statement, never several), as a *session user* that can do
  nothing but read: not a superuser, no CREATEROLE, member of no predefined
  ``pg_*`` role (reading server files, running programs, signalling other
  backends...), and neither owner of nor able to write any relation of the
  store or its schema. A plain ``SET ROLE`` under a powerful session user
  would not do: the query itself could switch back with
  ``set_config('role', ...)``. The session is checked in the transaction
  before each statement, and the query is refused if it fails the check.

Which PostgreSQL session: the reader URL given (``--reader-db``,
``TWIN_READER_DB``); otherwise the store's own URL when its user passes the
check (an analyst's login); otherwise the store's URL with the user replaced
by ``wafertwin_reader``, the role the migrations create and grant
(`storage.reader_role`). The connection is closed after each query, which
ends any session-level lock the query took.

Rows are streamed (psycopg's single-row mode, SQLite's stepping cursor), so
a result of any size passes through in constant memory.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Generator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from storage.engines import pg_connect_args
from storage.reader_role import READER_ROLE
from storage.readonly import check_read_only, parameter_names, to_pyformat
from twin.errors import StoreError

__all__ = [
    "QueryRows",
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "LOCK_TIMEOUT_S",
    "pg_query_engine",
    "run_query",
    "session_problems",
    "HOW_TO_READ",
    "db_message",
    "reader_url_for",
]

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0  # the longest a query may run (PostgreSQL takes whole ms up to 2^31 - 1)
LOCK_TIMEOUT_S = 5.0
HOW_TO_READ = (
    "give a URL of a role that can only read the store with --reader-db or TWIN_READER_DB "
    "(docs/store.md, 'Who may read what')"
)

# The session user and every role it may become (SET ROLE needs only membership).
_SESSION_CHECK = """
WITH store AS (
    SELECT c.relnamespace AS ns FROM pg_class c WHERE c.oid = to_regclass('alembic_version')
), mine AS (
    SELECT m.oid, m.rolname, m.rolsuper, m.rolcreaterole
    FROM pg_roles m WHERE pg_has_role(session_user, m.oid, 'MEMBER')
)
SELECT session_user,
       (SELECT ns FROM store) IS NOT NULL,
       ARRAY(SELECT rolname FROM mine WHERE rolsuper ORDER BY 1),
       ARRAY(SELECT rolname FROM mine WHERE rolcreaterole AND NOT rolsuper ORDER BY 1),
       ARRAY(SELECT rolname FROM mine WHERE rolname LIKE 'pg\\_%' ORDER BY 1),
       ARRAY(SELECT DISTINCT m.rolname FROM mine m, store s, pg_class c
             WHERE c.relnamespace = s.ns AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND (c.relowner = m.oid OR has_table_privilege(
                        m.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))
             UNION
             SELECT m.rolname FROM mine m, store s, pg_namespace n
             WHERE n.oid = s.ns AND n.nspowner = m.oid
             ORDER BY 1)
"""


@dataclass
class QueryRows:
    """A running query's column names and its rows, to be consumed once."""

    columns: list[str]
    rows: Iterator[tuple[Any, ...]]


def run_query(
    engine: Engine, sql: str, params: Mapping[str, Any] | None, timeout_s: float
) -> AbstractContextManager[QueryRows]:
    """Context manager: `QueryRows` of one read-only statement (``:name`` parameters)."""
    dialect = engine.dialect.name
    statement = check_read_only(sql, dialect)
    values = _check_parameters(statement, dialect, params)
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise StoreError(
            f"timeout: expected a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, "
            f"got {timeout_s!r}"
        )
    runner = _sqlite_rows if dialect == "sqlite" else _pg_rows
    return runner(engine, statement, values, timeout_s)


def _check_parameters(
    statement: str, dialect: str, params: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    wanted = parameter_names(statement, dialect)
    given = dict(params or {})
    if missing := sorted(wanted - given.keys()):
        raise StoreError(f"query parameter :{missing[0]} has no value (give -p {missing[0]}=...)")
    if extra := sorted(given.keys() - wanted):
        raise StoreError(f"parameter {extra[0]!r} given, but the query has no :{extra[0]}")
    return given or None


def _connect(engine: Engine) -> Any:
    # A pool's raw connection passes the driver's own errors through unwrapped.
    try:
        return engine.raw_connection()
    except (SQLAlchemyError, sqlite3.Error, _psycopg_error()) as exc:
        raise StoreError(f"cannot connect to run the query: {db_message(exc)}") from exc


# -- SQLite ----------------------------------------------------------------------


@contextmanager
def _sqlite_rows(
    engine: Engine, statement: str, params: dict[str, Any] | None, timeout_s: float
) -> Iterator[QueryRows]:
    deadline = time.monotonic() + timeout_s
    raw = _connect(engine)
    conn: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    cursor = conn.cursor()
    rows: Generator[tuple[Any, ...]] | None = None
    try:
        try:
            cursor.execute(statement, params or ())
        except sqlite3.Error as exc:
            raise StoreError(_sqlite_error(exc, timeout_s)) from exc
        columns = [d[0] for d in cursor.description or ()]
        rows = _sqlite_fetch(cursor, timeout_s)
        yield QueryRows(columns, rows)
    finally:
        if rows is not None:
            rows.close()
        cursor.close()
        conn.set_progress_handler(None, 0)
        raw.close()


def _sqlite_fetch(cursor: sqlite3.Cursor, timeout_s: float) -> Generator[tuple[Any, ...]]:
    try:
        yield from cursor  # steps the statement a row at a time (one ahead)
    except sqlite3.Error as exc:
        raise StoreError(_sqlite_error(exc, timeout_s)) from exc


def _sqlite_error(exc: sqlite3.Error, timeout_s: float) -> str:
    message = db_message(exc)
    if message == "interrupted":
        return f"query stopped: it ran longer than its time limit of {timeout_s:g} s (--timeout)"
    if "not authorized" in message or "readonly" in message or "query_only" in message:
        return f"refused: queries are read-only ({message})"
    return f"query failed: {message}"


# -- PostgreSQL ------------------------------------------------------------------


def _make_pg_engine(url: URL) -> Engine:
    return sa.create_engine(url, poolclass=NullPool, connect_args=pg_connect_args(url))


def reader_url_for(url: URL) -> URL:
    """The store's URL with the reader role as user and no password (libpq may find one in
    ~/.pgpass)."""
    return url.set(username=READER_ROLE, password=None)


def pg_query_engine(store_url: URL, reader_url: URL | None) -> Engine:
    """The engine ad-hoc SQL runs on: the first candidate session that passes the check."""
    if reader_url is not None:
        candidates = [reader_url]
    else:
        candidates = [store_url]
        if store_url.username != READER_ROLE:
            candidates.append(reader_url_for(store_url))
    found: list[str] = []
    for url in candidates:
        engine = _make_pg_engine(url)
        try:
            raw = _connect(engine)
            try:
                problems = session_problems(raw.driver_connection)
            finally:
                raw.close()
        except StoreError as exc:
            problems = [str(exc)]
        except _psycopg_error() as exc:
            problems = [f"cannot check the session ({db_message(exc)})"]
        if not problems:
            return engine
        engine.dispose()
        found.append(f"as {url.username or 'the default user'}: {'; '.join(problems)}")
    raise StoreError(
        "refused: twin query runs SQL only as a role that can read the store and do nothing "
        f"else ({'; '.join(found)}); {HOW_TO_READ}"
    )


def session_problems(conn: Any) -> list[str]:
    """Why the session of psycopg connection `conn` may not run ad-hoc SQL (empty: it may).

    Runs in the connection's current transaction (opening one if needed).
    """
    row = conn.execute(_SESSION_CHECK).fetchone()
    user, sees_store, supers, creators, predefined, writers = row
    problems = []
    if not sees_store:
        problems.append(f"{user} cannot see the store's tables")
    if supers:
        problems.append(f"{user} is or may become superuser {', '.join(supers)}")
    if creators:
        problems.append(f"{user} may create roles (through {', '.join(creators)})")
    if predefined:
        problems.append(f"{user} is a member of {', '.join(predefined)}")
    if writers:
        problems.append(f"{user} may change the store (through {', '.join(writers)})")
    return problems


@contextmanager
def _pg_rows(
    engine: Engine, statement: str, params: dict[str, Any] | None, timeout_s: float
) -> Iterator[QueryRows]:
    raw = _connect(engine)
    conn: Any = raw.driver_connection
    rows: Any = None
    try:
        conn.autocommit = False
        conn.read_only = True
        try:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true),"
                " set_config('lock_timeout', %s, true)",
                [_ms(timeout_s), _ms(min(timeout_s, LOCK_TIMEOUT_S))],
            )
            if problems := session_problems(conn):
                raise StoreError(f"refused: {'; '.join(problems)}; {HOW_TO_READ}")
            cursor = conn.cursor()
            text = statement if params is None else to_pyformat(statement)
            rows = cursor.stream(text, params)
            first = next(rows, None)
        except _psycopg_error() as exc:
            raise StoreError(_pg_error(exc, timeout_s)) from exc
        columns = _pg_columns(conn, cursor)
        yield QueryRows(columns, _pg_fetch(first, rows, timeout_s))
    finally:
        if rows is not None:
            rows.close()  # a query left running is cancelled
        raw.invalidate()  # closed, not pooled: the session ends, and any lock it took


def _pg_columns(conn: Any, cursor: Any) -> list[str]:
    if cursor.description is not None:
        return [column.name for column in cursor.description]
    # An empty result: psycopg's stream() keeps no description, the statement still has it.
    described = conn.pgconn.describe_prepared(b"")
    encoding = conn.info.encoding
    return [described.fname(i).decode(encoding) for i in range(described.nfields)]


def _pg_fetch(
    first: tuple[Any, ...] | None, rows: Iterator[tuple[Any, ...]], timeout_s: float
) -> Iterator[tuple[Any, ...]]:
    if first is None:
        return
    try:
        yield first
        yield from rows
    except _psycopg_error() as exc:
        raise StoreError(_pg_error(exc, timeout_s)) from exc


def _psycopg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def _pg_error(exc: Exception, timeout_s: float) -> str:
    import psycopg.errors as pe

    message = db_message(exc)
    if isinstance(exc, pe.QueryCanceled):
        return f"query stopped: it ran longer than its time limit of {timeout_s:g} s (--timeout)"
    if isinstance(exc, pe.LockNotAvailable):
        return f"query stopped: it waited too long for a lock ({message})"
    if isinstance(exc, pe.InsufficientPrivilege | pe.ReadOnlySqlTransaction):
        return f"refused: {message}"
    return f"query failed: {message}"


def db_message(exc: BaseException) -> str:
    """The first line of what the database said (a driver's error inside SQLAlchemy's)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"
